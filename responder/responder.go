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
	// SnapshotLock is how snapshot-lock locks the case snapshots (a
	// playbook's preserve.snapshot_lock; zero: governance, 90 days).
	SnapshotLock step.SnapshotLock
	// CloudRecord is how cloudtrail-events and findings read the cloud's
	// own record (a playbook's cloud_record; zero: a 24-hour window).
	CloudRecord step.CloudRecord
	// Progress, when set, receives the progress of long steps.
	Progress func(step.Progress)
	// StepDone, when set, receives each step's record as the step ends.
	StepDone func(evidence.StepRecord)
	// Actor, when set, is who asked for the response as the caller
	// authenticated them (the IAM principal of an API call, the analyst of
	// a Security Hub custom action). The identity the toolkit runs as is
	// then recorded as acting_as.
	Actor string
	// ProtectedTag is the key of the tag that protects an instance
	// (DefaultProtectedTag when empty): an instance whose tag says "true"
	// is refused (ErrProtected) unless Force, which the record then names.
	ProtectedTag string
	Force        bool
	// BlastRadius is the limit of instances contained per account in any
	// 60 minutes (evidence.DefaultBlastRadius when 0), enforced through the evidence
	// store (evidence.TakeBlastSlot). BlastRadiusRaised says the caller
	// raised it for this run: the record names the actor who did.
	BlastRadius       int
	BlastRadiusRaised bool
	// Stage runs one stage of a staged collection (the Lambda's state
	// machine); KeepStatus leaves the case status as it was (such a run
	// proves nothing about containment).
	Stage      step.CollectStage
	KeepStatus bool
	// StatusOfCase makes the run's status that of the whole case: each
	// step's newest record, from earlier runs too, counts. A run that ends
	// a response begun in earlier runs (the Lambda's close stage) would
	// otherwise claim what its few steps proved, and hide an earlier run's
	// failed containment.
	StatusOfCase bool
	// Described, when set, is the instance as the caller already described
	// it (a fleet's batched DescribeInstances): the response uses it and
	// does not describe the instance again.
	Described *DescribedInstance
}

// DescribedInstance is an instance as DescribeInstances answered, with the
// account that owns it (its reservation's OwnerId).
type DescribedInstance struct {
	Instance  types.Instance
	AccountID string
}

