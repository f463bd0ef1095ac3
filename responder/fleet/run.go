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
	Fleet       *evidence.Fleet
	Interrupted bool
	// SaveErr: the fleet record could not be stored (the cases may be).
	SaveErr error
}

// job is one instance to respond to.
type job struct {
	scope *ScopePlan
	inst  responder.DescribedInstance
	index int // in the record's targets
	// prior is the target as an earlier run of the fleet left it.
	prior evidence.FleetTarget
}

// Run responds to every instance of the plan: the instances of one account
// and Region concurrently (at most MaxConcurrency at once) through the
// scope's one engine, every scope at once. One instance's failure does not
// stop the others. The fleet record is saved before anything is changed
// (every target pending) and when the run ends, also when ctx is cancelled:
// the targets not finished then say so. An instance whose case an earlier
// run of the fleet contained is not acted on again; the others continue
// their case (FleetCaseID), which the engine resumes without doubling a
// snapshot or a change.
func Run(ctx context.Context, plan *Plan, o Options) *Result {
	o.defaults()
	started := o.Now().UTC()
	f, err := evidence.LoadFleet(ctx, o.Store, o.FleetID)
	if err != nil {
		if !errors.Is(err, evidence.ErrNotFound) {
			o.Log.Warn("could not read the fleet's earlier record; starting a new one", "fleet_id", o.FleetID, "error", err)
		}
		f = &evidence.Fleet{FleetID: o.FleetID}
	}
	run := len(f.Runs) + 1
	f.Tool = responder.Tool()
	f.Runs = append(f.Runs, evidence.FleetRun{Number: run, Actor: o.Actor, StartedAt: started})
	jobs := plant(f, plan, run)
	ledger := &evidence.BlastLedger{Store: o.Store}
	for _, sc := range plan.Scopes {
		if sc.Engine != nil {
			sc.Engine.BlastLedger = ledger
		}
	}
	res := &Result{Fleet: f}
	f.UpdatedAt = started
	if err := o.save(ctx, f); err != nil {
		// Containment does not wait on the store; the cases keep their own records.
		o.Log.Error("fleet record not saved before the run", "fleet_id", o.FleetID, "error", err)
		res.SaveErr = err
	}
	o.execute(ctx, f, jobs, run, started)
	res.Interrupted = ctx.Err() != nil
	f.Runs[len(f.Runs)-1].EndedAt = o.Now().UTC()
	f.Runs[len(f.Runs)-1].Interrupted = res.Interrupted
	f.UpdatedAt = o.Now().UTC()
	res.SaveErr = o.save(ctx, f)
	if res.SaveErr != nil {
		o.Log.Error("fleet record not saved", "fleet_id", o.FleetID, "error", res.SaveErr)
	}
	return res
}

