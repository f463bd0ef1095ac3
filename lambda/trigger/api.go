package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// The API's routes.
const (
	routeCases = "/cases"       // POST: start a case
	routeCase  = "/cases/{id}"  // GET: read a case
	routeFleet = "/fleets/{id}" // GET: read a fleet
	// routeRelease (release.go), POST: release a case.
)

// apiRequest is an API Gateway request, v1 or v2, reduced to what the API
// uses.
type apiRequest struct {
	Method  string
	Route   string // routeCases, routeCase, routeRelease or "" (no such route)
	CaseID  string // the {id} of routeCase and routeRelease
	Headers map[string]string
	Body    string
	Base64  bool
	// Actor is the IAM principal that signed the request (AWS_IAM
	// authorization); empty when the API does not authenticate.
	Actor string
	// BaseURL is where the API is served, up to (without) /cases.
	BaseURL   string
	RequestID string
}

// apiResponse is an answer of the API, before it is put in the v1 or v2
// response shape.
type apiResponse struct {
	Status  int
	Body    any
	Headers map[string]string
}

func (h *Handler) apiV1(ctx context.Context, log *slog.Logger, event json.RawMessage) events.APIGatewayProxyResponse {
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(event, &ev); err != nil {
		return errorResponse(badRequest("malformed_request", "the API Gateway request could not be read"), "").v1()
	}
	req := apiRequest{
		Method: ev.HTTPMethod, Headers: lowerKeys(ev.Headers), Body: ev.Body, Base64: ev.IsBase64Encoded,
		Actor: ev.RequestContext.Identity.UserArn, RequestID: ev.RequestContext.RequestID,
	}
	path := ev.RequestContext.Path
	if path == "" {
		path = ev.Path
	}
	switch {
	case ev.Resource == routeCases:
		req.Route = routeCases
	case ev.Resource == routeCase && ev.PathParameters["id"] != "":
		req.Route, req.CaseID = routeCase, ev.PathParameters["id"]
	case ev.Resource == routeRelease && ev.PathParameters["id"] != "":
		req.Route, req.CaseID = routeRelease, ev.PathParameters["id"]
	case ev.Resource == routeFleet && ev.PathParameters["id"] != "":
		req.Route, req.CaseID = routeFleet, ev.PathParameters["id"]
	default:
		req.Route, req.CaseID = routeOf(ev.Path)
	}
	req.BaseURL = baseURL(ev.RequestContext.DomainName, path)
	return h.serveAPI(ctx, log, req).v1()
}

func (h *Handler) apiV2(ctx context.Context, log *slog.Logger, event json.RawMessage) events.APIGatewayV2HTTPResponse {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(event, &ev); err != nil {
		return errorResponse(badRequest("malformed_request", "the API Gateway request could not be read"), "").v2()
	}
	req := apiRequest{
		Method: ev.RequestContext.HTTP.Method, Headers: lowerKeys(ev.Headers), Body: ev.Body, Base64: ev.IsBase64Encoded,
		RequestID: ev.RequestContext.RequestID,
	}
	if a := ev.RequestContext.Authorizer; a != nil && a.IAM != nil {
		req.Actor = a.IAM.UserARN
	}
	method, route, _ := strings.Cut(ev.RouteKey, " ")
	switch {
	case route == routeCases:
		req.Route = routeCases
	case route == routeCase && ev.PathParameters["id"] != "":
		req.Route, req.CaseID = routeCase, ev.PathParameters["id"]
	case route == routeRelease && ev.PathParameters["id"] != "":
		req.Route, req.CaseID = routeRelease, ev.PathParameters["id"]
	case route == routeFleet && ev.PathParameters["id"] != "":
		req.Route, req.CaseID = routeFleet, ev.PathParameters["id"]
	default:
		req.Route, req.CaseID = routeOf(ev.RawPath)
	}
	if req.Method == "" && method != "$default" {
		req.Method = method
	}
	req.BaseURL = baseURL(ev.RequestContext.DomainName, ev.RawPath)
	return h.serveAPI(ctx, log, req).v2()
}

