package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/image"
	"github.com/responder-ir/responder/responder/step"
)

// WorkloadFunc builds the clients of a target for a case: those that act in
// the target's account and Region as the member role (see Config.RoleARN).
// The engines use EC2, STS, CallerSTS and KMS of them (KMS is optional:
// without it, sharing a snapshot under aws/ebs is tried and refused).
type WorkloadFunc func(ctx context.Context, t Target, caseID string) (*cloud.Clients, error)

// Handler answers every event the function receives. Build it with New, or
// fill it with fakes in tests.
type Handler struct {
	Config Config
	// Store is the evidence store: the cases and the per-instance locks.
	Store evidence.Store
	// Executions, Findings and SNS act with the function's own credentials.
	Executions cloud.SFN
	Findings   cloud.SecurityHub
	SNS        cloud.SNS
	// Forensics is EC2 in the function's own account and Region (the
	// forensics account), with its own credentials: the preserve task copies
	// the case snapshots shared with it.
	Forensics cloud.ForensicsEC2
	// PreservePoll is the time between two looks at a snapshot the preserve
	// task waits for (default preserve.DefaultPoll).
	PreservePoll time.Duration
	// Signer signs every record the function saves (RESPONDER_SIGNING_KEY);
	// nil: records are sealed, not signed.
	Signer evidence.Signer
	// Presign and Staging act with the function's own credentials for the
	// OS-level collection: they sign the instance's uploads and fetches,
	// and stage the part URL lists in the staging bucket.
	Presign cloud.Presigner
	Staging step.StagingAPI
	// EBS reads the case's snapshot copies block by block (the image
	// task); InvestigationEC2 and InvestigationSSM run the investigation
	// workspaces (the investigate task), InvestigationIAM their evidence
	// policies on the analysis role. All act in the function's own
	// account, with its own credentials.
	EBS              cloud.EBS
	InvestigationEC2 cloud.InvestigationEC2
	InvestigationSSM cloud.InvestigationSSM
	InvestigationIAM cloud.InvestigationIAM
	// ImagePace bounds each advance stage of an image (default: as much
	// as fits in image.DefaultBudget).
	ImagePace image.Pace
	// TeardownPoll is the time between two looks at a volume or the
	// instance in a teardown stage (default investigate.DefaultPoll).
	TeardownPoll time.Duration
	// Workload builds the clients that act on a target instance.
	Workload WorkloadFunc
	// Log writes JSON lines; every line about a case carries its case_id.
	Log *slog.Logger
	// Now and NewCaseID default to time.Now and responder.NewCaseID.
	Now       func() time.Time
	NewCaseID func(time.Time) string
	// NewFleetID defaults to fleet-YYYYMMDD-HHMMSS-<8 hex>.
	NewFleetID func(time.Time) string
}

// New builds the handler of the Lambda function from its environment:
// getenv is os.Getenv there. A configuration error names every variable at
// fault.
func New(ctx context.Context, getenv func(string) string) (*Handler, error) {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	home, err := cloud.Load(ctx, cloud.Options{Region: cfg.Region})
	if err != nil {
		return nil, err
	}
	lambdaClients, err := cloud.LoadLambda(ctx, cloud.Options{Region: cfg.Region})
	if err != nil {
		return nil, err
	}
	var signer evidence.Signer
	if cfg.SigningKey != "" {
		signer = &evidence.KMSSigner{API: home.Signing, KeyID: cfg.SigningKey}
	}
	return &Handler{
		Config: cfg,
		Signer: signer,
		// The Lambda writes to Amazon S3, which honours If-None-Match.
		Store: &evidence.Bucket{API: home.S3, Name: cfg.EvidenceBucket, KMSKeyID: cfg.EvidenceKMSKey, ConditionalWritesOnly: true,
			Presign: home.Presign},
		Presign:    home.Presign,
		Staging:    home.S3,
		Executions: lambdaClients.SFN,
		Findings:   lambdaClients.SecurityHub,
		SNS:        home.SNS,
		Forensics:  home.ForensicsEC2,
		EBS:        home.EBS,
		// Investigation workspaces in the function's own account.
		InvestigationEC2: home.InvestigationEC2,
		InvestigationSSM: home.InvestigationSSM,
		InvestigationIAM: home.InvestigationIAM,
		Workload:         AssumeRole(cfg),
		Log:              NewLogger(os.Stdout, cfg.LogLevel),
	}, nil
}

// AssumeRole builds a target's clients with the member role of its account
// (cloud.Load), in its Region. The role session is named after the case, so
// that the workload account's CloudTrail shows which case made each call.
func AssumeRole(cfg Config) WorkloadFunc {
	return func(ctx context.Context, t Target, caseID string) (*cloud.Clients, error) {
		c, err := cloud.Load(ctx, cloud.Options{
			Region: t.Region, RoleARN: cfg.RoleARN(t.AccountID), ExternalID: cfg.ExternalID, SessionName: SessionName(caseID),
		})
		if err != nil {
			return nil, fmt.Errorf("clients for %s: %w", t, err)
		}
		return c, nil
	}
}

