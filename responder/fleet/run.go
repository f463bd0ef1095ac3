package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// DefaultMaxConcurrency is how many responses of one account and Region run
// at once by default: enough that the pacing of the scope's EC2 client (its
// token buckets), not the number of goroutines, bounds the rate. A response
// spends most of its time waiting on AWS, so a goroutine costs little.
const DefaultMaxConcurrency = 256

// Options configure a fleet run.
type Options struct {
	FleetID string
	// Request is the response every instance gets (plan, notification,
	// safeguards); InstanceID, CaseID and Described are set per instance.
	Request responder.Request
	// MaxConcurrency bounds the responses at work at once in each account
	// and Region (DefaultMaxConcurrency when 0).
	MaxConcurrency int
	// Store keeps the fleet record (the cases' store).
	Store evidence.Store
	// Actor is who runs the fleet, for the record (may be empty).
	Actor string
	// Progress, when set, is called as the counts change: a quarantine
	// read back held, a snapshot set requested, a response ended.
	Progress func(Counts)
	Log      *slog.Logger
	Now      func() time.Time
}

// Counts are a fleet run's progress.
type Counts struct {
	Total int
	Done  int
	// Isolated: the quarantine read back held. SnapshotsRequested: the
	// snapshot set was requested. Failed: not contained, or could not
	// start.
	Isolated           int
	SnapshotsRequested int
	Failed             int
	Elapsed            time.Duration
}

// Result is the outcome of a fleet run.
type Result struct {
	// Record is the fleet's closed record of this run: every target with
	// its case and outcome.
	Record      *evidence.FleetRecord
	Interrupted bool
	// SaveErr: the fleet record could not be stored (the cases may be).
	SaveErr error
	// Location is where the fleet record is.
	Location string
}

// ErrNotInPlan: the targets name instances that the fleet's recorded plan
// does not have; nothing was done.
var ErrNotInPlan = errors.New("instances not in the fleet's plan")

// job is one instance to respond to.
type job struct {
	scope *ScopePlan
	inst  responder.DescribedInstance
	// prior is the target as the fleet's last closed record left it.
	prior evidence.FleetCase
}

// Run responds to every instance of the plan: the instances of one account
// and Region concurrently (at most MaxConcurrency at once) through the
// scope's one engine, every scope at once. One instance's failure does not
// stop the others. The fleet's plan (evidence.OpenFleet: every case) is
// stored before anything is changed, and its outcome (evidence.CloseFleet)
// when the run ends, also when ctx is cancelled. A later run of the fleet
// keeps its recorded plan: an instance of the plan not found now is
// reported so, and one the plan lacks is refused (ErrNotInPlan) before
// anything is done. An instance whose case is contained is not acted on
// again; the others continue their case (FleetCaseID), which the engine
// resumes without doubling a snapshot or a change.
func Run(ctx context.Context, plan *Plan, o Options) (*Result, error) {
	o.defaults()
	started := o.Now().UTC()
	cases, err := o.cases(ctx, plan)
	if err != nil {
		return nil, err
	}
	res := &Result{Location: o.Store.Location(evidence.FleetsFolder, o.FleetID+"/")}
	rec := evidence.FleetRecord{FleetID: o.FleetID, Actor: o.Actor, Source: "cli", Playbook: o.Request.PlanName,
		RequestedAt: started.Format(time.RFC3339), OpenedAt: started, Cases: cases}
	if !o.Request.DryRun {
		stored, err := evidence.OpenFleet(context.WithoutCancel(ctx), o.Store, rec)
		switch {
		case errors.Is(err, evidence.ErrFleetConflict):
			return nil, err
		case err != nil:
			// Containment does not wait on the store; the cases keep their own records.
			o.Log.Error("fleet plan not stored before the run", "fleet_id", o.FleetID, "error", err)
			res.SaveErr = err
		default:
			rec = *stored
		}
	}
	ledger := &evidence.BlastLedger{Store: o.Store}
	for _, sc := range plan.Scopes {
		sc.Engine.BlastLedger = ledger
	}
	outcomes := o.execute(ctx, o.jobs(ctx, plan), started)
	res.Interrupted = ctx.Err() != nil
	res.Record = closeRecord(rec, plan, outcomes, o.Now().UTC())
	if !o.Request.DryRun {
		if _, err := evidence.CloseFleet(context.WithoutCancel(ctx), o.Store, *res.Record); err != nil {
			o.Log.Error("fleet record not stored", "fleet_id", o.FleetID, "error", err)
			res.SaveErr = err
		}
	}
	return res, nil
}

