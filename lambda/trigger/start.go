package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// CaseInput is the input of a case's Step Functions execution. The state
// machine hands its fields to the tasks (lambda/statemachine.asl.json).
type CaseInput struct {
	CaseID     string `json:"case_id"`
	InstanceID string `json:"instance_id"`
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	Playbook   string `json:"playbook"`
	// Actor is who asked: the IAM principal of an API call, the custom
	// action, the GuardDuty finding.
	Actor string `json:"actor"`
	// Source is the kind of event that started the case: api, securityhub,
	// guardduty.
	Source string `json:"source"`
	// CaseIDGiven says the caller chose the case ID.
	CaseIDGiven bool   `json:"case_id_given"`
	RequestedAt string `json:"requested_at"`
	// Findings are the Security Hub findings that asked for the case: the
	// respond task notes its outcome on them. Never absent (the state
	// machine passes it on): empty for other sources.
	Findings []FindingRef `json:"findings"`
	// Force responds even to an instance tagged as protected (only an API
	// call can ask for it; the record names who did).
	Force bool `json:"force"`
}

// FindingRef names a Security Hub finding.
type FindingRef struct {
	ID         string `json:"id"`
	ProductArn string `json:"product_arn"`
	// Region is where the finding is updated ("": the function's).
	Region string `json:"region,omitempty"`
}

// Target of the case.
func (in CaseInput) Target() Target {
	return Target{AccountID: in.AccountID, Region: in.Region, InstanceID: in.InstanceID}
}

// Sources of a case.
const (
	SourceAPI         = "api"
	SourceSecurityHub = "securityhub"
	SourceGuardDuty   = "guardduty"
)

// DefaultPlaybook is the playbook a case runs when the request names none.
const DefaultPlaybook = playbooks.Default

// Playbooks lists the playbooks a case started here may run: the embedded
// playbooks (package playbooks) that do not collect OS-level evidence.
var Playbooks = lambdaPlaybooks()

func lambdaPlaybooks() []string {
	var names []string
	for _, p := range playbooks.All() {
		if !p.CollectsOS() {
			names = append(names, p.Name)
		}
	}
	return names
}

// ErrUnknownPlaybook is a playbook name that is not an embedded playbook.
var ErrUnknownPlaybook = errors.New("unknown playbook")

// UnsupportedPlaybookError is a playbook the function does not run as
// configured: one that collects OS-level evidence through SSM without the
// collection's configuration, or whose capture outlasts what the function
// can sign for (Why says which).
type UnsupportedPlaybookError struct{ Name, Why string }

func (e *UnsupportedPlaybookError) Error() string {
	return fmt.Sprintf("playbook %s is not run by this function: %s; run it from the CLI (responder respond --playbook %s)",
		e.Name, e.Why, e.Name)
}

// startFailure classifies an error of start: a playbook the Lambda does not
// run is bad input (retrying cannot help); anything else comes from AWS.
func startFailure(err error) *Failure {
	var unsupported *UnsupportedPlaybookError
	if errors.Is(err, ErrUnknownPlaybook) || errors.As(err, &unsupported) {
		return &Failure{Type: ErrorInput, Err: err}
	}
	return awsFailure(err)
}

// startRequest asks for a case on a target.
type startRequest struct {
	Target      Target
	CaseID      string // empty: a new case ID
	Playbook    string
	Actor       string
	Source      string
	CaseIDGiven bool
	// Findings asked for the case (Security Hub); see CaseInput.Findings.
	Findings []FindingRef
	// Force: see CaseInput.Force.
	Force bool
}

// started is the case that answers a start request.
type started struct {
	CaseID       string
	ExecutionARN string
	// Joined is true when the instance was already held by a case (this
	// event joined it instead of starting another).
	Joined bool
	Since  time.Time
}

// BusyError is returned when a request names its own case ID for an instance
// that another case holds.
type BusyError struct {
	Target Target
	CaseID string // the case holding the instance
	Since  time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("instance %s is already being responded to under case %s (since %s)",
		e.Target.InstanceID, e.CaseID, e.Since.Format(time.RFC3339))
}

