package fakeaws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func sha256b64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestPutObject(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		in     s3.PutObjectInput
		code   string
		status int
	}{
		{name: "plain", in: s3.PutObjectInput{Key: aws.String("new")}},
		{name: "no bucket", in: s3.PutObjectInput{Bucket: aws.String("nope"), Key: aws.String("k")}, code: "NoSuchBucket", status: 404},
		{name: "if-none-match on existing key", in: s3.PutObjectInput{Key: aws.String("existing"), IfNoneMatch: aws.String("*")}, code: "PreconditionFailed", status: 412},
		{name: "if-none-match on new key", in: s3.PutObjectInput{Key: aws.String("new"), IfNoneMatch: aws.String("*")}},
		{name: "good checksum", in: s3.PutObjectInput{Key: aws.String("new"), ChecksumSHA256: aws.String(sha256b64("body"))}},
		{name: "bad checksum", in: s3.PutObjectInput{Key: aws.String("new"), ChecksumSHA256: aws.String(sha256b64("other"))}, code: "BadDigest", status: 400},
		{name: "bad content-md5", in: s3.PutObjectInput{Key: aws.String("new"), ContentMD5: aws.String("AAAAAAAAAAAAAAAAAAAAAA==")}, code: "BadDigest", status: 400},
		{name: "retention without object lock", in: s3.PutObjectInput{Key: aws.String("new"),
			ObjectLockMode: s3types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: aws.Time(time.Now().Add(time.Hour))}, code: "InvalidRequest", status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			c.AddBucket("evidence", BucketOptions{})
			if _, err := c.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("evidence"), Key: aws.String("existing"),
				Body: strings.NewReader("old")}); err != nil {
				t.Fatal(err)
			}
			before := c.StateDigest()
			in := tt.in
			if in.Bucket == nil {
				in.Bucket = aws.String("evidence")
			}
			in.Body = strings.NewReader("body")
			_, err := c.S3().PutObject(ctx, &in)
			wantCode(t, err, tt.code)
			if err != nil {
				var re interface{ HTTPStatusCode() int }
				if !errors.As(err, &re) || re.HTTPStatusCode() != tt.status {
					t.Errorf("HTTP status of %v is not %d", err, tt.status)
				}
				if c.StateDigest() != before {
					t.Error("a failed PutObject changed the state")
				}
				return
			}
			if got := c.Objects("evidence")[aws.ToString(in.Key)]; string(got.Body) != "body" {
				t.Errorf("stored body = %q", got.Body)
			}
			if got := c.Objects("evidence")["existing"]; string(got.Body) != "old" {
				t.Errorf("existing object changed to %q", got.Body)
			}
		})
	}
}

func TestPutObjectStoresWhatS3Stores(t *testing.T) {
	c := New()
	c.AddBucket("locked", BucketOptions{ObjectLockDefaultRetention: &Retention{Mode: s3types.ObjectLockRetentionModeCompliance, Days: 30}})
	ctx := context.Background()
	put := func(body string, sse s3types.ServerSideEncryption) *s3.PutObjectOutput {
		t.Helper()
		out, err := c.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("case/IR-1/disk.json"),
			Body: strings.NewReader(body), ContentType: aws.String("application/json"), ChecksumSHA256: aws.String(sha256b64(body)),
			ServerSideEncryption: sse})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := put("{}", "")
	second := put(`{"a":1}`, s3types.ServerSideEncryptionAwsKms)
	if aws.ToString(first.VersionId) == "" || aws.ToString(first.VersionId) == aws.ToString(second.VersionId) {
		t.Errorf("version IDs %q, %q: want two distinct", aws.ToString(first.VersionId), aws.ToString(second.VersionId))
	}
	if first.ServerSideEncryption != s3types.ServerSideEncryptionAes256 || aws.ToString(first.ChecksumSHA256) != sha256b64("{}") {
		t.Errorf("first put answered SSE %q checksum %q", first.ServerSideEncryption, aws.ToString(first.ChecksumSHA256))
	}
	obj := c.Objects("locked")["case/IR-1/disk.json"]
	if string(obj.Body) != `{"a":1}` || obj.ContentType != "application/json" || obj.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms ||
		obj.SSEKMSKeyID == "" || obj.RetentionMode != s3types.ObjectLockModeCompliance || obj.RetainUntil == nil ||
		obj.RetainUntil.Before(time.Now().AddDate(0, 0, 29)) || obj.VersionID != aws.ToString(second.VersionId) {
		t.Errorf("stored object = %+v", obj)
	}
	if n := len(c.ObjectVersions("locked", "case/IR-1/disk.json")); n != 2 {
		t.Errorf("versions = %d, want 2", n)
	}

	got, err := c.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("locked"), Key: aws.String("case/IR-1/disk.json"),
		VersionId: first.VersionId, ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	if string(body) != "{}" || aws.ToString(got.ChecksumSHA256) != sha256b64("{}") {
		t.Errorf("GetObject of the first version = %q, checksum %q", body, aws.ToString(got.ChecksumSHA256))
	}
}

func TestGetAndHeadObjectErrors(t *testing.T) {
	c := New()
	c.AddBucket("evidence", BucketOptions{})
	ctx := context.Background()

	_, err := c.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("evidence"), Key: aws.String("missing")})
	wantCode(t, err, "NoSuchKey")
	var noKey *s3types.NoSuchKey
	if !errors.As(err, &noKey) {
		t.Errorf("GetObject error %T is not *types.NoSuchKey, as the SDK returns", err)
	}
	_, err = c.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nope"), Key: aws.String("k")})
	wantCode(t, err, "NoSuchBucket")

	for _, bucket := range []string{"evidence", "nope"} {
		_, err = c.S3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("missing")})
		wantCode(t, err, "NotFound")
		var notFound *s3types.NotFound
		if !errors.As(err, &notFound) {
			t.Errorf("HeadObject error %T is not *types.NotFound", err)
		}
	}
	var generic smithy.APIError
	if !errors.As(err, &generic) {
		t.Error("errors are not smithy.APIError")
	}
}
