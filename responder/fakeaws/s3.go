package fakeaws

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 is the account's Amazon S3 service; it implements cloud.S3.
type S3 struct{ c *Cloud }

// BucketOptions configures a bucket made by AddBucket.
type BucketOptions struct {
	// ObjectLockDefaultRetention, when set, enables Object Lock with this
	// default retention (and versioning, which Object Lock requires).
	ObjectLockDefaultRetention *Retention
	// Versioning enables versioning: every PutObject makes a new version.
	Versioning bool
}

// Retention is an Object Lock default retention.
type Retention struct {
	Mode s3types.ObjectLockRetentionMode // GOVERNANCE or COMPLIANCE
	Days int
}

type bucket struct {
	Name             string
	Versioning       bool
	ObjectLock       bool
	DefaultRetention *Retention
	Objects          map[string][]*Object // key -> versions, oldest first
	// Uploads are the multipart uploads in progress, by upload ID.
	Uploads map[string]*multipartUpload `json:",omitempty"`
}

// Object is one stored object version, as Objects returns it.
type Object struct {
	Body                 []byte
	ContentType          string
	ServerSideEncryption s3types.ServerSideEncryption
	SSEKMSKeyID          string
	ChecksumSHA256       string // base64, when the upload carried or asked for one
	ETag                 string // quoted hex MD5, as S3 shows it
	VersionID            string // "" in a bucket without versioning
	Metadata             map[string]string
	LastModified         time.Time
	RetentionMode        s3types.ObjectLockMode
	RetainUntil          *time.Time
	LegalHold            s3types.ObjectLockLegalHoldStatus
	// DeleteMarker: this version is a delete marker (a DeleteObject without
	// VersionId in a versioned bucket), not an object.
	DeleteMarker bool
}

// current returns the current version of an object, nil when it has none or
// its current version is a delete marker.
func current(versions []*Object) *Object {
	if len(versions) == 0 || versions[len(versions)-1].DeleteMarker {
		return nil
	}
	return versions[len(versions)-1]
}

func (o *Object) clone() Object {
	c := *o
	c.Body = bytes.Clone(o.Body)
	c.Metadata = maps.Clone(o.Metadata)
	if o.RetainUntil != nil {
		t := *o.RetainUntil
		c.RetainUntil = &t
	}
	return c
}

// AddBucket adds an empty bucket. It panics if the bucket exists.
func (c *Cloud) AddBucket(name string, opts BucketOptions) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.st.Buckets[name]; ok {
		panic(fmt.Sprintf("fakeaws: AddBucket: bucket %q exists", name))
	}
	b := &bucket{Name: name, Versioning: opts.Versioning, Objects: map[string][]*Object{}, Uploads: map[string]*multipartUpload{}}
	if r := opts.ObjectLockDefaultRetention; r != nil {
		b.ObjectLock, b.Versioning = true, true
		rr := *r
		b.DefaultRetention = &rr
	}
	c.st.Buckets[name] = b
}

// Objects returns the current version of every object in a bucket, by key
// (an object whose current version is a delete marker is left out); nil
// when there is no such bucket. The values are copies.
func (c *Cloud) Objects(bucketName string) map[string]Object {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.st.Buckets[bucketName]
	if !ok {
		return nil
	}
	out := map[string]Object{}
	for key, versions := range b.Objects {
		if o := current(versions); o != nil {
			out[key] = o.clone()
		}
	}
	return out
}

// ObjectVersions returns every version of an object (delete markers
// included), oldest first.
func (c *Cloud) ObjectVersions(bucketName, key string) []Object {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.st.Buckets[bucketName]
	if !ok {
		return nil
	}
	var out []Object
	for _, o := range b.Objects[key] {
		out = append(out, o.clone())
	}
	return out
}

func noSuchBucket(name string) error {
	return apiError("NoSuchBucket", "The specified bucket does not exist (bucket %s)", name)
}

func (c *Cloud) s3KeyLocked() string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", c.Region, c.Account, stableUUID("aws/s3", c.Account))
}

