package fakeaws

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// multipartETag computes S3's ETag of a multipart object independently of
// the fake: MD5 over the binary MD5s of the parts, "-", the part count.
func multipartETag(parts ...[]byte) string {
	var sums []byte
	for _, p := range parts {
		s := md5.Sum(p)
		sums = append(sums, s[:]...)
	}
	all := md5.Sum(sums)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(all[:]), len(parts))
}

func contentMD5(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// startUpload opens a multipart upload and uploads the parts, returning the
// upload ID and the parts' ETags.
func startUpload(t *testing.T, c *Cloud, bucket, key string, parts ...[]byte) (string, []string) {
	t.Helper()
	out, err := c.S3().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.UploadId)
	var etags []string
	for i, p := range parts {
		etag, err := c.S3().uploadPart(bucket, key, id, int32(i+1), p, contentMD5(p))
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		etags = append(etags, etag)
	}
	return id, etags
}

func completed(etags []string, numbers ...int32) *s3types.CompletedMultipartUpload {
	u := &s3types.CompletedMultipartUpload{}
	for i, n := range numbers {
		u.Parts = append(u.Parts, s3types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(etags[i])})
	}
	return u
}

func TestMultipartUpload(t *testing.T) {
	ctx := context.Background()
	c := New()
	c.AddBucket("evidence", BucketOptions{ObjectLockDefaultRetention: &Retention{Mode: s3types.ObjectLockRetentionModeCompliance, Days: 30}})
	p1 := bytes.Repeat([]byte{1}, 5<<20)
	p2 := bytes.Repeat([]byte{2}, 5<<20)
	p3 := []byte("the last part may be small")

	create, err := c.S3().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("evidence"), Key: aws.String("mem.lime.gz"),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, ContentType: aws.String("application/gzip")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(create.UploadId)
	if create.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms || aws.ToString(create.SSEKMSKeyId) == "" {
		t.Errorf("create answered %+v", create)
	}
	if got := c.Uploads("evidence")["mem.lime.gz"]; len(got) != 1 || got[0] != id {
		t.Errorf("uploads in progress = %v", got)
	}
	var etags []string
	for i, p := range [][]byte{p1, p2, p3} {
		etag, err := c.S3().uploadPart("evidence", "mem.lime.gz", id, int32(i+1), p, contentMD5(p))
		if err != nil {
			t.Fatal(err)
		}
		if sum := md5.Sum(p); etag != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("part %d ETag = %s", i+1, etag)
		}
		etags = append(etags, etag)
	}

	// ListParts, two at a time.
	var listed []int32
	marker := ""
	for {
		out, err := c.S3().ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("evidence"), Key: aws.String("mem.lime.gz"),
			UploadId: &id, MaxParts: aws.Int32(2), PartNumberMarker: aws.String(marker)})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range out.Parts {
			listed = append(listed, aws.ToInt32(p.PartNumber))
			if n := aws.ToInt32(p.PartNumber); aws.ToString(p.ETag) != etags[n-1] {
				t.Errorf("part %d listed with ETag %s", n, aws.ToString(p.ETag))
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		marker = aws.ToString(out.NextPartNumberMarker)
	}
	if fmt.Sprint(listed) != "[1 2 3]" {
		t.Errorf("listed parts %v", listed)
	}

	done, err := c.S3().CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("evidence"), Key: aws.String("mem.lime.gz"),
		UploadId: &id, MultipartUpload: completed(etags, 1, 2, 3), IfNoneMatch: aws.String("*")})
	if err != nil {
		t.Fatal(err)
	}
	want := multipartETag(p1, p2, p3)
	if aws.ToString(done.ETag) != want || aws.ToString(done.VersionId) == "" {
		t.Errorf("complete answered ETag %s version %q, want ETag %s and a version", aws.ToString(done.ETag), aws.ToString(done.VersionId), want)
	}
	head, err := c.S3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("evidence"), Key: aws.String("mem.lime.gz")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ETag) != want || aws.ToInt64(head.ContentLength) != int64(len(p1)+len(p2)+len(p3)) ||
		head.ObjectLockMode != s3types.ObjectLockModeCompliance || head.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms ||
		aws.ToString(head.ContentType) != "application/gzip" {
		t.Errorf("head = ETag %s, %d bytes, lock %s, SSE %s", aws.ToString(head.ETag), aws.ToInt64(head.ContentLength), head.ObjectLockMode, head.ServerSideEncryption)
	}
	get, err := c.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("evidence"), Key: aws.String("mem.lime.gz")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(get.Body)
	if !bytes.Equal(body, append(append(append([]byte{}, p1...), p2...), p3...)) || aws.ToString(get.ETag) != want {
		t.Error("GetObject does not return the parts in order")
	}
	if len(c.Uploads("evidence")) != 0 {
		t.Errorf("the upload is still in progress: %v", c.Uploads("evidence"))
	}
	_, err = c.S3().ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("evidence"), Key: aws.String("mem.lime.gz"), UploadId: &id})
	wantCode(t, err, "NoSuchUpload")
}

