package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"time"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/investigate"
)

// TaskInvestigate runs one stage of an investigation workspace in the
// function's own (the forensics) account: begin, advance (as far as it can
// without waiting; the state machine waits between advances), finish, or
// stop (the teardown).
const TaskInvestigate = "investigate"

// Stages of the investigate task.
const (
	InvestigateBegin   = "begin"
	InvestigateAdvance = "advance"
	InvestigateFinish  = "finish"
	InvestigateStop    = "stop"
)

var investigateStages = []string{InvestigateBegin, InvestigateAdvance, InvestigateFinish, InvestigateStop}

// routeInvestigation starts (POST) or tears down (DELETE) a case's
// investigation workspace.
const routeInvestigation = "/cases/{id}/investigation"

// StopTimeout bounds one teardown stage (detach, delete, terminate, read
// back); the state machine runs it again after a wait when it did not
// finish.
const StopTimeout = 10 * time.Minute

// investigationRequest is the body of POST /cases/{id}/investigation (the
// function's RESPONDER_ANALYSIS_* settings fill what it leaves out).
type investigationRequest struct {
	SubnetID         string   `json:"subnet_id"`
	AMIID            string   `json:"ami_id"`
	InstanceType     string   `json:"instance_type"`
	InstanceProfile  string   `json:"instance_profile"`
	SecurityGroupIDs []string `json:"security_group_ids"`
	KMSKeyID         string   `json:"kms_key_id"`
	HashDevices      bool     `json:"hash_devices"`
	// New asks for a second workspace for a case that has one.
	New bool `json:"new"`
}

var investigationRequestFields = jsonFields(reflect.TypeFor[investigationRequest]())

// teardownRequest is the body of DELETE /cases/{id}/investigation.
type teardownRequest struct {
	WorkspaceID string `json:"workspace_id"`
}

var teardownRequestFields = jsonFields(reflect.TypeFor[teardownRequest]())

// InvestigationInput is the input of an investigate or investigate-stop
// execution.
type InvestigationInput struct {
	Action      string               `json:"action"`
	CaseID      string               `json:"case_id"`
	Actor       string               `json:"actor"`
	RequestedAt string               `json:"requested_at"`
	Execution   string               `json:"execution"`
	Request     investigationRequest `json:"request"`
	WorkspaceID string               `json:"workspace_id"`
}

// investigatePayload is the payload of the investigate task.
type investigatePayload struct {
	Task        string               `json:"task"`
	Stage       string               `json:"stage"`
	CaseID      string               `json:"case_id"`
	Actor       string               `json:"actor"`
	Execution   string               `json:"execution"`
	Request     investigationRequest `json:"request"`
	Progress    *investigate.Staged  `json:"progress"`
	Reason      string               `json:"reason"`
	WorkspaceID string               `json:"workspace_id"`
	Attempts    int                  `json:"attempts"`
}

// investigationResult is the answer of an investigate stage.
type investigationResult struct {
	Done        bool                `json:"done"`
	Phase       string              `json:"phase"`
	State       string              `json:"state"`
	WorkspaceID string              `json:"workspace_id"`
	InstanceID  string              `json:"instance_id"`
	Problems    []string            `json:"problems"`
	Reason      string              `json:"reason"`
	Attempts    int                 `json:"attempts"`
	Stopped     bool                `json:"stopped"`
	Progress    *investigate.Staged `json:"progress"`
}

func (h *Handler) investigator(log *slog.Logger) *investigate.Investigator {
	return &investigate.Investigator{EC2: h.InvestigationEC2, SSM: h.InvestigationSSM, IAM: h.InvestigationIAM, Store: h.Store, Region: h.Config.Region,
		Account: h.Config.HomeAccount, Signer: h.Signer, Log: log, Now: h.Now}
}

func (h *Handler) investigateTask(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p investigatePayload
	if err := decodeStrict(payload, &p); err != nil {
		log.Error("investigate task rejected", "error", err)
		return nil, fail(ErrorInput, "investigate task payload: %v", err)
	}
	log = log.With("case_id", p.CaseID, "stage", p.Stage)
	if err := h.checkInvestigate(p); err != nil {
		log.Error("investigate task rejected", "error", err)
		return nil, fail(ErrorInput, "investigate task: %v", err)
	}
	iv := h.investigator(log)
	var out investigationResult
	var err error
	switch p.Stage {
	case InvestigateBegin:
		var s *investigate.Staged
		if s, err = iv.BeginStaged(ctx, h.analysisRequest(p.CaseID, p.Request), p.Actor, p.Execution); err == nil {
			out = stagedResult(s)
		}
	case InvestigateAdvance:
		if err = iv.AdvanceStaged(ctx, p.Progress); err == nil {
			out = stagedResult(p.Progress)
		}
	case InvestigateFinish:
		var res *investigate.Result
		if res, err = iv.FinishStaged(ctx, p.Progress, p.Reason); err == nil {
			out = workspaceResult(res.Workspace)
		}
	case InvestigateStop:
		out, err = h.stopWorkspace(ctx, iv, p)
	}
	if err != nil {
		log.Error("investigate stage failed", "error", err)
		return nil, investigateFailure(err)
	}
	log.Info("investigate stage done", "workspace_id", out.WorkspaceID, "phase", out.Phase, "state", out.State, "problems", len(out.Problems))
	return out, nil
}

