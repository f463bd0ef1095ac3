package image

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

var snapshotIDPattern = regexp.MustCompile(`^snap-[0-9a-f]{8,17}$`)

// ErrNoCopy: the case has no completed copy to image (or none matching the
// requested snapshot).
var ErrNoCopy = errors.New("no completed snapshot copy to image: run `responder preserve` first")

// Image images every completed snapshot copy of the case (or the one
// requested), one after another, and records an "image" run. An image
// already recorded is not made again. One failure does not stop the others.
// It returns an error only when it could not start.
func (im *Imager) Image(ctx context.Context, req Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Compression == "" {
		req.Compression = CompressZstd
	}
	if _, err := evidence.AsPartWriter(im.Store); err != nil {
		return nil, &responder.InputError{Err: err}
	}
	rec, err := evidence.LoadRecord(ctx, im.Store, req.CaseID)
	if err == nil && rec.Manifest == nil {
		err = fmt.Errorf("%s: %w", im.Store.Location(req.CaseID, evidence.ManifestName), evidence.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", req.CaseID, err)
	}
	prior := rec.Manifest
	copies := pick(prior, req.SnapshotID)
	if len(copies) == 0 {
		return nil, fmt.Errorf("case %s: %w", req.CaseID, ErrNoCopy)
	}
	started := im.now()
	res := &Result{Status: Completed}
	var errs *multierror.Error
	for _, cp := range copies {
		path := ImagePath(instanceOf(prior, cp), cp.SnapshotID, req.Compression)
		if _, done := prior.Artifact(path); done {
			continue
		}
		a, step, err := im.one(ctx, req, cp, path, rec.Run)
		res.Steps = append(res.Steps, step)
		if err != nil {
			res.Status = Failed
			errs = multierror.Append(errs, err)
			continue
		}
		res.Artifacts = append(res.Artifacts, a)
	}
	if len(res.Steps) == 0 {
		res.Manifest = prior
		return res, nil
	}
	res.Manifest = evidence.AppendRun(prior, *prior, evidence.Revision{
		Run: evidence.Run{Number: rec.Run, Actor: im.actor(ctx), Playbook: Playbook, Status: res.Status,
			StartedAt: started, EndedAt: im.now()},
		Steps: res.Steps, Artifacts: res.Artifacts,
		Tool: responder.Tool(), Location: im.Store.Location(req.CaseID, ""),
	})
	if err := evidence.RepairRecord(ctx, im.Store, rec); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := evidence.SaveRun(ctx, im.Store, res.Manifest); err != nil {
		errs = multierror.Append(errs, fmt.Errorf("save case record: %w", err))
	}
	res.Err = errlist.OneLine(errs)
	return res, nil
}

// pick returns the completed copies to image.
func pick(m *evidence.Manifest, snapshotID string) []evidence.SnapshotCopy {
	var out []evidence.SnapshotCopy
	for _, c := range m.SnapshotCopies {
		if c.State != evidence.CopyCompleted || c.SnapshotID == "" {
			continue
		}
		if snapshotID == "" || snapshotID == c.SnapshotID || snapshotID == c.SourceSnapshotID {
			out = append(out, c)
		}
	}
	return out
}

// instanceOf is the instance whose volume the copy holds.
func instanceOf(m *evidence.Manifest, c evidence.SnapshotCopy) string {
	for _, s := range m.Snapshots {
		if s.SnapshotID == c.SourceSnapshotID && s.InstanceID != "" {
			return s.InstanceID
		}
	}
	return m.InstanceID
}

func (im *Imager) actor(ctx context.Context) string {
	if im.Caller == nil {
		return ""
	}
	out, err := im.Caller.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || out.Arn == nil {
		im.log().Warn("caller not identified", "error", err)
		return ""
	}
	return *out.Arn
}

// one images one copy in a single chunk and records the step.
func (im *Imager) one(ctx context.Context, req Request, cp evidence.SnapshotCopy, path string, run int) (evidence.Artifact, evidence.StepRecord, error) {
	step := evidence.StepRecord{Run: run, Name: StepName, Phase: phase, StartedAt: im.now()}
	view := stepView{SnapshotID: cp.SnapshotID, SourceSnapshotID: cp.SourceSnapshotID, Path: path}
	step.Before = raw(view)
	a, err := im.whole(ctx, req, path, &view)
	step.EndedAt, step.After = im.now(), raw(view)
	if err != nil {
		step.Status, step.Error = evidence.StatusFailed, err.Error()
		step.Reason = "no image stored"
		if view.RefusedBlock != nil {
			step.Reason = fmt.Sprintf("block %d refused: its data does not match the checksum AWS sent; upload aborted", *view.RefusedBlock)
		}
		return a, step, err
	}
	step.Status = evidence.StatusOK
	step.Reason = fmt.Sprintf("imaged %d blocks (%d written, %d sparse) into %s", view.Blocks, view.WrittenBlocks, view.Blocks-view.WrittenBlocks, path)
	return a, step, nil
}

// whole runs Begin, Advance to the end and Finish, aborting the upload on
// any failure; view receives what was done.
func (im *Imager) whole(ctx context.Context, req Request, path string, view *stepView) (evidence.Artifact, error) {
	j, err := im.Begin(ctx, req.CaseID, view.SnapshotID, path, req.Compression)
	if err != nil {
		return evidence.Artifact{}, err
	}
	view.Blocks = j.Blocks
	err = im.Advance(ctx, j, j.Blocks, req.Options)
	var a evidence.Artifact
	if err == nil {
		a, err = im.Finish(ctx, j)
	}
	if err != nil {
		var ce *ChecksumError
		if errors.As(err, &ce) {
			view.RefusedBlock = &ce.Block
		}
		if aerr := im.Abort(ctx, j); aerr != nil {
			return a, fmt.Errorf("%w; %w", err, aerr)
		}
		view.Aborted = true
		return a, err
	}
	view.WrittenBlocks, view.Parts = j.Written, len(j.Parts)
	view.RawSHA256, view.RawSize, view.SHA256, view.Size = a.DecodedSHA256, j.RawSize, a.SHA256, a.Size
	if view.RawSHA256 == "" {
		view.RawSHA256 = a.SHA256
	}
	return a, nil
}

// Copies returns the completed copies of a case an image request would
// image (all, or the one named).
func Copies(m *evidence.Manifest, snapshotID string) []evidence.SnapshotCopy {
	return pick(m, snapshotID)
}
