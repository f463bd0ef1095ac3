package investigate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// Workspaces returns every workspace of a case as its newest entry in the
// record has it, oldest first.
func Workspaces(m *evidence.Manifest) []evidence.Workspace {
	return evidence.LatestWorkspaces(m.Steps, step.InvestigationRecord)
}

// active is the newest workspace that was not torn down, if any.
func active(m *evidence.Manifest) (evidence.Workspace, bool) {
	all := Workspaces(m)
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].State != evidence.WorkspaceStopped {
			return all[i], true
		}
	}
	return evidence.Workspace{}, false
}

// completedCopies are the case's snapshot copies that a volume can be
// restored from.
func completedCopies(m *evidence.Manifest) []evidence.SnapshotCopy {
	var out []evidence.SnapshotCopy
	for _, c := range m.SnapshotCopies {
		if c.State == evidence.CopyCompleted && c.SnapshotID != "" {
			out = append(out, c)
		}
	}
	return out
}

// memoryImage is the case's newest memory image artifact, if any.
func memoryImage(m *evidence.Manifest) (evidence.Artifact, bool) {
	var found evidence.Artifact
	ok := false
	for _, a := range m.Artifacts {
		if a.Step == "memory-capture" && strings.HasSuffix(a.Path, "/memory-image") && a.SHA256 != "" {
			found, ok = a, true
		}
	}
	return found, ok
}

// s3Location splits a store location "s3://bucket/key" ("" for a local
// folder, which the analysis instance cannot read).
func s3Location(loc string) (bucket, key string) {
	rest, ok := strings.CutPrefix(loc, "s3://")
	if !ok {
		return "", ""
	}
	bucket, key, _ = strings.Cut(rest, "/")
	return bucket, key
}

// loadCase reads the newest record of a case.
func (iv *Investigator) loadCase(ctx context.Context, caseID string) (*evidence.Record, error) {
	rec, err := evidence.LoadRecord(ctx, iv.Store, caseID)
	if err == nil && rec.Manifest == nil {
		err = fmt.Errorf("%s: %w", iv.Store.Location(caseID, evidence.ManifestName), evidence.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", caseID, err)
	}
	return rec, nil
}

// runRecord is what one investigate run records.
type runRecord struct {
	rec       *evidence.Record
	playbook  string
	actor     string
	started   time.Time
	before    json.RawMessage
	calls     *cloud.CallLog
	problems  []string
	artifacts []evidence.Artifact
}

// save appends the run (one investigation entry: before, the workspace as
// read back after) to the case record and stores it.
func (iv *Investigator) save(ctx context.Context, r runRecord, ws evidence.Workspace) *Result {
	prior := r.rec.Manifest
	status := evidence.StatusOK
	if len(r.problems) > 0 {
		status = evidence.StatusFailed
	}
	after, _ := json.Marshal(ws)
	entry := evidence.StepRecord{
		Run: r.rec.Run, Name: step.InvestigationRecord, Phase: "investigate", Status: status,
		Reason: r.playbook + ": workspace " + ws.ID + " " + ws.State, Before: r.before, After: after,
		Calls: r.calls.Calls(), StartedAt: r.started, EndedAt: iv.now(),
	}
	if len(r.problems) > 0 {
		entry.Error = strings.Join(r.problems, "; ")
	}
	m := evidence.AppendRun(prior, *prior, evidence.Revision{
		Run: evidence.Run{Number: r.rec.Run, Actor: r.actor, Playbook: r.playbook, Status: ws.State,
			StartedAt: r.started, EndedAt: iv.now()},
		Steps: []evidence.StepRecord{entry}, Artifacts: r.artifacts, Tool: responder.Tool(), Location: iv.Store.Location(ws.CaseID, ""),
	})
	res := &Result{Manifest: m, Workspace: ws}
	var errs []error
	for _, p := range r.problems {
		errs = append(errs, fmt.Errorf("%s", p))
	}
	if err := evidence.RepairSignedRecord(ctx, iv.Store, r.rec, iv.Signer); err != nil {
		errs = append(errs, err)
	}
	if err := evidence.SaveSignedRun(ctx, iv.Store, m, iv.Signer); errors.Is(err, evidence.ErrNotSigned) {
		errs = append(errs, err)
	} else if err != nil {
		res.SaveErr = err
		errs = append(errs, fmt.Errorf("save case record: %w", err))
	}
	res.Err = errlist.Join(errs...)
	return res
}

// CompletedCopies are the case's snapshot copies a workspace restores
// volumes from.
func CompletedCopies(m *evidence.Manifest) []evidence.SnapshotCopy { return completedCopies(m) }

// Active is the newest workspace of a case that was not torn down.
func Active(m *evidence.Manifest) (evidence.Workspace, bool) { return active(m) }
