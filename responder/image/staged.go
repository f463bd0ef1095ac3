package image

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// Stages of an image run as Step Functions states (lambda/README.md, "Disk
// images"): Begin opens the image of the next copy, Advance images as many
// blocks as fit in a bounded time, Finish completes it, Abort discards it.
// Each stage is recorded as a run of the case; what carries the image from
// one stage to the next is the compacted Job, never block data.
const (
	StageBegin   = "begin"
	StageAdvance = "advance"
	StageFinish  = "finish"
	StageAbort   = "abort"
)

// StatusImaging is the status of the runs an image in progress records.
const StatusImaging = "imaging"

// Pace bounds the work of one Advance stage.
type Pace struct {
	// Budget is how long an Advance stage images (default DefaultBudget): a
	// chunk still running past it is dropped and imaged again by the next
	// stage.
	Budget time.Duration
	// FirstChunk is the first chunk's size in units of Job.BlocksPerUnit
	// (default 16, 128 MiB of disk); later chunks are sized from the rate
	// measured, to end within the budget.
	FirstChunk int64
	// MaxChunks stops after that many chunks (0: as many as the budget
	// allows).
	MaxChunks int
}

// DefaultBudget keeps an Advance stage well inside Lambda's 15 minutes.
const DefaultBudget = 10 * time.Minute

const maxChunkUnits = 1024 // 8 GiB of disk at the base part size

func (p Pace) budget() time.Duration {
	if p.Budget > 0 {
		return p.Budget
	}
	return DefaultBudget
}

// Compact returns the job as a state carries it: the part list is left to
// S3 (Finish lists it), so the job stays a few hundred bytes whatever the
// volume size, well under Step Functions' 256 KiB of state data.
func (j *Job) Compact() *Job {
	c := *j
	c.Parts = nil
	return &c
}

// restoreParts lists the parts of a compacted job from S3: exactly parts
// 1..PartCount, whose sizes add up to what was sent (a part an interrupted
// attempt uploaded past PartCount is left out).
func (j *Job) restoreParts(ctx context.Context, w evidence.PartWriter) error {
	if int32(len(j.Parts)) == j.PartCount {
		return nil
	}
	lister, ok := w.(interface {
		UploadedParts(context.Context, *evidence.Upload) ([]evidence.UploadedPart, error)
	})
	if !ok {
		return fmt.Errorf("snapshot %s: the store cannot list the parts of an upload", j.SnapshotID)
	}
	listed, err := lister.UploadedParts(ctx, &j.Upload)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", j.SnapshotID, err)
	}
	var parts []evidence.UploadedPart
	var size int64
	for _, p := range listed {
		if p.Number >= 1 && p.Number <= j.PartCount {
			parts = append(parts, p)
			size += p.Size
		}
	}
	if int32(len(parts)) != j.PartCount || size != j.StoredSize {
		return fmt.Errorf("snapshot %s: the upload holds %d of parts 1-%d (%d bytes), %d bytes were sent", j.SnapshotID, len(parts), j.PartCount, size, j.StoredSize)
	}
	j.Parts = parts
	return nil
}

// StagedRequest is what an image execution carries besides the job.
type StagedRequest struct {
	Request
	// Actor is who asked (the API caller), recorded with every stage.
	Actor string
	// Execution names the execution that images (recorded, so that another
	// one can tell a live image from an abandoned one).
	Execution string
}

// Progress is what one stage did: the job to carry on with (compacted),
// and the record's view of it.
type Progress struct {
	Job *Job
	// Done: Begin found nothing left to image; Advance imaged every block.
	Done bool
	// Failed: the image was refused (a block checksum) and aborted.
	Failed   bool
	Error    string
	Artifact *evidence.Artifact
}

