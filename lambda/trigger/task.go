package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// Step Functions task routes: the "task" of a payload.
const (
	// TaskRespond runs the response of a case (responder.Respond).
	TaskRespond = "respond"
	// TaskSnapshotStatus reports how far the case's EBS snapshots are.
	TaskSnapshotStatus = "snapshot-status"
	// TaskPreserve copies the case's snapshots into the forensics account.
	TaskPreserve = "preserve"
)

// taskRoute is one task: the type of its payload and its work.
type taskRoute struct {
	payload reflect.Type
	run     func(h *Handler, ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error)
}

var taskRoutes = map[string]taskRoute{
	TaskRespond:        {reflect.TypeFor[respondPayload](), (*Handler).respond},
	TaskSnapshotStatus: {reflect.TypeFor[snapshotPayload](), (*Handler).snapshotStatus},
	TaskPreserve:       {reflect.TypeFor[preservePayload](), (*Handler).preserve},
	TaskCollect:        {reflect.TypeFor[collectPayload](), (*Handler).collect},
	// A fleet's tasks (fleet_tasks.go).
	TaskFleetOpen:       {reflect.TypeFor[fleetOpenPayload](), (*Handler).fleetOpen},
	TaskFleetCase:       {reflect.TypeFor[fleetCasePayload](), (*Handler).fleetCase},
	TaskFleetCaseStatus: {reflect.TypeFor[fleetCaseStatusPayload](), (*Handler).fleetCaseStatus},
	TaskFleetClose:      {reflect.TypeFor[fleetClosePayload](), (*Handler).fleetClose},
}

// Tasks lists the task routes, sorted.
func Tasks() []string {
	names := make([]string, 0, len(taskRoutes))
	for n := range taskRoutes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TaskFields lists the fields a task's payload may hold ("task" included),
// sorted; false for an unknown task. The state machine definition is checked
// against it: a payload field the task does not know is refused at run time.
func TaskFields(task string) ([]string, bool) {
	r, ok := taskRoutes[task]
	if !ok {
		return nil, false
	}
	var fields []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields = append(fields, name)
			}
		}
	}
	walk(r.payload)
	sort.Strings(fields)
	return fields, true
}

func (h *Handler) task(ctx context.Context, log *slog.Logger, name string, payload json.RawMessage) (any, error) {
	r, ok := taskRoutes[name]
	if !ok {
		log.Error("task rejected: unknown task", "task", name)
		return nil, fail(ErrorInput, "unknown task %s (known: %s)", quote(name), strings.Join(Tasks(), ", "))
	}
	return r.run(h, ctx, log.With("task", name), payload)
}

// decodeStrict decodes a task payload: one JSON object, every field known.
func decodeStrict(payload json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the payload object")
	}
	return nil
}

// checkCase validates the case and target of a task payload.
func (h *Handler) checkCase(caseID string, t Target) error {
	if err := validateCaseID(caseID); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return err
	}
	if err := ValidateRegionIn(t.Region, h.Config.partition()); err != nil {
		return err
	}
	if !h.Config.AccountAllowed(t.AccountID) {
		return fmt.Errorf("account %s is not one this responder may act in", t.AccountID)
	}
	return nil
}

// respondPayload is the payload of the respond task: the case input.
type respondPayload struct {
	Task string `json:"task"`
	CaseInput
}

// respondResult is the answer of the respond task.
type respondResult struct {
	CaseID      string   `json:"case_id"`
	Status      string   `json:"status"`
	Location    string   `json:"location"`
	SnapshotIDs []string `json:"snapshot_ids"`
	StepsFailed []string `json:"steps_failed"`
	// Collect says the playbook collects through SSM: the state machine
	// runs the collection (task collect) under CollectionID, then the rest
	// of the playbook. The ID is the respond run's, run-NNN: the image and
	// the instance's report go under <instance>/memory/run-NNN/, as the
	// CLI's do (the evidence bucket policy lets the instance PUT its report
	// there without If-None-Match).
	Collect      bool   `json:"collect"`
	CollectionID string `json:"collection_id"`
}

