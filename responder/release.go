package responder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// ReleasePlaybook is the playbook name a release run is recorded under.
const ReleasePlaybook = evidence.ReleasePlaybook

// ReleaseRequest is one release of a case: restore what its containment
// changed, from the before-states the case recorded.
type ReleaseRequest struct {
	CaseID string
	// InstanceID, when set, must be the instance the case is about.
	InstanceID  string
	DryRun      bool
	StepTimeout time.Duration
	// Actor: see Request.Actor.
	Actor string
	// KeepCredentialRevocation leaves the credential revocation on the
	// instance's role (the sessions issued to the instance before the
	// response stay denied); the release run's record says it was kept.
	KeepCredentialRevocation bool
	// TopicARN, when set, is the SNS topic the release is notified to, as
	// a response is (step notify), with the release's status.
	TopicARN string
	// CannotPassRoles: the caller's credentials may not pass an instance
	// role (the Lambda's member role). The instance profile the case removed
	// is then not associated: the release is release-incomplete and its
	// record names the command a person runs with the release role
	// (step.Target.CannotPassRoles).
	CannotPassRoles bool
}

// Errors of a release that could not start, besides those of Respond
// (ErrInstanceNotFound, ErrInstanceTerminated, ErrCaseMismatch, ErrCaseBusy).
var (
	// ErrCaseNotFound: the store holds no record of the case.
	ErrCaseNotFound = errors.New("case not found")
	// ErrRecordTampered: manifest.json does not match the seal of its last
	// run; the before-states it holds cannot be trusted. It wraps
	// evidence.ErrSealMismatch.
	ErrRecordTampered = errors.New("refused: the case record was changed after it was sealed")
)

// Validate checks a release request without calling AWS.
func (req *ReleaseRequest) Validate() error {
	var errs *multierror.Error
	if err := evidence.ValidateCaseID(req.CaseID); err != nil {
		errs = multierror.Append(errs, err)
	}
	if req.InstanceID != "" {
		if err := ValidateInstanceID(req.InstanceID); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := validateTopicARN(req.TopicARN); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := errlist.OneLine(errs); err != nil {
		return &InputError{Err: err}
	}
	return nil
}

// topicARN is the shape of an SNS topic ARN (SNS API reference, CreateTopic:
// a name of 1 to 256 letters, digits, hyphens and underscores; a FIFO
// topic's ends in .fifo).
var topicARN = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)

// validateTopicARN refuses a topic that is not an SNS topic ARN ("" is
// none), before the response or release changes anything and the
// notification finds out.
func validateTopicARN(arn string) error {
	if arn == "" || topicARN.MatchString(arn) {
		return nil
	}
	return fmt.Errorf("topic %q: want an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", arn)
}

