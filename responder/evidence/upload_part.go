package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// PartAPI is what the S3 store needs of S3 to stream an artifact it makes
// itself (a disk image) as a multipart upload: the toolkit uploads the parts,
// where Receiver has the instance upload them.
type PartAPI interface {
	UploadAPI
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
}

// PartWriter is a store that takes an artifact in parts: BeginUpload opens
// it (write-once: a taken path is ErrExists), WritePart sends each part,
// CompleteUpload assembles it with If-None-Match, AbortUpload discards it.
// The S3 bucket is one; a local folder is not.
type PartWriter interface {
	BeginUpload(ctx context.Context, caseID, path, contentType string) (*Upload, error)
	WritePart(ctx context.Context, u *Upload, n int32, body []byte) (UploadedPart, error)
	CompleteUpload(ctx context.Context, u *Upload, parts []UploadedPart) (Received, error)
	AbortUpload(ctx context.Context, u *Upload) error
}

var _ PartWriter = (*Bucket)(nil)

// AsPartWriter returns the store as a PartWriter, or an error saying why it
// cannot be one.
func AsPartWriter(s Store) (PartWriter, error) {
	b, ok := s.(*Bucket)
	if !ok {
		return nil, fmt.Errorf("the evidence store %s cannot take a streamed image: it needs an S3 bucket", s.Location("", ""))
	}
	if _, ok := b.API.(PartAPI); !ok {
		return nil, fmt.Errorf("the S3 client of %s cannot upload parts", s.Location("", ""))
	}
	return b, nil
}

// WritePart uploads part n of an upload with its SHA-256 as the S3 checksum
// (which S3 checks on arrival, and which an Object Lock bucket requires).
func (b *Bucket) WritePart(ctx context.Context, u *Upload, n int32, body []byte) (UploadedPart, error) {
	api, ok := b.API.(PartAPI)
	if !ok {
		return UploadedPart{}, fmt.Errorf("the S3 client of s3://%s cannot upload parts", b.Name)
	}
	sum := sha256.Sum256(body)
	out, err := api.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &u.Bucket, Key: &u.Key, UploadId: &u.UploadID, PartNumber: aws.Int32(n),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	if err != nil {
		return UploadedPart{}, fmt.Errorf("upload part %d of s3://%s/%s: %w", n, u.Bucket, u.Key, err)
	}
	return UploadedPart{Number: n, ETag: aws.ToString(out.ETag), Size: int64(len(body))}, nil
}