// respond runs the response of a case in the target's account, as the member
// role, and records it in the evidence store. It always runs as a resumption
// of the case (CaseIDGiven): Step Functions may run a task twice, and the
// steps then find what the first attempt did instead of doing it again.
func (h *Handler) respond(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p respondPayload
	if err := decodeStrict(payload, &p); err != nil {
		log.Error("respond task rejected", "error", err)
		return nil, fail(ErrorInput, "respond task payload: %v", err)
	}
	in := p.CaseInput
	log = log.With("case_id", in.CaseID, "instance_id", in.InstanceID)
	if err := h.checkCase(in.CaseID, in.Target()); err != nil {
		log.Error("respond task rejected", "error", err)
		return nil, fail(ErrorInput, "respond task: %v", err)
	}
	playbook, err := h.Config.Playbook(in.Playbook)
	if err != nil {
		log.Error("respond task rejected", "error", err)
		return nil, fail(ErrorInput, "respond task: %v", err)
	}
	clients, err := h.workload(ctx, in.Target(), in.CaseID)
	if err != nil {
		log.Error("respond task: no clients for the target", "error", err)
		return nil, awsFailure(err)
	}
	r := responder.New(clients, h.Store)
	// Notifications go to the topic in the function's own Region.
	r.Clients.SNS, r.Clients.Region = h.SNS, in.Region
	// OS-level collection runs in the collect task's stages, not here.
	r.Clients.SSM, r.Clients.Presign, r.Clients.Staging = nil, nil, nil
	r.Log, r.Now, r.Signer = log, h.Now, h.Signer
	req := responder.Request{
		InstanceID: in.InstanceID, CaseID: in.CaseID, CaseIDGiven: true,
		Plan: playbook.Names(), After: playbook.After(), PlanName: playbook.Name, Collection: playbook.Collection, SnapshotLock: playbook.SnapshotLock,
		TopicARN: h.Config.TopicARN, Actor: in.Actor, StepTimeout: stepTimeout(ctx), Force: in.Force,
		ProtectedTag: h.Config.ProtectedTag, BlastRadius: h.Config.BlastRadius,
	}
	if playbook.CollectsOS() {
		before, _ := splitPlan(playbook)
		req.Plan, req.After, req.Collection = before.names, before.order, h.Config.collection(playbook, in.AccountID)
	}
	res, err := r.Respond(ctx, req)
	if errors.Is(err, responder.ErrProtected) || errors.Is(err, responder.ErrBlastRadius) {
		// A safeguard refused the case before any change: retrying cannot
		// help. The findings that asked for it say why no case started.
		log.Warn("no case started: a safeguard refused it", "error", err)
		h.noteRefusal(ctx, log, in, err)
	}
	if err != nil {
		return nil, respondFailure(err)
	}
	if res.SaveErr != nil {
		// The record is the chain of custody: keep it in the log, and fail
		// so that Step Functions retries (the steps find their work done).
		if body, err := evidence.EncodeManifest(res.Manifest); err == nil {
			log.Error("case record not stored; here it is", "manifest", json.RawMessage(body))
		}
		return nil, awsFailure(fmt.Errorf("store the case record: %w", res.SaveErr))
	}
	h.noteOutcome(ctx, log, in, res)
	if res.Interrupted {
		// The function's deadline cut the run: the record says so; a retry
		// of the task resumes the case.
		return nil, &Failure{Type: ErrorTransient, Err: fmt.Errorf("case %s: the response was interrupted before every step finished", in.CaseID)}
	}
	out := respondResult{CaseID: in.CaseID, Status: res.Status, Location: res.Manifest.Location, SnapshotIDs: []string{}, StepsFailed: []string{}}
	if playbook.CollectsOS() {
		out.Collect, out.CollectionID = true, fmt.Sprintf("run-%03d", lastRun(res.Manifest))
	}
	for _, s := range res.Manifest.Snapshots {
		out.SnapshotIDs = append(out.SnapshotIDs, s.SnapshotID)
	}
	for _, s := range res.Steps {
		if s.Status == evidence.StatusFailed {
			out.StepsFailed = append(out.StepsFailed, s.Name)
		}
	}
	log.Info("respond task done", "status", out.Status, "snapshots", len(out.SnapshotIDs), "steps_failed", out.StepsFailed)
	return out, nil
}

// respondFailure maps an error of Respond (the run could not start) to the
// task's failure type.
func respondFailure(err error) error {
	var inputErr *responder.InputError
	switch {
	case errors.As(err, &inputErr):
		return &Failure{Type: ErrorInput, Err: err}
	case errors.Is(err, responder.ErrInstanceNotFound), errors.Is(err, responder.ErrInstanceTerminated):
		return &Failure{Type: ErrorInstanceNotFound, Err: err}
	case errors.Is(err, responder.ErrProtected), errors.Is(err, responder.ErrBlastRadius):
		return &Failure{Type: ErrorInput, Err: err}
	case errors.Is(err, responder.ErrCaseBusy):
		// Another run of the case holds it (an earlier attempt of this
		// task that is still running): Step Functions tries again later.
		return &Failure{Type: ErrorTransient, Err: err}
	}
	return awsFailure(err)
}

// lastRun is the number of the newest run of a case record.
func lastRun(m *evidence.Manifest) int {
	n := 0
	for _, r := range m.Runs {
		n = max(n, r.Number)
	}
	return n
}

// noteOutcome notes the case status on the Security Hub findings that asked
// for the case. A note that cannot be written is logged: the response is
// done and recorded, and retrying the task would not help the note.
func (h *Handler) noteOutcome(ctx context.Context, log *slog.Logger, in CaseInput, res *responder.Result) {
	if len(in.Findings) == 0 || h.Findings == nil {
		return
	}
	for region, notes := range outcomeNotes(in, res.Status, res.Steps, res.Manifest.Location) {
		updated, unproc, err := h.noteFindings(ctx, log, region, notes)
		if err != nil || len(unproc) > 0 {
			log.Error("case outcome not noted on its findings", "status", res.Status, "updated", updated, "unprocessed", unproc, "error", err)
			continue
		}
		log.Info("case outcome noted on its findings", "status", res.Status, "findings", updated)
	}
}

// noteRefusal notes on the Security Hub findings that asked for a case why
// a safeguard refused it (a protected instance, the blast radius).
func (h *Handler) noteRefusal(ctx context.Context, log *slog.Logger, in CaseInput, refusal error) {
	if len(in.Findings) == 0 || h.Findings == nil {
		return
	}
	text := fitNote("responder: ", []string{fmt.Sprintf("no case started for %s (%s, %s): %v", in.InstanceID, in.AccountID, in.Region, refusal)}, "")
	byRegion := map[string][]findingNote{}
	for _, f := range in.Findings {
		byRegion[f.Region] = append(byRegion[f.Region], findingNote{FindingID: f.ID, ProductArn: f.ProductArn, Text: text})
	}
	for region, notes := range byRegion {
		if _, unproc, err := h.noteFindings(ctx, log, region, notes); err != nil || len(unproc) > 0 {
			log.Error("refusal not noted on its findings", "unprocessed", unproc, "error", err)
		}
	}
}

// stepTimeout bounds each step so that the case record is still written
// before the function's deadline.
func stepTimeout(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return step.DefaultStepTimeout
	}
	left := time.Until(deadline) - 30*time.Second
	return min(max(left, 10*time.Second), step.DefaultStepTimeout)
}
