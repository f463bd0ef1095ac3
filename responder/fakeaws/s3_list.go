package fakeaws

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ListObjectsV2 lists the current objects of a bucket in key order, with
// Prefix, Delimiter (CommonPrefixes), MaxKeys (default and cap 1000) and
// ContinuationToken, as S3 does.
func (s *S3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	if in == nil {
		in = &s3.ListObjectsV2Input{}
	}
	c := s.c
	out := &s3.ListObjectsV2Output{}
	err := c.call(ctx, serviceS3, "ListObjectsV2", false, &out.ResultMetadata, func() (func(), error) {
		b, ok := c.st.Buckets[aws.ToString(in.Bucket)]
		if !ok {
			return nil, noSuchBucket(aws.ToString(in.Bucket))
		}
		prefix, delim := aws.ToString(in.Prefix), aws.ToString(in.Delimiter)
		max := 1000
		if in.MaxKeys != nil && *in.MaxKeys > 0 && *in.MaxKeys < 1000 {
			max = int(*in.MaxKeys)
		}
		start := 0
		if tok := aws.ToString(in.ContinuationToken); tok != "" {
			n, err := strconv.Atoi(tok)
			if err != nil {
				return nil, apiError("InvalidArgument", "The continuation token provided is incorrect")
			}
			start = n
		}
		// Entries are keys and common prefixes, in order, each counted once.
		type entry struct {
			key      string
			isPrefix bool
		}
		var entries []entry
		seen := map[string]bool{}
		keys := make([]string, 0, len(b.Objects))
		for k, versions := range b.Objects {
			if len(versions) > 0 && strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			if delim != "" {
				if i := strings.Index(k[len(prefix):], delim); i >= 0 {
					p := k[:len(prefix)+i+len(delim)]
					if !seen[p] {
						seen[p] = true
						entries = append(entries, entry{p, true})
					}
					continue
				}
			}
			entries = append(entries, entry{k, false})
		}
		var objects []s3types.Object
		var prefixes []s3types.CommonPrefix
		end := start + max
		if end > len(entries) {
			end = len(entries)
		}
		for _, e := range entries[min(start, len(entries)):end] {
			if e.isPrefix {
				prefixes = append(prefixes, s3types.CommonPrefix{Prefix: aws.String(e.key)})
				continue
			}
			o := b.Objects[e.key][len(b.Objects[e.key])-1]
			objects = append(objects, s3types.Object{
				Key: aws.String(e.key), Size: aws.Int64(int64(len(o.Body))),
				ETag: aws.String(o.ETag), LastModified: aws.Time(o.LastModified),
			})
		}
		return func() {
			out.Name, out.Prefix = in.Bucket, in.Prefix
			out.Contents, out.CommonPrefixes = objects, prefixes
			out.KeyCount = aws.Int32(int32(len(objects) + len(prefixes)))
			out.MaxKeys = aws.Int32(int32(max))
			if end < len(entries) {
				out.IsTruncated = aws.Bool(true)
				out.NextContinuationToken = aws.String(strconv.Itoa(end))
			} else {
				out.IsTruncated = aws.Bool(false)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutObjectLegalHold turns the legal hold of an object version on or off.
// As on S3, the bucket must have Object Lock enabled, and the request must
// carry Content-MD5 or a checksum (x-amz-sdk-checksum-algorithm with its
// x-amz-checksum-*): here, ContentMD5 or ChecksumAlgorithm in the input
// (InvalidRequest otherwise).
func (s *S3) PutObjectLegalHold(ctx context.Context, in *s3.PutObjectLegalHoldInput, _ ...func(*s3.Options)) (*s3.PutObjectLegalHoldOutput, error) {
	if in == nil {
		in = &s3.PutObjectLegalHoldInput{}
	}
	c := s.c
	out := &s3.PutObjectLegalHoldOutput{}
	err := c.call(ctx, serviceS3, "PutObjectLegalHold", false, &out.ResultMetadata, func() (func(), error) {
		b, ok := c.st.Buckets[aws.ToString(in.Bucket)]
		if !ok {
			return nil, noSuchBucket(aws.ToString(in.Bucket))
		}
		if !b.ObjectLock {
			return nil, apiError("InvalidRequest", "Bucket is missing Object Lock Configuration")
		}
		if in.ContentMD5 == nil && in.ChecksumAlgorithm == "" {
			return nil, apiError("InvalidRequest", "Missing required header for this request: Content-MD5 or x-amz-checksum-*")
		}
		if in.LegalHold == nil || (in.LegalHold.Status != s3types.ObjectLockLegalHoldStatusOn && in.LegalHold.Status != s3types.ObjectLockLegalHoldStatusOff) {
			return nil, apiError("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
		}
		o, err := c.findObjectLocked(aws.ToString(in.Bucket), aws.ToString(in.Key), in.VersionId)
		if err != nil {
			return nil, err
		}
		return func() { o.LegalHold = in.LegalHold.Status }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