// Clients are the AWS clients a response uses: EC2 and STS in the workload
// account, SNS and the caller's STS with the caller's own credentials.
type Clients struct {
	EC2       cloud.EC2
	STS       cloud.STS
	CallerSTS cloud.STS // nil when no role is assumed
	SNS       cloud.SNS
	Region    string
	// AutoScaling, ELBv2 and ELB serve the auto-scaling and load-balancers
	// steps (workload account).
	AutoScaling cloud.AutoScaling
	ELBv2       cloud.ELBv2
	ELB         cloud.ELB
	// IAM revokes the role credentials delivered to the suspect instance
	// (workload account).
	IAM cloud.IAM
	// CloudTrail, GuardDuty and SecurityHub serve the cloudtrail-events and
	// findings steps (workload account).
	CloudTrail  cloud.CloudTrail
	GuardDuty   cloud.GuardDuty
	SecurityHub cloud.SecurityHubFindings
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
		SSM: c.SSM, Presign: c.Presign, IAM: c.IAM,
		AutoScaling: c.AutoScaling, ELBv2: c.ELBv2, ELB: c.ELB,
		CloudTrail: c.CloudTrail, GuardDuty: c.GuardDuty, SecurityHub: c.SecurityHubFindings,
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
	// Signer, when set, signs every record a run saves (--signing-key).
	Signer evidence.Signer
	Log    *slog.Logger
	Now    func() time.Time
	// BlastLedger, when set, takes the blast-radius slots (a fleet shares
	// one between its engines, so that its responses do not race each
	// other for slots); nil: evidence.TakeBlastSlot.
	BlastLedger *evidence.BlastLedger
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
	// ErrCaseBusy: another run of the case is running (it holds the case's
	// run lock); nothing was done. The error wraps *evidence.BusyError.
	ErrCaseBusy = errors.New("another run of the case is running")
	// ErrProtected: the instance carries the protection tag and the request
	// did not force the response; nothing was done.
	ErrProtected = errors.New("instance is protected")
	// ErrBlastRadius: the account's last 60 minutes hold the blast radius's
	// slots; nothing was done. The error wraps *evidence.BlastRadiusError.
	ErrBlastRadius = errors.New("blast radius reached")
	// ErrInstanceBusy: another case is at work on the instance (another
	// fleet, another respond); nothing was done. The error wraps
	// *evidence.InstanceBusyError, and matches ErrCaseBusy as well: a
	// caller that waits for a busy case (the Lambda retries it) waits for
	// a busy instance the same way.
	ErrInstanceBusy = errors.New("another case is at work on the instance")
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
	if err := req.SnapshotLock.Validate(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := req.CloudRecord.Validate(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if req.BlastRadius < 0 || req.BlastRadius > evidence.MaxBlastRadius {
		errs = multierror.Append(errs, fmt.Errorf("blast radius %d: want 1 to %d instances per account in any 60 minutes", req.BlastRadius, evidence.MaxBlastRadius))
	}
	if err := validateTopicARN(req.TopicARN); err != nil {
		errs = multierror.Append(errs, err)
	}
	if req.ProtectedTag != "" && !validTagKey(req.ProtectedTag) {
		errs = multierror.Append(errs, fmt.Errorf("protected tag key %q: want 1 to 128 characters, not starting with \"aws:\" (reserved)", req.ProtectedTag))
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
	// Paced clients serve the responses that began first first.
	ctx = cloud.WithResponseOrder(ctx)
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
	forced, err := t.checkProtected(req)
	if err != nil {
		log.Error("response refused", "error", err)
		return nil, err
	}
	if forced != nil {
		log.Warn("protected instance: the response goes on because it was forced", "forced_by", forced.By, "tag", forced.Tag)
	}
	// The instance is claimed before a blast-radius slot is taken: a run
	// refused because another case is at work on the instance takes none.
	if err := r.claimInstance(ctx, req, t, log); err != nil {
		log.Error("response could not start", "error", err)
		return nil, err
	}
	// The slot is taken before the case's run lock: a run refused here
	// leaves no lock that would hold the case.
	blast, err := r.takeBlastSlot(ctx, req, t, plan, log)
	if err != nil {
		log.Error("response refused", "error", err)
		return nil, err
	}
	release, err := r.holdCase(ctx, req, t, log)
	if err != nil {
		log.Error("response could not start", "error", err)
		return nil, err
	}
	defer release()
	if err := r.describeContinued(ctx, req, t); err != nil {
		log.Error("response could not start", "error", err)
		return nil, err
	}
	env := &step.Env{
		Target: step.Target{
			CaseID: req.CaseID, CaseIDGiven: req.CaseIDGiven, Instance: t.instance,
			AccountID: t.accountID, Region: r.Clients.Region, Actor: t.actor, DryRun: req.DryRun,
			Prior: t.prior, Run: t.run,
			CaseSnapshots: t.caseSnapshots, CaseSnapshotsErr: t.caseSnapshotsErr,
			TaggedGroups: t.taggedGroups,
		},
		Clients: step.Clients{
			EC2: r.Clients.EC2, SNS: r.Clients.SNS, IAM: r.Clients.IAM, TopicARN: req.TopicARN, Store: r.Store,
			SSM: r.Clients.SSM, Presign: r.Clients.Presign, Staging: r.Clients.Staging,
			PresignValidUntil: r.Clients.PresignValidUntil,
			AutoScaling:       r.Clients.AutoScaling, ELBv2: r.Clients.ELBv2, ELB: r.Clients.ELB,
			CloudTrail: r.Clients.CloudTrail, GuardDuty: r.Clients.GuardDuty, SecurityHub: r.Clients.SecurityHub,
		},
		CloudRecord: req.CloudRecord,
		Collection:  req.Collection, SnapshotLock: req.SnapshotLock, Progress: req.Progress, StepDone: req.StepDone, Log: log, Now: r.Now, Stage: req.Stage,
	}
	records := step.Execute(ctx, env, plan, req.StepTimeout)

	res := &Result{Steps: records, DryRun: req.DryRun, Interrupted: env.Interrupted()}
	res.Status = evidence.CaseStatus(statusRecords(req, t.prior, records), evidence.Outcome{DryRun: req.DryRun, Interrupted: res.Interrupted})
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
			Forced: forced, BlastRadius: blast,
		},
		Steps: records, Artifacts: env.Artifacts(), Snapshots: append(env.Snapshots(), t.unrecordedSnapshots(env.Target.Run)...), SetStatus: !req.KeepStatus,
		Tool: Tool(), Location: r.Store.Location(req.CaseID, ""),
	})
	if !req.DryRun {
		if err := evidence.RepairSignedRecord(ctx, r.Store, t.record, r.Signer); err != nil {
			errs = multierror.Append(errs, err)
			log.Error("interrupted save not completed", "error", err)
		}
		if err := evidence.SaveSignedRun(ctx, r.Store, res.Manifest, r.Signer); errors.Is(err, evidence.ErrNotSigned) {
			errs = multierror.Append(errs, err)
			log.Error("case record saved unsigned", "error", err)
		} else if err != nil {
			res.SaveErr = err
			errs = multierror.Append(errs, fmt.Errorf("save case record: %w", err))
			log.Error("case record not saved", "error", err)
		}
	}
	res.Err = errlist.OneLine(errs)
	log.Info("response finished", "status", res.Status, "location", res.Manifest.Location)
	return res, nil
}

