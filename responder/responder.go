// Package responder is the engine of the toolkit: given one EC2 instance, it
// acquires the evidence, contains the instance and records the case, by
// running a plan of named steps (package step) against the AWS clients and
// the evidence store it is given. The CLI, the Lambda handlers and the Step
// Functions tasks are thin callers of Respond.
package responder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// Version is the toolkit version recorded in every case.
var Version = "0.1.0-dev"

// Request is one response to run.
type Request struct {
	InstanceID string
	// CaseID names the case; NewCaseID makes one. CaseIDGiven says the
	// caller chose it (an earlier run of the case may exist).
	CaseID      string
	CaseIDGiven bool
	// Plan names the steps to run, in order; empty means step.DefaultPlan.
	Plan []string
	// After adds ordering to Plan (see step.PlanAfter); a playbook sets it.
	After       map[string][]string
	PlanName    string
	DryRun      bool
	TopicARN    string
	StepTimeout time.Duration
	// Collection configures the OS-level collection steps, when the plan
	// has them.
	Collection step.Collection
	// Progress, when set, receives the progress of long steps.
	Progress func(step.Progress)
	// Actor, when set, is who asked for the response as the caller
	// authenticated them (the IAM principal of an API call, the analyst of
	// a Security Hub custom action). The identity the toolkit runs as is
	// then recorded as acting_as.
	Actor string
}

// Clients are the AWS clients a response uses: EC2 and STS in the workload
// account, SNS and the caller's STS with the caller's own credentials.
type Clients struct {
	EC2       cloud.EC2
	STS       cloud.STS
	CallerSTS cloud.STS // nil when no role is assumed
	SNS       cloud.SNS
	Region    string
	// SSM, Presign and Staging serve OS-level collection; nil without it.
	SSM     cloud.SSM
	Presign cloud.Presigner
	Staging step.StagingAPI
	// PresignValidUntil: see step.Env.
	PresignValidUntil time.Time
}

// NewClients takes the clients a response uses from those cloud.Load built.
func NewClients(c *cloud.Clients) Clients {
	rc := Clients{
		EC2: c.EC2, STS: c.STS, CallerSTS: c.CallerSTS, SNS: c.SNS, Region: c.Region,
		SSM: c.SSM, Presign: c.Presign,
	}
	if c.S3 != nil {
		rc.Staging = c.S3
	}
	return rc
}

// New builds the respond engine from the clients cloud.Load built and the
// evidence store; Log and Now default to slog.Default and the system clock.
func New(c *cloud.Clients, store evidence.Store) *Responder {
	return &Responder{Clients: NewClients(c), Store: store}
}

// Responder runs responses.
type Responder struct {
	Clients Clients
	Store   evidence.Store
	Log     *slog.Logger
	Now     func() time.Time
}

// Result is the outcome of one run.
type Result struct {
	// Manifest is the case record after this run (cumulative).
	Manifest *evidence.Manifest
	// Steps are this run's step records, in plan order.
	Steps []evidence.StepRecord
	// Status is the case status this run proved (evidence.CaseStatus).
	Status string
	DryRun bool
	// Interrupted: ctx was cancelled before every step finished (the
	// Status is then evidence.CaseInterrupted); running the same case again
	// resumes it.
	Interrupted bool
	// Err aggregates every failed step and a failure to save the record.
	Err error
	// SaveErr is set when the case record could not be stored; the caller
	// should keep Manifest some other way.
	SaveErr error
}

// ContainmentFailed reports whether some containment step did not hold:
// the instance may not be (fully) isolated.
func (r *Result) ContainmentFailed() bool {
	return r.Status == evidence.CaseContainmentFailed || r.Status == evidence.CasePartiallyContained
}

// InputError is bad input, found before any AWS call.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Errors from resolving the target, before anything is changed.
var (
	ErrInstanceNotFound   = errors.New("instance not found")
	ErrInstanceTerminated = errors.New("instance is terminated")
	ErrCaseMismatch       = errors.New("case belongs to another instance")
)

var instanceIDPattern = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// ValidateInstanceID checks the format of an EC2 instance ID.
func ValidateInstanceID(id string) error {
	if !instanceIDPattern.MatchString(id) {
		return fmt.Errorf("invalid instance ID %q: want i- followed by 8 or 17 lowercase hex digits", id)
	}
	return nil
}