// serveAPI answers a request. Every answer is JSON; errors are
// {"error", "code", "request_id"} with a 4xx or 5xx status and never an
// internal error: those are logged, with the request ID to find them.
func (h *Handler) serveAPI(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	log = log.With("api_request_id", req.RequestID, "method", req.Method, "route", req.Route)
	var allowed string
	switch req.Route {
	case routeCases:
		if req.Method == http.MethodPost {
			return h.postCase(ctx, log, req)
		}
		allowed = http.MethodPost
	case routeCase:
		if req.Method == http.MethodGet {
			return h.getCase(ctx, log, req)
		}
		allowed = http.MethodGet
	case routeRelease:
		if req.Method == http.MethodPost {
			return h.postRelease(ctx, log, req)
		}
		allowed = http.MethodPost
	case routeFleet:
		if req.Method == http.MethodGet {
			return h.getFleet(ctx, log, req)
		}
		allowed = http.MethodGet
	default:
		log.Info("API request rejected: no such route")
		return errorResponse(&apiError{Status: http.StatusNotFound, Code: "not_found",
			Message: "no such resource: use POST /cases, GET /cases/{id}, POST /cases/{id}/release or GET /fleets/{id}"}, req.RequestID)
	}
	log.Info("API request rejected: method not allowed")
	r := errorResponse(&apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: req.Method + " is not allowed here; use " + allowed}, req.RequestID)
	r.Headers["Allow"] = allowed
	return r
}

// caseStarted is the answer of POST /cases.
type caseStarted struct {
	CaseID       string `json:"case_id"`
	StatusURL    string `json:"status_url"`
	ExecutionARN string `json:"execution_arn"`
	InstanceID   string `json:"instance_id"`
	AccountID    string `json:"account_id"`
	Region       string `json:"region"`
	// Joined: the instance was already under this case, started by an
	// earlier event less than the lock window ago; no second response runs.
	Joined bool `json:"joined,omitempty"`
}

func (h *Handler) postCase(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	if req.Actor == "" {
		log.Warn("API request rejected: no IAM identity in the request context")
		return errorResponse(&apiError{Status: http.StatusForbidden, Code: "unauthenticated",
			Message: "the request is not signed by an IAM principal (the API must use AWS_IAM authorization)"}, req.RequestID)
	}
	log = log.With("actor", req.Actor)
	if e := checkContentType(req.Headers); e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	body, e := readBody(req.Body, req.Base64)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	cr, e := decodeCaseRequest(body)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	if cr.isFleet() {
		return h.postFleet(ctx, log, req, cr)
	}
	t, e := h.validate(cr)
	if e != nil {
		return h.rejected(log, e, req.RequestID)
	}
	if cr.CaseID != "" {
		// A case is about one instance: naming it for another is refused
		// before the instance's lock is taken.
		other, exists, err := h.caseTarget(ctx, cr.CaseID)
		switch {
		case err != nil:
			return h.failed(log, err, req.RequestID)
		case exists && other != t:
			log.Warn("API request rejected: the case is about another instance", "case_id", cr.CaseID, "case_target", other.String())
			r := errorResponse(&apiError{Status: http.StatusConflict, Code: "case_of_another_instance",
				Message: fmt.Sprintf("case %s is about %s, not %s: name another case ID, or none", cr.CaseID, other, t)}, req.RequestID)
			r.Body.(map[string]any)["case_id"] = cr.CaseID
			return r
		}
	}
	s, err := h.start(ctx, log, startRequest{
		Target: t, CaseID: cr.CaseID, CaseIDGiven: cr.CaseID != "", Playbook: cr.Playbook, Actor: req.Actor, Source: SourceAPI,
		Force: cr.Force,
	})
	var busy *BusyError
	switch {
	case errors.As(err, &busy):
		r := errorResponse(&apiError{Status: http.StatusConflict, Code: "instance_busy", Message: busy.Error()}, req.RequestID)
		r.Body.(map[string]any)["case_id"] = busy.CaseID
		return r
	case err != nil:
		return h.failed(log, err, req.RequestID)
	}
	statusURL := req.BaseURL + "/cases/" + s.CaseID
	return apiResponse{Status: http.StatusAccepted, Headers: map[string]string{"Location": statusURL}, Body: caseStarted{
		CaseID: s.CaseID, StatusURL: statusURL, ExecutionARN: s.ExecutionARN,
		InstanceID: t.InstanceID, AccountID: t.AccountID, Region: t.Region, Joined: s.Joined,
	}}
}

