package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// TaskCollect runs one stage of a case's OS-level collection (the memory
// capture of the collect and collect-before-isolate playbooks); the state
// machine waits between stages, so that no invocation waits for the
// instance.
const TaskCollect = "collect"

// StageClose is the collect task's last stage: the rest of the playbook (at
// least forensic-access-close) as a response run, whatever the collection
// did.
const StageClose = "close"

// collectPayload is the payload of the collect task. Collection is the ID
// the respond task gave the collection; Reason is why an abort stage aborts.
type collectPayload struct {
	Task       string       `json:"task"`
	Stage      string       `json:"stage"`
	CaseID     string       `json:"case_id"`
	InstanceID string       `json:"instance_id"`
	AccountID  string       `json:"account_id"`
	Region     string       `json:"region"`
	Playbook   string       `json:"playbook"`
	Actor      string       `json:"actor"`
	Force      bool         `json:"force"`
	Findings   []FindingRef `json:"findings"`
	Collection string       `json:"collection_id"`
	Reason     string       `json:"reason,omitempty"`
}

func (p collectPayload) target() Target {
	return Target{AccountID: p.AccountID, Region: p.Region, InstanceID: p.InstanceID}
}

// collectResult is the answer of a collection stage: what the state
// machine chooses on, and the progress GET /cases/{id} shows. Nothing in it
// is secret (no URL, no parameter value).
type collectResult struct {
	Requested    bool   `json:"requested"`
	Stage        string `json:"stage"`
	CollectionID string `json:"collection_id"`
	Failed       bool   `json:"failed"`
	Error        string `json:"error"`
	step.StagedProgress
}

// collect runs one stage as a run of the case (recorded, under the case's
// run lock), in the target's account for SSM and EC2 and with the
// function's own credentials for the evidence and staging buckets.
func (h *Handler) collect(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p collectPayload
	if err := decodeStrict(payload, &p); err != nil {
		log.Error("collect task rejected", "error", err)
		return nil, fail(ErrorInput, "collect task payload: %v", err)
	}
	log = log.With("case_id", p.CaseID, "instance_id", p.InstanceID, "stage", p.Stage)
	playbook, err := h.checkCollect(p)
	if err != nil {
		log.Error("collect task rejected", "error", err)
		return nil, fail(ErrorInput, "collect task: %v", err)
	}
	clients, err := h.workload(ctx, p.target(), p.CaseID)
	if err != nil {
		log.Error("collect task: no clients for the target", "error", err)
		return nil, awsFailure(err)
	}
	r := responder.New(clients, h.Store)
	r.Clients.SNS, r.Clients.Region = h.SNS, p.Region
	// The function signs the uploads and stages the part URLs with its own
	// credentials, in its own (the forensics) account.
	r.Clients.Presign, r.Clients.Staging = h.Presign, h.Staging
	r.Clients.PresignValidUntil = h.now().Add(MaxStagedCapture + 5*time.Minute)
	r.Log, r.Now, r.Signer = log, h.Now, h.Signer
	req := responder.Request{
		InstanceID: p.InstanceID, CaseID: p.CaseID, CaseIDGiven: true, PlanName: playbook.Name,
		Collection: h.Config.collection(playbook, p.AccountID), TopicARN: h.Config.TopicARN, Actor: p.Actor,
		StepTimeout: stepTimeout(ctx), Force: p.Force, ProtectedTag: h.Config.ProtectedTag, BlastRadius: h.Config.BlastRadius,
	}
	if p.Stage == StageClose {
		return h.closeCollection(ctx, log, r, req, playbook)
	}
	name := (step.MemoryCapture{}).Name()
	if p.Stage == step.StageAccess {
		name = (step.SSMAccess{}).Name()
	}
	req.Plan, req.KeepStatus = []string{name}, true
	if p.Stage != step.StageAccess && h.volatileInStage(ctx, log, p, playbook) {
		// Volatile data first, as the CLI runs it; the capture is sent
		// once it has ended. Its failure ends only itself.
		volatile := (step.VolatileData{}).Name()
		req.Plan, req.After = []string{volatile, name}, map[string][]string{name: {volatile}}
	}
	req.Stage = step.CollectStage{Name: p.Stage, Collection: p.Collection, Reason: p.Reason}
	res, err := r.Respond(ctx, req)
	if err = h.runFailure(ctx, log, res, err); err != nil {
		return nil, err
	}
	rec, ok := stepRecord(res.Steps, name)
	if !ok {
		return nil, fail(ErrorInternal, "collect stage %s: no %s record", p.Stage, name)
	}
	out := stageResult(p, rec)
	log.Info("collect stage done", "collection_id", p.Collection, "failed", out.Failed, "command_status", out.CommandStatus,
		"parts_uploaded", out.PartsUploaded, "bytes_uploaded", out.BytesUploaded)
	if out.ImageSHA256 != "" && p.Stage == step.StageFinish {
		h.noteImage(ctx, log, p, out)
	}
	return out, nil
}

