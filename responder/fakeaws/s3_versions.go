package fakeaws

import (
	"context"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ListObjectVersions lists every version and delete marker under Prefix, by
// key and newest first within a key, as S3 does, with MaxKeys (default and
// cap 1000) and the KeyMarker/VersionIdMarker pair for the next page. In a
// bucket without versioning every object has the version ID "null".
func (s *S3) ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, _ ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error) {
	if in == nil {
		in = &s3.ListObjectVersionsInput{}
	}
	c := s.c
	out := &s3.ListObjectVersionsOutput{}
	err := c.call(ctx, serviceS3, "ListObjectVersions", false, &out.ResultMetadata, func() (func(), error) {
		b, ok := c.st.Buckets[aws.ToString(in.Bucket)]
		if !ok {
			return nil, noSuchBucket(aws.ToString(in.Bucket))
		}
		entries := versionEntries(b, aws.ToString(in.Prefix))
		start := 0
		if km := aws.ToString(in.KeyMarker); km != "" {
			start = len(entries)
			for i, e := range entries {
				if e.key == km && (aws.ToString(in.VersionIdMarker) == "" || versionIDOf(e.obj) == aws.ToString(in.VersionIdMarker)) {
					start = i + 1
					break
				}
			}
		}
		max := 1000
		if in.MaxKeys != nil && *in.MaxKeys > 0 && *in.MaxKeys < 1000 {
			max = int(*in.MaxKeys)
		}
		end := min(start+max, len(entries))
		page := entries[min(start, len(entries)):end]
		return func() {
			out.Name, out.Prefix = in.Bucket, in.Prefix
			out.MaxKeys = aws.Int32(int32(max))
			for _, e := range page {
				if e.obj.DeleteMarker {
					out.DeleteMarkers = append(out.DeleteMarkers, s3types.DeleteMarkerEntry{
						Key: aws.String(e.key), VersionId: aws.String(versionIDOf(e.obj)), IsLatest: aws.Bool(e.latest),
						LastModified: aws.Time(e.obj.LastModified),
					})
					continue
				}
				out.Versions = append(out.Versions, s3types.ObjectVersion{
					Key: aws.String(e.key), VersionId: aws.String(versionIDOf(e.obj)), IsLatest: aws.Bool(e.latest),
					LastModified: aws.Time(e.obj.LastModified), Size: aws.Int64(int64(len(e.obj.Body))), ETag: aws.String(e.obj.ETag),
				})
			}
			out.IsTruncated = aws.Bool(end < len(entries))
			if end < len(entries) {
				last := page[len(page)-1]
				out.NextKeyMarker, out.NextVersionIdMarker = aws.String(last.key), aws.String(versionIDOf(last.obj))
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type versionEntry struct {
	key    string
	obj    *Object
	latest bool
}

// versionEntries lists the versions under prefix in S3's order: by key, the
// newest version of a key first.
func versionEntries(b *bucket, prefix string) []versionEntry {
	keys := make([]string, 0, len(b.Objects))
	for k := range b.Objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []versionEntry
	for _, k := range keys {
		versions := b.Objects[k]
		for i := len(versions) - 1; i >= 0; i-- {
			out = append(out, versionEntry{key: k, obj: versions[i], latest: i == len(versions)-1})
		}
	}
	return out
}

func versionIDOf(o *Object) string {
	if o.VersionID == "" {
		return "null"
	}
	return o.VersionID
}

// DeleteObject deletes an object as S3 does. Without VersionId, a versioned
// bucket gets a delete marker as the new current version (the versions
// stay); a bucket without versioning loses the object. With VersionId, that
// version is deleted for good, unless Object Lock protects it: a legal hold,
// COMPLIANCE retention, or GOVERNANCE retention without
// BypassGovernanceRetention answer AccessDenied. The toolkit never deletes
// evidence; tests use this to play the one who tampers with it.
func (s *S3) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	if in == nil {
		in = &s3.DeleteObjectInput{}
	}
	c := s.c
	out := &s3.DeleteObjectOutput{}
	err := c.call(ctx, serviceS3, "DeleteObject", false, &out.ResultMetadata, func() (func(), error) {
		b, ok := c.st.Buckets[aws.ToString(in.Bucket)]
		if !ok {
			return nil, noSuchBucket(aws.ToString(in.Bucket))
		}
		key := aws.ToString(in.Key)
		if in.VersionId == nil {
			return func() { c.deleteCurrentLocked(b, key, out) }, nil
		}
		versions := b.Objects[key]
		for i, o := range versions {
			if versionIDOf(o) != *in.VersionId {
				continue
			}
			if err := c.lockedAgainstDeleteLocked(o, aws.ToBool(in.BypassGovernanceRetention)); err != nil {
				return nil, err
			}
			return func() {
				b.Objects[key] = append(versions[:i:i], versions[i+1:]...)
				if len(b.Objects[key]) == 0 {
					delete(b.Objects, key)
				}
				out.VersionId, out.DeleteMarker = aws.String(*in.VersionId), aws.Bool(o.DeleteMarker)
			}, nil
		}
		return func() {}, nil // S3 answers 204 for a version that does not exist
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// deleteCurrentLocked deletes an object without naming a version.
func (c *Cloud) deleteCurrentLocked(b *bucket, key string, out *s3.DeleteObjectOutput) {
	if !b.Versioning {
		delete(b.Objects, key)
		return
	}
	marker := &Object{DeleteMarker: true}
	c.storeObjectLocked(b, key, marker)
	out.DeleteMarker, out.VersionId = aws.Bool(true), aws.String(marker.VersionID)
}

// lockedAgainstDeleteLocked answers whether Object Lock keeps a version.
func (c *Cloud) lockedAgainstDeleteLocked(o *Object, bypassGovernance bool) error {
	switch {
	case o.LegalHold == s3types.ObjectLockLegalHoldStatusOn:
		return apiError("AccessDenied", "Access Denied because object protected by object lock.")
	case o.RetainUntil == nil || !o.RetainUntil.After(c.now()):
		return nil
	case o.RetentionMode == s3types.ObjectLockModeCompliance,
		o.RetentionMode == s3types.ObjectLockModeGovernance && !bypassGovernance:
		return apiError("AccessDenied", "Access Denied because object protected by object lock.")
	}
	return nil
}
