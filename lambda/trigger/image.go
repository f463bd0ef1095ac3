package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/image"
)

// TaskImage runs one stage of a disk image of a case's snapshot copy (the
// EBS direct APIs, in the function's own account): begin, advance, finish
// or abort. The state machine loops on advance, so no invocation nears
// Lambda's 15 minutes whatever the volume size.
const TaskImage = "image"

// routeImages is the route that starts the images of a case.
const routeImages = "/cases/{id}/images"

// ImageInput is the input of an image execution.
type ImageInput struct {
	Action      string `json:"action"`
	CaseID      string `json:"case_id"`
	SnapshotID  string `json:"snapshot_id"`
	Compression string `json:"compression"`
	Actor       string `json:"actor"`
	RequestedAt string `json:"requested_at"`
	// Execution is the execution's own name, recorded with each stage.
	Execution string `json:"execution"`
}

// imagePayload is the payload of the image task.
type imagePayload struct {
	Task        string     `json:"task"`
	Stage       string     `json:"stage"`
	CaseID      string     `json:"case_id"`
	SnapshotID  string     `json:"snapshot_id"`
	Compression string     `json:"compression"`
	Actor       string     `json:"actor"`
	Execution   string     `json:"execution"`
	Job         *image.Job `json:"job"`
	Reason      string     `json:"reason,omitempty"`
}

// imageResult is the answer of an image stage: what the state machine
// chooses on and carries (the compacted job: no block data, no URL).
type imageResult struct {
	Done       bool       `json:"done"`
	Failed     bool       `json:"failed"`
	Error      string     `json:"error"`
	SnapshotID string     `json:"snapshot_id"`
	Blocks     int64      `json:"blocks"`
	BlocksDone int64      `json:"blocks_done"`
	SHA256     string     `json:"sha256"`
	Job        *image.Job `json:"job"`
}

var imageStages = []string{image.StageBegin, image.StageAdvance, image.StageFinish, image.StageAbort}

func (h *Handler) imageTask(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p imagePayload
	if err := decodeStrict(payload, &p); err != nil {
		log.Error("image task rejected", "error", err)
		return nil, fail(ErrorInput, "image task payload: %v", err)
	}
	log = log.With("case_id", p.CaseID, "stage", p.Stage)
	req := image.StagedRequest{Request: image.Request{CaseID: p.CaseID, SnapshotID: p.SnapshotID, Compression: p.Compression},
		Actor: p.Actor, Execution: p.Execution}
	if err := h.checkImage(p, req); err != nil {
		log.Error("image task rejected", "error", err)
		return nil, fail(ErrorInput, "image task: %v", err)
	}
	im := &image.Imager{EBS: h.EBS, Store: h.Store, Log: log, Now: h.Now, Signer: h.Signer}
	var prog *image.Progress
	var err error
	switch p.Stage {
	case image.StageBegin:
		prog, err = im.BeginNext(ctx, req)
	case image.StageAdvance:
		prog, err = im.AdvanceFor(ctx, req, p.Job, h.ImagePace, image.Options{})
	case image.StageFinish:
		prog, err = im.FinishStaged(ctx, req, p.Job)
	case image.StageAbort:
		prog, err = im.AbortStaged(ctx, req, p.Job, p.Reason)
	}
	if err != nil {
		log.Error("image stage failed", "error", err)
		return nil, imageFailure(err)
	}
	out := imageResult{Done: prog.Done, Failed: prog.Failed, Error: prog.Error, Job: prog.Job}
	if j := prog.Job; j != nil {
		out.SnapshotID, out.Blocks, out.BlocksDone = j.SnapshotID, j.Blocks, j.Next
	}
	if prog.Artifact != nil {
		out.SHA256 = prog.Artifact.SHA256
	}
	log.Info("image stage done", "snapshot_id", out.SnapshotID, "blocks_done", out.BlocksDone, "blocks", out.Blocks, "done", out.Done, "failed", out.Failed)
	return out, nil
}

