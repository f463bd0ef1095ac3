package step

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// DefaultStepTimeout bounds one step, so that a hung call cannot hold the
// response; the steps that wait for it go ahead when it ends.
const DefaultStepTimeout = 5 * time.Minute

// Validate checks a plan: unique names, no cycles, and needs that name
// registered steps. A need that the plan leaves out is an ordering constraint
// with nothing to wait for, so a playbook may run a subset of the steps.
func Validate(plan []Step) error {
	index := map[string]Step{}
	for _, s := range plan {
		if _, dup := index[s.Name()]; dup {
			return fmt.Errorf("plan names step %q twice", s.Name())
		}
		index[s.Name()] = s
	}
	for _, s := range plan {
		for _, n := range awaitsOf(s) {
			if _, known := registry[n]; !known {
				return fmt.Errorf("step %q awaits unknown step %q", s.Name(), n)
			}
		}
		for _, n := range s.Needs() {
			name, ms, ok := strings.Cut(n, ":")
			if !ok {
				continue
			}
			mk, known := registry[name]
			if !known || !slices.Contains(milestonesOf(mk()), ms) {
				return fmt.Errorf("step %q needs %q: no such milestone", s.Name(), n)
			}
		}
	}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("plan has a cycle: %v", append(path, name))
		case 2:
			return nil
		}
		state[name] = 1
		for _, n := range append(index[name].Needs(), awaitsOf(index[name])...) {
			n, _, _ = strings.Cut(n, ":")
			if _, known := registry[n]; !known {
				return fmt.Errorf("step %q needs unknown step %q", name, n)
			}
			if _, ok := index[n]; !ok {
				continue
			}
			if err := visit(n, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		return nil
	}
	for _, s := range plan {
		if err := visit(s.Name(), nil); err != nil {
			return err
		}
	}
	return nil
}

// ReportGrace bounds a report step (and a containment reporter) that runs
// after the response was cancelled: it still says what happened, briefly.
const ReportGrace = 30 * time.Second

// Execute runs a validated plan: every step starts as soon as the steps it
// needs have finished, whatever their outcome, so one failing step never
// stops the others and containment is never held up by evidence it does not
// depend on. Report steps start after every other step. It returns one
// record per step, in plan order.
//
// When ctx is cancelled, steps that have not started are recorded as
// skipped, running steps end as their calls are cancelled, and the response
// is marked interrupted (Env.Interrupted); report steps and containment
// reporters still run, within ReportGrace, so that the notification and the
// instance's tag say so.
func Execute(ctx context.Context, env *Env, plan []Step, timeout time.Duration) []evidence.StepRecord {
	if timeout <= 0 {
		timeout = DefaultStepTimeout
	}
	order := map[string]int{}
	done := map[string]chan struct{}{}
	env.facts.mu.Lock()
	env.facts.milestones = map[string]*milestone{}
	env.facts.done = done
	env.facts.gates = isolationGates(plan)
	for i, s := range plan {
		order[s.Name()] = i
		done[s.Name()] = make(chan struct{})
		for _, m := range milestonesOf(s) {
			ms := &milestone{ch: make(chan struct{})}
			env.facts.milestones[s.Name()+":"+m] = ms
			done[s.Name()+":"+m] = ms.ch
		}
	}
	env.facts.mu.Unlock()
	records := make([]evidence.StepRecord, len(plan))
	finished := make(chan int, len(plan))
	for i, s := range plan {
		go func() {
			// A cancellation stops the waiting, except for a step that
			// speaks of the others: the steps it waits for end quickly once
			// cancelled, and it must see how they ended.
			stop := ctx.Done()
			if speaksOfOthers(s) {
				stop = nil
			}
			for _, n := range waitsOf(s, plan) {
				if done[n] == nil {
					continue // not in this plan
				}
				select {
				case <-done[n]:
				case <-stop:
				}
			}
			records[i] = runStep(ctx, env, s, timeout)
			env.addFinished(records[i], order)
			if env.StepDone != nil {
				env.StepDone(records[i])
			}
			for _, m := range milestonesOf(s) {
				env.Reach(context.WithValue(ctx, stepNameKey{}, s.Name()), m)
			}
			close(done[s.Name()])
			finished <- i
		}()
	}
	for range plan {
		<-finished
	}
	return records
}

// waitsOf names what a step waits for: its needs and, for a report step,
// every step that is not one.
func waitsOf(s Step, plan []Step) []string {
	var waits []string
	if s.Phase() == Report {
		for _, o := range plan {
			if o.Phase() != Report {
				waits = append(waits, o.Name())
			}
		}
	}
	return append(waits, s.Needs()...)
}

