package trigger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/evidence"
)

// FleetInput is the input of a fleet's execution (the state machine's
// fleet branch): one case per target, each named FleetCaseID(fleet,
// instance), run by its own execution as a case started alone would be.
type FleetInput struct {
	FleetID     string        `json:"fleet_id"`
	Actor       string        `json:"actor"`
	Source      string        `json:"source"`
	Playbook    string        `json:"playbook"`
	RequestedAt string        `json:"requested_at"`
	Force       bool          `json:"force"`
	Targets     []FleetTarget `json:"targets"`
}

// FleetTarget is one case of a fleet. Findings are the Security Hub
// findings that asked for it (never absent; empty for the API).
type FleetTarget struct {
	CaseID     string       `json:"case_id"`
	InstanceID string       `json:"instance_id"`
	AccountID  string       `json:"account_id"`
	Region     string       `json:"region"`
	Findings   []FindingRef `json:"findings"`
}

func (t FleetTarget) target() Target {
	return Target{AccountID: t.AccountID, Region: t.Region, InstanceID: t.InstanceID}
}

// fleetStarted is the answer of POST /cases for a fleet.
type fleetStarted struct {
	FleetID      string      `json:"fleet_id"`
	StatusURL    string      `json:"status_url"`
	ExecutionARN string      `json:"execution_arn"`
	Instances    int         `json:"instances"`
	Cases        []fleetItem `json:"cases"`
}

type fleetItem struct {
	CaseID     string `json:"case_id"`
	InstanceID string `json:"instance_id"`
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	Status     string `json:"status,omitempty"`
	// JoinedCaseID: another case held the instance; it responds.
	JoinedCaseID string `json:"joined_case_id,omitempty"`
}

// postFleet starts a fleet: the targets named, or found by the filters,
// one case each, in one execution of the state machine (its fleet branch).
func (h *Handler) postFleet(ctx context.Context, log *slog.Logger, req apiRequest, cr caseRequest) apiResponse {
	spec, e := h.validateFleet(cr)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	if spec.FleetID == "" {
		spec.FleetID = h.newFleetID()
	}
	log = log.With("fleet_id", spec.FleetID)
	targets := spec.Targets
	if spec.Filters != nil {
		found, err := h.findInstances(ctx, spec)
		if err != nil {
			return h.failed(log, err, req.RequestID)
		}
		if e := checkFound(found, spec); e != nil {
			return h.rejected(log, e, req.RequestID)
		}
		if e := h.checkFleetAccounts(found); e != nil {
			return h.rejected(log, e, req.RequestID)
		}
		targets = found
	}
	in := h.fleetInput(spec.FleetID, req.Actor, SourceAPI, spec.Playbook, spec.Force, targets, nil)
	arn, err := h.startFleet(ctx, in)
	if err != nil {
		return h.failed(log, err, req.RequestID)
	}
	log.Info("fleet started", "execution_arn", arn, "instances", len(in.Targets))
	statusURL := req.BaseURL + "/fleets/" + spec.FleetID
	out := fleetStarted{FleetID: spec.FleetID, StatusURL: statusURL, ExecutionARN: arn, Instances: len(in.Targets), Cases: make([]fleetItem, 0, len(in.Targets))}
	for _, t := range in.Targets {
		out.Cases = append(out.Cases, fleetItem{CaseID: t.CaseID, InstanceID: t.InstanceID, AccountID: t.AccountID, Region: t.Region})
	}
	return apiResponse{Status: http.StatusAccepted, Headers: map[string]string{"Location": statusURL}, Body: out}
}

// checkFound refuses a filter that matches nothing, or too much.
func checkFound(found []Target, spec fleetSpec) *apiError {
	switch {
	case len(found) == 0:
		return badRequest("no_matching_instances", "the filters match no pending, running, stopping or stopped instance in %d account(s) x Region(s)", len(spec.Places))
	case len(found) > MaxFleetInstances:
		return badRequest("too_many_instances", "the filters match %d instances; at most %d a request", len(found), MaxFleetInstances)
	}
	seen := map[string]Target{}
	for _, t := range found {
		if other, dup := seen[t.InstanceID]; dup {
			return badRequest("duplicate_instance_id", "instance %s is found in %s and in %s: name them by ARN in two requests", t.InstanceID, other, t)
		}
		seen[t.InstanceID] = t
	}
	return nil
}

// fleetInput builds a fleet's execution input; findings, when given, are
// those that asked for each target.
func (h *Handler) fleetInput(fleetID, actor, source, playbook string, force bool, targets []Target, findings map[Target][]FindingRef) FleetInput {
	if playbook == "" {
		playbook = DefaultPlaybook
	}
	in := FleetInput{FleetID: fleetID, Actor: actor, Source: source, Playbook: playbook, Force: force,
		RequestedAt: h.now().Format(time.RFC3339), Targets: make([]FleetTarget, 0, len(targets))}
	for _, t := range targets {
		refs := findings[t]
		if refs == nil {
			refs = []FindingRef{}
		}
		in.Targets = append(in.Targets, FleetTarget{CaseID: evidence.FleetCaseID(fleetID, t.InstanceID),
			InstanceID: t.InstanceID, AccountID: t.AccountID, Region: t.Region, Findings: refs})
	}
	return in
}