// checkImage validates an image payload before any AWS call.
func (h *Handler) checkImage(p imagePayload, req image.StagedRequest) error {
	if !slices.Contains(imageStages, p.Stage) {
		return fmt.Errorf("unknown stage %s (known: %v)", quote(p.Stage), imageStages)
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if h.EBS == nil {
		return errors.New("no EBS direct API client")
	}
	if p.Stage == image.StageBegin {
		return nil
	}
	if p.Job == nil {
		return fmt.Errorf("stage %s needs the job", p.Stage)
	}
	if p.Job.CaseID != p.CaseID || p.Job.Upload.CaseID != p.CaseID {
		return fmt.Errorf("the job is of case %s, not %s", quote(p.Job.CaseID), p.CaseID)
	}
	if p.Job.BlockSize <= 0 || p.Job.PartSize <= 0 || p.Job.PartSize%p.Job.BlockSize != 0 {
		return fmt.Errorf("the job's block size %d and part size %d do not fit", p.Job.BlockSize, p.Job.PartSize)
	}
	return nil
}

// imageFailure classifies an error of an image stage.
func imageFailure(err error) error {
	var inputErr *responder.InputError
	if errors.As(err, &inputErr) || errors.Is(err, image.ErrNoCopy) || errors.Is(err, evidence.ErrNotFound) {
		return &Failure{Type: ErrorInput, Err: err}
	}
	return awsFailure(err)
}

// imageRequest is the body of POST /cases/{id}/images (it may be empty).
type imageRequest struct {
	// SnapshotID picks one copy (its ID in the forensics account or the
	// case snapshot it copies); empty: every completed copy not imaged.
	SnapshotID  string `json:"snapshot_id"`
	Compression string `json:"compression"`
}

var imageRequestFields = jsonFields(reflect.TypeFor[imageRequest]())

// postImages starts an image execution for a case: 202 with the
// execution; GET /cases/{id} shows its progress.
func (h *Handler) postImages(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	body, log, resp := h.caseRequestBody(log, req)
	if resp != nil {
		return *resp
	}
	ir, e := decodeOptionalBody[imageRequest](body, imageRequestFields)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	if e := validateImageRequest(req.CaseID, ir); e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	m, resp := h.readCase(ctx, log, req)
	if resp != nil {
		return *resp
	}
	if len(image.Copies(m, ir.SnapshotID)) == 0 {
		return h.conflict(log, req, "no_snapshot_copy",
			"the case has no completed snapshot copy in the forensics account to image (the execution's preserve state, or responder preserve, makes them)")
	}
	if prog, ok := image.LatestStaged(m); ok && prog.InProgress() {
		running, err := h.executionRunning(ctx, prog.Execution)
		if err != nil {
			return h.failed(log, err, req.RequestID)
		}
		if running {
			return h.conflict(log, req, "image_in_progress", fmt.Sprintf("execution %s is imaging %s (%d of %d blocks)", prog.Execution, prog.SnapshotID, prog.BlocksDone, prog.Blocks))
		}
	}
	now := h.now()
	in := ImageInput{Action: ActionImage, CaseID: req.CaseID, SnapshotID: ir.SnapshotID, Compression: ir.Compression,
		Actor: req.Actor, RequestedAt: now.Format("2006-01-02T15:04:05Z07:00")}
	if in.Compression == "" {
		in.Compression = image.CompressZstd
	}
	in.Execution = actionExecutionName(req.CaseID, ActionImage, now)
	arn, err := h.startActionExecution(ctx, in.Execution, in)
	if err != nil {
		return h.failed(log, err, req.RequestID)
	}
	log.Info("image started", "execution_arn", arn, "snapshot_id", ir.SnapshotID)
	return h.accepted(req, ActionImage, arn)
}

func validateImageRequest(caseID string, ir imageRequest) *apiError {
	r := image.Request{CaseID: caseID, SnapshotID: ir.SnapshotID, Compression: ir.Compression}
	if err := r.Validate(); err != nil {
		snap := image.Request{CaseID: caseID, SnapshotID: ir.SnapshotID}
		if snap.Validate() != nil {
			return badRequest("invalid_snapshot_id", "invalid snapshot ID %s: want snap- and hex digits", quote(ir.SnapshotID))
		}
		return badRequest("invalid_compression", "compression %s: want zstd or none", quote(ir.Compression))
	}
	return nil
}
