package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// The S3 store takes narrow interfaces of its own. Package cloud checks at
// compile time that its operation registry (cloud.S3, cloud.Presigner) serves
// them, so the IAM policies derived from the registry cover every call the
// store makes.

// BucketAPI is what the S3 store needs of S3.
type BucketAPI interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	ListObjectVersions(context.Context, *s3.ListObjectVersionsInput, ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	PutObjectLegalHold(context.Context, *s3.PutObjectLegalHoldInput, ...func(*s3.Options)) (*s3.PutObjectLegalHoldOutput, error)
}

// UploadAPI is what the S3 store needs of S3 to receive evidence that the
// instance uploads itself (see Receiver).
type UploadAPI interface {
	BucketAPI
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	ListParts(context.Context, *s3.ListPartsInput, ...func(*s3.Options)) (*s3.ListPartsOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
}

// Presigner is what the S3 store needs to sign the uploads a suspect
// instance makes itself (see Receiver).
type Presigner interface {
	PresignPutObject(context.Context, *s3.PutObjectInput, ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
	PresignUploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
}

// Bucket keeps cases in S3 under cases/<case-id>/. Every object but
// manifest.json is written with a conditional PUT (If-None-Match: *), so an
// artifact is never replaced (the forensics stack's bucket policy refuses a
// PUT without the condition), and with its SHA-256 as the S3 checksum, so S3
// rejects a corrupted upload and keeps the hash beside the object. The
// bucket's default Object Lock retention applies to every object when the
// bucket has one. In a versioned bucket the store is Versioned: verify reads
// the versions the record names and sees every version written since.
type Bucket struct {
	API  BucketAPI
	Name string
	// KMSKeyID, when set, asks for SSE-KMS with that key; otherwise the
	// bucket's default encryption applies (every S3 bucket encrypts at rest).
	KMSKeyID string
	// ConditionalWritesOnly skips the HEAD before each write-once PUT and
	// relies on If-None-Match alone, which Amazon S3 honours: one round trip
	// less per artifact. Leave it off for S3-compatible stores that may
	// ignore the condition.
	ConditionalWritesOnly bool
	// Presign signs the uploads a suspect instance makes itself (Receiver);
	// nil: the store cannot receive them.
	Presign Presigner
}

var (
	_ Store     = (*Bucket)(nil)
	_ Holder    = (*Bucket)(nil)
	_ Versioned = (*Bucket)(nil)
)

// Prefix is the key prefix of every case.
const Prefix = "cases/"

func (b *Bucket) key(caseID, path string) (string, error) {
	if err := validateFolder(caseID); err != nil {
		return "", err
	}
	if err := validatePath(path); err != nil {
		return "", err
	}
	return Prefix + caseID + "/" + path, nil
}

// Put writes an artifact once.
func (b *Bucket) Put(ctx context.Context, caseID, path string, body []byte, contentType string) (Stored, error) {
	key, err := b.key(caseID, path)
	if err != nil {
		return Stored{}, err
	}
	return b.putOnce(ctx, key, body, contentType)
}

func (b *Bucket) putOnce(ctx context.Context, key string, body []byte, contentType string) (Stored, error) {
	// S3 honours If-None-Match on PUT; the HEAD first also protects evidence
	// on S3-compatible stores that ignore the condition.
	if !b.ConditionalWritesOnly {
		_, err := b.API.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.Name, Key: &key})
		if err == nil {
			return Stored{}, fmt.Errorf("s3://%s/%s: %w", b.Name, key, ErrExists)
		}
		if !isNotFound(err) {
			return Stored{}, fmt.Errorf("check s3://%s/%s: %w", b.Name, key, err)
		}
	}
	return b.put(ctx, key, body, contentType, aws.String("*"))
}

func (b *Bucket) put(ctx context.Context, key string, body []byte, contentType string, ifNoneMatch *string) (Stored, error) {
	sum := sha256.Sum256(body)
	in := &s3.PutObjectInput{
		Bucket:            &b.Name,
		Key:               &key,
		Body:              bytes.NewReader(body),
		ContentLength:     aws.Int64(int64(len(body))),
		ContentType:       aws.String(contentType),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		IfNoneMatch:       ifNoneMatch,
	}
	if b.KMSKeyID != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(b.KMSKeyID)
	}
	out, err := b.API.PutObject(ctx, in)
	if err != nil {
		if isErrorCode(err, "PreconditionFailed", "ConditionalRequestConflict") {
			return Stored{}, fmt.Errorf("s3://%s/%s: %w", b.Name, key, ErrExists)
		}
		return Stored{}, fmt.Errorf("put s3://%s/%s: %w", b.Name, key, err)
	}
	return Stored{VersionID: aws.ToString(out.VersionId), Encryption: string(out.ServerSideEncryption)}, nil
}