// SessionName is the role session name of a case: at most 64 characters,
// starting with "responder-" (the member role's trust policy requires it).
func SessionName(caseID string) string {
	n := "responder-" + caseID
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// NewLogger returns the JSON logger of the function.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Error types the function reports to its invoker (the "errorType" of the
// Lambda error). The state machine catches and retries by these names.
const (
	// ErrorInput: the event or payload is malformed; retrying cannot help.
	ErrorInput = "ResponderInputError"
	// ErrorUnsupported: the event is of no kind this function serves.
	ErrorUnsupported = "ResponderUnsupportedEvent"
	// ErrorInstanceNotFound: the instance does not exist, or is terminated.
	ErrorInstanceNotFound = "ResponderInstanceNotFound"
	// ErrorTransient: an AWS call failed in a way that may pass (throttling,
	// a 5xx answer, a network error, a timeout); worth retrying later.
	ErrorTransient = "ResponderTransientError"
	// ErrorInternal: anything else.
	ErrorInternal = "ResponderError"
)

// Failure is an error reported to the invoker under a type name.
type Failure struct {
	Type string
	Err  error
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

func fail(typ string, format string, args ...any) *Failure {
	return &Failure{Type: typ, Err: fmt.Errorf(format, args...)}
}

// awsFailure classifies the error of an AWS call.
func awsFailure(err error) *Failure {
	if isTransient(err) {
		return &Failure{Type: ErrorTransient, Err: err}
	}
	return &Failure{Type: ErrorInternal, Err: err}
}

// shape is enough of any event to tell its kind.
type shape struct {
	Task       *string `json:"task"`
	DetailType *string `json:"detail-type"`
	Source     string  `json:"source"`
	Version    string  `json:"version"`
	RouteKey   *string `json:"routeKey"`
	HTTPMethod *string `json:"httpMethod"`
}

// EventBridge event kinds served.
const (
	sourceSecurityHub        = "aws.securityhub"
	detailTypeCustomAction   = "Security Hub Findings - Custom Action"
	sourceGuardDuty          = "aws.guardduty"
	detailTypeGuardDutyEvent = "GuardDuty Finding"
)

// Handle answers one event, routed by its shape. The answer is what the
// invoker expects: an API Gateway proxy response for API requests (errors
// included, as JSON bodies with a 4xx or 5xx status), a JSON document for the
// other kinds. An error is a *Failure.
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
	log := h.logger(ctx)
	var s shape
	if err := json.Unmarshal(event, &s); err != nil || !bytes.HasPrefix(bytes.TrimSpace(event), []byte("{")) {
		log.Error("event rejected: not a JSON object", "bytes", len(event))
		return nil, fail(ErrorInput, "the event is not a JSON object")
	}
	var (
		out any
		err error
	)
	switch {
	case s.Task != nil:
		out, err = h.task(ctx, log, *s.Task, event)
	case s.DetailType != nil && s.Source == sourceSecurityHub && *s.DetailType == detailTypeCustomAction:
		out, err = h.customAction(ctx, log, event)
	case s.DetailType != nil && s.Source == sourceGuardDuty && *s.DetailType == detailTypeGuardDutyEvent:
		out, err = h.guardDuty(ctx, log, event)
	case s.Version == "2.0" && s.RouteKey != nil:
		out = h.apiV2(ctx, log, event)
	case s.HTTPMethod != nil:
		out = h.apiV1(ctx, log, event)
	case s.DetailType != nil:
		log.Warn("event rejected: unsupported EventBridge event", "source", s.Source, "detail_type", *s.DetailType)
		return nil, fail(ErrorUnsupported, "unsupported EventBridge event: source %s, detail-type %s", quote(s.Source), quote(*s.DetailType))
	default:
		log.Warn("event rejected: unknown shape")
		return nil, fail(ErrorUnsupported, "unsupported event: not an API Gateway request, a Security Hub custom action, a GuardDuty finding nor a Step Functions task")
	}
	if err != nil {
		var f *Failure
		if !errors.As(err, &f) {
			f = &Failure{Type: ErrorInternal, Err: err}
		}
		return nil, f
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fail(ErrorInternal, "encode the answer: %v", err)
	}
	return b, nil
}

func (h *Handler) logger(ctx context.Context) *slog.Logger {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		log = log.With("aws_request_id", lc.AwsRequestID)
	}
	return log
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

func (h *Handler) newCaseID() string {
	if h.NewCaseID != nil {
		return h.NewCaseID(h.now())
	}
	return responder.NewCaseID(h.now())
}

// workload builds a target's clients.
func (h *Handler) workload(ctx context.Context, t Target, caseID string) (*cloud.Clients, error) {
	if h.Workload == nil {
		return nil, errors.New("no workload clients configured")
	}
	return h.Workload(ctx, t, caseID)
}

// snapshotsAPI is what the snapshot-status task needs of EC2.
type snapshotsAPI interface {
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}
