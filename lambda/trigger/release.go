package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// routeRelease is the route that releases a case.
const routeRelease = "/cases/{id}/release"

// ReleaseTimeout bounds a release served by the API: API Gateway answers
// 504 after 29 seconds, and the record must be written before that. A
// release that runs out of it is recorded interrupted; asking again resumes
// it.
const ReleaseTimeout = 25 * time.Second

// releaseRequest is the body of POST /cases/{id}/release (it may be empty).
type releaseRequest struct {
	// InstanceID, when given, must be the instance the case is about.
	InstanceID string `json:"instance_id"`
	// DryRun changes nothing: EC2's DryRun checks say what would fail.
	DryRun bool `json:"dry_run"`
	// KeepCredentialRevocation leaves the deny on the instance's role
	// (responder.ReleaseRequest.KeepCredentialRevocation).
	KeepCredentialRevocation bool `json:"keep_credential_revocation"`
}

var releaseRequestFields = jsonFields(reflect.TypeFor[releaseRequest]())

// caseReleased is the answer of POST /cases/{id}/release.
type caseReleased struct {
	CaseID     string `json:"case_id"`
	InstanceID string `json:"instance_id"`
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	// Status is the release's status, the word of the case record, the
	// SNS message, the Security Hub note and the instance's tag: released,
	// release-incomplete, interrupted, or would-release / would-fail.
	Status    string        `json:"status"`
	Run       int           `json:"run"`
	StatusURL string        `json:"status_url"`
	Steps     []releaseStep `json:"steps"`
	// NeedsReleaseRole is what the function may not restore: the instance
	// profile, whose role only the member stack's release role may pass.
	NeedsReleaseRole *releaseRoleAction `json:"needs_release_role,omitempty"`
	// RecordSaved is false when the case record could not be stored (the
	// function's log holds it).
	RecordSaved bool `json:"record_saved"`
}