func (h *Handler) stopWorkspace(ctx context.Context, iv *investigate.Investigator, p investigatePayload) (investigationResult, error) {
	timeout := min(StopTimeout, stepTimeout(ctx))
	res, err := iv.Stop(ctx, investigate.StopRequest{CaseID: p.CaseID, WorkspaceID: p.WorkspaceID, Timeout: timeout, PollInterval: h.TeardownPoll})
	if err != nil {
		return investigationResult{}, err
	}
	out := workspaceResult(res.Workspace)
	out.Attempts, out.Stopped = p.Attempts+1, res.Workspace.State == evidence.WorkspaceStopped
	return out, nil
}

// checkInvestigate validates an investigate payload before any AWS call.
func (h *Handler) checkInvestigate(p investigatePayload) error {
	if !slices.Contains(investigateStages, p.Stage) {
		return fmt.Errorf("unknown stage %s (known: %v)", quote(p.Stage), investigateStages)
	}
	if err := validateCaseID(p.CaseID); err != nil {
		return err
	}
	if h.InvestigationEC2 == nil || h.InvestigationSSM == nil {
		return errors.New("no EC2 or SSM client for the investigation")
	}
	switch p.Stage {
	case InvestigateAdvance, InvestigateFinish:
		if p.Progress == nil || p.Progress.Workspace.CaseID != p.CaseID {
			return fmt.Errorf("stage %s needs the progress of a workspace of case %s", p.Stage, p.CaseID)
		}
	case InvestigateBegin:
		req := h.analysisRequest(p.CaseID, p.Request)
		return req.Validate()
	}
	return nil
}

// analysisRequest is the start request: the body's values, else the
// function's RESPONDER_ANALYSIS_* settings.
func (h *Handler) analysisRequest(caseID string, r investigationRequest) investigate.Request {
	a := h.Config.Analysis
	req := investigate.Request{CaseID: caseID, SubnetID: or(r.SubnetID, a.SubnetID), AMIID: or(r.AMIID, a.AMIID),
		InstanceType: or(r.InstanceType, a.InstanceType), InstanceProfile: or(r.InstanceProfile, a.InstanceProfile),
		SecurityGroupIDs: r.SecurityGroupIDs, KMSKeyID: r.KMSKeyID, HashDevices: r.HashDevices, New: r.New}
	if len(req.SecurityGroupIDs) == 0 {
		req.SecurityGroupIDs = a.SecurityGroupIDs
	}
	return req
}

func or(v, d string) string {
	if v != "" {
		return v
	}
	return d
}

func stagedResult(s *investigate.Staged) investigationResult {
	out := workspaceResult(s.Workspace)
	out.Done, out.Phase, out.Progress = s.Done(), s.Phase, s
	return out
}

func workspaceResult(ws evidence.Workspace) investigationResult {
	out := investigationResult{Done: true, State: ws.State, WorkspaceID: ws.ID, InstanceID: ws.InstanceID, Problems: ws.Problems}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	return out
}

// investigateFailure classifies an error of an investigate stage.
func investigateFailure(err error) error {
	var inputErr *responder.InputError
	switch {
	case errors.As(err, &inputErr), errors.Is(err, investigate.ErrNoCopies), errors.Is(err, investigate.ErrWorkspaceExists),
		errors.Is(err, investigate.ErrNoWorkspace), errors.Is(err, evidence.ErrNotFound):
		return &Failure{Type: ErrorInput, Err: err}
	}
	return awsFailure(err)
}

