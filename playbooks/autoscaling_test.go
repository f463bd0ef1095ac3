package playbooks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder/step"
)

// TestContainmentAutoScaling: a playbook that runs quarantine gets the Auto
// Scaling step of containment.auto_scaling (standby by default), detach
// gets the detach step, off gets neither; a contradiction is an error.
func TestContainmentAutoScaling(t *testing.T) {
	const contain = "name: mine\nsummary: s\ntradeoff: t\nsteps:\n  - quarantine-group\n  - quarantine\n"
	for _, tc := range []struct {
		name, yaml string
		mode, step string // step "": neither
	}{
		{"default", contain, playbooks.AutoScalingStandby, "auto-scaling"},
		{"standby", contain + "containment: {auto_scaling: standby}\n", playbooks.AutoScalingStandby, "auto-scaling"},
		{"detach", contain + "containment: {auto_scaling: detach}\n", playbooks.AutoScalingDetach, "auto-scaling-detach"},
		{"detach listed", strings.Replace(contain, "  - quarantine\n", "  - quarantine\n  - auto-scaling-detach\n", 1) + "containment: {auto_scaling: detach}\n",
			playbooks.AutoScalingDetach, "auto-scaling-detach"},
		{"off", contain + "containment: {auto_scaling: off}\n", playbooks.AutoScalingOff, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := playbooks.Parse([]byte(tc.yaml), "mine.yaml")
			if err != nil {
				t.Fatal(err)
			}
			names := p.Names()
			for _, s := range []string{"auto-scaling", "auto-scaling-detach"} {
				if want := s == tc.step; slices.Contains(names, s) != want {
					t.Errorf("steps %v: %s listed %t, want %t", names, s, !want, want)
				}
			}
			if p.AutoScaling != tc.mode {
				t.Errorf("AutoScaling %q, want %q", p.AutoScaling, tc.mode)
			}
			if _, err := step.PlanAfter(names, p.After()); err != nil {
				t.Error(err)
			}
		})
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown value", contain + "containment: {auto_scaling: sometimes}\n", `auto_scaling "sometimes"`},
		{"off with the step listed", strings.Replace(contain, "  - quarantine\n", "  - quarantine\n  - auto-scaling\n", 1) + "containment: {auto_scaling: \"off\"}\n",
			"auto_scaling is off, but steps lists auto-scaling"},
		{"standby with the detach step", strings.Replace(contain, "  - quarantine\n", "  - quarantine\n  - auto-scaling-detach\n", 1),
			"auto_scaling is standby, but steps lists auto-scaling-detach"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := playbooks.Parse([]byte(tc.yaml), "mine.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	for _, p := range playbooks.All() {
		if p.AutoScaling != playbooks.AutoScalingStandby || !slices.Contains(p.Names(), "load-balancers") {
			t.Errorf("built-in playbook %s: auto_scaling %q, steps %v", p.Name, p.AutoScaling, p.Names())
		}
	}
}