// Get reads a file of a case.
func (b *Bucket) Get(ctx context.Context, caseID, path string) ([]byte, error) {
	body, err := b.Open(ctx, caseID, path)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", b.Location(caseID, path), err)
	}
	return data, nil
}

// Open streams a file of a case.
func (b *Bucket) Open(ctx context.Context, caseID, path string) (io.ReadCloser, error) {
	return b.OpenVersion(ctx, caseID, path, "")
}

// OpenVersion streams one version of a file of a case ("": the current one).
func (b *Bucket) OpenVersion(ctx context.Context, caseID, path, versionID string) (io.ReadCloser, error) {
	key, err := b.key(caseID, path)
	if err != nil {
		return nil, err
	}
	in := &s3.GetObjectInput{Bucket: &b.Name, Key: &key}
	where := "s3://" + b.Name + "/" + key
	if versionID != "" {
		in.VersionId = aws.String(versionID)
		where += " (version " + versionID + ")"
	}
	out, err := b.API.GetObject(ctx, in)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%s: %w", where, ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", where, err)
	}
	return out.Body, nil
}

// Versions lists every version and delete marker under the case prefix.
func (b *Bucket) Versions(ctx context.Context, caseID string) ([]ObjectVersion, error) {
	if err := ValidateCaseID(caseID); err != nil {
		return nil, err
	}
	prefix := Prefix + caseID + "/"
	in := &s3.ListObjectVersionsInput{Bucket: &b.Name, Prefix: aws.String(prefix)}
	var out []ObjectVersion
	for {
		page, err := b.API.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list versions of s3://%s/%s: %w", b.Name, prefix, err)
		}
		for _, v := range page.Versions {
			out = append(out, ObjectVersion{Path: strings.TrimPrefix(aws.ToString(v.Key), prefix), VersionID: aws.ToString(v.VersionId),
				Latest: aws.ToBool(v.IsLatest), LastModified: aws.ToTime(v.LastModified), Size: aws.ToInt64(v.Size)})
		}
		for _, d := range page.DeleteMarkers {
			out = append(out, ObjectVersion{Path: strings.TrimPrefix(aws.ToString(d.Key), prefix), VersionID: aws.ToString(d.VersionId),
				Latest: aws.ToBool(d.IsLatest), LastModified: aws.ToTime(d.LastModified), DeleteMarker: true})
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
	// S3 lists versions and delete markers apart; put them in one order:
	// by path, newest first.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].LastModified.After(out[j].LastModified)
	})
	return out, nil
}

// Files lists every object of a case, sorted.
func (b *Bucket) Files(ctx context.Context, caseID string) ([]string, error) {
	if err := ValidateCaseID(caseID); err != nil {
		return nil, err
	}
	prefix := Prefix + caseID + "/"
	var paths []string
	err := b.list(ctx, prefix, "", func(o types.Object, _ string) {
		paths = append(paths, strings.TrimPrefix(aws.ToString(o.Key), prefix))
	})
	if err == nil && len(paths) == 0 {
		return nil, fmt.Errorf("s3://%s/%s: %w", b.Name, prefix, ErrNotFound)
	}
	sort.Strings(paths)
	return paths, err
}

// Cases lists the cases under cases/ (a case folder without a manifest is
// listed too: the manifest read then says what is missing).
func (b *Bucket) Cases(ctx context.Context) ([]string, error) {
	var ids []string
	err := b.list(ctx, Prefix, "/", func(_ types.Object, commonPrefix string) {
		if id := strings.TrimSuffix(strings.TrimPrefix(commonPrefix, Prefix), "/"); id != "" && id != LocksFolder && ValidateCaseID(id) == nil {
			ids = append(ids, id)
		}
	})
	sort.Strings(ids)
	return ids, err
}