// startFleet starts the fleet's execution, named after the fleet ID (a
// rerun of the fleet ID: <fleet-id>-<requested time>), idempotently as a
// case's.
func (h *Handler) startFleet(ctx context.Context, in FleetInput) (string, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("encode fleet input: %w", err)
	}
	names := []string{in.FleetID, rerunName(CaseInput{CaseID: in.FleetID, RequestedAt: in.RequestedAt})}
	return h.startNamed(ctx, names, body)
}

// findInstances looks the filters up in every place, as the member role:
// the instances not terminated or shutting down.
func (h *Handler) findInstances(ctx context.Context, spec fleetSpec) ([]Target, error) {
	var found []Target
	filters := make([]ec2types.Filter, 0, len(spec.Filters)+1)
	for _, f := range spec.Filters {
		filters = append(filters, ec2types.Filter{Name: aws.String(f.Name), Values: f.Values})
	}
	for _, place := range spec.Places {
		clients, err := h.workload(ctx, place, spec.FleetID)
		if err != nil {
			return nil, err
		}
		p := ec2.NewDescribeInstancesPaginator(clients.EC2, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describe instances in %s/%s: %w", place.AccountID, place.Region, err)
			}
			found = append(found, liveInstances(out, place)...)
			if len(found) > MaxFleetInstances {
				return found, nil // checkFound refuses it
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].String() < found[j].String() })
	return found, nil
}

func liveInstances(out *ec2.DescribeInstancesOutput, place Target) []Target {
	var ts []Target
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State != nil && (i.State.Name == ec2types.InstanceStateNameTerminated || i.State.Name == ec2types.InstanceStateNameShuttingDown) {
				continue
			}
			ts = append(ts, Target{AccountID: place.AccountID, Region: place.Region, InstanceID: aws.ToString(i.InstanceId)})
		}
	}
	return ts
}

// newFleetID makes a fleet ID that sorts by time:
// fleet-YYYYMMDD-HHMMSS-<8 hex>.
func (h *Handler) newFleetID() string {
	if h.NewFleetID != nil {
		return h.NewFleetID(h.now())
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("fleet-%s-%s", h.now().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

// fleetSummary is the answer of GET /fleets/{id}.
type fleetSummary struct {
	FleetID     string            `json:"fleet_id"`
	Actor       string            `json:"actor"`
	Source      string            `json:"source"`
	Playbook    string            `json:"playbook"`
	RequestedAt string            `json:"requested_at"`
	OpenedAt    time.Time         `json:"opened_at"`
	Instances   int               `json:"instances"`
	Counts      map[string]int    `json:"counts"`
	Cases       []fleetItem       `json:"cases"`
	Execution   *executionSummary `json:"execution,omitempty"`
	ClosedAt    *time.Time        `json:"closed_at,omitempty"`
}

func (h *Handler) getFleet(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	if err := evidence.ValidateFleetID(req.CaseID); err != nil {
		return h.rejected(log, badRequest("invalid_fleet_id", "invalid fleet ID %s", quote(req.CaseID)), req.RequestID)
	}
	log = log.With("fleet_id", req.CaseID)
	rec, err := evidence.LoadFleet(ctx, h.Store, req.CaseID)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return h.fleetNotOpened(ctx, log, req)
	case err != nil:
		return h.failed(log, err, req.RequestID)
	}
	items, err := h.fleetStatuses(ctx, rec)
	if err != nil {
		return h.failed(log, err, req.RequestID)
	}
	s := fleetSummary{FleetID: rec.FleetID, Actor: rec.Actor, Source: rec.Source, Playbook: rec.Playbook, RequestedAt: rec.RequestedAt,
		OpenedAt: rec.OpenedAt, Instances: len(items), Cases: items, Counts: countStatuses(items)}
	s.Execution, _ = h.describeCaseExecution(ctx, rec.FleetID)
	if closed, err := evidence.LastFleetClose(ctx, h.Store, rec.FleetID); err == nil {
		s.ClosedAt = closed.ClosedAt
	}
	log.Info("fleet read", "instances", len(items), "counts", s.Counts)
	return apiResponse{Status: http.StatusOK, Body: s}
}

// fleetNotOpened answers for a fleet without a record: pending while its
// execution runs (the record is its first state's), else 404.
func (h *Handler) fleetNotOpened(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	exec, err := h.describeCaseExecution(ctx, req.CaseID)
	switch {
	case err != nil:
		return h.failed(log, err, req.RequestID)
	case exec == nil:
		return errorResponse(&apiError{Status: http.StatusNotFound, Code: "fleet_not_found", Message: "no fleet " + req.CaseID}, req.RequestID)
	}
	status := statusPending
	if exec.Status != "RUNNING" {
		status = statusFailed
	}
	return apiResponse{Status: http.StatusOK, Body: map[string]any{"fleet_id": req.CaseID, "status": status, "execution": exec, "cases": []fleetItem{}}}
}

func countStatuses(items []fleetItem) map[string]int {
	counts := map[string]int{}
	for _, it := range items {
		counts[it.Status]++
	}
	return counts
}
