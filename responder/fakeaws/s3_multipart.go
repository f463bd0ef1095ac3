package fakeaws

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 multipart limits (Amazon S3 User Guide, "Amazon S3 multipart upload
// limits").
const (
	minPartSize  = 5 << 20 // every part but the last
	maxPartSize  = 5 << 30
	maxPartCount = 10000
)

// multipartUpload is an upload between CreateMultipartUpload and its
// completion or abort. It carries the object's settings, which the object
// gets when the upload completes.
type multipartUpload struct {
	ID                   string
	Key                  string
	Initiated            time.Time
	ContentType          string
	Metadata             map[string]string
	ServerSideEncryption s3types.ServerSideEncryption
	SSEKMSKeyID          string
	RetentionMode        s3types.ObjectLockMode
	RetainUntil          *time.Time
	LegalHold            s3types.ObjectLockLegalHoldStatus
	Parts                map[int32]*uploadedPart
}

// uploadedPart is one part as UploadPart stored it (a later upload of the
// same part number replaces it).
type uploadedPart struct {
	Body         []byte
	ETag         string // quoted hex MD5
	LastModified time.Time
}

func noSuchUpload() error {
	return apiError("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
}

// uploadLocked returns an upload of a bucket, or NoSuchBucket / NoSuchUpload.
func (c *Cloud) uploadLocked(bucketName, key, uploadID string) (*bucket, *multipartUpload, error) {
	b, ok := c.st.Buckets[bucketName]
	if !ok {
		return nil, nil, noSuchBucket(bucketName)
	}
	u, ok := b.Uploads[uploadID]
	if !ok || u.Key != key {
		return nil, nil, noSuchUpload()
	}
	return b, u, nil
}

// Uploads returns the IDs of the multipart uploads in progress in a bucket,
// by key, for tests to check that an upload was completed or aborted.
func (c *Cloud) Uploads(bucketName string) map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.st.Buckets[bucketName]
	if !ok {
		return nil
	}
	out := map[string][]string{}
	for id, u := range b.Uploads {
		out[u.Key] = append(out[u.Key], id)
	}
	for _, ids := range out {
		sort.Strings(ids)
	}
	return out
}

// CreateMultipartUpload starts a multipart upload. It takes the settings
// PutObject takes for the object (content type, metadata, server-side
// encryption, Object Lock retention and legal hold) with the same checks;
// the object gets them, and the bucket's default retention, when the upload
// completes.
func (s *S3) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	if in == nil {
		in = &s3.CreateMultipartUploadInput{}
	}
	c := s.c
	out := &s3.CreateMultipartUploadOutput{}
	err := c.call(ctx, serviceS3, "CreateMultipartUpload", false, &out.ResultMetadata, func() (func(), error) {
		b, ok := c.st.Buckets[aws.ToString(in.Bucket)]
		if !ok {
			return nil, noSuchBucket(aws.ToString(in.Bucket))
		}
		key := aws.ToString(in.Key)
		if key == "" {
			return nil, apiError("InvalidArgument", "An object key is required")
		}
		u := &multipartUpload{
			Key:         key,
			ContentType: aws.ToString(in.ContentType),
			Metadata:    maps.Clone(in.Metadata),
			LegalHold:   in.ObjectLockLegalHoldStatus,
			Parts:       map[int32]*uploadedPart{},
		}
		if u.ContentType == "" {
			u.ContentType = "binary/octet-stream"
		}
		sse, keyID, err := c.encryptionLocked(in.ServerSideEncryption, in.SSEKMSKeyId)
		if err != nil {
			return nil, err
		}
		u.ServerSideEncryption, u.SSEKMSKeyID = sse, keyID
		switch {
		case (in.ObjectLockMode != "") != (in.ObjectLockRetainUntilDate != nil):
			return nil, apiError("InvalidArgument", "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied")
		case (in.ObjectLockMode != "" || in.ObjectLockLegalHoldStatus != "") && !b.ObjectLock:
			return nil, apiError("InvalidRequest", "Bucket is missing Object Lock Configuration")
		case in.ObjectLockMode != "":
			until := in.ObjectLockRetainUntilDate.UTC()
			u.RetentionMode, u.RetainUntil = in.ObjectLockMode, &until
		}
		return func() {
			u.ID = c.alnumLocked(64, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-")
			u.Initiated = c.now().Truncate(time.Second)
			if b.Uploads == nil {
				b.Uploads = map[string]*multipartUpload{}
			}
			b.Uploads[u.ID] = u
			out.Bucket, out.Key = in.Bucket, in.Key
			out.UploadId = aws.String(u.ID)
			out.ServerSideEncryption = u.ServerSideEncryption
			out.SSEKMSKeyId = optional(u.SSEKMSKeyID)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// encryptionLocked resolves the server-side encryption a PutObject or
// CreateMultipartUpload asks for: AES256 when none is asked (S3's default
// encryption), aws:kms with the given key or the account's aws/s3 key.
func (c *Cloud) encryptionLocked(sse s3types.ServerSideEncryption, kmsKeyID *string) (s3types.ServerSideEncryption, string, error) {
	switch sse {
	case "", s3types.ServerSideEncryptionAes256:
		if kmsKeyID != nil {
			return "", "", apiError("InvalidArgument", "Server Side Encryption with KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
		return s3types.ServerSideEncryptionAes256, "", nil
	case s3types.ServerSideEncryptionAwsKms, s3types.ServerSideEncryptionAwsKmsDsse:
		id := aws.ToString(kmsKeyID)
		if id == "" {
			id = c.s3KeyLocked()
		}
		return sse, id, nil
	}
	return "", "", apiError("InvalidArgument", "The encryption method specified is not supported")
}

// uploadPart stores one part of a multipart upload, as a presigned
// UploadPart request does: it is the entry point of the fake SSM Agent, not
// an SDK method (the toolkit never uploads parts itself). contentMD5 is the
// base64 Content-MD5 header, or "" for none; a bucket with Object Lock
// requires it. It returns the part's ETag (the quoted hex MD5). As a
// presigned request is authorised by its signer's s3:PutObject, Deny
// ("PutObject") makes it answer AccessDenied.
func (s *S3) uploadPart(bucketName, key, uploadID string, n int32, body []byte, contentMD5 string) (etag string, err error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls["UploadPart"]++
	return c.uploadPartLocked(bucketName, key, uploadID, n, body, contentMD5)
}

// uploadPartLocked stores one part (see uploadPart); c.mu is held.
func (c *Cloud) uploadPartLocked(bucketName, key, uploadID string, n int32, body []byte, contentMD5 string) (etag string, err error) {
	b, u, err := c.uploadLocked(bucketName, key, uploadID)
	if err != nil {
		return "", err
	}
	if c.denied["PutObject"] {
		return "", deniedError(serviceS3, "UploadPart", c.callerArnLocked())
	}
	if n < 1 || n > maxPartCount {
		return "", apiError("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
	}
	if len(body) > maxPartSize {
		return "", apiError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	}
	sum := md5.Sum(body)
	if contentMD5 != "" {
		want, err := base64.StdEncoding.DecodeString(contentMD5)
		if err != nil || len(want) != md5.Size {
			return "", apiError("InvalidDigest", "The Content-MD5 you specified was invalid.")
		}
		if !bytes.Equal(want, sum[:]) {
			return "", apiError("BadDigest", "The Content-MD5 you specified did not match what we received.")
		}
	} else if b.ObjectLock {
		return "", apiError("InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Part requests with Object Lock parameters")
	}
	p := &uploadedPart{Body: bytes.Clone(body), ETag: `"` + hex.EncodeToString(sum[:]) + `"`, LastModified: c.now().Truncate(time.Second)}
	u.Parts[n] = p
	return p.ETag, nil
}

// ListParts lists the parts uploaded so far, by part number, MaxParts
// (default and cap 1000) at a time after PartNumberMarker.
func (s *S3) ListParts(ctx context.Context, in *s3.ListPartsInput, _ ...func(*s3.Options)) (*s3.ListPartsOutput, error) {
	if in == nil {
		in = &s3.ListPartsInput{}
	}
	c := s.c
	out := &s3.ListPartsOutput{}
	err := c.call(ctx, serviceS3, "ListParts", false, &out.ResultMetadata, func() (func(), error) {
		_, u, err := c.uploadLocked(aws.ToString(in.Bucket), aws.ToString(in.Key), aws.ToString(in.UploadId))
		if err != nil {
			return nil, err
		}
		maxParts := int32(1000)
		if in.MaxParts != nil && *in.MaxParts >= 0 && *in.MaxParts < 1000 {
			maxParts = *in.MaxParts
		}
		marker := int32(0)
		if m := aws.ToString(in.PartNumberMarker); m != "" {
			n, err := strconv.Atoi(m)
			if err != nil || n < 0 {
				return nil, apiError("InvalidArgument", "Provided part-number-marker not an integer or within integer range")
			}
			marker = int32(n)
		}
		numbers := make([]int32, 0, len(u.Parts))
		for n := range u.Parts {
			if n > marker {
				numbers = append(numbers, n)
			}
		}
		sort.Slice(numbers, func(i, j int) bool { return numbers[i] < numbers[j] })
		truncated := int32(len(numbers)) > maxParts
		if truncated {
			numbers = numbers[:maxParts]
		}
		parts := []s3types.Part{}
		for _, n := range numbers {
			p := u.Parts[n]
			parts = append(parts, s3types.Part{
				PartNumber:   aws.Int32(n),
				ETag:         aws.String(p.ETag),
				Size:         aws.Int64(int64(len(p.Body))),
				LastModified: aws.Time(p.LastModified),
			})
		}
		return func() {
			out.Bucket, out.Key, out.UploadId = in.Bucket, in.Key, in.UploadId
			out.Parts = parts
			out.MaxParts = aws.Int32(maxParts)
			out.PartNumberMarker = aws.String(strconv.Itoa(int(marker)))
			out.IsTruncated = aws.Bool(truncated)
			if len(numbers) > 0 {
				out.NextPartNumberMarker = aws.String(strconv.Itoa(int(numbers[len(numbers)-1])))
			}
			out.StorageClass = s3types.StorageClassStandard
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CompleteMultipartUpload makes the object from the listed parts, in order.
// As S3 does, it answers MalformedXML for no parts, InvalidPartOrder when the
// part numbers do not ascend, InvalidPart when a part was not uploaded or its
// ETag differs, and EntityTooSmall when a part other than the last is under
// 5 MiB. The object's ETag is the MD5 of the concatenated binary MD5s of the
// parts, "-", and the number of parts. Versioning, Object Lock (the upload's
// retention, else the bucket's default) and IfNoneMatch "*" / IfMatch
// behave as in PutObject. Parts uploaded but not listed are discarded.
func (s *S3) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	if in == nil {
		in = &s3.CompleteMultipartUploadInput{}
	}
	c := s.c
	out := &s3.CompleteMultipartUploadOutput{}
	err := c.call(ctx, serviceS3, "CompleteMultipartUpload", false, &out.ResultMetadata, func() (func(), error) {
		b, u, err := c.uploadLocked(aws.ToString(in.Bucket), aws.ToString(in.Key), aws.ToString(in.UploadId))
		if err != nil {
			return nil, err
		}
		if in.MultipartUpload == nil || len(in.MultipartUpload.Parts) == 0 {
			return nil, apiError("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
		}
		listed := in.MultipartUpload.Parts
		size := 0
		for _, lp := range listed {
			if p, ok := u.Parts[aws.ToInt32(lp.PartNumber)]; ok {
				size += len(p.Body)
			}
		}
		body := make([]byte, 0, size) // one allocation: images are GiBs
		md5s := md5.New()
		for i, lp := range listed {
			n := aws.ToInt32(lp.PartNumber)
			if i > 0 && n <= aws.ToInt32(listed[i-1].PartNumber) {
				return nil, apiError("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.")
			}
			p, ok := u.Parts[n]
			if !ok || strings.Trim(aws.ToString(lp.ETag), `"`) != strings.Trim(p.ETag, `"`) {
				return nil, apiError("InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
			}
			if i < len(listed)-1 && len(p.Body) < minPartSize {
				return nil, apiError("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
			}
			sum, _ := hex.DecodeString(strings.Trim(p.ETag, `"`))
			md5s.Write(sum)
			body = append(body, p.Body...)
		}
		key := u.Key
		versions := b.Objects[key]
		if err := checkConditions(versions, in.IfNoneMatch, in.IfMatch); err != nil {
			return nil, err
		}
		obj := &Object{
			Body:                 body,
			ContentType:          u.ContentType,
			ETag:                 fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(md5s.Sum(nil)), len(listed)),
			Metadata:             maps.Clone(u.Metadata),
			ServerSideEncryption: u.ServerSideEncryption,
			SSEKMSKeyID:          u.SSEKMSKeyID,
			LegalHold:            u.LegalHold,
		}
		switch {
		case u.RetentionMode != "":
			until := *u.RetainUntil
			obj.RetentionMode, obj.RetainUntil = u.RetentionMode, &until
		case b.DefaultRetention != nil:
			until := c.now().AddDate(0, 0, b.DefaultRetention.Days)
			obj.RetentionMode, obj.RetainUntil = s3types.ObjectLockMode(b.DefaultRetention.Mode), &until
		}
		return func() {
			c.storeObjectLocked(b, key, obj)
			delete(b.Uploads, u.ID)
			out.Bucket, out.Key = in.Bucket, aws.String(key)
			out.Location = aws.String(fmt.Sprintf("https://%s.s3.%s.amazonaws.com/%s", b.Name, c.Region, key))
			out.ETag = aws.String(obj.ETag)
			out.VersionId = optional(obj.VersionID)
			out.ServerSideEncryption = obj.ServerSideEncryption
			out.SSEKMSKeyId = optional(obj.SSEKMSKeyID)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AbortMultipartUpload discards an upload and its parts; an unknown upload
// answers NoSuchUpload.
func (s *S3) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, _ ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	if in == nil {
		in = &s3.AbortMultipartUploadInput{}
	}
	c := s.c
	out := &s3.AbortMultipartUploadOutput{}
	err := c.call(ctx, serviceS3, "AbortMultipartUpload", false, &out.ResultMetadata, func() (func(), error) {
		b, u, err := c.uploadLocked(aws.ToString(in.Bucket), aws.ToString(in.Key), aws.ToString(in.UploadId))
		if err != nil {
			return nil, err
		}
		return func() { delete(b.Uploads, u.ID) }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListMultipartUploads lists a bucket's open uploads whose key starts with
// Prefix, by key then initiation, as S3 does; one page (no marker or
// delimiter is served).
func (s *S3) ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, _ ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
	if in == nil {
		in = &s3.ListMultipartUploadsInput{}
	}
	c := s.c
	out := &s3.ListMultipartUploadsOutput{Bucket: in.Bucket, Prefix: in.Prefix, IsTruncated: aws.Bool(false)}
	err := c.call(ctx, serviceS3, "ListMultipartUploads", false, &out.ResultMetadata, func() (func(), error) {
		b, ok := c.st.Buckets[aws.ToString(in.Bucket)]
		if !ok {
			return nil, apiError("NoSuchBucket", "The specified bucket does not exist")
		}
		if in.KeyMarker != nil || in.UploadIdMarker != nil || in.Delimiter != nil {
			return nil, apiError("NotImplemented", "fakeaws: ListMultipartUploads serves Prefix only")
		}
		var ups []*multipartUpload
		for _, u := range b.Uploads {
			if strings.HasPrefix(u.Key, aws.ToString(in.Prefix)) {
				ups = append(ups, u)
			}
		}
		sort.Slice(ups, func(i, j int) bool {
			if ups[i].Key != ups[j].Key {
				return ups[i].Key < ups[j].Key
			}
			return ups[i].Initiated.Before(ups[j].Initiated)
		})
		for _, u := range ups {
			out.Uploads = append(out.Uploads, s3types.MultipartUpload{Key: aws.String(u.Key), UploadId: aws.String(u.ID), Initiated: aws.Time(u.Initiated)})
		}
		return func() {}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