// caseSummary is the answer of GET /cases/{id}.
type caseSummary struct {
	CaseID     string            `json:"case_id"`
	Status     string            `json:"status"`
	InstanceID string            `json:"instance_id,omitempty"`
	AccountID  string            `json:"account_id,omitempty"`
	Region     string            `json:"region,omitempty"`
	Actor      string            `json:"actor,omitempty"`
	ActingAs   string            `json:"acting_as,omitempty"`
	Location   string            `json:"location,omitempty"`
	StartedAt  *time.Time        `json:"started_at,omitempty"`
	EndedAt    *time.Time        `json:"ended_at,omitempty"`
	Runs       int               `json:"runs"`
	Steps      []stepSummary     `json:"steps"`
	Artifacts  int               `json:"artifacts"`
	Snapshots  []snapshotSummary `json:"snapshots"`
	Execution  *executionSummary `json:"execution,omitempty"`
	// Collection is how far the memory capture is (collect_progress.go);
	// absent for a case that collects nothing.
	Collection *collectionSummary `json:"collection,omitempty"`
}

type stepSummary struct {
	Run    int    `json:"run"`
	Name   string `json:"name"`
	Phase  string `json:"phase"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

type snapshotSummary struct {
	SnapshotID string `json:"snapshot_id"`
	VolumeID   string `json:"volume_id"`
	State      string `json:"state"`
}

type executionSummary struct {
	ARN       string     `json:"arn"`
	Status    string     `json:"status"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	Error     string     `json:"error,omitempty"`
	// Input is the execution's input (the case), not shown.
	Input string `json:"-"`
}

// Case statuses the API reports before the case record exists.
const (
	statusPending = "pending" // the execution runs; the record is not written yet
	statusFailed  = "failed"  // the execution ended without a record
)

func (h *Handler) getCase(ctx context.Context, log *slog.Logger, req apiRequest) apiResponse {
	if err := validateCaseID(req.CaseID); err != nil {
		return h.rejected(log, badRequest("invalid_case_id", "%v", err), req.RequestID)
	}
	log = log.With("case_id", req.CaseID)
	m, err := responder.Status(ctx, h.Store, req.CaseID)
	exec, execErr := h.describeCaseExecution(ctx, req.CaseID)
	switch {
	case errors.Is(err, evidence.ErrNotFound) && exec != nil:
		s := caseSummary{CaseID: req.CaseID, Status: statusPending, Steps: []stepSummary{}, Snapshots: []snapshotSummary{}, Execution: exec}
		if exec.Status != string(sfntypes.ExecutionStatusRunning) {
			s.Status = statusFailed
		}
		log.Info("case read: no record yet", "execution_status", exec.Status)
		return apiResponse{Status: http.StatusOK, Body: s}
	case errors.Is(err, evidence.ErrNotFound) && execErr == nil:
		log.Info("case read: not found")
		return errorResponse(&apiError{Status: http.StatusNotFound, Code: "case_not_found",
			Message: "no case " + req.CaseID}, req.RequestID)
	case errors.Is(err, evidence.ErrNotFound):
		return h.failed(log, execErr, req.RequestID)
	case err != nil:
		return h.failed(log, err, req.RequestID)
	}
	if execErr != nil {
		log.Warn("case execution not readable", "error", execErr)
	}
	log.Info("case read", "status", m.Status)
	return apiResponse{Status: http.StatusOK, Body: summarize(m, exec)}
}

// caseTarget returns the target of an existing case: from its record or,
// before the record is written, from the input of its execution; false when
// there is no such case.
func (h *Handler) caseTarget(ctx context.Context, caseID string) (Target, bool, error) {
	m, err := responder.Status(ctx, h.Store, caseID)
	switch {
	case err == nil:
		return Target{AccountID: m.AccountID, Region: m.Region, InstanceID: m.InstanceID}, true, nil
	case !errors.Is(err, evidence.ErrNotFound):
		return Target{}, false, fmt.Errorf("read case %s: %w", caseID, err)
	}
	arn := h.executionARN(caseID)
	out, err := h.Executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	switch {
	case cloud.IsErrorCode(err, "ExecutionDoesNotExist"):
		return Target{}, false, nil
	case err != nil:
		return Target{}, false, fmt.Errorf("describe execution %s: %w", arn, err)
	}
	var in CaseInput
	if err := json.Unmarshal([]byte(aws.ToString(out.Input)), &in); err != nil {
		return Target{}, false, fmt.Errorf("execution %s: input: %w", arn, err)
	}
	return in.Target(), true, nil
}

// describeCaseExecution reads the execution named after the case: nil and no
// error when there is none.
func (h *Handler) describeCaseExecution(ctx context.Context, caseID string) (*executionSummary, error) {
	out, err := h.Executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(h.executionARN(caseID))})
	if cloud.IsErrorCode(err, "ExecutionDoesNotExist") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := &executionSummary{ARN: aws.ToString(out.ExecutionArn), Status: string(out.Status), StartedAt: out.StartDate, StoppedAt: out.StopDate, Error: aws.ToString(out.Error),
		Input: aws.ToString(out.Input)}
	return s, nil
}