// BeginNext opens the image of the next copy to image: the one requested,
// or the first completed copy not imaged yet; Done when there is none
// left. Any other upload open at the image's path (an earlier attempt's)
// is aborted, so a retried Begin leaves no upload behind. The stage is
// recorded.
func (im *Imager) BeginNext(ctx context.Context, req StagedRequest) (*Progress, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Compression == "" {
		req.Compression = CompressZstd
	}
	rec, err := im.load(ctx, req.CaseID)
	if err != nil {
		return nil, err
	}
	copies := pick(rec.Manifest, req.SnapshotID)
	if len(copies) == 0 {
		return nil, fmt.Errorf("case %s: %w", req.CaseID, ErrNoCopy)
	}
	for _, cp := range copies {
		path := ImagePath(instanceOf(rec.Manifest, cp), cp.SnapshotID, req.Compression)
		if _, done := rec.Manifest.Artifact(path); done {
			continue
		}
		j, err := im.Begin(ctx, req.CaseID, cp.SnapshotID, path, req.Compression)
		if errors.Is(err, evidence.ErrExists) {
			continue // stored by an earlier run that did not record it: never overwritten
		}
		if err != nil {
			return nil, err
		}
		im.abortOthers(ctx, j)
		view := stagedView{stepView: stepView{SnapshotID: cp.SnapshotID, SourceSnapshotID: cp.SourceSnapshotID, Path: path, Blocks: j.Blocks}}
		if err := im.recordStage(ctx, req, j, StageBegin, view, nil, nil); err != nil {
			return nil, err
		}
		return &Progress{Job: j.Compact()}, nil
	}
	return &Progress{Done: true}, nil
}

// abortOthers aborts every other upload open at the job's path: one an
// earlier attempt of this stage opened, or one of an image that another
// execution abandoned (or still runs: it then fails, rather than share an
// upload).
func (im *Imager) abortOthers(ctx context.Context, j *Job) {
	finder, ok := im.Store.(interface {
		OpenUploads(context.Context, string, string) ([]*evidence.Upload, error)
	})
	if !ok {
		return
	}
	open, err := finder.OpenUploads(ctx, j.CaseID, j.Path)
	if err != nil {
		im.log().Warn("open uploads not listed", "path", j.Path, "error", err)
		return
	}
	for _, u := range open {
		if u.UploadID == j.Upload.UploadID {
			continue
		}
		if err := im.Abort(ctx, &Job{Upload: *u}); err != nil {
			im.log().Warn("earlier upload not aborted", "key", u.Key, "upload_id", u.UploadID, "error", err)
		}
	}
}

// AdvanceFor images chunks of the job until pace's budget is spent or the
// image is whole, and records how far it is. Run again with the same job,
// it makes the same parts (same numbers, same bytes): a retried stage never
// doubles a part. A refused block checksum aborts the upload and is
// recorded (Failed); any other error leaves the job as it was given.
func (im *Imager) AdvanceFor(ctx context.Context, req StagedRequest, j *Job, pace Pace, opt Options) (*Progress, error) {
	if j.Done() {
		return &Progress{Job: j.Compact(), Done: true}, nil
	}
	start := im.clock()
	deadline := start.Add(pace.budget())
	cctx, cancel := context.WithDeadline(ctx, start.Add(pace.budget()*5/4))
	defer cancel()
	units := max(pace.FirstChunk, 0)
	if units == 0 {
		units = 16
	}
	chunks := 0
	for !j.Done() && (pace.MaxChunks == 0 || chunks < pace.MaxChunks) && im.clock().Before(deadline) {
		t0, from := im.clock(), j.Next
		end := min(j.Next+units*j.BlocksPerUnit(), j.Blocks)
		err := im.Advance(cctx, j, end, opt)
		if IsChecksumError(err) {
			return im.refuse(ctx, req, j, err)
		}
		if err != nil && chunks > 0 && cctx.Err() != nil {
			break // the budget ran out mid-chunk: the next stage images it again
		}
		if err != nil {
			return nil, err
		}
		chunks++
		units = nextChunk(j, end-from, im.clock().Sub(t0), deadline.Sub(im.clock()))
	}
	view := stagedView{stepView: stepView{SnapshotID: j.SnapshotID, Path: j.Path, Blocks: j.Blocks, WrittenBlocks: j.Written}}
	if err := im.recordStage(ctx, req, j, StageAdvance, view, nil, nil); err != nil {
		// Progress only: the finish stage records the image.
		im.log().Warn("image progress not recorded", "case_id", req.CaseID, "error", err)
	}
	return &Progress{Job: j.Compact(), Done: j.Done()}, nil
}

// nextChunk sizes the next chunk to take half the time left at the rate
// the last one went.
func nextChunk(j *Job, blocks int64, took, left time.Duration) int64 {
	if took <= 0 || left <= 0 {
		return maxChunkUnits
	}
	fit := int64(float64(blocks) * float64(left/2) / float64(took) / float64(j.BlocksPerUnit()))
	return min(max(fit, 1), maxChunkUnits)
}