// statusRecords are the step records a run's status is made of: its own,
// or with StatusOfCase the newest record of every step of the case.
func statusRecords(req Request, prior *evidence.Manifest, records []evidence.StepRecord) []evidence.StepRecord {
	if !req.StatusOfCase || prior == nil {
		return records
	}
	newest := map[string]int{}
	var all []evidence.StepRecord
	for _, r := range append(slices.Clone(prior.Steps), records...) {
		if i, ok := newest[r.Name]; ok {
			all[i] = r
			continue
		}
		newest[r.Name] = len(all)
		all = append(all, r)
	}
	return all
}

// target is what resolve found.
type target struct {
	instance  types.Instance
	accountID string
	actor     string
	actingAs  string
	// record is the case as the store holds it; prior its newest record
	// (nil for a new case) and run the number this run takes.
	record *evidence.Record
	prior  *evidence.Manifest
	run    int
	// caseSnapshots: see step.Target.CaseSnapshots.
	caseSnapshots    []evidence.Snapshot
	caseSnapshotsErr error
	// taggedGroups: see step.Target.TaggedGroups.
	taggedGroups *[]types.SecurityGroup
}

// plansGroups reports whether the plan prepares one of the toolkit's
// security groups (whose lookups resolve then makes ahead).
func (req *Request) plansGroups() bool {
	for _, n := range req.planNames() {
		switch n {
		case (step.QuarantineGroup{}).Name(), (step.UntrackingGroup{}).Name(), (step.ForensicAccessGroup{}).Name():
			return true
		}
	}
	return false
}

// resolve describes the instance, identifies the caller, reads an earlier
// record of the case, reads the toolkit's security groups (when the plan
// prepares one) and, for a case ID the caller chose, looks for snapshots an
// unrecorded earlier run took, all at once: one round trip.
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
	wg.Add(2)
	if d := req.Described; d != nil {
		reservations = []types.Reservation{{OwnerId: aws.String(d.AccountID), Instances: []types.Instance{d.Instance}}}
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := r.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{req.InstanceID}}, cloud.Urgent)
			if err != nil {
				descErr = err
				return
			}
			reservations = out.Reservations
		}()
	}
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
		t.record, priorErr = evidence.LoadRecord(ctx, r.Store, req.CaseID)
	}()
	if req.plansGroups() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups, err := step.ReadTaggedGroups(ctx, r.Clients.EC2)
			if err != nil {
				// The group steps look their groups up themselves.
				log.Warn("could not read the toolkit's security groups ahead; the group steps will", "error", err)
				return
			}
			t.taggedGroups = &groups
		}()
	}
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
	if priorErr != nil {
		// Containment must not wait on the evidence store: go on, and let
		// the artifact writes report what fails.
		log.Warn("could not read an earlier record of the case; continuing as a new run", "error", priorErr)
		t.record = &evidence.Record{Run: 1}
	}
	if err := t.continueRecord(req); err != nil {
		return nil, err
	}
	if n := t.record.Interrupted; n > 0 {
		log.Warn("the save of an earlier run stopped before manifest.json; continuing from its history copy", "run", n)
	}
	return &t, nil
}

