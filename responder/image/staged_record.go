package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

// stagedView is what a stage records of an image: the step view and how
// far the image is.
type stagedView struct {
	stepView
	Stage      string `json:"stage"`
	BlocksDone int64  `json:"blocks_done"`
	UploadID   string `json:"upload_id,omitempty"`
	Execution  string `json:"execution,omitempty"`
}

// StagedProgress is what the newest record of a staged image says: GET
// /cases/{id} shows it.
type StagedProgress struct {
	SnapshotID    string `json:"snapshot_id"`
	Path          string `json:"path"`
	Stage         string `json:"stage"`
	Status        string `json:"status"`
	Run           int    `json:"run"`
	Blocks        int64  `json:"blocks"`
	BlocksDone    int64  `json:"blocks_done"`
	WrittenBlocks int64  `json:"written_blocks"`
	SHA256        string `json:"sha256,omitempty"`
	RawSHA256     string `json:"raw_sha256,omitempty"`
	Error         string `json:"error,omitempty"`
	Execution     string `json:"execution,omitempty"`
}

// InProgress says whether the image was begun and neither finished nor
// aborted.
func (p StagedProgress) InProgress() bool {
	return p.Stage == StageBegin || p.Stage == StageAdvance
}

// LatestStaged reads the newest staged image record of a case; false when
// the case has none (an image made by the CLI records no stage).
func LatestStaged(m *evidence.Manifest) (StagedProgress, bool) {
	for i := len(m.Steps) - 1; i >= 0; i-- {
		st := m.Steps[i]
		if st.Name != StepName {
			continue
		}
		var v stagedView
		if json.Unmarshal(st.After, &v) != nil || v.Stage == "" {
			continue
		}
		return StagedProgress{SnapshotID: v.SnapshotID, Path: v.Path, Stage: v.Stage, Status: st.Status, Run: st.Run,
			Blocks: v.Blocks, BlocksDone: v.BlocksDone, WrittenBlocks: v.WrittenBlocks, SHA256: v.SHA256,
			RawSHA256: v.RawSHA256, Error: st.Error, Execution: v.Execution}, true
	}
	return StagedProgress{}, false
}

// recordStage appends a run with the stage's step (and the image, when
// finished) to the case record, signed when the imager has a signer.
func (im *Imager) recordStage(ctx context.Context, req StagedRequest, j *Job, stage string, view stagedView, a *evidence.Artifact, problems []string) error {
	rec, err := im.load(ctx, j.CaseID)
	if err != nil {
		return err
	}
	view.Stage, view.BlocksDone, view.UploadID, view.Execution = stage, j.Next, j.Upload.UploadID, req.Execution
	now := im.now()
	step := evidence.StepRecord{Run: rec.Run, Name: StepName, Phase: phase, Status: evidence.StatusOK,
		StartedAt: now, EndedAt: now, After: raw(view)}
	status := StatusImaging
	switch stage {
	case StageBegin:
		step.Reason = fmt.Sprintf("image of %s begun: %d blocks, into %s", j.SnapshotID, j.Blocks, j.Path)
	case StageAdvance:
		step.Reason = fmt.Sprintf("imaged %d of %d blocks (%d written, %d parts)", j.Next, j.Blocks, j.Written, j.PartCount)
	case StageFinish:
		status = Completed
		step.Reason = fmt.Sprintf("imaged %d blocks (%d written, %d sparse) into %s", j.Blocks, j.Written, j.Blocks-j.Written, j.Path)
	case StageAbort:
		status, step.Status = Failed, evidence.StatusFailed
		step.Error = strings.Join(problems, "; ")
		step.Reason = "no image stored; upload aborted"
		if view.RefusedBlock != nil {
			step.Reason = fmt.Sprintf("block %d refused: its data does not match the checksum AWS sent; upload aborted", *view.RefusedBlock)
		}
		if !view.Aborted {
			step.Reason = "no image stored; the upload could not be aborted"
		}
	}
	rev := evidence.Revision{
		Run:   evidence.Run{Number: rec.Run, Actor: req.Actor, Playbook: Playbook, Status: status, StartedAt: now, EndedAt: now},
		Steps: []evidence.StepRecord{step}, Tool: responder.Tool(), Location: im.Store.Location(j.CaseID, ""),
	}
	if a != nil {
		rev.Artifacts = []evidence.Artifact{*a}
	}
	m := evidence.AppendRun(rec.Manifest, *rec.Manifest, rev)
	if err := evidence.RepairSignedRecord(ctx, im.Store, rec, im.Signer); err != nil {
		return fmt.Errorf("case %s: %w", j.CaseID, err)
	}
	if err := evidence.SaveSignedRun(ctx, im.Store, m, im.Signer); err != nil && !errors.Is(err, evidence.ErrNotSigned) {
		return fmt.Errorf("case %s: save case record: %w", j.CaseID, err)
	}
	return nil
}
