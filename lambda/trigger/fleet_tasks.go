package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"golang.org/x/sync/errgroup"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

// The tasks of a fleet's execution (the state machine's fleet branch).
const (
	// TaskFleetOpen writes the fleet record and plans the lanes.
	TaskFleetOpen = "fleet-open"
	// TaskFleetCase starts (or joins) the case of one instance.
	TaskFleetCase = "fleet-case"
	// TaskFleetCaseStatus says whether a case's containment is recorded.
	TaskFleetCaseStatus = "fleet-case-status"
	// TaskFleetClose records the fleet's outcome from its cases' records.
	TaskFleetClose = "fleet-close"
)

// Fleet modes: how the lanes run.
const (
	FleetInline      = "inline"
	FleetDistributed = "distributed"
)

// Status of a case of a fleet that was never started.
const statusPlanned = "planned"

type fleetOpenPayload struct {
	Task string `json:"task"`
	FleetInput
}

// fleetLane is the cases of one account and Region that run one after
// another: an account and Region has at most FleetConfig.Concurrency lanes,
// so at most that many of its cases are in their containment at once.
type fleetLane struct {
	Lane  string        `json:"lane"`
	Cases []FleetTarget `json:"cases"`
}

// fleetPlan is the answer of fleet-open: the fleet's fields its cases take,
// and the lanes, which replace the targets in the execution's data.
type fleetPlan struct {
	FleetID     string      `json:"fleet_id"`
	Actor       string      `json:"actor"`
	Source      string      `json:"source"`
	Playbook    string      `json:"playbook"`
	Force       bool        `json:"force"`
	Mode        string      `json:"mode"`
	Cases       int         `json:"cases"`
	Concurrency int         `json:"concurrency"`
	Lanes       []fleetLane `json:"lanes"`
}

// fleetOpen writes the fleet record (once: a retried or rerun fleet finds
// its plan) and plans the lanes.
func (h *Handler) fleetOpen(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p fleetOpenPayload
	if err := decodeStrict(payload, &p); err != nil {
		return nil, fail(ErrorInput, "fleet-open task payload: %v", err)
	}
	if err := h.checkFleetInput(p.FleetInput); err != nil {
		log.Error("fleet-open task rejected", "error", err)
		return nil, fail(ErrorInput, "fleet-open task: %v", err)
	}
	log = log.With("fleet_id", p.FleetID)
	rec := evidence.FleetRecord{FleetID: p.FleetID, Actor: p.Actor, Source: p.Source, Playbook: p.Playbook,
		RequestedAt: p.RequestedAt, OpenedAt: h.now(), Cases: make([]evidence.FleetCase, 0, len(p.Targets))}
	for _, t := range p.Targets {
		rec.Cases = append(rec.Cases, evidence.FleetCase{CaseID: t.CaseID, InstanceID: t.InstanceID, AccountID: t.AccountID, Region: t.Region})
	}
	if _, err := evidence.OpenFleet(ctx, h.Store, rec); err != nil {
		if errors.Is(err, evidence.ErrFleetConflict) {
			return nil, fail(ErrorInput, "fleet-open task: %v: name another fleet ID", err)
		}
		return nil, awsFailure(err)
	}
	settings := h.Config.fleetSettings()
	plan := fleetPlan{FleetID: p.FleetID, Actor: p.Actor, Source: p.Source, Playbook: p.Playbook, Force: p.Force,
		Mode: FleetInline, Cases: len(p.Targets), Concurrency: settings.Concurrency, Lanes: planLanes(p.Targets, settings.Concurrency)}
	if len(p.Targets) >= settings.DistributedFrom {
		plan.Mode = FleetDistributed
	}
	log.Info("fleet opened", "cases", plan.Cases, "lanes", len(plan.Lanes), "mode", plan.Mode, "concurrency", plan.Concurrency)
	return plan, nil
}

