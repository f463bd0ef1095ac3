package step

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// fakeStep is a step for runner tests: it records when it ran.
type fakeStep struct {
	name  string
	phase Phase
	needs []string
	run   func() Result
	log   *[]string
	mu    *sync.Mutex
}

func (s fakeStep) Name() string    { return s.name }
func (s fakeStep) Phase() Phase    { return s.phase }
func (s fakeStep) Needs() []string { return s.needs }
func (s fakeStep) Run(ctx context.Context, env *Env) Result {
	s.mu.Lock()
	*s.log = append(*s.log, s.name)
	s.mu.Unlock()
	if s.run != nil {
		return s.run()
	}
	return OK("done", nil, nil)
}

func quietEnv() *Env {
	return &Env{Target: Target{CaseID: "case-1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestExecuteOrdersByNeedsAndNeverStopsOnFailure(t *testing.T) {
	var (
		log []string
		mu  sync.Mutex
	)
	mk := func(name string, phase Phase, needs []string, run func() Result) Step {
		return fakeStep{name: name, phase: phase, needs: needs, run: run, log: &log, mu: &mu}
	}
	// slow-evidence ends only once isolate has run: were isolate held until
	// slow-evidence ends, slow-evidence would time out and fail.
	isolated := make(chan struct{})
	slow := stepFunc{fakeStep: fakeStep{name: "slow-evidence", phase: Acquire, log: &log, mu: &mu}, fn: func(ctx context.Context) Result {
		select {
		case <-isolated:
			return OK("", nil, nil)
		case <-ctx.Done():
			return Failed(ctx.Err(), nil)
		}
	}}
	plan := []Step{
		mk("report", Report, nil, nil),
		slow,
		mk("disk", Acquire, nil, func() Result { return Failed(errors.New("boom"), nil) }),
		mk("isolate", Contain, []string{"disk"}, func() Result { close(isolated); return OK("done", nil, nil) }),
		mk("panics", Contain, nil, func() Result { panic("bug") }),
	}
	recs := Execute(context.Background(), quietEnv(), plan, 10*time.Second)
	status := map[string]string{}
	for i, r := range recs {
		if r.Name != plan[i].Name() {
			t.Fatalf("records not in plan order: %v", recs)
		}
		status[r.Name] = r.Status
	}
	if status["slow-evidence"] != "ok" {
		t.Errorf("isolate waited for a step it does not need: slow-evidence %s (%s)", status["slow-evidence"], recs[1].Error)
	}
	want := map[string]string{"report": "ok", "disk": "failed", "isolate": "ok", "panics": "failed"}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("%s: %s, want %s", k, status[k], v)
		}
	}
	pos := map[string]int{}
	for i, n := range log {
		pos[n] = i
	}
	if pos["isolate"] < pos["disk"] {
		t.Error("isolate ran before the step it needs")
	}
	if pos["report"] != len(log)-1 {
		t.Errorf("report did not run last: %v", log)
	}
	if !strings.Contains(recs[4].Error, "panicked: bug") {
		t.Errorf("panic recorded as %q", recs[4].Error)
	}
}

func TestExecuteTimesOutAStep(t *testing.T) {
	var (
		log []string
		mu  sync.Mutex
	)
	hang := fakeStep{name: "hang", phase: Acquire, log: &log, mu: &mu}
	plan := []Step{stepFunc{fakeStep: hang, fn: func(ctx context.Context) Result {
		<-ctx.Done()
		return Failed(ctx.Err(), nil)
	}}}
	recs := Execute(context.Background(), quietEnv(), plan, 20*time.Millisecond)
	if recs[0].Status != evidence.StatusFailed || !strings.Contains(recs[0].Error, "deadline") {
		t.Fatalf("hung step: %+v", recs[0])
	}
}

type stepFunc struct {
	fakeStep
	fn func(ctx context.Context) Result
}

func (s stepFunc) Run(ctx context.Context, env *Env) Result { return s.fn(ctx) }

