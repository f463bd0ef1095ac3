package fakeaws

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// UploadPart stores one part of a multipart upload sent through the SDK
// (the toolkit's own uploads: `responder image`). A ChecksumSHA256 is
// checked against the body (BadDigest when it differs) and, as on S3, takes
// the place of Content-MD5 in a bucket with Object Lock.
func (s *S3) UploadPart(ctx context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if in == nil {
		in = &s3.UploadPartInput{}
	}
	var body []byte
	if in.Body != nil {
		var err error
		if body, err = io.ReadAll(in.Body); err != nil {
			return nil, err
		}
	}
	c := s.c
	out := &s3.UploadPartOutput{}
	err := c.call(ctx, serviceS3, "UploadPart", false, &out.ResultMetadata, func() (func(), error) {
		contentMD5 := aws.ToString(in.ContentMD5)
		if want := aws.ToString(in.ChecksumSHA256); want != "" {
			sum := sha256.Sum256(body)
			if want != base64.StdEncoding.EncodeToString(sum[:]) {
				return nil, apiError("BadDigest", "The SHA256 you specified did not match the calculated checksum.")
			}
			if contentMD5 == "" {
				m := md5.Sum(body)
				contentMD5 = base64.StdEncoding.EncodeToString(m[:])
			}
		}
		b, _, err := c.uploadLocked(aws.ToString(in.Bucket), aws.ToString(in.Key), aws.ToString(in.UploadId))
		switch n := aws.ToInt32(in.PartNumber); {
		case err != nil:
			return nil, err
		case n < 1 || n > maxPartCount:
			return nil, apiError("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		case len(body) > maxPartSize:
			return nil, apiError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
		case contentMD5 == "" && b.ObjectLock:
			return nil, apiError("InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Part requests with Object Lock parameters")
		}
		return func() {
			etag, err := c.uploadPartLocked(aws.ToString(in.Bucket), aws.ToString(in.Key), aws.ToString(in.UploadId),
				aws.ToInt32(in.PartNumber), body, contentMD5)
			if err == nil {
				out.ETag = aws.String(etag)
				out.ChecksumSHA256 = in.ChecksumSHA256
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
