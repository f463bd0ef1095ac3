package step

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// registry maps a step name to its constructor. Adding a step means adding its
// file and one line here.
var registry = map[string]func() Step{
	Metadata{}.Name():                func() Step { return Metadata{} },
	ConsoleOutput{}.Name():           func() Step { return ConsoleOutput{} },
	ConsoleScreenshot{}.Name():       func() Step { return ConsoleScreenshot{} },
	Snapshots{}.Name():               func() Step { return Snapshots{} },
	QuarantineGroup{}.Name():         func() Step { return QuarantineGroup{} },
	Quarantine{}.Name():              func() Step { return Quarantine{} },
	UntrackingGroup{}.Name():         func() Step { return UntrackingGroup{} },
	TerminationProtection{}.Name():   func() Step { return TerminationProtection{} },
	ShutdownBehavior{}.Name():        func() Step { return ShutdownBehavior{} },
	StopProtection{}.Name():          func() Step { return StopProtection{} },
	VolumeRetention{}.Name():         func() Step { return VolumeRetention{} },
	ConnectionTracking{}.Name():      func() Step { return ConnectionTracking{} },
	AutoScaling{}.Name():             func() Step { return AutoScaling{} },
	AutoScaling{Detach: true}.Name(): func() Step { return AutoScaling{Detach: true} },
	LoadBalancers{}.Name():           func() Step { return LoadBalancers{} },
	InstanceProfile{}.Name():         func() Step { return InstanceProfile{} },
	CaseTag{}.Name():                 func() Step { return CaseTag{} },
	Notify{}.Name():                  func() Step { return Notify{} },
	ForensicAccessGroup{}.Name():     func() Step { return ForensicAccessGroup{} },
	SSMAccess{}.Name():               func() Step { return SSMAccess{} },
	VolatileData{}.Name():            func() Step { return VolatileData{} },
	MemoryCapture{}.Name():           func() Step { return MemoryCapture{} },
	ForensicAccessClose{}.Name():     func() Step { return ForensicAccessClose{} },
	CredentialRevocation{}.Name():    func() Step { return CredentialRevocation{} },
	NetworkACL{}.Name():              func() Step { return NetworkACL{} },
	SnapshotLocking{}.Name():         func() Step { return SnapshotLocking{} },
	CloudTrailEvents{}.Name():        func() Step { return CloudTrailEvents{} },
	Findings{}.Name():                func() Step { return Findings{} },
}

// recordOnly maps the name of an entry of the case record that no plan runs
// (it is written by other work on the case, like responder preserve) to its
// description, so the report reads it like a step's. Adding one means adding
// its file and one line here.
var recordOnly = map[string]func() Description{
	SnapshotCopyRecord:  describeSnapshotCopy,
	InvestigationRecord: describeInvestigation,
	DiskImageRecord:     describeDiskImage,
}

// DefaultPlan is the standard response: acquire, then contain, then notify.
var DefaultPlan = []string{
	"metadata", "console-output", "console-screenshot", "snapshots", "snapshot-lock", "cloudtrail-events", "findings",
	"quarantine-group", "untracking-group", "quarantine", "auto-scaling", "load-balancers", "termination-protection", "shutdown-behavior",
	"stop-protection", "delete-on-termination", "connection-tracking", "instance-profile", "credential-revocation", "case-tag", "notify",
}

// Lookup returns the step with the given name.
func Lookup(name string) (Step, error) {
	mk, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown step %q (known: %v)", name, Names())
	}
	return mk(), nil
}

// Plan builds and validates a plan from step names.
func Plan(names []string) ([]Step, error) { return PlanAfter(names, nil) }

// PlanAfter builds and validates a plan from step names, with extra ordering
// a playbook adds: after[name] lists steps (or milestones) that must finish
// before the named step starts, on top of the step's own Needs. This is how
// one set of steps runs in either order of collection and isolation.
func PlanAfter(names []string, after map[string][]string) ([]Step, error) {
	for name := range after {
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("ordering names step %q, which the plan does not run", name)
		}
	}
	if slices.Contains(names, autoScalingStandby) && slices.Contains(names, autoScalingDetach) {
		return nil, fmt.Errorf("the plan runs both %s and %s: choose one way out of the Auto Scaling group", autoScalingStandby, autoScalingDetach)
	}
	steps := make([]Step, 0, len(names))
	var isolators []string
	for _, n := range names {
		s, err := Lookup(n)
		if err != nil {
			return nil, err
		}
		if isolates(s) {
			isolators = append(isolators, n)
		}
		steps = append(steps, s)
	}
	plan := make([]Step, 0, len(names))
	for _, s := range steps {
		extra := slices.Clone(after[s.Name()])
		if reportsContainment(s) {
			// It tags what containment proved: after every containment step.
			extra = append(extra, isolators...)
		}
		if len(extra) > 0 {
			s = ordered{Step: s, after: extra}
		}
		plan = append(plan, s)
	}
	if err := Validate(plan); err != nil {
		return nil, err
	}
	return plan, nil
}

// Names lists every registered step, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ordered is a step with extra needs from a playbook. It keeps the step's
// milestones; Release is looked up by name (Lookup), never through it.
type ordered struct {
	Step
	after []string
}

func (o ordered) Needs() []string { return append(slices.Clone(o.Step.Needs()), o.after...) }

func (o ordered) Milestones() []string { return milestonesOf(o.Step) }

func (o ordered) Awaits() []string { return awaitsOf(o.Step) }

func (o ordered) Isolates() bool { return isolates(o.Step) }

func (o ordered) ReportsContainment() bool { return reportsContainment(o.Step) }

func (o ordered) Timeout(env *Env) time.Duration {
	if t, ok := o.Step.(Timeouter); ok {
		return t.Timeout(env)
	}
	return 0
}