// closeRecord is the closed record of a run: every case of the plan with
// its outcome (a case of the plan this run did not find says so), then the
// targets of this run that have no case (not found, terminated).
func closeRecord(rec evidence.FleetRecord, plan *Plan, outcomes map[string]evidence.FleetCase, at time.Time) *evidence.FleetRecord {
	missing := map[string]evidence.FleetCase{}
	for _, m := range plan.Missing {
		missing[m.InstanceID] = m
	}
	closed := rec
	closed.ClosedAt, closed.Counts, closed.Cases = &at, map[string]int{}, nil
	for _, c := range rec.Cases {
		t, ok := outcomes[c.InstanceID]
		if !ok {
			t = c
			t.Status, t.Reason = NotFound, "not among the instances this run found"
			if m, ok := missing[c.InstanceID]; ok {
				t.Status, t.Reason = m.Status, m.Reason
			}
		}
		closed.Cases = append(closed.Cases, t)
		delete(missing, c.InstanceID)
	}
	for _, m := range plan.Missing {
		if _, left := missing[m.InstanceID]; left {
			closed.Cases = append(closed.Cases, m)
		}
	}
	sort.SliceStable(closed.Cases, func(i, j int) bool { return caseLess(closed.Cases[i], closed.Cases[j]) })
	for _, c := range closed.Cases {
		closed.Counts[c.Status]++
	}
	return &closed
}

func caseLess(a, b evidence.FleetCase) bool {
	if a.AccountID != b.AccountID {
		return a.AccountID < b.AccountID
	}
	if a.Region != b.Region {
		return a.Region < b.Region
	}
	return a.InstanceID < b.InstanceID
}

// cases are the fleet's plan: the recorded one when the fleet has one, else
// this plan's instances. An instance of this plan that the recorded plan
// lacks is ErrNotInPlan.
func (o *Options) cases(ctx context.Context, plan *Plan) ([]evidence.FleetCase, error) {
	var now []evidence.FleetCase
	for _, sc := range plan.Scopes {
		for _, in := range sc.Instances {
			id := aws.ToString(in.Instance.InstanceId)
			now = append(now, evidence.FleetCase{CaseID: evidence.FleetCaseID(o.FleetID, id), InstanceID: id, AccountID: in.AccountID, Region: sc.Region})
		}
	}
	sort.Slice(now, func(i, j int) bool { return caseLess(now[i], now[j]) })
	stored, err := evidence.LoadFleet(ctx, o.Store, o.FleetID)
	if err != nil {
		return now, nil // a new fleet (or a store not reached: OpenFleet says)
	}
	planned := map[string]bool{}
	for _, c := range stored.Cases {
		planned[c.InstanceID] = true
	}
	var extra []string
	for _, c := range now {
		if !planned[c.InstanceID] {
			extra = append(extra, c.InstanceID)
		}
	}
	if len(extra) > 0 {
		return nil, fmt.Errorf("%w: fleet %s was opened on %s with %d cases; %s not among them: run the fleet again on its own targets, or start another (a new --fleet-id)",
			ErrNotInPlan, o.FleetID, stored.OpenedAt.Format(time.RFC3339), len(stored.Cases), strings.Join(extra, ", "))
	}
	return stored.Cases, nil
}

// jobs are the plan's instances to respond to, with what the fleet's last
// closed record said of each.
func (o *Options) jobs(ctx context.Context, plan *Plan) []job {
	prior := map[string]evidence.FleetCase{}
	if last, err := evidence.LastFleetClose(ctx, o.Store, o.FleetID); err == nil {
		for _, c := range last.Cases {
			prior[c.InstanceID] = c
		}
	}
	var jobs []job
	for _, sc := range plan.Scopes {
		for _, in := range sc.Instances {
			jobs = append(jobs, job{scope: sc, inst: in, prior: prior[aws.ToString(in.Instance.InstanceId)]})
		}
	}
	return jobs
}

func (o *Options) defaults() {
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// plant puts the plan's targets into the record (a target of an earlier run

// tally keeps a run's Counts and reports each change.
type tally struct {
	mu      sync.Mutex
	counts  Counts
	started time.Time
	now     func() time.Time
	report  func(Counts)
}

func (t *tally) add(f func(*Counts)) {
	t.mu.Lock()
	f(&t.counts)
	t.counts.Elapsed = t.now().Sub(t.started)
	c := t.counts
	t.mu.Unlock()
	if t.report != nil {
		t.report(c)
	}
}

// stepDone counts a step of a response as it ends: the quarantine read
// back held (isolated), the snapshot set requested.
func (t *tally) stepDone(rec evidence.StepRecord) {
	switch {
	case rec.Name == (step.Quarantine{}).Name() && rec.Containment == evidence.ContainmentHeld && rec.Status == evidence.StatusOK:
		t.add(func(c *Counts) { c.Isolated++ })
	case rec.Name == (step.Snapshots{}).Name() && rec.Status == evidence.StatusOK && !strings.HasPrefix(rec.Reason, "dry run"):
		t.add(func(c *Counts) { c.SnapshotsRequested++ })
	}
}

// execute runs the jobs: per scope, MaxConcurrency workers.
// execute runs the jobs: per scope, MaxConcurrency workers. It returns each
// instance's outcome.
func (o *Options) execute(ctx context.Context, jobs []job, started time.Time) map[string]evidence.FleetCase {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]evidence.FleetCase{}
	)
	t := &tally{counts: Counts{Total: len(jobs)}, started: started, now: o.Now, report: o.Progress}
	byScope := map[*ScopePlan][]job{}
	for _, j := range jobs {
		byScope[j.scope] = append(byScope[j.scope], j)
	}
	for _, scopeJobs := range byScope {
		queue := make(chan job)
		for range min(o.MaxConcurrency, len(scopeJobs)) {
			wg.Go(func() {
				for j := range queue {
					c, earlier := o.respond(ctx, j, started, t)
					mu.Lock()
					out[c.InstanceID] = c
					mu.Unlock()
					t.add(func(n *Counts) {
						n.Done++
						if earlier {
							n.Isolated++ // contained by an earlier run
						}
						if Open(c) {
							n.Failed++
						}
					})
				}
			})
		}
		wg.Go(func() {
			defer close(queue)
			for _, j := range scopeJobs {
				queue <- j
			}
		})
	}
	wg.Wait()
	return out
}

