package image

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"

	"github.com/responder-ir/responder/responder/evidence"
)

// Compressions of a stored image.
const (
	CompressZstd = "zstd"
	CompressNone = "none"
)

// S3 multipart limits (S3 User Guide, "Amazon S3 multipart upload limits").
const (
	minPartSize = 5 << 20
	maxParts    = 10000
	// basePartSize is the part size of volumes up to 80 GiB; larger
	// volumes get larger parts so that the raw image fits in maxParts.
	basePartSize = 8 << 20
)

// Job is one image in progress: enough to go on with it in another process
// (a Step Functions state) from the block it stopped at. It is plain data
// (JSON), small whatever the volume size.
type Job struct {
	CaseID      string          `json:"case_id"`
	SnapshotID  string          `json:"snapshot_id"`
	Path        string          `json:"path"`
	Compression string          `json:"compression"`
	Upload      evidence.Upload `json:"upload"`
	BlockSize   int64           `json:"block_size"`
	Blocks      int64           `json:"blocks"`    // blocks in the volume
	PartSize    int64           `json:"part_size"` // bytes of raw image per chunk unit
	Next        int64           `json:"next_block"`
	// Parts are the parts uploaded, by number; a compacted job (Compact)
	// leaves them to S3 and keeps only PartCount.
	Parts     []evidence.UploadedPart `json:"parts,omitempty"`
	PartCount int32                   `json:"part_count"`
	// RawState and StoredState are the SHA-256 states of the raw disk and of
	// the stored bytes so far (crypto/sha256 binary marshaling).
	RawState    []byte `json:"raw_state"`
	StoredState []byte `json:"stored_state"`
	RawSize     int64  `json:"raw_size"`
	StoredSize  int64  `json:"stored_size"`
	// Written counts the blocks read from the snapshot; the others were
	// sparse (zeros).
	Written int64 `json:"written_blocks"`
}

// BlocksPerUnit is the chunk granularity: Advance's end must be a multiple
// of it, or the end of the volume.
func (j *Job) BlocksPerUnit() int64 { return j.PartSize / j.BlockSize }

// Done reports whether every block is imaged.
func (j *Job) Done() bool { return j.Next >= j.Blocks }

// ContentType of the stored image.
func (j *Job) ContentType() string {
	if j.Compression == CompressZstd {
		return "application/zstd"
	}
	return "application/octet-stream"
}

// ImagePath is where the image of a snapshot is stored in the case folder.
func ImagePath(instanceID, snapshotID, compression string) string {
	p := instanceID + "/images/" + snapshotID + ".raw"
	if compression == CompressZstd {
		p += ".zst"
	}
	return p
}

// Begin opens the image of a snapshot: it reads the volume and block sizes
// (ListSnapshotBlocks) and opens the multipart upload (write-once: an image
// already stored at path is evidence.ErrExists).
func (im *Imager) Begin(ctx context.Context, caseID, snapshotID, path, compression string) (*Job, error) {
	w, err := evidence.AsPartWriter(im.Store)
	if err != nil {
		return nil, err
	}
	out, err := im.EBS.ListSnapshotBlocks(ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: &snapshotID, MaxResults: aws.Int32(100)})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: list blocks: %w", snapshotID, err)
	}
	bs, gib := int64(aws.ToInt32(out.BlockSize)), aws.ToInt64(out.VolumeSize)
	if bs <= 0 || gib <= 0 || (gib<<30)%bs != 0 {
		return nil, fmt.Errorf("snapshot %s: block size %d and volume size %d GiB do not make whole blocks", snapshotID, bs, gib)
	}
	j := &Job{CaseID: caseID, SnapshotID: snapshotID, Path: path, Compression: compression,
		BlockSize: bs, Blocks: gib << 30 / bs, PartSize: partSize(gib<<30, bs)}
	if j.RawState, err = marshal(sha256.New()); err != nil {
		return nil, err
	}
	j.StoredState = j.RawState
	u, err := w.BeginUpload(ctx, caseID, path, j.ContentType())
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", snapshotID, err)
	}
	j.Upload = *u
	return j, nil
}

// partSize is the smallest multiple of the block size, at least
// basePartSize, that fits the volume in maxParts-100 parts (room for the
// padding of chunk ends).
func partSize(volume, block int64) int64 {
	size := max(int64(basePartSize), (volume+maxParts-101)/(maxParts-100))
	return (size + block - 1) / block * block
}

// Finish completes the upload and returns the artifact: the SHA-256 and
// size of the stored object and, for a compressed image, of the raw disk.
// The stored size is read back from the store.
func (im *Imager) Finish(ctx context.Context, j *Job) (evidence.Artifact, error) {
	if !j.Done() {
		return evidence.Artifact{}, fmt.Errorf("snapshot %s: imaged %d of %d blocks", j.SnapshotID, j.Next, j.Blocks)
	}
	w, err := evidence.AsPartWriter(im.Store)
	if err != nil {
		return evidence.Artifact{}, err
	}
	if err := j.restoreParts(ctx, w); err != nil {
		return evidence.Artifact{}, err
	}
	got, err := w.CompleteUpload(ctx, &j.Upload, j.Parts)
	if err != nil {
		return evidence.Artifact{}, fmt.Errorf("snapshot %s: %w", j.SnapshotID, err)
	}
	if got.Size != j.StoredSize {
		return evidence.Artifact{}, fmt.Errorf("snapshot %s: the store holds %d bytes, %d were sent", j.SnapshotID, got.Size, j.StoredSize)
	}
	raw, stored, err := j.sums()
	if err != nil {
		return evidence.Artifact{}, err
	}
	a := evidence.Artifact{Path: j.Path, SHA256: stored, Size: got.Size, ContentType: j.ContentType(),
		CollectedAt: im.now(), Step: StepName, Source: j.SnapshotID, VersionID: got.VersionID, Encryption: got.Encryption}
	if j.Compression == CompressZstd {
		a.Encoding, a.DecodedSHA256, a.DecodedSize = CompressZstd, raw, j.RawSize
	}
	return a, nil
}

// Abort discards the upload of an image that will not be completed.
func (im *Imager) Abort(ctx context.Context, j *Job) error {
	w, err := evidence.AsPartWriter(im.Store)
	if err != nil {
		return err
	}
	return w.AbortUpload(context.WithoutCancel(ctx), &j.Upload)
}

func (j *Job) sums() (raw, stored string, err error) {
	r, err := unmarshal(j.RawState)
	if err != nil {
		return "", "", err
	}
	s, err := unmarshal(j.StoredState)
	if err != nil {
		return "", "", err
	}
	return hex.EncodeToString(r.Sum(nil)), hex.EncodeToString(s.Sum(nil)), nil
}

func marshal(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("sha256 state cannot be saved")
	}
	return m.MarshalBinary()
}

func unmarshal(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("restore sha256 state: %w", err)
	}
	return h, nil
}