// start makes sure one case runs for the target: it takes the instance's
// lock, then starts the case's execution, or joins the case that holds the
// instance (and makes sure its execution exists: the event that took the
// lock may have failed before starting it).
func (h *Handler) start(ctx context.Context, log *slog.Logger, req startRequest) (started, error) {
	// Every entry point (API, Security Hub, GuardDuty) comes through here:
	// a playbook the Lambda cannot run is refused before anything is taken.
	playbook, err := h.Config.Playbook(req.Playbook)
	if err != nil {
		log.Error("case refused", "instance_id", req.Target.InstanceID, "source", req.Source, "error", err)
		return started{}, err
	}
	now := h.now()
	caseID := req.CaseID
	if caseID == "" {
		caseID = h.newCaseID()
	}
	input := CaseInput{
		CaseID: caseID, InstanceID: req.Target.InstanceID, AccountID: req.Target.AccountID, Region: req.Target.Region,
		Playbook: playbook.Name, Actor: req.Actor, Source: req.Source, CaseIDGiven: req.CaseIDGiven,
		RequestedAt: now.Format(time.RFC3339), Findings: req.Findings, Force: req.Force,
	}
	if input.Findings == nil {
		input.Findings = []FindingRef{}
	}
	locker := &evidence.Locker[Lock]{Store: h.Store, Window: h.Config.LockWindow, Alive: h.caseAlive}
	held, took, err := locker.Acquire(ctx, lockKey(req.Target), Lock{CaseID: caseID, Target: req.Target, CreatedAt: now, Input: input})
	if err != nil {
		return started{}, err
	}
	log = log.With("case_id", held.CaseID, "instance_id", req.Target.InstanceID)
	if !took {
		if req.CaseIDGiven && held.CaseID != req.CaseID {
			log.Warn("instance held by another case", "requested_case_id", req.CaseID, "since", held.CreatedAt)
			return started{}, &BusyError{Target: req.Target, CaseID: held.CaseID, Since: held.CreatedAt}
		}
		log.Info("instance already held: joining its case", "since", held.CreatedAt, "source", req.Source)
	}
	arn, err := h.startExecution(ctx, held.Input)
	if err != nil {
		log.Error("execution not started", "error", err)
		return started{}, err
	}
	log.Info("case started", "execution_arn", arn, "joined", !took, "source", held.Input.Source,
		"account_id", req.Target.AccountID, "region", req.Target.Region)
	return started{CaseID: held.CaseID, ExecutionARN: arn, Joined: !took, Since: held.CreatedAt}, nil
}

// startExecution starts the execution of a case, named after the case ID, and
// returns its ARN. It is idempotent: when an execution of that name already
// has this input (a retried or duplicate event), that one is the case's. An
// execution of that name with another input is an earlier run of the same
// case ID (a re-run after the lock window); the new run is then named
// <case-id>-<requested time>.
func (h *Handler) startExecution(ctx context.Context, input CaseInput) (string, error) {
	body, err := json.Marshal(input)
	if err != nil {
		return "", fmt.Errorf("encode execution input: %w", err)
	}
	return h.startNamed(ctx, []string{input.CaseID, rerunName(input)}, body)
}

// startNamed starts an execution under the first of names that is free or
// already has this input (see startExecution).
func (h *Handler) startNamed(ctx context.Context, names []string, body []byte) (string, error) {
	for _, name := range names {
		out, err := h.Executions.StartExecution(ctx, &sfn.StartExecutionInput{
			StateMachineArn: aws.String(h.Config.StateMachineARN), Name: aws.String(name), Input: aws.String(string(body)),
		})
		if err == nil {
			return aws.ToString(out.ExecutionArn), nil
		}
		if !cloud.IsErrorCode(err, "ExecutionAlreadyExists") {
			return "", fmt.Errorf("start execution %s: %w", name, err)
		}
		arn := h.executionARN(name)
		desc, err := h.Executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			return "", fmt.Errorf("describe existing execution %s: %w", arn, err)
		}
		if sameJSON(aws.ToString(desc.Input), body) {
			return arn, nil
		}
	}
	if len(names) == 1 {
		return "", fmt.Errorf("execution %s already exists with another input", names[0])
	}
	return "", fmt.Errorf("executions %s already exist with other inputs", strings.Join(names, " and "))
}

// caseAlive reports whether the case holding a lock still runs (or
// succeeded, or has yet to start): false only when its execution failed,
// timed out or was aborted, so that the next event starts a new case rather
// than join a dead one. The execution is the one named after the case ID, or
// its rerun name, whose input is the lock's.
func (h *Handler) caseAlive(ctx context.Context, held Lock) (bool, error) {
	body, err := json.Marshal(held.Input)
	if err != nil {
		return false, fmt.Errorf("encode execution input: %w", err)
	}
	for _, name := range []string{held.Input.CaseID, rerunName(held.Input)} {
		arn := h.executionARN(name)
		out, err := h.Executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if cloud.IsErrorCode(err, "ExecutionDoesNotExist") {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("describe execution %s: %w", arn, err)
		}
		if !sameJSON(aws.ToString(out.Input), body) {
			continue // another run of the same case ID
		}
		switch out.Status {
		case sfntypes.ExecutionStatusFailed, sfntypes.ExecutionStatusTimedOut, sfntypes.ExecutionStatusAborted:
			return false, nil
		}
		return true, nil
	}
	// No execution: the event that took the lock failed before starting it;
	// joining starts it.
	return true, nil
}

// rerunName names the execution of a later run of a case ID: at most 64+14
// characters, within Step Functions' 80.
func rerunName(in CaseInput) string {
	at, err := time.Parse(time.RFC3339, in.RequestedAt)
	if err != nil {
		return in.CaseID + "-rerun"
	}
	return in.CaseID + "-" + at.UTC().Format("060102T150405")
}

// executionARN is the ARN of the execution of the state machine with a name.
func (h *Handler) executionARN(name string) string {
	return strings.Replace(h.Config.StateMachineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

func sameJSON(a string, b []byte) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// isTransient reports whether an AWS error may pass with time: throttling,
// a 5xx answer, a network error or a timeout (the SDK has already retried
// each call with backoff).
func isTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if cloud.IsErrorCode(err, "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
		"SlowDown", "ServiceUnavailable", "InternalError", "InternalFailure", "InternalServerError", "InternalException") {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= http.StatusInternalServerError {
		return true
	}
	var send *smithyhttp.RequestSendError
	return errors.As(err, &send)
}