// list pages through ListObjectsV2, calling f for every object and every
// common prefix.
func (b *Bucket) list(ctx context.Context, prefix, delimiter string, f func(types.Object, string)) error {
	in := &s3.ListObjectsV2Input{Bucket: &b.Name, Prefix: aws.String(prefix)}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	for {
		out, err := b.API.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", b.Name, prefix, err)
		}
		for _, o := range out.Contents {
			f(o, "")
		}
		for _, p := range out.CommonPrefixes {
			f(types.Object{}, aws.ToString(p.Prefix))
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// SetLegalHold puts or lifts the legal hold of the current version of an
// object of a case. S3 requires Content-MD5 or a checksum on the request
// (PutObjectLegalHold); the SDK computes one when it is asked for by name,
// so the request names SHA-256, as every PutObject of the store does,
// rather than rely on the SDK's default algorithm.
func (b *Bucket) SetLegalHold(ctx context.Context, caseID, path string, on bool) error {
	key, err := b.key(caseID, path)
	if err != nil {
		return err
	}
	status := types.ObjectLockLegalHoldStatusOff
	if on {
		status = types.ObjectLockLegalHoldStatusOn
	}
	_, err = b.API.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{
		Bucket: &b.Name, Key: &key, LegalHold: &types.ObjectLockLegalHold{Status: status},
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return fmt.Errorf("legal hold %s on s3://%s/%s: %w", status, b.Name, key, err)
	}
	return nil
}

// LockState reads the Object Lock state and the S3 checksum of one version
// of an object ("": the current one).
func (b *Bucket) LockState(ctx context.Context, caseID, path, versionID string) (LockState, error) {
	key, err := b.key(caseID, path)
	if err != nil {
		return LockState{}, err
	}
	in := &s3.HeadObjectInput{Bucket: &b.Name, Key: &key, ChecksumMode: types.ChecksumModeEnabled}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	out, err := b.API.HeadObject(ctx, in)
	if err != nil {
		if isNotFound(err) {
			return LockState{}, fmt.Errorf("s3://%s/%s: %w", b.Name, key, ErrNotFound)
		}
		return LockState{}, fmt.Errorf("head s3://%s/%s: %w", b.Name, key, err)
	}
	st := LockState{
		VersionID: aws.ToString(out.VersionId), Mode: string(out.ObjectLockMode),
		RetainUntil: out.ObjectLockRetainUntilDate, LegalHold: out.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn,
	}
	if sum, err := base64.StdEncoding.DecodeString(aws.ToString(out.ChecksumSHA256)); err == nil && len(sum) == sha256.Size {
		st.SHA256 = hex.EncodeToString(sum)
	}
	return st, nil
}

// SaveManifest writes the run's history copy once, then its seal once, then
// manifest.json (a new object version in a versioned bucket; earlier
// versions stay under the bucket's retention). The order is what
// LoadRecord relies on: a seal never exists without its history copy. A
// history copy or seal already there with the same content is kept: saving
// again completes a save that stopped (RepairRecord).
func (b *Bucket) SaveManifest(ctx context.Context, m *Manifest) error {
	body, err := EncodeManifest(m)
	if err != nil {
		return err
	}
	hist, err := b.key(m.CaseID, HistoryName(m.LastRun()))
	if err != nil {
		return err
	}
	if err := b.putOnceOrSame(ctx, hist, body, "application/json"); err != nil {
		return fmt.Errorf("store manifest history: %w", err)
	}
	seal, _ := b.key(m.CaseID, SealName(m.LastRun()))
	if err := b.putOnceOrSame(ctx, seal, sealBody(body), "text/plain"); err != nil {
		return fmt.Errorf("store manifest seal: %w", err)
	}
	return b.putManifest(ctx, m.CaseID, body)
}

// putOnceOrSame writes key once, or finds it there with body already
// (ErrExists when it holds something else).
func (b *Bucket) putOnceOrSame(ctx context.Context, key string, body []byte, contentType string) error {
	_, err := b.putOnce(ctx, key, body, contentType)
	if !errors.Is(err, ErrExists) {
		return err
	}
	out, gerr := b.API.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.Name, Key: &key})
	if gerr != nil {
		return err
	}
	defer out.Body.Close()
	if held, rerr := io.ReadAll(out.Body); rerr == nil && bytes.Equal(held, body) {
		return nil
	}
	return err
}

// putManifest replaces manifest.json: the one object written without
// If-None-Match (the bucket policy exempts it; Object Lock keeps every
// version).
func (b *Bucket) putManifest(ctx context.Context, caseID string, body []byte) error {
	key, err := b.key(caseID, ManifestName)
	if err != nil {
		return err
	}
	if _, err := b.put(ctx, key, body, "application/json", nil); err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	return nil
}

// Location is the object's S3 URI (the case prefix when path is empty).
func (b *Bucket) Location(caseID, path string) string {
	return "s3://" + b.Name + "/" + Prefix + caseID + "/" + path
}

// isErrorCode reports whether err carries one of the given AWS error codes.
func isErrorCode(err error, codes ...string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && slices.Contains(codes, apiErr.ErrorCode())
}

func isNotFound(err error) bool {
	if isErrorCode(err, "NoSuchKey", "NotFound", "404") {
		return true
	}
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}