// checkFleetInput validates a fleet's execution input as the API did.
func (h *Handler) checkFleetInput(in FleetInput) error {
	if err := evidence.ValidateFleetID(in.FleetID); err != nil {
		return err
	}
	if _, err := h.Config.Playbook(in.Playbook); err != nil {
		return err
	}
	if len(in.Targets) == 0 || len(in.Targets) > MaxFleetInstances {
		return fmt.Errorf("fleet %s: %d targets, want 1 to %d", in.FleetID, len(in.Targets), MaxFleetInstances)
	}
	seen := map[string]bool{}
	for _, t := range in.Targets {
		if err := h.checkCase(t.CaseID, t.target()); err != nil {
			return err
		}
		if t.CaseID != evidence.FleetCaseID(in.FleetID, t.InstanceID) || seen[t.CaseID] {
			return fmt.Errorf("fleet %s: case %s is not the one case of %s", in.FleetID, t.CaseID, t.InstanceID)
		}
		seen[t.CaseID] = true
	}
	return nil
}

// planLanes deals each account and Region's cases into at most concurrency
// lanes, round robin, in a stable order.
func planLanes(targets []FleetTarget, concurrency int) []fleetLane {
	groups := map[string][]FleetTarget{}
	for _, t := range targets {
		k := t.AccountID + "/" + t.Region
		groups[k] = append(groups[k], t)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lanes []fleetLane
	for _, k := range keys {
		g := groups[k]
		n := min(concurrency, len(g))
		for i := range n {
			lane := fleetLane{Lane: fmt.Sprintf("%s/%d", k, i+1)}
			for j := i; j < len(g); j += n {
				lane.Cases = append(lane.Cases, g[j])
			}
			lanes = append(lanes, lane)
		}
	}
	return lanes
}

type fleetCasePayload struct {
	Task     string      `json:"task"`
	FleetID  string      `json:"fleet_id"`
	Actor    string      `json:"actor"`
	Source   string      `json:"source"`
	Playbook string      `json:"playbook"`
	Force    bool        `json:"force"`
	Case     FleetTarget `json:"case"`
}

type fleetCaseResult struct {
	// CaseID is the case that responds: the planned one, or the one that
	// already held the instance (Joined).
	CaseID        string `json:"case_id"`
	PlannedCaseID string `json:"planned_case_id"`
	ExecutionARN  string `json:"execution_arn"`
	Joined        bool   `json:"joined"`
}

// fleetCase starts the case of one instance as an event for it alone
// would (start: the instance's lock, then the case's own execution), under
// the case ID derived from the fleet: a retry finds the case it started.
func (h *Handler) fleetCase(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p fleetCasePayload
	if err := decodeStrict(payload, &p); err != nil {
		return nil, fail(ErrorInput, "fleet-case task payload: %v", err)
	}
	c := p.Case
	err := h.checkCase(c.CaseID, c.target())
	if err == nil && c.CaseID != evidence.FleetCaseID(p.FleetID, c.InstanceID) {
		err = fmt.Errorf("a case of fleet %s is named %s", quote(p.FleetID), quote(evidence.FleetCaseID(p.FleetID, c.InstanceID)))
	}
	if err != nil {
		log.Error("fleet-case task rejected", "case_id", c.CaseID, "error", err)
		return nil, fail(ErrorInput, "fleet-case task: case %s: %v", quote(c.CaseID), err)
	}
	log = log.With("fleet_id", p.FleetID)
	findings := c.Findings
	if findings == nil {
		findings = []FindingRef{}
	}
	s, err := h.start(ctx, log, startRequest{Target: c.target(), CaseID: c.CaseID, Playbook: p.Playbook, Actor: p.Actor,
		Source: p.Source, Findings: findings, Force: p.Force})
	if err != nil {
		return nil, startFailure(err)
	}
	out := fleetCaseResult{CaseID: s.CaseID, PlannedCaseID: c.CaseID, ExecutionARN: s.ExecutionARN, Joined: s.CaseID != c.CaseID}
	if out.Joined {
		h.linkJoined(ctx, log, p.FleetID, c.CaseID, s)
		h.noteJoined(ctx, log, c, s)
	}
	return out, nil
}

// noteJoined tells the findings that asked for a fleet's case that another
// case already held the instance: their first note named the planned case.
func (h *Handler) noteJoined(ctx context.Context, log *slog.Logger, c FleetTarget, s started) {
	if len(c.Findings) == 0 || h.Findings == nil {
		return
	}
	text := fitNote("responder: ", []string{fmt.Sprintf("%s (%s, %s) is already under case %s, started %s, which responds instead of case %s",
		c.InstanceID, c.AccountID, c.Region, s.CaseID, s.Since.UTC().Format("2006-01-02 15:04 UTC"), c.CaseID)},
		". Evidence: "+h.Store.Location(s.CaseID, ""))
	byRegion := map[string][]findingNote{}
	for _, f := range c.Findings {
		byRegion[f.Region] = append(byRegion[f.Region], findingNote{FindingID: f.ID, ProductArn: f.ProductArn, Text: text, Notified: true})
	}
	for region, notes := range byRegion {
		if _, unproc, err := h.noteFindings(ctx, log, region, notes); err != nil || len(unproc) > 0 {
			log.Error("joined case not noted on its findings", "unprocessed", unproc, "error", err)
		}
	}
}

// fleetJoin records that another case held a fleet's instance.
type fleetJoin struct {
	JoinedCaseID string    `json:"joined_case_id"`
	Since        time.Time `json:"since"`
}

func joinPath(fleetID, caseID string) string { return fleetID + "/joined/" + caseID + ".json" }

// linkJoined writes, once, which case responds for a planned case of the
// fleet; a failure is logged (GET /fleets then shows the planned case).
func (h *Handler) linkJoined(ctx context.Context, log *slog.Logger, fleetID, caseID string, s started) {
	body, _ := json.Marshal(fleetJoin{JoinedCaseID: s.CaseID, Since: s.Since})
	if _, err := h.Store.Put(ctx, evidence.FleetsFolder, joinPath(fleetID, caseID), body, "application/json"); err != nil && !errors.Is(err, evidence.ErrExists) {
		log.Warn("joined case not linked to the fleet", "planned_case_id", caseID, "joined_case_id", s.CaseID, "error", err)
	}
}

type fleetCaseStatusPayload struct {
	Task         string `json:"task"`
	CaseID       string `json:"case_id"`
	ExecutionARN string `json:"execution_arn"`
	Polls        int    `json:"polls"`
}

type fleetCaseStatus struct {
	Settled bool   `json:"settled"`
	Status  string `json:"status"`
	Polls   int    `json:"polls"`
}

// recordSkew is how much earlier than its execution a respond run's start
// may be recorded (the function's clock against Step Functions').
const recordSkew = 5 * time.Second

// fleetCaseStatus says whether a case is past its containment: its
// execution ended, or its record holds a run of this execution (started
// after it) that was not interrupted. Until then its lane waits.
func (h *Handler) fleetCaseStatus(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p fleetCaseStatusPayload
	if err := decodeStrict(payload, &p); err != nil {
		return nil, fail(ErrorInput, "fleet-case-status task payload: %v", err)
	}
	if err := validateCaseID(p.CaseID); err != nil {
		return nil, fail(ErrorInput, "fleet-case-status task: %v", err)
	}
	exec, err := h.Executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(p.ExecutionARN)})
	if err != nil {
		return nil, awsFailure(fmt.Errorf("describe execution %s: %w", p.ExecutionARN, err))
	}
	m, err := responder.Status(ctx, h.Store, p.CaseID)
	if err != nil && !errors.Is(err, evidence.ErrNotFound) {
		return nil, awsFailure(err)
	}
	out := fleetCaseStatus{Status: statusPending, Polls: p.Polls + 1}
	if m != nil {
		out.Status = m.Status
	}
	switch {
	case exec.Status != sfntypes.ExecutionStatusRunning:
		out.Settled = true
		if m == nil {
			out.Status = statusFailed
		}
	case m != nil && m.Status != evidence.CaseInterrupted && ranSince(m, aws.ToTime(exec.StartDate).Add(-recordSkew)):
		out.Settled = true
	}
	log.Debug("fleet case status", "case_id", p.CaseID, "settled", out.Settled, "status", out.Status)
	return out, nil
}