// refuse aborts an image whose block was refused and records why.
func (im *Imager) refuse(ctx context.Context, req StagedRequest, j *Job, cause error) (*Progress, error) {
	var ce *ChecksumError
	errors.As(cause, &ce)
	return im.abortStaged(ctx, req, j, cause.Error(), &ce.Block)
}

// FinishStaged completes the image and records it as an artifact of the
// case. A finish retried after it completed the upload finds the image
// stored (write-once) and records it from the job.
func (im *Imager) FinishStaged(ctx context.Context, req StagedRequest, j *Job) (*Progress, error) {
	rec, err := im.load(ctx, j.CaseID)
	if err != nil {
		return nil, err
	}
	if a, done := rec.Manifest.Artifact(j.Path); done {
		return &Progress{Job: j.Compact(), Done: true, Artifact: &a}, nil
	}
	a, err := im.Finish(ctx, j)
	if errors.Is(err, evidence.ErrExists) {
		a, err = im.stored(ctx, j)
	}
	if err != nil {
		return nil, err
	}
	view := stagedView{stepView: stepView{SnapshotID: j.SnapshotID, Path: j.Path, Blocks: j.Blocks, WrittenBlocks: j.Written,
		RawSHA256: a.DecodedSHA256, RawSize: j.RawSize, SHA256: a.SHA256, Size: a.Size, Parts: int(j.PartCount)}}
	if view.RawSHA256 == "" {
		view.RawSHA256 = a.SHA256
	}
	if err := im.recordStage(ctx, req, j, StageFinish, view, &a, nil); err != nil {
		return nil, err
	}
	return &Progress{Job: j.Compact(), Done: true, Artifact: &a}, nil
}

// stored is the artifact of an image an earlier finish completed: the
// hashes from the job, the size read back.
func (im *Imager) stored(ctx context.Context, j *Job) (evidence.Artifact, error) {
	b, ok := im.Store.(interface {
		Received(context.Context, string, string) (evidence.Received, error)
	})
	if !ok {
		return evidence.Artifact{}, fmt.Errorf("snapshot %s: %w", j.SnapshotID, evidence.ErrExists)
	}
	got, err := b.Received(ctx, j.CaseID, j.Path)
	if err != nil {
		return evidence.Artifact{}, fmt.Errorf("snapshot %s: %w", j.SnapshotID, err)
	}
	if got.Size != j.StoredSize {
		return evidence.Artifact{}, fmt.Errorf("snapshot %s: %s holds %d bytes, the image has %d: %w", j.SnapshotID, j.Path, got.Size, j.StoredSize, evidence.ErrExists)
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

// AbortStaged discards the upload of an image that will not be completed
// and records why (a refused block names it).
func (im *Imager) AbortStaged(ctx context.Context, req StagedRequest, j *Job, reason string) (*Progress, error) {
	return im.abortStaged(ctx, req, j, reason, nil)
}

func (im *Imager) abortStaged(ctx context.Context, req StagedRequest, j *Job, reason string, refused *int64) (*Progress, error) {
	view := stagedView{stepView: stepView{SnapshotID: j.SnapshotID, Path: j.Path, Blocks: j.Blocks, WrittenBlocks: j.Written, RefusedBlock: refused}}
	var problems []string
	if reason != "" {
		problems = append(problems, reason)
	}
	if err := im.Abort(ctx, j); err != nil && !isNoSuchUpload(err) {
		problems = append(problems, err.Error())
	} else {
		view.Aborted = true
	}
	if err := im.recordStage(ctx, req, j, StageAbort, view, nil, problems); err != nil {
		return nil, err
	}
	return &Progress{Job: j.Compact(), Failed: true, Error: reason}, nil
}

func isNoSuchUpload(err error) bool {
	var coded interface{ ErrorCode() string }
	return errors.As(err, &coded) && coded.ErrorCode() == "NoSuchUpload"
}

func (im *Imager) load(ctx context.Context, caseID string) (*evidence.Record, error) {
	rec, err := evidence.LoadRecord(ctx, im.Store, caseID)
	if err == nil && rec.Manifest == nil {
		err = fmt.Errorf("%s: %w", im.Store.Location(caseID, evidence.ManifestName), evidence.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", caseID, err)
	}
	return rec, nil
}

// clock paces the stages: the wall clock (Now is for the record only).
func (im *Imager) clock() time.Time { return time.Now() }