// Release restores what a case's containment changed, from the
// before-state each containment step recorded the first time it acted
// (evidence.Manifest.FirstBefore), in the reverse order of containment, the
// instance's tag last. It never touches evidence: artifacts, snapshots and
// their copies stay as they are. The release is recorded as a new run of the
// case (playbook "release"), whose status is evidence.ReleaseStatus: released
// only when every step read back the recorded state.
//
// It does not start (an error, nothing changed) when the case has no record
// (ErrCaseNotFound), its record does not match its seal (ErrRecordTampered),
// it is about another instance, account or Region (ErrCaseMismatch, an
// InputError), the instance is gone (ErrInstanceNotFound,
// ErrInstanceTerminated), another run holds the case (ErrCaseBusy), or
// another case is at work on the instance (ErrInstanceBusy). A
// change of the instance since the response that a step cannot reconcile
// (an interface recorded no longer attached, another instance profile
// associated) is refused by that step, which says so; the run is then
// release-incomplete.
func (r *Responder) Release(ctx context.Context, req ReleaseRequest) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("case_id", req.CaseID)
	started := r.now()
	log.Info("release started", "dry_run", req.DryRun)

	m, err := r.sealedRecord(ctx, req)
	if err != nil {
		log.Error("release could not start", "error", err)
		return nil, err
	}
	log = log.With("instance_id", m.InstanceID)
	plan := releasePlan(m, req.TopicARN)
	rreq := Request{InstanceID: m.InstanceID, CaseID: req.CaseID, CaseIDGiven: true, DryRun: req.DryRun, Actor: req.Actor,
		Plan: append(planNames(plan), ReleasePlaybook)} // never the default plan: no snapshot lookup
	t, err := r.resolve(ctx, rreq, log)
	if err == nil {
		err = r.sameCase(t, m)
	}
	if err == nil {
		// Another case at work on the instance (a response that started
		// meanwhile) would be undone behind its read-back.
		err = r.claimInstance(ctx, rreq, t, log)
	}
	if err != nil {
		log.Error("release could not start", "error", err)
		return nil, err
	}
	unlock, err := r.holdCase(ctx, rreq, t, log)
	if err != nil {
		log.Error("release could not start", "error", err)
		return nil, err
	}
	defer unlock()
	if t.prior.LastRun() != m.LastRun() {
		// Another run recorded itself meanwhile: release what it left.
		if m, err = r.sealedRecord(ctx, req); err != nil {
			log.Error("release could not start", "error", err)
			return nil, err
		}
		t.prior, plan = m, releasePlan(m, req.TopicARN)
	}

	env := &step.Env{
		Target: step.Target{
			CaseID: req.CaseID, CaseIDGiven: true, Instance: t.instance,
			AccountID: t.accountID, Region: r.Clients.Region, Actor: t.actor, DryRun: req.DryRun,
			Prior: t.prior, Run: t.run, KeepCredentialRevocation: req.KeepCredentialRevocation,
			Release: true, CannotPassRoles: req.CannotPassRoles,
		},
		Clients: step.Clients{EC2: r.Clients.EC2, IAM: r.Clients.IAM, SNS: r.Clients.SNS, TopicARN: req.TopicARN, Store: r.Store,
			AutoScaling: r.Clients.AutoScaling, ELBv2: r.Clients.ELBv2, ELB: r.Clients.ELB},
		Log: log, Now: r.Now,
	}
	records := step.Execute(ctx, env, plan, req.StepTimeout)
	res := &Result{Steps: records, DryRun: req.DryRun, Interrupted: env.Interrupted()}
	res.Status = evidence.ReleaseStatus(records, evidence.Outcome{DryRun: req.DryRun, Interrupted: res.Interrupted})
	var errs *multierror.Error
	for _, rec := range records {
		if rec.Status == evidence.StatusFailed {
			errs = multierror.Append(errs, fmt.Errorf("%s: %s", rec.Name, rec.Error))
		}
	}
	res.Manifest = evidence.AppendRun(t.prior, evidence.Manifest{}, evidence.Revision{
		Run: evidence.Run{
			Number: t.run, Actor: t.actor, ActingAs: t.actingAs, Playbook: ReleasePlaybook,
			Status: res.Status, StartedAt: started, EndedAt: r.now(),
		},
		Steps: records, SetStatus: true,
		Tool: Tool(), Location: r.Store.Location(req.CaseID, ""),
	})
	if !req.DryRun {
		if err := evidence.RepairSignedRecord(ctx, r.Store, t.record, r.Signer); err != nil {
			errs = multierror.Append(errs, err)
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
	log.Info("release finished", "status", res.Status)
	return res, nil
}

// sealedRecord reads the case record and checks it against the seal of its
// last run, as verify does: a release restores the before-states the record
// holds, and must not restore ones someone wrote into it. A save that
// stopped before manifest.json leaves a newer history copy, which
// evidence.LoadRecord takes when it matches its own seal or has none; a
// release takes it only with its seal.
func (r *Responder) sealedRecord(ctx context.Context, req ReleaseRequest) (*evidence.Manifest, error) {
	rec, err := evidence.LoadRecord(ctx, r.Store, req.CaseID)
	if err != nil {
		if errors.Is(err, evidence.ErrSealMismatch) {
			return nil, fmt.Errorf("%w: %w", ErrRecordTampered, err)
		}
		return nil, fmt.Errorf("read the case record: %w", err)
	}
	if rec.Manifest == nil {
		return nil, fmt.Errorf("%w: %s has no record in %s", ErrCaseNotFound, req.CaseID, r.Store.Location(req.CaseID, ""))
	}
	if rec.Interrupted != 0 {
		// A later run's history copy whose save stopped: LoadRecord checked
		// it against its seal, if any. Without one, anyone who can write
		// the case folder could have written it.
		if _, err := r.Store.Get(ctx, req.CaseID, evidence.SealName(rec.Interrupted)); err != nil {
			if errors.Is(err, evidence.ErrNotFound) {
				return nil, fmt.Errorf("%w (run responder verify --case-id %s): %w: run %d's copy %s has no seal "+
					"(its save stopped before the seal, or someone else wrote it): the before-states it holds cannot be trusted",
					ErrRecordTampered, req.CaseID, evidence.ErrSealMismatch, rec.Interrupted, evidence.HistoryName(rec.Interrupted))
			}
			return nil, fmt.Errorf("read the case record: %w", err)
		}
	} else {
		if _, err := evidence.CheckSealed(ctx, r.Store, req.CaseID); err != nil {
			if errors.Is(err, evidence.ErrSealMismatch) {
				return nil, fmt.Errorf("%w (run responder verify --case-id %s): %w", ErrRecordTampered, req.CaseID, err)
			}
			return nil, fmt.Errorf("read the case record: %w", err)
		}
	}
	m := rec.Manifest
	if req.InstanceID != "" && m.InstanceID != req.InstanceID {
		return nil, &InputError{Err: fmt.Errorf("%w: case %s is about %s, not %s", ErrCaseMismatch, req.CaseID, m.InstanceID, req.InstanceID)}
	}
	if r.Clients.Region != "" && m.Region != "" && m.Region != r.Clients.Region {
		return nil, &InputError{Err: fmt.Errorf("%w: case %s is about %s in %s, not in %s (check --region)", ErrCaseMismatch, req.CaseID, m.InstanceID, m.Region, r.Clients.Region)}
	}
	return m, nil
}

// sameCase refuses an instance of another account than the record's: the
// same instance ID there is another instance.
func (r *Responder) sameCase(t *target, m *evidence.Manifest) error {
	if t.prior == nil {
		return fmt.Errorf("%w: %s (the record could not be read again)", ErrCaseNotFound, m.CaseID)
	}
	if m.AccountID != "" && t.accountID != m.AccountID {
		return &InputError{Err: fmt.Errorf("%w: case %s is about %s of account %s; these credentials see %s in account %s (check --role-arn)",
			ErrCaseMismatch, m.CaseID, m.InstanceID, m.AccountID, m.InstanceID, t.accountID)}
	}
	return nil
}

// returnsToService are the release steps that put the instance back in
// service (its Auto Scaling group, its load balancers), and restoresNetwork
// those that give it back its network: the first run after the second, and
// only when it was restored. An instance back in service but still cut off
// fails its health checks, and its group would replace it (terminate it:
// termination protection does not stop Auto Scaling).
var (
	returnsToService = []string{step.AutoScaling{}.Name(), step.AutoScaling{Detach: true}.Name(), step.LoadBalancers{}.Name()}
	restoresNetwork  = []string{step.Quarantine{}.Name(), step.NetworkACL{}.Name()}
)

// releasePlan is what a release of the case runs: every containment step the
// case recorded a before-state for (a Releaser), in the reverse order of
// their first record (the order of containment), except that the steps
// that return the instance to service come after every other and the
// instance's tag last, one after the other; then, with a topic, the
// notification of the release's status.
func releasePlan(m *evidence.Manifest, topicARN string) []step.Step {
	var names []string
	for _, s := range m.Steps {
		if slices.Contains(names, s.Name) {
			continue
		}
		if _, ok := m.FirstBefore(s.Name); ok {
			names = append(names, s.Name)
		}
	}
	slices.Reverse(names)
	for _, last := range append(slices.Clone(returnsToService), (step.CaseTag{}).Name()) {
		if i := slices.Index(names, last); i >= 0 {
			names = append(slices.Delete(names, i, i+1), last)
		}
	}
	tag := (step.CaseTag{}).Name()
	network := &networkRestore{}
	var plan []step.Step
	for _, n := range names {
		s, err := step.Lookup(n)
		if err != nil {
			continue // a step this version does not know: nothing to release with
		}
		rel, ok := s.(step.Releaser)
		if !ok {
			continue
		}
		before, _ := m.FirstBefore(n)
		rs := releaseStep{Releaser: rel, name: n, before: before, tag: n == tag, network: network}
		if len(plan) > 0 {
			rs.after = plan[len(plan)-1].Name()
		}
		plan = append(plan, rs)
	}
	if topicARN != "" {
		plan = append(plan, step.Notify{})
	}
	return plan
}

func planNames(plan []step.Step) []string {
	names := make([]string, len(plan))
	for i, s := range plan {
		names[i] = s.Name()
	}
	return names
}

// releaseStep runs a containment step's Release with its recorded
// before-state, as a step of the release run (the runner records its calls
// and timing). Its Containment is what it read back: held when the
// instance is in the recorded before-state.
type releaseStep struct {
	step.Releaser
	name   string
	before json.RawMessage
	after  string // the step before it in the release, "" for the first
	tag    bool
	// network is what the release's network steps read back, shared by the
	// steps of one release.
	network *networkRestore
}

// networkRestore records the network release steps that did not read back
// their before-state.
type networkRestore struct {
	mu     sync.Mutex
	failed []string
}

func (n *networkRestore) fail(name string) {
	n.mu.Lock()
	n.failed = append(n.failed, name)
	n.mu.Unlock()
}

func (n *networkRestore) failures() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.failed)
}