func ranSince(m *evidence.Manifest, at time.Time) bool {
	for _, r := range m.Runs {
		if !r.StartedAt.Before(at) {
			return true
		}
	}
	return false
}

type fleetClosePayload struct {
	Task    string `json:"task"`
	FleetID string `json:"fleet_id"`
}

type fleetOutcome struct {
	FleetID   string         `json:"fleet_id"`
	Cases     int            `json:"cases"`
	Counts    map[string]int `json:"counts"`
	Succeeded bool           `json:"succeeded"`
	Record    string         `json:"record"`
}

// fleetClose records the outcome of this run of the fleet: each case's
// status as its own record says (closed-NNN.json). Succeeded only when every
// case is contained (or acquired, for a playbook that contains nothing).
func (h *Handler) fleetClose(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p fleetClosePayload
	if err := decodeStrict(payload, &p); err != nil {
		return nil, fail(ErrorInput, "fleet-close task payload: %v", err)
	}
	rec, err := evidence.LoadFleet(ctx, h.Store, p.FleetID)
	if err != nil {
		return nil, awsFailure(err)
	}
	items, err := h.fleetStatuses(ctx, rec)
	if err != nil {
		return nil, awsFailure(err)
	}
	closed := *rec
	now := h.now()
	closed.ClosedAt, closed.Cases, closed.Counts = &now, make([]evidence.FleetCase, 0, len(items)), countStatuses(items)
	out := fleetOutcome{FleetID: p.FleetID, Cases: len(items), Counts: closed.Counts, Succeeded: true}
	for _, it := range items {
		closed.Cases = append(closed.Cases, evidence.FleetCase{CaseID: it.CaseID, InstanceID: it.InstanceID, AccountID: it.AccountID,
			Region: it.Region, Status: it.Status, JoinedCaseID: it.JoinedCaseID})
		out.Succeeded = out.Succeeded && (it.Status == evidence.CaseContained || it.Status == evidence.CaseAcquired)
	}
	path, err := evidence.CloseFleet(ctx, h.Store, closed)
	if err != nil {
		return nil, awsFailure(err)
	}
	out.Record = h.Store.Location(evidence.FleetsFolder, path)
	log.Info("fleet closed", "fleet_id", p.FleetID, "counts", out.Counts, "succeeded", out.Succeeded)
	return out, nil
}