// NewCaseID makes a case ID that sorts by time: case-YYYYMMDD-HHMMSS-<8 hex>.
func NewCaseID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("case-%s-%s", now.UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

// Validate checks a request without calling AWS.
func (req *Request) Validate() error {
	var errs *multierror.Error
	if err := ValidateInstanceID(req.InstanceID); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := evidence.ValidateCaseID(req.CaseID); err != nil {
		errs = multierror.Append(errs, err)
	}
	if _, err := step.PlanAfter(req.planNames(), req.After); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := req.Collection.Validate(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := errlist.OneLine(errs); err != nil {
		return &InputError{Err: err}
	}
	return nil
}

// Tool names the toolkit and its version, as a case record's "tool" says.
func Tool() string { return "responder " + Version }

func (req *Request) planNames() []string {
	if len(req.Plan) == 0 {
		return step.DefaultPlan
	}
	return req.Plan
}

func (r *Responder) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Respond runs one response. It returns an error only when the response
// could not start (bad input, instance not found or terminated, no caller
// identity); step failures are in Result.Err and the case record. When ctx
// is cancelled during the run, the record is still saved, with the status
// interrupted (evidence.SaveRun does not depend on ctx).
func (r *Responder) Respond(ctx context.Context, req Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	plan, _ := step.PlanAfter(req.planNames(), req.After)
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("case_id", req.CaseID, "instance_id", req.InstanceID)
	started := r.now()
	log.Info("response started", "dry_run", req.DryRun)

	t, err := r.resolve(ctx, req, log)
	if err != nil {
		log.Error("response could not start", "error", err)
		return nil, err
	}
	env := &step.Env{
		Target: step.Target{
			CaseID: req.CaseID, CaseIDGiven: req.CaseIDGiven, Instance: t.instance,
			AccountID: t.accountID, Region: r.Clients.Region, Actor: t.actor, DryRun: req.DryRun,
			Prior: t.prior, Run: t.prior.LastRun() + 1,
			CaseSnapshots: t.caseSnapshots, CaseSnapshotsErr: t.caseSnapshotsErr,
		},
		Clients: step.Clients{
			EC2: r.Clients.EC2, SNS: r.Clients.SNS, TopicARN: req.TopicARN, Store: r.Store,
			SSM: r.Clients.SSM, Presign: r.Clients.Presign, Staging: r.Clients.Staging,
			PresignValidUntil: r.Clients.PresignValidUntil,
		},
		Collection: req.Collection, Progress: req.Progress, Log: log, Now: r.Now,
	}
	records := step.Execute(ctx, env, plan, req.StepTimeout)

	res := &Result{Steps: records, DryRun: req.DryRun, Interrupted: env.Interrupted()}
	res.Status = evidence.CaseStatus(records, evidence.Outcome{DryRun: req.DryRun, Interrupted: res.Interrupted})
	var errs *multierror.Error
	for _, rec := range records {
		if rec.Status == evidence.StatusFailed {
			errs = multierror.Append(errs, fmt.Errorf("%s: %s", rec.Name, rec.Error))
		}
	}
	playbook := req.PlanName
	if playbook == "" {
		playbook = "default"
	}
	res.Manifest = evidence.AppendRun(t.prior, evidence.Manifest{
		CaseID: env.Target.CaseID, InstanceID: env.Target.InstanceID(), AccountID: env.Target.AccountID, Region: env.Target.Region,
	}, evidence.Revision{
		Run: evidence.Run{
			Number: env.Target.Run, Actor: t.actor, ActingAs: t.actingAs, Playbook: playbook,
			Status: res.Status, StartedAt: started, EndedAt: r.now(),
		},
		Steps: records, Artifacts: env.Artifacts(), Snapshots: env.Snapshots(), SetStatus: true,
		Tool: Tool(), Location: r.Store.Location(req.CaseID, ""),
	})
	if !req.DryRun {
		if err := evidence.SaveRun(ctx, r.Store, res.Manifest); err != nil {
			res.SaveErr = err
			errs = multierror.Append(errs, fmt.Errorf("save case record: %w", err))
			log.Error("case record not saved", "error", err)
		}
	}
	res.Err = errlist.OneLine(errs)
	log.Info("response finished", "status", res.Status, "location", res.Manifest.Location)
	return res, nil
}

// target is what resolve found.
type target struct {
	instance  types.Instance
	accountID string
	actor     string
	actingAs  string
	prior     *evidence.Manifest
	// caseSnapshots: see step.Target.CaseSnapshots.
	caseSnapshots    []evidence.Snapshot
	caseSnapshotsErr error
}

// resolve describes the instance, identifies the caller, reads an earlier
// record of the case and, for a case ID the caller chose, looks for snapshots
// an unrecorded earlier run took, all at once: one round trip.
func (r *Responder) resolve(ctx context.Context, req Request, log *slog.Logger) (*target, error) {
	var (
		t            target
		wg           sync.WaitGroup
		descErr      error
		idErr        error
		callerErr    error
		priorErr     error
		reservations []types.Reservation
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		out, err := r.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{req.InstanceID}})
		if err != nil {
			descErr = err
			return
		}
		reservations = out.Reservations
	}()
	go func() {
		defer wg.Done()
		out, err := r.Clients.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			idErr = err
			return
		}
		t.actor = aws.ToString(out.Arn)
		if r.Clients.CallerSTS != nil {
			t.actingAs = t.actor
			caller, err := r.Clients.CallerSTS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				callerErr = err
				return
			}
			t.actor = aws.ToString(caller.Arn)
		}
	}()
	go func() {
		defer wg.Done()
		t.prior, priorErr = evidence.LoadManifest(ctx, r.Store, req.CaseID)
	}()
	if req.CaseIDGiven && !req.DryRun && slices.Contains(req.planNames(), (step.Snapshots{}).Name()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.caseSnapshots, t.caseSnapshotsErr = step.CaseSnapshots(ctx, r.Clients.EC2, req.CaseID, req.InstanceID)
		}()
	}
	wg.Wait()

	switch {
	case cloud.IsErrorCode(descErr, "InvalidInstanceID.NotFound"):
		return nil, fmt.Errorf("%w: %s does not exist in region %s of this account (check --region and --role-arn): %v",
			ErrInstanceNotFound, req.InstanceID, r.Clients.Region, descErr)
	case cloud.IsErrorCode(descErr, "InvalidInstanceID.Malformed"):
		return nil, &InputError{Err: fmt.Errorf("instance ID %s: %w", req.InstanceID, descErr)}
	case descErr != nil:
		return nil, fmt.Errorf("describe instance %s: %w", req.InstanceID, descErr)
	case idErr != nil:
		return nil, fmt.Errorf("identify the caller (sts:GetCallerIdentity): %w", idErr)
	case callerErr != nil:
		return nil, fmt.Errorf("identify the caller behind the assumed role: %w", callerErr)
	}
	if req.Actor != "" {
		if t.actingAs == "" {
			t.actingAs = t.actor
		}
		t.actor = req.Actor
	}
	for _, res := range reservations {
		for _, inst := range res.Instances {
			if aws.ToString(inst.InstanceId) == req.InstanceID {
				t.instance, t.accountID = inst, aws.ToString(res.OwnerId)
			}
		}
	}
	if t.instance.InstanceId == nil {
		return nil, fmt.Errorf("%w: %s is not in the DescribeInstances answer of region %s", ErrInstanceNotFound, req.InstanceID, r.Clients.Region)
	}
	if st := t.instance.State; st != nil && (st.Name == types.InstanceStateNameTerminated || st.Name == types.InstanceStateNameShuttingDown) {
		return nil, fmt.Errorf("%w: %s is %s; its volumes and memory are gone", ErrInstanceTerminated, req.InstanceID, st.Name)
	}
	switch {
	case errors.Is(priorErr, evidence.ErrNotFound):
		t.prior = nil
	case priorErr != nil:
		// Containment must not wait on the evidence store: go on, and let
		// the artifact writes report what fails.
		log.Warn("could not read an earlier record of the case; continuing as a new run", "error", priorErr)
		t.prior = nil
	case t.prior.InstanceID != req.InstanceID:
		return nil, &InputError{Err: fmt.Errorf("%w: case %s is about %s, not %s", ErrCaseMismatch, req.CaseID, t.prior.InstanceID, req.InstanceID)}
	}
	return &t, nil
}

// Status reads the record of a case.
func Status(ctx context.Context, store evidence.Store, caseID string) (*evidence.Manifest, error) {
	if err := evidence.ValidateCaseID(caseID); err != nil {
		return nil, &InputError{Err: err}
	}
	return evidence.LoadManifest(ctx, store, caseID)
}