// save stores a revision of the fleet record, also when ctx is cancelled
// (a Ctrl-C still records what finished). A dry run stores nothing.
func (o *Options) save(ctx context.Context, f *evidence.Fleet) error {
	if o.Request.DryRun {
		return nil
	}
	return evidence.SaveFleet(context.WithoutCancel(ctx), o.Store, f)
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
// that this plan does not name keeps its outcome) and returns the jobs.
func plant(f *evidence.Fleet, plan *Plan, run int) []job {
	index := map[string]int{}
	for i, t := range f.Targets {
		index[t.InstanceID] = i
	}
	prior := map[string]evidence.FleetTarget{}
	for _, t := range f.Targets {
		prior[t.InstanceID] = t
	}
	put := func(t evidence.FleetTarget) int {
		if i, ok := index[t.InstanceID]; ok {
			f.Targets[i] = t
			return i
		}
		index[t.InstanceID] = len(f.Targets)
		f.Targets = append(f.Targets, t)
		return len(f.Targets) - 1
	}
	var jobs []job
	for _, sc := range plan.Scopes {
		for _, in := range sc.Instances {
			id := aws.ToString(in.Instance.InstanceId)
			i := put(evidence.FleetTarget{InstanceID: id, AccountID: in.AccountID, Region: sc.Region,
				CaseID: evidence.FleetCaseID(f.FleetID, id), Status: evidence.FleetPending, Run: run})
			jobs = append(jobs, job{scope: sc, inst: in, index: i, prior: prior[id]})
		}
	}
	for _, m := range plan.Missing {
		m.Run = run
		if p, ok := prior[m.InstanceID]; ok && p.CaseID != "" {
			// Its case stays what it says; this run could not reach it.
			p.Reason = fmt.Sprintf("run %d: %s (%s)", run, m.Status, m.Reason)
			m = p
		}
		put(m)
	}
	sort.SliceStable(f.Targets, func(i, j int) bool { return targetLess(f.Targets[i], f.Targets[j]) })
	for k, t := range f.Targets {
		index[t.InstanceID] = k
	}
	for k := range jobs {
		jobs[k].index = index[aws.ToString(jobs[k].inst.Instance.InstanceId)]
	}
	return jobs
}

func targetLess(a, b evidence.FleetTarget) bool {
	if a.AccountID != b.AccountID {
		return a.AccountID < b.AccountID
	}
	if a.Region != b.Region {
		return a.Region < b.Region
	}
	return a.InstanceID < b.InstanceID
}

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
func (o *Options) execute(ctx context.Context, f *evidence.Fleet, jobs []job, run int, started time.Time) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
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
					out := o.respond(ctx, f.FleetID, j, run, started, t)
					mu.Lock()
					f.Targets[j.index] = out
					mu.Unlock()
					t.add(func(c *Counts) {
						c.Done++
						if out.Status == evidence.CaseContained && out.Run != run {
							c.Isolated++ // contained by an earlier run
						}
						if Open(out) {
							c.Failed++
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
}

// respond runs one instance's response (or finds its case contained
// already) and returns its target as the record keeps it.
func (o *Options) respond(ctx context.Context, fleetID string, j job, run int, started time.Time, t *tally) evidence.FleetTarget {
	id := aws.ToString(j.inst.Instance.InstanceId)
	tg := evidence.FleetTarget{InstanceID: id, AccountID: j.inst.AccountID, Region: j.scope.Region, CaseID: evidence.FleetCaseID(fleetID, id), Run: run}
	if ctx.Err() != nil {
		tg.Status, tg.Reason = evidence.FleetPending, "the run was interrupted before this instance's response started"
		return tg
	}
	if done, ok := o.containedBefore(ctx, tg, j.prior); ok {
		return done
	}
	req := o.Request
	req.InstanceID, req.CaseID, req.CaseIDGiven = id, tg.CaseID, true
	inst := j.inst
	req.Described = &inst
	req.StepDone = t.stepDone
	res, err := j.scope.Engine.Respond(ctx, req)
	if err != nil {
		return startFailed(ctx, tg, err)
	}
	tg.Status = res.Status
	if at, ok := isolatedAt(res.Steps); ok {
		tg.SecondsToIsolation = at.Sub(started).Seconds()
	}
	gapsAndReasons(&tg, res)
	return tg
}

// containedBefore finds an instance's case contained by an earlier run: its
// record says so, and the instance is not acted on again.
func (o *Options) containedBefore(ctx context.Context, t, prior evidence.FleetTarget) (evidence.FleetTarget, bool) {
	if o.Request.DryRun {
		return t, false
	}
	m, err := evidence.LoadManifest(ctx, o.Store, t.CaseID)
	if err != nil || m.Status != evidence.CaseContained {
		return t, false
	}
	t.Status = m.Status
	t.Run, t.SecondsToIsolation, t.EvidenceGaps = prior.Run, prior.SecondsToIsolation, prior.EvidenceGaps
	t.Reason = fmt.Sprintf("contained by run %d of its case; not acted on again", m.LastRun())
	return t, true
}

// startFailed is the target of a response that did not start.
func startFailed(ctx context.Context, t evidence.FleetTarget, err error) evidence.FleetTarget {
	t.Reason = oneLine(err.Error())
	switch {
	case errors.Is(err, responder.ErrInstanceNotFound):
		t.Status = evidence.FleetNotFound
	case errors.Is(err, responder.ErrInstanceTerminated):
		t.Status = evidence.FleetTerminated
	case ctx.Err() != nil:
		t.Status = evidence.FleetPending
		t.Reason = "the run was interrupted before this instance's response started: " + t.Reason
	default:
		t.Status = evidence.FleetNotStarted
	}
	return t
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
func gapsAndReasons(t *evidence.FleetTarget, res *responder.Result) {
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

// Open reports whether a target is not proven contained (or acquired, for
// a plan without containment).
func Open(t evidence.FleetTarget) bool {
	return t.Status != evidence.CaseContained && t.Status != evidence.CaseAcquired
}
