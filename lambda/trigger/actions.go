package trigger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// Actions of an execution that works on an existing case in the forensics
// account (the state machine's Route state chooses on it); an execution
// without one is a response (CaseInput).
const (
	ActionImage            = "image"
	ActionInvestigate      = "investigate"
	ActionInvestigateStop  = "investigate-stop"
	maxExecutionNameLength = 80
)

// actionExecutionName names an execution of an action on a case:
// <case-id>-<action>-<YYMMDDTHHMMSS>, within Step Functions' 80
// characters (a long case ID is cut and a digest of it added).
func actionExecutionName(caseID, action string, at time.Time) string {
	suffix := "-" + action + "-" + at.UTC().Format("060102T150405")
	if len(caseID)+len(suffix) <= maxExecutionNameLength {
		return caseID + suffix
	}
	sum := sha256.Sum256([]byte(caseID))
	keep := maxExecutionNameLength - len(suffix) - 9
	return caseID[:keep] + "-" + hex.EncodeToString(sum[:4]) + suffix
}

// startActionExecution starts an execution of the state machine with an
// action's input. The same request again (same name, same input) is the
// same execution.
func (h *Handler) startActionExecution(ctx context.Context, name string, input any) (string, error) {
	body, err := json.Marshal(input)
	if err != nil {
		return "", fmt.Errorf("encode execution input: %w", err)
	}
	return h.startNamed(ctx, []string{name}, body)
}

// executionRunning says whether the named execution of the state machine
// runs (false when it ended or does not exist).
func (h *Handler) executionRunning(ctx context.Context, name string) (bool, error) {
	out, err := h.Executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(h.executionARN(name))})
	if cloud.IsErrorCode(err, "ExecutionDoesNotExist") {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return out.Status == "RUNNING", nil
}

// decodeOptionalBody parses a body that may be empty ({}) as strictly as
// POST /cases's.
func decodeOptionalBody[T any](b []byte, fields []string) (T, *apiError) {
	var req T
	if len(bytes.TrimSpace(b)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, jsonError(err, fields)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, badRequest("malformed_json", "the body holds more than one JSON value")
	}
	if e := checkKeys(b, fields); e != nil {
		var zero T
		return zero, e
	}
	return req, nil
}

// caseRequestBody runs the checks every route on an existing case makes
// before reading it: a signed request, a valid case ID, a JSON body of at
// most MaxBodyBytes.
func (h *Handler) caseRequestBody(log *slog.Logger, req apiRequest) ([]byte, *slog.Logger, *apiResponse) {
	if req.Actor == "" {
		log.Warn("API request rejected: no IAM identity in the request context")
		r := errorResponse(&apiError{Status: http.StatusForbidden, Code: "unauthenticated",
			Message: "the request is not signed by an IAM principal (the API must use AWS_IAM authorization)"}, req.RequestID)
		return nil, log, &r
	}
	log = log.With("actor", req.Actor)
	if err := validateCaseID(req.CaseID); err != nil {
		r := h.rejected(log, badRequest("invalid_case_id", "%v", err), req.RequestID)
		return nil, log, &r
	}
	log = log.With("case_id", req.CaseID)
	if e := checkContentType(req.Headers); e != nil {
		r := h.rejected(log, e, req.RequestID)
		return nil, log, &r
	}
	body, e := readBody(req.Body, req.Base64)
	if e != nil {
		r := h.rejected(log, e, req.RequestID)
		return nil, log, &r
	}
	return body, log, nil
}

// readCase reads the record of a case an action works on: 404 when there
// is none.
func (h *Handler) readCase(ctx context.Context, log *slog.Logger, req apiRequest) (*evidence.Manifest, *apiResponse) {
	m, err := responder.Status(ctx, h.Store, req.CaseID)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		log.Info("API request rejected: no such case")
		r := errorResponse(&apiError{Status: http.StatusNotFound, Code: "case_not_found", Message: "no case " + req.CaseID}, req.RequestID)
		return nil, &r
	case err != nil:
		r := h.failed(log, err, req.RequestID)
		return nil, &r
	}
	return m, nil
}

// actionStarted is the answer of a route that starts an action's execution.
type actionStarted struct {
	CaseID       string `json:"case_id"`
	Action       string `json:"action"`
	ExecutionARN string `json:"execution_arn"`
	StatusURL    string `json:"status_url"`
}

func (h *Handler) accepted(req apiRequest, action, arn string) apiResponse {
	statusURL := req.BaseURL + "/cases/" + req.CaseID
	return apiResponse{Status: http.StatusAccepted, Headers: map[string]string{"Location": statusURL},
		Body: actionStarted{CaseID: req.CaseID, Action: action, ExecutionARN: arn, StatusURL: statusURL}}
}