func TestValidate(t *testing.T) {
	var (
		log []string
		mu  sync.Mutex
	)
	mk := func(name string, needs ...string) Step {
		return fakeStep{name: name, phase: Contain, needs: needs, log: &log, mu: &mu}
	}
	for _, tc := range []struct {
		name string
		plan []Step
		want string
	}{
		{"duplicate", []Step{mk("metadata"), mk("metadata")}, "twice"},
		{"cycle", []Step{mk("metadata", "snapshots"), mk("snapshots", "metadata")}, "cycle"},
		{"unknown need", []Step{mk("metadata", "format-disk")}, "unknown step"},
		{"need left out is fine", []Step{mk("quarantine", "metadata")}, ""},
	} {
		err := Validate(tc.plan)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Plan(DefaultPlan); err != nil {
		t.Fatalf("default plan: %v", err)
	}
	if _, err := Plan([]string{"snapshots", "rm-rf"}); err == nil {
		t.Fatal("a plan with an unknown step was accepted")
	}
}

// isolatorStep is a containment step for runner tests.
type isolatorStep struct{ fakeStep }

func (isolatorStep) Isolates() bool { return true }

// A containment step that says nothing of its read-back (or panics) is
// recorded unchecked, never held: the status is not made of "no error".
func TestContainmentWithoutReadBackIsUnchecked(t *testing.T) {
	var (
		log []string
		mu  sync.Mutex
	)
	plan := []Step{
		isolatorStep{fakeStep{name: "silent", phase: Contain, log: &log, mu: &mu}},
		isolatorStep{fakeStep{name: "panics", phase: Contain, log: &log, mu: &mu, run: func() Result { panic("bug") }}},
		isolatorStep{fakeStep{name: "proved", phase: Contain, log: &log, mu: &mu, run: func() Result { return OK("", nil, nil).Held(true) }}},
		fakeStep{name: "evidence", phase: Acquire, log: &log, mu: &mu, run: func() Result { return OK("", nil, nil).Held(true) }},
	}
	recs := Execute(context.Background(), quietEnv(), plan, time.Second)
	want := map[string]string{"silent": evidence.ContainmentUnchecked, "panics": evidence.ContainmentUnchecked,
		"proved": evidence.ContainmentHeld, "evidence": ""}
	for _, r := range recs {
		if r.Containment != want[r.Name] {
			t.Errorf("%s: containment %q, want %q", r.Name, r.Containment, want[r.Name])
		}
	}
	if got := evidence.CaseStatus(recs, evidence.Outcome{}); got != evidence.CasePartiallyContained {
		t.Errorf("status %s, want %s", got, evidence.CasePartiallyContained)
	}
}

// Cancelled midway: the steps not started are skipped, the response is
// interrupted, and a report step still runs and sees every other step's end.
func TestCancelledResponseIsInterruptedAndStillReports(t *testing.T) {
	var (
		log []string
		mu  sync.Mutex
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := quietEnv()
	var seen string
	plan := []Step{
		fakeStep{name: "cancels", phase: Acquire, log: &log, mu: &mu, run: func() Result { cancel(); return OK("", nil, nil) }},
		isolatorStep{fakeStep{name: "isolate", phase: Contain, needs: []string{"cancels"}, log: &log, mu: &mu}},
		fakeStep{name: "report", phase: Report, log: &log, mu: &mu, run: func() Result { seen = env.Status(); return OK("", nil, nil) }},
	}
	recs := Execute(ctx, env, plan, time.Second)
	if !env.Interrupted() || seen != evidence.CaseInterrupted {
		t.Fatalf("interrupted %t, the report step saw %q", env.Interrupted(), seen)
	}
	if recs[1].Status != evidence.StatusSkipped || recs[1].Containment != evidence.ContainmentUnchecked {
		t.Errorf("isolate: %+v", recs[1])
	}
	if recs[2].Status != evidence.StatusOK {
		t.Errorf("report: %+v", recs[2])
	}
}

// Only the evidence containment waits for has its retries bounded: the
// console output and screenshot keep retrying under throttling, so that
// evidence is not given up to it.
func TestIsolationGatesOfTheDefaultPlan(t *testing.T) {
	plan, err := Plan(DefaultPlan)
	if err != nil {
		t.Fatal(err)
	}
	gates := isolationGates(plan)
	for _, name := range []string{"metadata", "snapshots", "quarantine-group", "untracking-group"} {
		if !gates[name] {
			t.Errorf("%s: containment waits for it, but its retries are not bounded", name)
		}
	}
	for _, name := range []string{"console-output", "console-screenshot"} {
		if gates[name] {
			t.Errorf("%s: nothing isolating waits for it, but its retries are bounded (evidence lost to throttling)", name)
		}
	}
}