// volatileInStage says whether a stage runs the playbook's volatile-data
// collection: from prepare on, until it has ended (the case record says).
func (h *Handler) volatileInStage(ctx context.Context, log *slog.Logger, p collectPayload, playbook playbooks.Playbook) bool {
	if !slices.Contains(playbook.Names(), (step.VolatileData{}).Name()) {
		return false
	}
	if p.Stage == step.StagePrepare {
		return true
	}
	m, err := evidence.LoadManifest(ctx, h.Store, p.CaseID)
	if err != nil {
		// The stage then sees for itself: an ended collection says so again.
		log.Warn("collect stage: case record not read to plan volatile data", "error", err)
		return true
	}
	return step.VolatileOpen(m, p.Collection)
}

// stepRecord finds a step's record among a run's.
func stepRecord(recs []evidence.StepRecord, name string) (evidence.StepRecord, bool) {
	for _, r := range recs {
		if r.Name == name {
			return r, true
		}
	}
	return evidence.StepRecord{}, false
}

// checkCollect validates a collect payload before any AWS call.
func (h *Handler) checkCollect(p collectPayload) (playbooks.Playbook, error) {
	if err := h.checkCase(p.CaseID, p.target()); err != nil {
		return playbooks.Playbook{}, err
	}
	if !slices.Contains(step.CollectStages, p.Stage) && p.Stage != StageClose {
		return playbooks.Playbook{}, fmt.Errorf("unknown stage %s (known: %v, %s)", quote(p.Stage), step.CollectStages, StageClose)
	}
	if err := validateCaseID(p.Collection); err != nil {
		return playbooks.Playbook{}, fmt.Errorf("collection_id: %w", err)
	}
	playbook, err := h.Config.Playbook(p.Playbook)
	if err != nil {
		return playbooks.Playbook{}, err
	}
	if !playbook.CollectsOS() {
		return playbooks.Playbook{}, fmt.Errorf("playbook %s collects nothing through SSM", playbook.Name)
	}
	return playbook, nil
}

// stageResult reads what a stage's step record says.
func stageResult(p collectPayload, rec evidence.StepRecord) collectResult {
	out := collectResult{Requested: true, Stage: p.Stage, CollectionID: p.Collection, StagedProgress: step.ReadStagedProgress(rec.After)}
	out.Failed, out.Error = rec.Status == evidence.StatusFailed, rec.Error
	switch {
	case p.Stage == step.StageAbort:
		// An aborted collection failed, whatever the abort did.
		out.Failed = true
		out.Error = p.Reason
		if rec.Error != "" && rec.Error != p.Reason {
			out.Error += "; " + rec.Error
		}
	case p.Stage == step.StagePoll && out.TimedOut:
		out.Error = "the capture did not end within the playbook's capture timeout"
	case p.Stage == step.StageFinish && !out.Failed && out.ImageSHA256 == "":
		out.Failed, out.Error = true, "the finish stage recorded no image: "+rec.Reason
	}
	return out
}

// runFailure maps what Respond returned for a task run to the task's
// failure: nil when the run was recorded.
func (h *Handler) runFailure(ctx context.Context, log *slog.Logger, res *responder.Result, err error) error {
	if err != nil {
		return respondFailure(err)
	}
	if res.SaveErr != nil {
		if body, err := evidence.EncodeManifest(res.Manifest); err == nil {
			log.Error("case record not stored; here it is", "manifest", json.RawMessage(body))
		}
		return awsFailure(fmt.Errorf("store the case record: %w", res.SaveErr))
	}
	if res.Interrupted {
		return &Failure{Type: ErrorTransient, Err: fmt.Errorf("case %s: the run was interrupted before its steps finished", res.Manifest.CaseID)}
	}
	return nil
}