// PutObject stores an object. It models: IfNoneMatch "*" (PreconditionFailed
// when the key exists) and IfMatch; ContentMD5 and ChecksumSHA256 checked
// against the body (BadDigest); server-side encryption (AES256 when none is
// asked, as S3's default encryption does; aws:kms with the given or the
// aws/s3 key); versioning; Object Lock retention, explicit or the bucket's
// default. Other checksum headers are accepted and not checked.
func (s *S3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if in == nil {
		in = &s3.PutObjectInput{}
	}
	c := s.c
	var body []byte
	var readErr error
	if in.Body != nil {
		body, readErr = io.ReadAll(in.Body)
	}
	out := &s3.PutObjectOutput{}
	err := c.call(ctx, serviceS3, "PutObject", false, &out.ResultMetadata, func() (func(), error) {
		if readErr != nil {
			return nil, apiError("IncompleteBody", "reading the request body: %v", readErr)
		}
		b, ok := c.st.Buckets[aws.ToString(in.Bucket)]
		if !ok {
			return nil, noSuchBucket(aws.ToString(in.Bucket))
		}
		key := aws.ToString(in.Key)
		if key == "" {
			return nil, apiError("InvalidArgument", "An object key is required")
		}
		if in.ContentLength != nil && *in.ContentLength != int64(len(body)) {
			return nil, apiError("IncompleteBody", "The request body is %d bytes, not the %d of Content-Length", len(body), *in.ContentLength)
		}

		md5sum := md5.Sum(body)
		if in.ContentMD5 != nil {
			want, err := base64.StdEncoding.DecodeString(*in.ContentMD5)
			if err != nil || len(want) != md5.Size {
				return nil, apiError("InvalidDigest", "The Content-MD5 you specified was invalid.")
			}
			if !bytes.Equal(want, md5sum[:]) {
				return nil, apiError("BadDigest", "The Content-MD5 you specified did not match what we received.")
			}
		}
		shaSum := sha256.Sum256(body)
		checksum := ""
		if in.ChecksumSHA256 != nil {
			if *in.ChecksumSHA256 != base64.StdEncoding.EncodeToString(shaSum[:]) {
				return nil, apiError("BadDigest", "The SHA256 you specified did not match the calculated checksum.")
			}
			checksum = *in.ChecksumSHA256
		} else if in.ChecksumAlgorithm == s3types.ChecksumAlgorithmSha256 {
			checksum = base64.StdEncoding.EncodeToString(shaSum[:]) // the SDK computes it
		}

		if err := checkConditions(b.Objects[key], in.IfNoneMatch, in.IfMatch); err != nil {
			return nil, err
		}

		obj := &Object{
			Body:           body,
			ContentType:    aws.ToString(in.ContentType),
			ETag:           `"` + hex.EncodeToString(md5sum[:]) + `"`,
			Metadata:       maps.Clone(in.Metadata),
			ChecksumSHA256: checksum,
		}
		if obj.ContentType == "" {
			obj.ContentType = "binary/octet-stream" // S3's default
		}
		sse, keyID, err := c.encryptionLocked(in.ServerSideEncryption, in.SSEKMSKeyId)
		if err != nil {
			return nil, err
		}
		obj.ServerSideEncryption, obj.SSEKMSKeyID = sse, keyID

		switch {
		case (in.ObjectLockMode != "") != (in.ObjectLockRetainUntilDate != nil):
			return nil, apiError("InvalidArgument", "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied")
		case (in.ObjectLockMode != "" || in.ObjectLockLegalHoldStatus != "") && !b.ObjectLock:
			return nil, apiError("InvalidRequest", "Bucket is missing Object Lock Configuration")
		case in.ObjectLockMode != "":
			until := in.ObjectLockRetainUntilDate.UTC()
			obj.RetentionMode, obj.RetainUntil = in.ObjectLockMode, &until
		case b.DefaultRetention != nil:
			until := c.now().AddDate(0, 0, b.DefaultRetention.Days)
			obj.RetentionMode, obj.RetainUntil = s3types.ObjectLockMode(b.DefaultRetention.Mode), &until
		}
		obj.LegalHold = in.ObjectLockLegalHoldStatus

		return func() {
			c.storeObjectLocked(b, key, obj)
			out.ETag = aws.String(obj.ETag)
			out.VersionId = optional(obj.VersionID)
			out.ChecksumSHA256 = optional(obj.ChecksumSHA256)
			if obj.ChecksumSHA256 != "" {
				out.ChecksumType = s3types.ChecksumTypeFullObject
			}
			out.ServerSideEncryption = obj.ServerSideEncryption
			out.SSEKMSKeyId = optional(obj.SSEKMSKeyID)
			out.Size = aws.Int64(int64(len(body)))
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkConditions answers PutObject's and CompleteMultipartUpload's
// conditional writes: IfNoneMatch "*" fails when the key exists, IfMatch
// when its current ETag differs (NoSuchKey when there is none).
func checkConditions(versions []*Object, ifNoneMatch, ifMatch *string) error {
	exists := current(versions) != nil
	if ifNoneMatch != nil {
		if *ifNoneMatch != "*" {
			return apiError("NotImplemented", "A header you provided implies functionality that is not implemented (If-None-Match other than *)")
		}
		if exists {
			return apiError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
		}
	}
	if ifMatch != nil {
		if !exists {
			return apiError("NoSuchKey", "The specified key does not exist.")
		}
		if strings.Trim(*ifMatch, `"`) != strings.Trim(current(versions).ETag, `"`) {
			return apiError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
		}
	}
	return nil
}

// storeObjectLocked makes obj the current version of key: a new version in
// a versioned bucket, the only one otherwise.
func (c *Cloud) storeObjectLocked(b *bucket, key string, obj *Object) {
	obj.LastModified = c.now().Truncate(time.Second)
	if b.Versioning {
		obj.VersionID = c.alnumLocked(32, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._")
		b.Objects[key] = append(b.Objects[key], obj)
	} else {
		b.Objects[key] = []*Object{obj}
	}
}

// findObjectLocked returns the asked version (or the current one) of an
// object, or the error GetObject answers: NoSuchKey when the current version
// is a delete marker, MethodNotAllowed when the asked version is one.
func (c *Cloud) findObjectLocked(bucketName, key string, versionID *string) (*Object, error) {
	b, ok := c.st.Buckets[bucketName]
	if !ok {
		return nil, noSuchBucket(bucketName)
	}
	versions := b.Objects[key]
	if versionID == nil {
		if o := current(versions); o != nil {
			return o, nil
		}
		return nil, apiError("NoSuchKey", "The specified key does not exist.")
	}
	for _, o := range versions {
		if o.VersionID == *versionID || (o.VersionID == "" && *versionID == "null") {
			if o.DeleteMarker {
				return nil, apiError("MethodNotAllowed", "The specified method is not allowed against this resource.")
			}
			return o, nil
		}
	}
	return nil, apiError("NoSuchVersion", "The specified version does not exist.")
}

// GetObject returns an object (the current version, or VersionId).
// ChecksumSHA256 is returned when ChecksumMode is ENABLED, as on S3.
func (s *S3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if in == nil {
		in = &s3.GetObjectInput{}
	}
	c := s.c
	out := &s3.GetObjectOutput{}
	err := c.call(ctx, serviceS3, "GetObject", false, &out.ResultMetadata, func() (func(), error) {
		if in.Range != nil || in.PartNumber != nil {
			return nil, notModelled("GetObject", "with Range or PartNumber")
		}
		o, err := c.findObjectLocked(aws.ToString(in.Bucket), aws.ToString(in.Key), in.VersionId)
		if err != nil {
			return nil, err
		}
		obj := o.clone()
		return func() {
			out.Body = io.NopCloser(bytes.NewReader(obj.Body))
			out.ContentLength = aws.Int64(int64(len(obj.Body)))
			out.ContentType = aws.String(obj.ContentType)
			out.ETag = aws.String(obj.ETag)
			out.LastModified = aws.Time(obj.LastModified)
			out.Metadata = obj.Metadata
			out.VersionId = optional(obj.VersionID)
			out.ServerSideEncryption = obj.ServerSideEncryption
			out.SSEKMSKeyId = optional(obj.SSEKMSKeyID)
			out.ObjectLockMode = obj.RetentionMode
			out.ObjectLockRetainUntilDate = obj.RetainUntil
			out.ObjectLockLegalHoldStatus = obj.LegalHold
			if in.ChecksumMode == s3types.ChecksumModeEnabled {
				out.ChecksumSHA256 = optional(obj.ChecksumSHA256)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// HeadObject returns an object's metadata. As on S3, a missing bucket, key or
// version answers NotFound (a HEAD answer has no body to carry a finer code).
func (s *S3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if in == nil {
		in = &s3.HeadObjectInput{}
	}
	c := s.c
	out := &s3.HeadObjectOutput{}
	err := c.call(ctx, serviceS3, "HeadObject", false, &out.ResultMetadata, func() (func(), error) {
		o, err := c.findObjectLocked(aws.ToString(in.Bucket), aws.ToString(in.Key), in.VersionId)
		if err != nil {
			return nil, apiError("NotFound", "Not Found")
		}
		obj := o.clone()
		return func() {
			out.ContentLength = aws.Int64(int64(len(obj.Body)))
			out.ContentType = aws.String(obj.ContentType)
			out.ETag = aws.String(obj.ETag)
			out.LastModified = aws.Time(obj.LastModified)
			out.Metadata = obj.Metadata
			out.VersionId = optional(obj.VersionID)
			out.ServerSideEncryption = obj.ServerSideEncryption
			out.SSEKMSKeyId = optional(obj.SSEKMSKeyID)
			out.ObjectLockMode = obj.RetentionMode
			out.ObjectLockRetainUntilDate = obj.RetainUntil
			out.ObjectLockLegalHoldStatus = obj.LegalHold
			if in.ChecksumMode == s3types.ChecksumModeEnabled {
				out.ChecksumSHA256 = optional(obj.ChecksumSHA256)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