type releaseStep struct {
	Name        string `json:"name"`
	Status      string `json:"status"`
	Containment string `json:"containment,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
}

type releaseRoleAction struct {
	step.ReleaseRoleAction
	// ReleaseRoleARN is the role to run Command with, when the function
	// knows the member role's name.
	ReleaseRoleARN string `json:"release_role_arn,omitempty"`
}

// decodeReleaseRequest parses a POST /cases/{id}/release body as strictly as
// POST /cases; an empty body is {}.
func decodeReleaseRequest(b []byte) (releaseRequest, *apiError) {
	req, e := decodeOptionalBody[releaseRequest](b, releaseRequestFields)
	if e != nil {
		return req, e
	}
	if req.InstanceID != "" {
		if err := ValidateInstanceID(req.InstanceID); err != nil {
			return req, badRequest("invalid_instance_id", "%v", err)
		}
	}
	return req, nil
}

// postRelease releases a case in its instance's account, as the member
// role, from the before-states its record holds (responder.Release). The
// member role may not pass an instance role: the instance profile the case
// removed is left, and the answer, the record and the notes say what a
// person runs with the release role; such a release is release-incomplete,
// never released. The checks of POST /cases apply: bad input before any AWS
// call, 404 for an unknown case, 409 for a case of another instance or one
// another run holds.
func (h *Handler) postRelease(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	if req.Actor == "" {
		log.Warn("API request rejected: no IAM identity in the request context")
		return errorResponse(&apiError{Status: http.StatusForbidden, Code: "unauthenticated",
			Message: "the request is not signed by an IAM principal (the API must use AWS_IAM authorization)"}, req.RequestID)
	}
	log = log.With("actor", req.Actor)
	if err := validateCaseID(req.CaseID); err != nil {
		return h.rejected(log, badRequest("invalid_case_id", "%v", err), req.RequestID)
	}
	if e := checkContentType(req.Headers); e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	body, e := readBody(req.Body, req.Base64)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	rr, e := decodeReleaseRequest(body)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	log = log.With("case_id", req.CaseID)
	m, resp, ok := h.releasableCase(ctx, log, req, rr)
	if !ok {
		return resp
	}
	t := Target{AccountID: m.AccountID, Region: m.Region, InstanceID: m.InstanceID}
	clients, err := h.workload(ctx, t, req.CaseID)
	if err != nil {
		return h.failed(log, err, req.RequestID)
	}
	r := responder.New(clients, h.Store)
	r.Clients.SNS, r.Clients.Region = h.SNS, m.Region
	r.Clients.SSM, r.Clients.Presign, r.Clients.Staging = nil, nil, nil
	r.Log, r.Now, r.Signer = log, h.Now, h.Signer
	rctx, cancel := context.WithTimeout(ctx, ReleaseTimeout)
	defer cancel()
	res, err := r.Release(rctx, responder.ReleaseRequest{
		CaseID: req.CaseID, InstanceID: m.InstanceID, DryRun: rr.DryRun, Actor: req.Actor,
		TopicARN: h.Config.TopicARN, CannotPassRoles: true, StepTimeout: stepTimeout(rctx),
		KeepCredentialRevocation: rr.KeepCredentialRevocation,
	})
	if err != nil {
		return h.releaseRefused(log, err, req)
	}
	if res.SaveErr != nil {
		if b, err := evidence.EncodeManifest(res.Manifest); err == nil {
			log.Error("case record not stored; here it is", "manifest", json.RawMessage(b))
		}
	}
	if !rr.DryRun {
		h.noteRelease(ctx, log, m, res)
	}
	log.Info("case released", "status", res.Status, "dry_run", rr.DryRun)
	return apiResponse{Status: http.StatusOK, Body: h.releasedBody(req, m, res)}
}

// releasableCase reads the case to release and checks the request against
// it: 404 for no case, 409 while its first response has not recorded, or
// for another instance; 403 for an account the function may not act in.
func (h *Handler) releasableCase(ctx context.Context, log *slog.Logger, req apiRequest, rr releaseRequest) (*evidence.Manifest, apiResponse, bool) {
	m, err := responder.Status(ctx, h.Store, req.CaseID)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		exec, execErr := h.describeCaseExecution(ctx, req.CaseID)
		switch {
		case execErr != nil:
			return nil, h.failed(log, execErr, req.RequestID), false
		case exec != nil && exec.Status == string(sfntypes.ExecutionStatusRunning):
			return nil, h.conflict(log, req, "response_in_progress",
				"the case's response is running and has not recorded its containment yet: release it once GET /cases/{id} shows its status"), false
		}
		log.Info("API request rejected: no such case")
		return nil, errorResponse(&apiError{Status: http.StatusNotFound, Code: "case_not_found", Message: "no case " + req.CaseID}, req.RequestID), false
	case err != nil:
		return nil, h.failed(log, err, req.RequestID), false
	}
	if rr.InstanceID != "" && rr.InstanceID != m.InstanceID {
		return nil, h.conflict(log, req, "case_of_another_instance",
			fmt.Sprintf("case %s is about %s, not %s", req.CaseID, m.InstanceID, rr.InstanceID)), false
	}
	if !h.Config.AccountAllowed(m.AccountID) {
		return nil, h.rejected(log, &apiError{Status: http.StatusForbidden, Code: "account_not_allowed",
			Message: fmt.Sprintf("account %s is not one this responder may act in", m.AccountID)}, req.RequestID), false
	}
	if err := ValidateRegionIn(m.Region, h.Config.partition()); err != nil {
		return nil, h.rejected(log, badRequest("invalid_region", "the case's %v", err), req.RequestID), false
	}
	return m, apiResponse{}, true
}

func (h *Handler) conflict(log *slog.Logger, req apiRequest, code, msg string) apiResponse {
	log.Warn("API request rejected", "code", code, "reason", msg)
	r := errorResponse(&apiError{Status: http.StatusConflict, Code: code, Message: msg}, req.RequestID)
	r.Body.(map[string]any)["case_id"] = req.CaseID
	return r
}

// releaseRefused answers a release that did not start (nothing changed).
func (h *Handler) releaseRefused(log *slog.Logger, err error, req apiRequest) apiResponse {
	var inputErr *responder.InputError
	switch {
	case errors.Is(err, responder.ErrCaseBusy):
		return h.conflict(log, req, "case_busy", "another run of the case (a response, a preservation or a release), or another case on its instance, is at work: try again when it ends")
	case errors.Is(err, responder.ErrCaseMismatch):
		return h.conflict(log, req, "case_of_another_instance", err.Error())
	case errors.Is(err, responder.ErrRecordTampered):
		return h.conflict(log, req, "record_not_sealed",
			"the case record does not match its seal (it was changed after it was sealed): run responder verify; nothing was released")
	case errors.Is(err, responder.ErrCaseNotFound):
		return errorResponse(&apiError{Status: http.StatusNotFound, Code: "case_not_found", Message: "no case " + req.CaseID}, req.RequestID)
	case errors.Is(err, responder.ErrInstanceNotFound), errors.Is(err, responder.ErrInstanceTerminated):
		return h.conflict(log, req, "instance_gone", "the case's instance no longer exists or is terminated: there is nothing to release")
	case errors.As(err, &inputErr):
		return h.rejected(log, badRequest("invalid_request", "%v", err), req.RequestID)
	}
	return h.failed(log, err, req.RequestID)
}

func (h *Handler) releasedBody(req apiRequest, m *evidence.Manifest, res *responder.Result) caseReleased {
	out := caseReleased{
		CaseID: req.CaseID, InstanceID: m.InstanceID, AccountID: m.AccountID, Region: m.Region,
		Status: res.Status, StatusURL: req.BaseURL + "/cases/" + req.CaseID, Steps: []releaseStep{},
		RecordSaved: !res.DryRun && res.SaveErr == nil,
	}
	if res.Manifest != nil {
		out.Run = res.Manifest.LastRun()
	}
	for _, s := range res.Steps {
		out.Steps = append(out.Steps, releaseStep{Name: s.Name, Status: s.Status, Containment: s.Containment, Reason: s.Reason, Error: s.Error})
		var after struct {
			Needs *step.ReleaseRoleAction `json:"needs_release_role"`
		}
		if len(s.After) > 0 && json.Unmarshal(s.After, &after) == nil && after.Needs != nil {
			out.NeedsReleaseRole = &releaseRoleAction{ReleaseRoleAction: *after.Needs, ReleaseRoleARN: h.releaseRoleARN(m.AccountID)}
		}
	}
	return out
}

// releaseRoleARN is the member stack's release role in an account
// (<MemberRoleName>-release); "" when the function acts with its own role.
func (h *Handler) releaseRoleARN(account string) string {
	if h.Config.MemberRoleName == NoRole || h.Config.MemberRoleName == "" {
		return ""
	}
	return fmt.Sprintf("arn:%s:iam::%s:role/%s-release", h.Config.partition(), account, h.Config.MemberRoleName)
}

// noteRelease notes the release's status on the Security Hub findings that
// asked for the case (the input of its execution), as the respond task
// notes the response's.
func (h *Handler) noteRelease(ctx context.Context, log *slog.Logger, m *evidence.Manifest, res *responder.Result) {
	if h.Findings == nil {
		return
	}
	in, err := h.caseInput(ctx, m.CaseID)
	if err != nil {
		log.Warn("the findings of the case could not be read; the release is not noted on them", "error", err)
		return
	}
	if in == nil || len(in.Findings) == 0 {
		return
	}
	h.noteOutcome(ctx, log, *in, res)
}

// caseInput is the input of the execution named after the case; nil when
// there is none (a case started from the CLI).
func (h *Handler) caseInput(ctx context.Context, caseID string) (*CaseInput, error) {
	exec, err := h.describeCaseExecution(ctx, caseID)
	if err != nil || exec == nil {
		return nil, err
	}
	var in CaseInput
	if err := json.Unmarshal([]byte(exec.Input), &in); err != nil {
		return nil, fmt.Errorf("execution %s: input: %w", exec.ARN, err)
	}
	return &in, nil
}
