package fakeaws

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Deletes in a versioned bucket work as on S3: without a version a delete
// marker hides the object (its versions stay, readable by ID; a conditional
// write sees no object), with a version that version goes, unless Object
// Lock keeps it; ListObjectVersions shows all of it, page by page.
func TestDeleteObjectAndListObjectVersions(t *testing.T) {
	ctx := context.Background()
	c := New()
	c.AddBucket("v", BucketOptions{Versioning: true})
	c.AddBucket("locked", BucketOptions{ObjectLockDefaultRetention: &Retention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: 1}})
	put := func(bucket, key, body string) string {
		out, err := c.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.VersionId)
	}
	first := put("v", "k", "one")
	put("v", "k", "two")
	del, err := c.S3().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("v"), Key: aws.String("k")})
	if err != nil || !aws.ToBool(del.DeleteMarker) {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if _, err := c.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("v"), Key: aws.String("k")}); err == nil {
		t.Error("the current version is a delete marker, yet GetObject answered")
	}
	if got, err := c.S3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("v"), Key: aws.String("k"), VersionId: &first}); err != nil || got == nil {
		t.Errorf("the first version is gone: %v", err)
	}
	if _, ok := c.Objects("v")["k"]; ok {
		t.Error("Objects lists a deleted key")
	}
	if _, err := c.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("v"), Key: aws.String("k"), IfNoneMatch: aws.String("*"),
		Body: strings.NewReader("three")}); err != nil {
		t.Errorf("If-None-Match over a delete marker: %v", err)
	}

	var versions, markers int
	in := &s3.ListObjectVersionsInput{Bucket: aws.String("v"), MaxKeys: aws.Int32(1)}
	for {
		page, err := c.S3().ListObjectVersions(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		versions, markers = versions+len(page.Versions), markers+len(page.DeleteMarkers)
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
	if versions != 3 || markers != 1 {
		t.Errorf("listed %d versions and %d delete markers, want 3 and 1", versions, markers)
	}

	if _, err := c.S3().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("v"), Key: aws.String("k"), VersionId: &first}); err != nil {
		t.Fatal(err)
	}
	if n := len(c.ObjectVersions("v", "k")); n != 3 {
		t.Errorf("%d versions after deleting one of 4, want 3", n)
	}

	locked := put("locked", "k", "evidence")
	_, err = c.S3().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("k"), VersionId: &locked})
	wantCode(t, err, "AccessDenied")
	if _, err := c.S3().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("k"), VersionId: &locked,
		BypassGovernanceRetention: aws.Bool(true)}); err != nil {
		t.Errorf("GOVERNANCE retention with the bypass: %v", err)
	}
}