func TestCompleteMultipartUploadErrors(t *testing.T) {
	ctx := context.Background()
	big := bytes.Repeat([]byte{7}, 5<<20)
	small := []byte("small")
	tests := []struct {
		name     string
		parts    [][]byte
		list     func(etags []string) *s3types.CompletedMultipartUpload
		uploadID string // "" for the real one
		exists   bool   // the key exists before
		ifNone   bool
		code     string
	}{
		{name: "ok", parts: [][]byte{big, small}, list: func(e []string) *s3types.CompletedMultipartUpload { return completed(e, 1, 2) }},
		{name: "descending", parts: [][]byte{big, big}, list: func(e []string) *s3types.CompletedMultipartUpload {
			return completed([]string{e[1], e[0]}, 2, 1)
		}, code: "InvalidPartOrder"},
		{name: "wrong etag", parts: [][]byte{big, small}, list: func(e []string) *s3types.CompletedMultipartUpload {
			return completed([]string{e[0], e[0]}, 1, 2)
		}, code: "InvalidPart"},
		{name: "part never uploaded", parts: [][]byte{big}, list: func(e []string) *s3types.CompletedMultipartUpload {
			return completed([]string{e[0], e[0]}, 1, 2)
		}, code: "InvalidPart"},
		{name: "small part before the last", parts: [][]byte{small, big}, list: func(e []string) *s3types.CompletedMultipartUpload { return completed(e, 1, 2) },
			code: "EntityTooSmall"},
		{name: "one small part is fine", parts: [][]byte{small}, list: func(e []string) *s3types.CompletedMultipartUpload { return completed(e, 1) }},
		{name: "no parts", parts: [][]byte{small}, list: func([]string) *s3types.CompletedMultipartUpload { return &s3types.CompletedMultipartUpload{} },
			code: "MalformedXML"},
		{name: "unknown upload", parts: [][]byte{small}, list: func(e []string) *s3types.CompletedMultipartUpload { return completed(e, 1) },
			uploadID: "nope", code: "NoSuchUpload"},
		{name: "if-none-match on an existing key", parts: [][]byte{small}, list: func(e []string) *s3types.CompletedMultipartUpload { return completed(e, 1) },
			exists: true, ifNone: true, code: "PreconditionFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			c.AddBucket("b", BucketOptions{})
			if tt.exists {
				if _, err := c.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(small)}); err != nil {
					t.Fatal(err)
				}
			}
			id, etags := startUpload(t, c, "b", "k", tt.parts...)
			if tt.uploadID != "" {
				id = tt.uploadID
			}
			in := &s3.CompleteMultipartUploadInput{Bucket: aws.String("b"), Key: aws.String("k"), UploadId: &id, MultipartUpload: tt.list(etags)}
			if tt.ifNone {
				in.IfNoneMatch = aws.String("*")
			}
			before := c.StateDigest()
			_, err := c.S3().CompleteMultipartUpload(ctx, in)
			wantCode(t, err, tt.code)
			if err != nil {
				if c.StateDigest() != before {
					t.Error("a failed completion changed the state")
				}
				return
			}
			if got := c.Objects("b")["k"]; got.ETag != multipartETag(tt.parts...) {
				t.Errorf("object ETag = %s, want %s", got.ETag, multipartETag(tt.parts...))
			}
		})
	}
}

func TestUploadPartAndAbort(t *testing.T) {
	ctx := context.Background()
	c := New()
	c.AddBucket("b", BucketOptions{})
	c.AddBucket("locked", BucketOptions{ObjectLockDefaultRetention: &Retention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: 1}})
	id, _ := startUpload(t, c, "b", "k")
	lockedID, _ := startUpload(t, c, "locked", "k")
	tests := []struct {
		name, bucket, key, upload string
		n                         int32
		md5                       string
		code                      string
	}{
		{name: "ok", bucket: "b", key: "k", upload: id, n: 1, md5: contentMD5([]byte("x"))},
		{name: "no content-md5", bucket: "b", key: "k", upload: id, n: 2},
		{name: "bad digest", bucket: "b", key: "k", upload: id, n: 1, md5: contentMD5([]byte("y")), code: "BadDigest"},
		{name: "invalid digest", bucket: "b", key: "k", upload: id, n: 1, md5: "nope", code: "InvalidDigest"},
		{name: "part 0", bucket: "b", key: "k", upload: id, n: 0, code: "InvalidArgument"},
		{name: "part 10001", bucket: "b", key: "k", upload: id, n: 10001, code: "InvalidArgument"},
		{name: "other key", bucket: "b", key: "other", upload: id, n: 1, code: "NoSuchUpload"},
		{name: "no bucket", bucket: "nope", key: "k", upload: id, n: 1, code: "NoSuchBucket"},
		{name: "object lock needs content-md5", bucket: "locked", key: "k", upload: lockedID, n: 1, code: "InvalidRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.S3().uploadPart(tt.bucket, tt.key, tt.upload, tt.n, []byte("x"), tt.md5)
			wantCode(t, err, tt.code)
		})
	}
	c.Deny("PutObject")
	_, err := c.S3().uploadPart("b", "k", id, 1, []byte("x"), "")
	wantCode(t, err, "AccessDenied")
	c.Allow("PutObject")

	if _, err := c.S3().AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("b"), Key: aws.String("k"), UploadId: &id}); err != nil {
		t.Fatal(err)
	}
	if len(c.Uploads("b")) != 0 || len(c.Objects("b")) != 0 {
		t.Errorf("after abort: uploads %v, objects %v", c.Uploads("b"), c.Objects("b"))
	}
	_, err = c.S3().AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("b"), Key: aws.String("k"), UploadId: &id})
	wantCode(t, err, "NoSuchUpload")
	var typed *s3types.NoSuchUpload
	if !errors.As(err, &typed) {
		t.Errorf("AbortMultipartUpload's NoSuchUpload is %T, want the SDK's *types.NoSuchUpload", err)
	}
	_, err = c.S3().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("nope"), Key: aws.String("k")})
	wantCode(t, err, "NoSuchBucket")
	_, err = c.S3().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("b"), Key: aws.String("k"),
		ObjectLockLegalHoldStatus: s3types.ObjectLockLegalHoldStatusOn})
	wantCode(t, err, "InvalidRequest")
}