// respond runs one instance's response, or finds its case contained
// already (earlier true), and returns its outcome.
func (o *Options) respond(ctx context.Context, j job, started time.Time, t *tally) (evidence.FleetCase, bool) {
	id := aws.ToString(j.inst.Instance.InstanceId)
	c := evidence.FleetCase{InstanceID: id, AccountID: j.inst.AccountID, Region: j.scope.Region, CaseID: evidence.FleetCaseID(o.FleetID, id)}
	if ctx.Err() != nil {
		c.Status, c.Reason = Pending, "the run was interrupted before this instance's response started"
		return c, false
	}
	if done, ok := o.containedBefore(ctx, c, j.prior); ok {
		return done, true
	}
	req := o.Request
	req.InstanceID, req.CaseID, req.CaseIDGiven = id, c.CaseID, true
	inst := j.inst
	req.Described = &inst
	req.StepDone = t.stepDone
	res, err := j.scope.Engine.Respond(ctx, req)
	if err != nil {
		return startFailed(ctx, c, err), false
	}
	c.Status = res.Status
	if at, ok := isolatedAt(res.Steps); ok {
		c.SecondsToIsolation = at.Sub(started).Seconds()
	}
	gapsAndReasons(&c, res)
	return c, false
}

// containedBefore finds an instance's case contained by an earlier run: its
// record says so, and the instance is not acted on again.
func (o *Options) containedBefore(ctx context.Context, c, prior evidence.FleetCase) (evidence.FleetCase, bool) {
	if o.Request.DryRun {
		return c, false
	}
	m, err := evidence.LoadManifest(ctx, o.Store, c.CaseID)
	if err != nil || m.Status != evidence.CaseContained {
		return c, false
	}
	c.Status = m.Status
	c.SecondsToIsolation, c.EvidenceGaps = prior.SecondsToIsolation, prior.EvidenceGaps
	c.Reason = fmt.Sprintf("contained by run %d of its case; not acted on again", m.LastRun())
	return c, true
}

// startFailed is the outcome of a response that did not start.
func startFailed(ctx context.Context, c evidence.FleetCase, err error) evidence.FleetCase {
	c.Reason = oneLine(err.Error())
	switch {
	case errors.Is(err, responder.ErrInstanceNotFound):
		c.Status = NotFound
	case errors.Is(err, responder.ErrInstanceTerminated):
		c.Status = Terminated
	case ctx.Err() != nil:
		c.Status = Pending
		c.Reason = "the run was interrupted before this instance's response started: " + c.Reason
	default:
		c.Status = NotStarted
	}
	return c
}

// isolatedAt is when the quarantine read back its state held, if it did.
func isolatedAt(steps []evidence.StepRecord) (time.Time, bool) {
	for _, s := range steps {
		if s.Name == (step.Quarantine{}).Name() && s.Containment == evidence.ContainmentHeld && s.Status == evidence.StatusOK {
			return s.EndedAt, true
		}
	}
	return time.Time{}, false
}

// gapsAndReasons says what a finished response left open: the containment
// steps that did not hold (not contained), or the other steps that failed
// (evidence gaps).
func gapsAndReasons(t *evidence.FleetCase, res *responder.Result) {
	var open []string
	for _, s := range res.Steps {
		switch {
		case s.Containment != "" && (s.Containment != evidence.ContainmentHeld || s.Status == evidence.StatusFailed):
			open = append(open, fmt.Sprintf("%s (%s): %s", s.Name, s.Containment, firstOf(s.Error, s.Reason)))
		case s.Status == evidence.StatusFailed:
			t.EvidenceGaps = append(t.EvidenceGaps, s.Name)
		}
	}
	if res.SaveErr != nil {
		t.EvidenceGaps = append(t.EvidenceGaps, "case record not saved: "+res.SaveErr.Error())
	}
	switch {
	case len(open) > 0:
		t.Reason = oneLine("still open: " + strings.Join(open, "; "))
	case res.Err != nil:
		t.Reason = oneLine(res.Err.Error())
	}
}

// oneLine folds an error's lines and indents (a multierror's list) into
// one line, for a table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "* ", "")), " ")
}