// closeCollection runs the rest of the playbook: what the response left
// for after the collection, and forensic-access-close. Its status is the
// case's.
func (h *Handler) closeCollection(ctx context.Context, log *slog.Logger, r *responder.Responder, req responder.Request, playbook playbooks.Playbook) (any, error) {
	_, after := splitPlan(playbook)
	req.Plan, req.After, req.StatusOfCase = after.names, after.order, true
	res, err := r.Respond(ctx, req)
	if err = h.runFailure(ctx, log, res, err); err != nil {
		return nil, err
	}
	out := respondResult{CaseID: req.CaseID, Status: res.Status, Location: res.Manifest.Location, SnapshotIDs: []string{}, StepsFailed: []string{}}
	for _, s := range res.Manifest.Snapshots {
		out.SnapshotIDs = append(out.SnapshotIDs, s.SnapshotID)
	}
	for _, s := range res.Steps {
		if s.Status == evidence.StatusFailed {
			out.StepsFailed = append(out.StepsFailed, s.Name)
		}
	}
	log.Info("collection closed", "status", out.Status, "steps_failed", out.StepsFailed)
	return out, nil
}

// noteImage notes on the findings that asked for the case where the memory
// image landed and its SHA-256. A note that cannot be written is logged.
func (h *Handler) noteImage(ctx context.Context, log *slog.Logger, p collectPayload, out collectResult) {
	if len(p.Findings) == 0 || h.Findings == nil {
		return
	}
	text := fitNote("responder: ", []string{fmt.Sprintf("case %s: memory image of %s stored at %s, SHA-256 %s (read back in the forensics account)",
		p.CaseID, p.InstanceID, h.Store.Location(p.CaseID, out.ImagePath), out.ImageSHA256)}, "")
	byRegion := map[string][]findingNote{}
	for _, f := range p.Findings {
		region := f.Region
		if region == "" {
			region = h.Config.Region
		}
		byRegion[region] = append(byRegion[region], findingNote{FindingID: f.ID, ProductArn: f.ProductArn, Text: text, Notified: true})
	}
	for region, notes := range byRegion {
		if _, unproc, err := h.noteFindings(ctx, log, region, notes); err != nil || len(unproc) > 0 {
			log.Error("memory image not noted on its findings", "unprocessed", unproc, "error", err)
		}
	}
}

// plan is a list of steps and their extra ordering.
type plan struct {
	names []string
	order map[string][]string
}

// splitPlan splits a collecting playbook around the staged collection:
// before runs in the respond task, after in the close stage. after holds
// forensic-access-close, every step the playbook orders after the
// collection, the group steps that tell forensic-access-close and
// quarantine their groups (they find the groups made before), and the
// report steps, which then say how the case ended. With capture-first, the
// report steps run only after.
func splitPlan(p playbooks.Playbook) (before, after plan) {
	const closeStep = "forensic-access-close"
	order := p.After()
	later := map[string]bool{closeStep: true}
	for changed := true; changed; {
		changed = false
		for _, n := range p.Names() {
			if later[n] || step.IsCollectionStep(n) {
				continue
			}
			for _, d := range dependencies(n, order) {
				if later[d] || step.IsCollectionStep(d) {
					later[n], changed = true, true
					break
				}
			}
		}
	}
	groups := []string{"quarantine-group", "untracking-group", "forensic-access-group"}
	for _, n := range p.Names() {
		report := reportStep(n)
		switch {
		case step.IsCollectionStep(n):
		case later[n] || slices.Contains(groups, n) || report:
			after.names = append(after.names, n)
			if !later[n] && !(report && p.Order() == step.CaptureFirst) {
				before.names = append(before.names, n)
			}
		default:
			before.names = append(before.names, n)
		}
	}
	before.order, after.order = orderWithin(order, before.names), orderWithin(order, after.names)
	if after.order == nil {
		after.order = map[string][]string{}
	}
	for _, g := range groups {
		if slices.Contains(after.names, g) {
			after.order[closeStep] = append(after.order[closeStep], g)
		}
	}
	return before, after
}

// dependencies are what a step waits for: its needs and the playbook's
// ordering.
func dependencies(name string, order map[string][]string) []string {
	deps := slices.Clone(order[name])
	if s, err := step.Lookup(name); err == nil {
		for _, n := range s.Needs() {
			d, _, _ := strings.Cut(n, ":")
			deps = append(deps, d)
		}
	}
	return deps
}

// reportStep says whether a step reports on the others (the notification,
// the case tag), and so belongs at the end of a run.
func reportStep(name string) bool {
	s, err := step.Lookup(name)
	if err != nil {
		return false
	}
	if r, ok := s.(interface{ ReportsContainment() bool }); ok && r.ReportsContainment() {
		return true
	}
	return s.Phase() == step.Report
}

// orderWithin keeps the ordering of the steps a plan runs.
func orderWithin(order map[string][]string, names []string) map[string][]string {
	var out map[string][]string
	for n, deps := range order {
		if !slices.Contains(names, n) {
			continue
		}
		if out == nil {
			out = map[string][]string{}
		}
		out[n] = slices.Clone(deps)
	}
	return out
}
