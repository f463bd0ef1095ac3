package evidence

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Receiver is a store that takes evidence uploaded by the suspect instance
// itself, through presigned URLs: the instance never holds credentials for
// the store, and a URL allows one request on one key until it expires. The
// S3 bucket is a Receiver when it has a Presigner; a local folder is not.
//
// A received object is evidence like any other: its path is write-once (a
// taken path is ErrExists), and the toolkit checks what arrived against what
// the instance reported before it records it.
type Receiver interface {
	// PresignPut returns a URL the instance PUTs one object of the case to.
	PresignPut(ctx context.Context, caseID, path string, ttl time.Duration) (string, error)
	// BeginUpload opens a multipart upload for a case path.
	BeginUpload(ctx context.Context, caseID, path, contentType string) (*Upload, error)
	// PresignParts returns one UploadPart URL for each part 1..n.
	PresignParts(ctx context.Context, u *Upload, n int, ttl time.Duration) ([]string, error)
	// UploadedParts lists the parts the store holds, by part number.
	UploadedParts(ctx context.Context, u *Upload) ([]UploadedPart, error)
	// CompleteUpload assembles the parts into the object.
	CompleteUpload(ctx context.Context, u *Upload, parts []UploadedPart) (Received, error)
	// AbortUpload discards an upload that did not arrive whole.
	AbortUpload(ctx context.Context, u *Upload) error
	// Received describes the object stored at a path (ErrNotFound when none).
	Received(ctx context.Context, caseID, path string) (Received, error)
}

// ErrCannotReceive is returned by AsReceiver for a store that cannot take
// uploads from an instance.
var ErrCannotReceive = errors.New("the evidence store cannot receive uploads from an instance (needs an S3 bucket)")

// AsReceiver returns the store as a Receiver, or ErrCannotReceive.
func AsReceiver(s Store) (Receiver, error) {
	r, ok := s.(Receiver)
	if !ok {
		return nil, ErrCannotReceive
	}
	if b, isBucket := s.(*Bucket); isBucket {
		if _, err := b.uploads(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Upload is an open multipart upload of one case path.
type Upload struct {
	CaseID   string `json:"case_id"`
	Path     string `json:"path"`
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	UploadID string `json:"upload_id"`
}

// UploadedPart is one part the store holds.
type UploadedPart struct {
	Number int32  `json:"part_number"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size"`
}

// Received is what the store holds at a path.
type Received struct {
	Size       int64  `json:"size"`
	ETag       string `json:"etag"`
	VersionID  string `json:"version_id,omitempty"`
	Encryption string `json:"encryption,omitempty"`
}

var _ Receiver = (*Bucket)(nil)

func (b *Bucket) uploads() (UploadAPI, error) {
	api, err := b.multipart()
	if err != nil || b.Presign == nil {
		return nil, ErrCannotReceive
	}
	return api, nil
}

// multipart is the bucket's API for multipart uploads, which the toolkit
// opens, completes and aborts itself whether the parts come from an
// instance (presigned) or from the toolkit (PartWriter).
func (b *Bucket) multipart() (UploadAPI, error) {
	api, ok := b.API.(UploadAPI)
	if !ok {
		return nil, ErrCannotReceive
	}
	return api, nil
}

// checkFree fails with ErrExists when the key holds an object.
func (b *Bucket) checkFree(ctx context.Context, key string) error {
	_, err := b.API.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.Name, Key: &key})
	if err == nil {
		return fmt.Errorf("s3://%s/%s: %w", b.Name, key, ErrExists)
	}
	if !isNotFound(err) {
		return fmt.Errorf("check s3://%s/%s: %w", b.Name, key, err)
	}
	return nil
}

// PresignPut signs a PUT of one case path. The object gets the bucket's
// default encryption and Object Lock retention (the instance sends no
// encryption headers).
func (b *Bucket) PresignPut(ctx context.Context, caseID, path string, ttl time.Duration) (string, error) {
	if _, err := b.uploads(); err != nil {
		return "", err
	}
	key, err := b.key(caseID, path)
	if err != nil {
		return "", err
	}
	if err := b.checkFree(ctx, key); err != nil {
		return "", err
	}
	req, err := b.Presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &b.Name, Key: &key}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign PUT s3://%s/%s: %w", b.Name, key, err)
	}
	return req.URL, nil
}

// BeginUpload opens a multipart upload, with SSE-KMS under KMSKeyID when set.
func (b *Bucket) BeginUpload(ctx context.Context, caseID, path, contentType string) (*Upload, error) {
	api, err := b.multipart()
	if err != nil {
		return nil, err
	}
	key, err := b.key(caseID, path)
	if err != nil {
		return nil, err
	}
	if err := b.checkFree(ctx, key); err != nil {
		return nil, err
	}
	in := &s3.CreateMultipartUploadInput{Bucket: &b.Name, Key: &key, ContentType: aws.String(contentType)}
	if b.KMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(b.KMSKeyID)
	}
	out, err := api.CreateMultipartUpload(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("open multipart upload s3://%s/%s: %w", b.Name, key, err)
	}
	return &Upload{CaseID: caseID, Path: path, Bucket: b.Name, Key: key, UploadID: aws.ToString(out.UploadId)}, nil
}

