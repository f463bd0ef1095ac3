package step

import (
	"fmt"
	"sort"
)

// registry maps a step name to its constructor. Adding a step means adding its
// file and one line here.
var registry = map[string]func() Step{
	Metadata{}.Name():              func() Step { return Metadata{} },
	ConsoleOutput{}.Name():         func() Step { return ConsoleOutput{} },
	ConsoleScreenshot{}.Name():     func() Step { return ConsoleScreenshot{} },
	Snapshots{}.Name():             func() Step { return Snapshots{} },
	QuarantineGroup{}.Name():       func() Step { return QuarantineGroup{} },
	Quarantine{}.Name():            func() Step { return Quarantine{} },
	TerminationProtection{}.Name(): func() Step { return TerminationProtection{} },
	ShutdownBehavior{}.Name():      func() Step { return ShutdownBehavior{} },
	InstanceProfile{}.Name():       func() Step { return InstanceProfile{} },
	CaseTag{}.Name():               func() Step { return CaseTag{} },
	Notify{}.Name():                func() Step { return Notify{} },
}

// DefaultPlan is the standard response: acquire, then contain, then notify.
var DefaultPlan = []string{
	"metadata", "console-output", "console-screenshot", "snapshots",
	"quarantine-group", "quarantine", "termination-protection", "shutdown-behavior",
	"instance-profile", "case-tag", "notify",
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
func Plan(names []string) ([]Step, error) {
	plan := make([]Step, 0, len(names))
	for _, n := range names {
		s, err := Lookup(n)
		if err != nil {
			return nil, err
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