// fleetStatusReads bounds the case records read at once for a fleet.
const fleetStatusReads = 16

// fleetStatuses reads the status of every case of a fleet, as GET
// /cases/{id} says it: the case record's word; pending or failed from its
// execution before the record exists; planned when it was never started.
// A case that joined another reads that one's.
func (h *Handler) fleetStatuses(ctx context.Context, rec *evidence.FleetRecord) ([]fleetItem, error) {
	items := make([]fleetItem, len(rec.Cases))
	var g errgroup.Group
	g.SetLimit(fleetStatusReads)
	var mu sync.Mutex
	for i, c := range rec.Cases {
		g.Go(func() error {
			it := fleetItem{CaseID: c.CaseID, InstanceID: c.InstanceID, AccountID: c.AccountID, Region: c.Region}
			status, err := h.caseStatusWord(ctx, c.CaseID)
			if err == nil && status == statusPlanned {
				it.JoinedCaseID, status, err = h.joinedStatus(ctx, rec.FleetID, c.CaseID)
			}
			if err != nil {
				return fmt.Errorf("case %s: %w", c.CaseID, err)
			}
			it.Status = status
			mu.Lock()
			items[i] = it
			mu.Unlock()
			return nil
		})
	}
	return items, g.Wait()
}

// caseStatusWord is a case's status word (see fleetStatuses).
func (h *Handler) caseStatusWord(ctx context.Context, caseID string) (string, error) {
	m, err := responder.Status(ctx, h.Store, caseID)
	switch {
	case err == nil:
		return m.Status, nil
	case !errors.Is(err, evidence.ErrNotFound):
		return "", err
	}
	exec, err := h.describeCaseExecution(ctx, caseID)
	switch {
	case err != nil:
		return "", err
	case exec == nil:
		return statusPlanned, nil
	case exec.Status == string(sfntypes.ExecutionStatusRunning):
		return statusPending, nil
	}
	return statusFailed, nil
}

// joinedStatus reads the case that responded for a planned case of the
// fleet, when another case held its instance.
func (h *Handler) joinedStatus(ctx context.Context, fleetID, caseID string) (string, string, error) {
	b, err := h.Store.Get(ctx, evidence.FleetsFolder, joinPath(fleetID, caseID))
	if errors.Is(err, evidence.ErrNotFound) {
		return "", statusPlanned, nil
	}
	if err != nil {
		return "", "", err
	}
	var j fleetJoin
	if err := json.Unmarshal(b, &j); err != nil || validateCaseID(j.JoinedCaseID) != nil {
		return "", "", fmt.Errorf("fleet %s: link of case %s is damaged", fleetID, caseID)
	}
	status, err := h.caseStatusWord(ctx, j.JoinedCaseID)
	return j.JoinedCaseID, status, err
}