// runStep runs one step. A step that speaks of the others (report steps,
// containment reporters) runs even after a cancellation, within
// ReportGrace; any other step that ends after one marks the response
// interrupted.
func runStep(ctx context.Context, env *Env, s Step, timeout time.Duration) evidence.StepRecord {
	if !speaksOfOthers(s) {
		rec := runOne(ctx, env, s, timeout)
		if ctx.Err() != nil {
			env.markInterrupted()
		}
		return rec
	}
	if ctx.Err() == nil {
		return runOne(ctx, env, s, timeout)
	}
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReportGrace)
	defer cancel()
	return runOne(grace, env, s, min(timeout, ReportGrace))
}

func speaksOfOthers(s Step) bool {
	return s.Phase() == Report || reportsContainment(s)
}

// isolates reports whether a step is a containment step (Isolator).
func isolates(s Step) bool {
	i, ok := s.(Isolator)
	return ok && i.Isolates()
}

// reportsContainment reports whether a step is a ContainmentReporter.
func reportsContainment(s Step) bool {
	r, ok := s.(ContainmentReporter)
	return ok && r.ReportsContainment()
}

// EvidenceRetryBound bounds how long an operation of an acquire step that
// containment waits for (the metadata reads, the snapshot request) is
// retried (throttling, 5xx, timeouts) when the clients have a RetryWatch:
// then the step fails, says why, and the containment that waits for it goes
// ahead. A resumed run of the case takes it again. Acquire steps nothing
// isolating waits for (console output and screenshot) keep retrying within
// their step's bound: evidence is not given up to throttling.
const EvidenceRetryBound = 15 * time.Second

// isolationGates names the steps of a plan that a containment step
// (Isolator) needs or awaits.
func isolationGates(plan []Step) map[string]bool {
	gates := map[string]bool{}
	for _, s := range plan {
		if !isolates(s) {
			continue
		}
		for _, n := range append(s.Needs(), awaitsOf(s)...) {
			name, _, _ := strings.Cut(n, ":")
			gates[name] = true
		}
	}
	return gates
}

// Timeouter is a step that may need longer than the runner's bound: the
// collection steps wait for the instance as long as their settings allow.
type Timeouter interface {
	Timeout(env *Env) time.Duration
}

func runOne(ctx context.Context, env *Env, s Step, timeout time.Duration) (rec evidence.StepRecord) {
	if t, ok := s.(Timeouter); ok {
		timeout = max(timeout, t.Timeout(env))
	}
	log := env.Log.With("step", s.Name())
	calls := &cloud.CallLog{}
	sctx, cancel := context.WithTimeout(cloud.WithCallLog(context.WithValue(ctx, stepNameKey{}, s.Name()), calls), timeout)
	defer cancel()
	if s.Phase() == Acquire && env.gatesIsolation(s.Name()) {
		// Containment waits for this evidence step (the instance read, the
		// snapshot request): its retries must not delay isolation.
		sctx = cloud.WithRetryBound(sctx, EvidenceRetryBound)
	}
	rec = evidence.StepRecord{Run: env.Target.Run, Name: s.Name(), Phase: string(s.Phase()), StartedAt: env.now()}
	var res Result
	func() {
		defer func() {
			if p := recover(); p != nil {
				res = Failed(fmt.Errorf("step panicked: %v\n%s", p, debug.Stack()), nil)
			}
		}()
		if err := ctx.Err(); err != nil {
			res = Skipped("response cancelled before the step started: "+err.Error(), nil)
			return
		}
		res = s.Run(sctx, env)
	}()
	rec.EndedAt = env.now()
	rec.Status, rec.Reason = res.Status, res.Reason
	if rec.Status == "" {
		rec.Status = evidence.StatusOK
	}
	if res.Err != nil {
		rec.Status = evidence.StatusFailed
		rec.Error = res.Err.Error()
	}
	if isolates(s) {
		rec.Containment = res.Containment
		if rec.Containment == "" {
			rec.Containment = evidence.ContainmentUnchecked
		}
	}
	rec.Before = rawJSON(res.Before)
	rec.After = rawJSON(res.After)
	rec.Calls = calls.Calls()
	switch rec.Status {
	case evidence.StatusFailed:
		log.Error("step failed", "error", rec.Error, "duration", rec.EndedAt.Sub(rec.StartedAt))
	default:
		log.Info("step "+rec.Status, "reason", rec.Reason, "duration", rec.EndedAt.Sub(rec.StartedAt))
	}
	return rec
}

// Awaits names the steps a step awaits during its run (Awaiter): it
// starts before they finish, but does not finish its work before they do.
func Awaits(s Step) []string { return awaitsOf(s) }

func awaitsOf(s Step) []string {
	if a, ok := s.(Awaiter); ok {
		return a.Awaits()
	}
	return nil
}

func milestonesOf(s Step) []string {
	if m, ok := s.(Milestoner); ok {
		return m.Milestones()
	}
	return nil
}

func rawJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"unencodable": err.Error()})
	}
	return b
}