// describeContinued describes the instance again when the caller gave its
// description (Request.Described) and the case has earlier runs: a run of
// the case may have changed the instance since the caller described it
// (another run of a fleet, finished while this one waited), and the steps
// must start from what is, not from what was.
func (r *Responder) describeContinued(ctx context.Context, req Request, t *target) error {
	if req.Described == nil || t.prior == nil {
		return nil
	}
	out, err := r.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{req.InstanceID}}, cloud.Urgent)
	if err != nil {
		return fmt.Errorf("describe instance %s again (its case has earlier runs): %w", req.InstanceID, err)
	}
	for _, res := range out.Reservations {
		for _, inst := range res.Instances {
			if aws.ToString(inst.InstanceId) == req.InstanceID {
				t.instance = inst
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s is not in the DescribeInstances answer of region %s", ErrInstanceNotFound, req.InstanceID, r.Clients.Region)
}

// continueRecord makes t continue a record: its newest manifest and the
// run number, for the instance the record is about.
func (t *target) continueRecord(req Request) error {
	t.prior, t.run = t.record.Manifest, t.record.Run
	if t.prior != nil && t.prior.InstanceID != req.InstanceID {
		return &InputError{Err: fmt.Errorf("%w: case %s is about %s, not %s", ErrCaseMismatch, req.CaseID, t.prior.InstanceID, req.InstanceID)}
	}
	return nil
}

// unrecordedSnapshots are the snapshots tagged with the case (found when
// the caller named the case) that neither the record nor this run holds:
// taken by a run that did not record its end. They are recorded with this
// run, so that every snapshot of the case is in its record.
func (t *target) unrecordedSnapshots(run int) []evidence.Snapshot {
	var out []evidence.Snapshot
	for _, s := range t.caseSnapshots {
		if t.prior != nil && slices.ContainsFunc(t.prior.Snapshots, func(p evidence.Snapshot) bool { return p.SnapshotID == s.SnapshotID }) {
			continue
		}
		s.Run = run
		out = append(out, s)
	}
	return out
}

// claimInstance claims the instance for the case (evidence.ClaimInstance),
// so that no other case acts on it at the same time. A dry run changes
// nothing and claims nothing. When the store cannot be reached, containment
// goes on without the claim, as without the run lock.
func (r *Responder) claimInstance(ctx context.Context, req Request, t *target, log *slog.Logger) error {
	if req.DryRun {
		return nil
	}
	err := evidence.ClaimInstance(ctx, r.Store, evidence.InstanceClaim{
		AccountID: t.accountID, Region: r.Clients.Region, InstanceID: req.InstanceID, CaseID: req.CaseID, Holder: t.actor, Taken: r.now(),
	}, r.now)
	var busy *evidence.InstanceBusyError
	switch {
	case errors.As(err, &busy):
		return instanceBusy{err: err}
	case err != nil:
		log.Warn("could not claim the instance for the case; continuing without the claim", "error", err)
	}
	return nil
}

// instanceBusy is ErrInstanceBusy with the claim that holds the instance.
type instanceBusy struct{ err error }

func (e instanceBusy) Error() string { return ErrInstanceBusy.Error() + ": " + e.err.Error() }
func (e instanceBusy) Unwrap() error { return e.err }
func (e instanceBusy) Is(target error) bool {
	return target == ErrInstanceBusy || target == ErrCaseBusy
}

// holdCase takes the lock of this run of the case (evidence.ClaimRun), so
// that no other run of the case acts at the same time, and keeps it alive
// until release. A dry run changes and stores nothing, and takes no lock.
// When another run holds the case, the response does not start
// (*evidence.BusyError). When the store cannot be reached, containment
// goes on without the lock: it must not wait on the evidence store.
func (r *Responder) holdCase(ctx context.Context, req Request, t *target, log *slog.Logger) (release func(), err error) {
	if req.DryRun {
		return func() {}, nil
	}
	lock, rec, err := evidence.ClaimRun(ctx, r.Store, t.record, req.CaseID, t.actor, r.now)
	var busy *evidence.BusyError
	switch {
	case errors.As(err, &busy):
		return nil, fmt.Errorf("%w: %w", ErrCaseBusy, err)
	case err != nil:
		log.Warn("could not take the case's run lock; continuing without it", "error", err)
		return func() {}, nil
	}
	t.record = rec
	if err := t.continueRecord(req); err != nil {
		return nil, err
	}
	return lock.KeepAlive(ctx, r.Store, r.now), nil
}

// Status reads the record of a case.
func Status(ctx context.Context, store evidence.Store, caseID string) (*evidence.Manifest, error) {
	if err := evidence.ValidateCaseID(caseID); err != nil {
		return nil, &InputError{Err: err}
	}
	return evidence.LoadManifest(ctx, store, caseID)
}