// postInvestigation starts the investigation workspace of a case.
func (h *Handler) postInvestigation(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	body, log, resp := h.caseRequestBody(log, req)
	if resp != nil {
		return *resp
	}
	ir, e := decodeOptionalBody[investigationRequest](body, investigationRequestFields)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	start := h.analysisRequest(req.CaseID, ir)
	switch {
	case start.SubnetID == "":
		return h.rejected(log, badRequest("missing_subnet_id", "subnet_id is required (or the function's %s)", EnvAnalysisSubnet), req.RequestID)
	case start.AMIID == "":
		return h.rejected(log, badRequest("missing_ami_id", "ami_id is required (or the function's %s)", EnvAnalysisAMI), req.RequestID)
	}
	if err := start.Validate(); err != nil {
		return h.rejected(log, badRequest("invalid_parameter", "%v", err), req.RequestID)
	}
	m, resp := h.readCase(ctx, log, req)
	if resp != nil {
		return *resp
	}
	if len(investigate.CompletedCopies(m)) == 0 {
		return h.conflict(log, req, "no_snapshot_copy",
			"the case has no completed snapshot copy in the forensics account (the execution's preserve state, or responder preserve, makes them)")
	}
	if ws, ok := investigate.Active(m); ok && !ir.New {
		return h.conflict(log, req, "workspace_exists",
			fmt.Sprintf("the case has workspace %s (instance %s, %s): DELETE it, or ask for another with \"new\": true", ws.ID, ws.InstanceID, ws.State))
	}
	return h.startInvestigation(ctx, log, req, InvestigationInput{Action: ActionInvestigate, Request: ir})
}

// deleteInvestigation tears the case's workspace down.
func (h *Handler) deleteInvestigation(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	body, log, resp := h.caseRequestBody(log, req)
	if resp != nil {
		return *resp
	}
	tr, e := decodeOptionalBody[teardownRequest](body, teardownRequestFields)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	if err := (&investigate.StopRequest{CaseID: req.CaseID, WorkspaceID: tr.WorkspaceID}).Validate(); err != nil {
		return h.rejected(log, badRequest("invalid_workspace_id", "%v", err), req.RequestID)
	}
	m, resp := h.readCase(ctx, log, req)
	if resp != nil {
		return *resp
	}
	ws, ok := workspaceToStop(m, tr.WorkspaceID)
	if !ok {
		return h.conflict(log, req, "no_workspace", "the case has no investigation workspace to tear down")
	}
	if ws.State == evidence.WorkspaceStarting && ws.Execution != "" {
		running, err := h.executionRunning(ctx, ws.Execution)
		if err != nil {
			return h.failed(log, err, req.RequestID)
		}
		if running {
			return h.conflict(log, req, "investigation_starting", fmt.Sprintf("execution %s is still building workspace %s: tear it down once it ends", ws.Execution, ws.ID))
		}
	}
	return h.startInvestigation(ctx, log, req, InvestigationInput{Action: ActionInvestigateStop, WorkspaceID: ws.ID})
}

// workspaceToStop is the workspace named, or the newest not stopped.
func workspaceToStop(m *evidence.Manifest, id string) (evidence.Workspace, bool) {
	if id == "" {
		return investigate.Active(m)
	}
	for _, ws := range investigate.Workspaces(m) {
		if ws.ID == id {
			return ws, true
		}
	}
	return evidence.Workspace{}, false
}

func (h *Handler) startInvestigation(ctx context.Context, log *slog.Logger, req apiRequest, in InvestigationInput) apiResponse {
	now := h.now()
	in.CaseID, in.Actor, in.RequestedAt = req.CaseID, req.Actor, now.Format(time.RFC3339)
	if in.Request.SecurityGroupIDs == nil {
		in.Request.SecurityGroupIDs = []string{}
	}
	in.Execution = actionExecutionName(req.CaseID, in.Action, now)
	arn, err := h.startActionExecution(ctx, in.Execution, in)
	if err != nil {
		return h.failed(log, err, req.RequestID)
	}
	log.Info("investigation execution started", "action", in.Action, "execution_arn", arn)
	return h.accepted(req, in.Action, arn)
}

// investigationSummary is what GET /cases/{id} shows of the newest
// investigation workspace.
type investigationSummary struct {
	WorkspaceID string   `json:"workspace_id"`
	State       string   `json:"state"`
	InstanceID  string   `json:"instance_id,omitempty"`
	Volumes     int      `json:"volumes"`
	Mounts      int      `json:"mounts"`
	Problems    []string `json:"problems,omitempty"`
}

func investigationProgress(m *evidence.Manifest) *investigationSummary {
	all := investigate.Workspaces(m)
	if len(all) == 0 {
		return nil
	}
	ws := all[len(all)-1]
	return &investigationSummary{WorkspaceID: ws.ID, State: ws.State, InstanceID: ws.InstanceID, Volumes: len(ws.Volumes),
		Mounts: len(ws.Mounts), Problems: ws.Problems}
}