func summarize(m *evidence.Manifest, exec *executionSummary) caseSummary {
	s := caseSummary{
		CaseID: m.CaseID, Status: m.Status, InstanceID: m.InstanceID, AccountID: m.AccountID, Region: m.Region,
		Actor: m.Actor, ActingAs: m.ActingAs, Location: m.Location, StartedAt: &m.StartedAt, EndedAt: &m.EndedAt,
		Runs: len(m.Runs), Steps: make([]stepSummary, 0, len(m.Steps)), Artifacts: len(m.Artifacts),
		Snapshots: make([]snapshotSummary, 0, len(m.Snapshots)), Execution: exec,
	}
	for _, st := range m.Steps {
		s.Steps = append(s.Steps, stepSummary{Run: st.Run, Name: st.Name, Phase: st.Phase, Status: st.Status, Reason: st.Reason, Error: st.Error})
	}
	for _, sn := range m.Snapshots {
		s.Snapshots = append(s.Snapshots, snapshotSummary{SnapshotID: sn.SnapshotID, VolumeID: sn.VolumeID, State: sn.State})
	}
	s.Collection = collectionProgress(m)
	return s
}

// rejected answers bad input.
func (h *Handler) rejected(log *slog.Logger, e *apiError, requestID string) apiResponse {
	log.Info("API request rejected", "status", e.Status, "code", e.Code, "reason", e.Message)
	return errorResponse(e, requestID)
}

// failed answers an internal failure: the error goes to the log only.
func (h *Handler) failed(log *slog.Logger, err error, requestID string) apiResponse {
	if isTransient(err) {
		log.Warn("API request failed: AWS unavailable or throttling", "error", err)
		r := errorResponse(&apiError{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "a service the responder depends on is unavailable or throttling; retry later"}, requestID)
		r.Headers["Retry-After"] = "5"
		return r
	}
	log.Error("API request failed", "error", err)
	return errorResponse(&apiError{Status: http.StatusInternalServerError, Code: "internal",
		Message: "internal error; the responder's logs have the details under this request_id"}, requestID)
}

func errorResponse(e *apiError, requestID string) apiResponse {
	body := map[string]any{"error": e.Message, "code": e.Code}
	if requestID != "" {
		body["request_id"] = requestID
	}
	return apiResponse{Status: e.Status, Body: body, Headers: map[string]string{}}
}

func (r apiResponse) headers() map[string]string {
	h := map[string]string{
		"Content-Type":           "application/json",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	}
	for k, v := range r.Headers {
		h[k] = v
	}
	return h
}

func (r apiResponse) encode() string {
	b, err := json.Marshal(r.Body)
	if err != nil {
		return `{"error":"internal error","code":"internal"}`
	}
	return string(b)
}

func (r apiResponse) v1() events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: r.Status, Headers: r.headers(), Body: r.encode()}
}

func (r apiResponse) v2() events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: r.Status, Headers: r.headers(), Body: r.encode()}
}

// routeOf finds the route in a request path, which may carry a stage or a
// base path before /cases.
func routeOf(path string) (route, caseID string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	n := len(segs)
	switch {
	case n >= 1 && segs[n-1] == "cases":
		return routeCases, ""
	case n >= 3 && segs[n-3] == "cases" && segs[n-1] == "release":
		id, err := url.PathUnescape(segs[n-2])
		if err != nil {
			id = segs[n-2]
		}
		return routeRelease, id
	case n >= 2 && segs[n-2] == "fleets":
		id, err := url.PathUnescape(segs[n-1])
		if err != nil {
			id = segs[n-1]
		}
		return routeFleet, id
	case n >= 2 && segs[n-2] == "cases":
		id, err := url.PathUnescape(segs[n-1])
		if err != nil {
			id = segs[n-1]
		}
		return routeCase, id
	}
	return "", ""
}

// baseURL is the URL of the API up to /cases, from the domain and the path
// of the request as the caller sent it (stage included).
func baseURL(domain, path string) string {
	prefix := strings.TrimRight(path, "/")
	if i := strings.LastIndex(prefix, "/cases"); i >= 0 && (i+len("/cases") == len(prefix) || prefix[i+len("/cases")] == '/') {
		prefix = prefix[:i] // /cases, or /cases/{id}/release
	}
	if domain == "" {
		return prefix
	}
	return "https://" + domain + prefix
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}