// PresignParts signs UploadPart for parts 1..n.
func (b *Bucket) PresignParts(ctx context.Context, u *Upload, n int, ttl time.Duration) ([]string, error) {
	if _, err := b.uploads(); err != nil {
		return nil, err
	}
	if n < 1 || n > 10000 {
		return nil, fmt.Errorf("presign %d parts: S3 allows 1 to 10,000", n)
	}
	urls := make([]string, n)
	for i := range urls {
		req, err := b.Presign.PresignUploadPart(ctx, &s3.UploadPartInput{
			Bucket: &u.Bucket, Key: &u.Key, UploadId: &u.UploadID, PartNumber: aws.Int32(int32(i + 1)),
		}, s3.WithPresignExpires(ttl))
		if err != nil {
			return nil, fmt.Errorf("presign part %d of s3://%s/%s: %w", i+1, u.Bucket, u.Key, err)
		}
		urls[i] = req.URL
	}
	return urls, nil
}

// UploadedParts pages through ListParts.
func (b *Bucket) UploadedParts(ctx context.Context, u *Upload) ([]UploadedPart, error) {
	api, err := b.multipart()
	if err != nil {
		return nil, err
	}
	var parts []UploadedPart
	in := &s3.ListPartsInput{Bucket: &u.Bucket, Key: &u.Key, UploadId: &u.UploadID}
	for {
		out, err := api.ListParts(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list parts of s3://%s/%s: %w", u.Bucket, u.Key, err)
		}
		for _, p := range out.Parts {
			parts = append(parts, UploadedPart{Number: aws.ToInt32(p.PartNumber), ETag: aws.ToString(p.ETag), Size: aws.ToInt64(p.Size)})
		}
		if !aws.ToBool(out.IsTruncated) || out.NextPartNumberMarker == nil {
			break
		}
		in.PartNumberMarker = out.NextPartNumberMarker
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// CompleteUpload assembles the parts, then reads back what S3 stored.
func (b *Bucket) CompleteUpload(ctx context.Context, u *Upload, parts []UploadedPart) (Received, error) {
	api, err := b.multipart()
	if err != nil {
		return Received{}, err
	}
	done := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		done[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
	}
	// If-None-Match: the image is write-once like any artifact (the bucket
	// policy refuses a CompleteMultipartUpload without it).
	out, err := api.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.Bucket, Key: &u.Key, UploadId: &u.UploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		IfNoneMatch:     aws.String("*"),
	})
	if isErrorCode(err, "PreconditionFailed", "ConditionalRequestConflict") {
		return Received{}, fmt.Errorf("s3://%s/%s: %w", u.Bucket, u.Key, ErrExists)
	}
	if err != nil {
		return Received{}, fmt.Errorf("complete multipart upload s3://%s/%s: %w", u.Bucket, u.Key, err)
	}
	r, err := b.Received(ctx, u.CaseID, u.Path)
	if err != nil {
		return Received{}, err
	}
	if r.VersionID == "" {
		r.VersionID = aws.ToString(out.VersionId)
	}
	return r, nil
}

// OpenUploads lists the uploads open at a case path, oldest first (an
// upload an earlier, unrecorded attempt opened).
func (b *Bucket) OpenUploads(ctx context.Context, caseID, path string) ([]*Upload, error) {
	api, err := b.multipart()
	if err != nil {
		return nil, err
	}
	key, err := b.key(caseID, path)
	if err != nil {
		return nil, err
	}
	var found []*Upload
	in := &s3.ListMultipartUploadsInput{Bucket: &b.Name, Prefix: &key}
	for {
		out, err := api.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list the open uploads of s3://%s/%s: %w", b.Name, key, err)
		}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) == key {
				found = append(found, &Upload{CaseID: caseID, Path: path, Bucket: b.Name, Key: key, UploadID: aws.ToString(u.UploadId)})
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return found, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// AbortUpload discards the parts of an upload.
func (b *Bucket) AbortUpload(ctx context.Context, u *Upload) error {
	api, err := b.multipart()
	if err != nil {
		return err
	}
	if _, err := api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &u.Bucket, Key: &u.Key, UploadId: &u.UploadID}); err != nil {
		return fmt.Errorf("abort multipart upload s3://%s/%s: %w", u.Bucket, u.Key, err)
	}
	return nil
}

// Received heads the object at a case path.
func (b *Bucket) Received(ctx context.Context, caseID, path string) (Received, error) {
	key, err := b.key(caseID, path)
	if err != nil {
		return Received{}, err
	}
	out, err := b.API.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.Name, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return Received{}, fmt.Errorf("s3://%s/%s: %w", b.Name, key, ErrNotFound)
		}
		return Received{}, fmt.Errorf("head s3://%s/%s: %w", b.Name, key, err)
	}
	return Received{
		Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag),
		VersionID: aws.ToString(out.VersionId), Encryption: string(out.ServerSideEncryption),
	}, nil
}