func (s releaseStep) Name() string      { return s.name }
func (s releaseStep) Phase() step.Phase { return step.Contain }
func (s releaseStep) Isolates() bool    { return !s.tag }

// ReportsContainment: the tag says what the release proved, and still runs
// when the release is cancelled, to say so.
func (s releaseStep) ReportsContainment() bool { return s.tag }

func (s releaseStep) Needs() []string {
	if s.after == "" {
		return nil
	}
	return []string{s.after}
}

func (s releaseStep) Run(ctx context.Context, env *step.Env) step.Result {
	if failed := s.network.failures(); len(failed) > 0 && slices.Contains(returnsToService, s.name) {
		return step.Skipped("not returned to service: the release of "+strings.Join(failed, ", ")+
			" did not read back the instance's network as it was, and an instance in service but cut off would fail its health checks "+
			"and be replaced; release again once the network is restored", nil).Held(false)
	}
	res := s.release(ctx, env)
	if slices.Contains(restoresNetwork, s.name) && (res.Status == evidence.StatusFailed ||
		res.Containment == evidence.ContainmentNotHeld || (res.Containment == evidence.ContainmentUnchecked && !env.Target.DryRun)) {
		s.network.fail(s.name)
	}
	return res
}

func (s releaseStep) release(ctx context.Context, env *step.Env) step.Result {
	res := s.Release(ctx, env, s.before)
	if res.Containment != "" || res.Status != evidence.StatusSkipped {
		return res
	}
	if strings.HasPrefix(res.Reason, "dry run:") {
		return res.Unchecked() // a change a dry run cannot check
	}
	// Nothing to restore: the instance was so before the response.
	return res.Held(true)
}
