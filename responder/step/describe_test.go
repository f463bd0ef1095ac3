package step

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/hashicorp/go-multierror"
)

// TestEveryStepDescribesItself keeps the report complete: every registered
// step, and every record-only entry, says how the record reads it (a view of
// its before and after, or explicitly none), what its failure means and, for
// a step that stores evidence, what its skip means. Adding a step is one file
// plus one registry line; forgetting its Describe fails here.
func TestEveryStepDescribesItself(t *testing.T) {
	for _, name := range Names() {
		s, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := s.(Describer)
		if !ok {
			t.Errorf("step %s has no Describe method: say how the report reads it (see describe.go)", name)
			continue
		}
		if err := checkDescription(s.Phase(), d.Describe()); err != nil {
			t.Errorf("step %s: %v", name, err)
		}
	}
	for _, name := range RecordNames() {
		if _, isStep := registry[name]; isStep {
			t.Errorf("record-only entry %s is also a registered step", name)
		}
		d, _ := Describe(name)
		if err := checkDescription("", d); err != nil {
			t.Errorf("record-only entry %s: %v", name, err)
		}
	}
}

// TestStateOrderIsUnique: two steps with the same Order would be shown in an
// order that depends on their names, not on a choice.
func TestStateOrderIsUnique(t *testing.T) {
	byOrder := map[int]string{}
	for name, d := range Descriptions() {
		if d.Order == 0 {
			continue
		}
		if other, taken := byOrder[d.Order]; taken {
			t.Errorf("steps %s and %s both have Order %d", name, other, d.Order)
		}
		byOrder[d.Order] = name
	}
}

// TestCheckDescriptionCatchesGaps proves the check above can fail.
func TestCheckDescriptionCatchesGaps(t *testing.T) {
	view := func(json.RawMessage, string) ([]SubjectState, error) { return nil, nil }
	const failure = "what the failure means"
	for _, tc := range []struct {
		name  string
		phase Phase
		d     Description
	}{
		{"nothing at all", Contain, Description{}},
		{"no failure meaning", Contain, Description{Aspect: "a", View: view}},
		{"neither a view nor NoState", Contain, Description{OnFailure: failure}},
		{"a view without an aspect", Contain, Description{View: view, OnFailure: failure}},
		{"NoState with a view", Contain, Description{NoState: true, View: view, OnFailure: failure}},
		{"an evidence step without a skip meaning", Acquire, Description{NoState: true, OnFailure: failure}},
		{"a collection step without a skip meaning", Collect, Description{NoState: true, OnFailure: failure}},
		{"a skip meaning on a containment step", Contain, Description{NoState: true, OnFailure: failure, OnSkip: "s"}},
		{"both a skip meaning and NoEvidence", Collect, Description{NoState: true, OnFailure: failure, OnSkip: "s", NoEvidence: true}},
	} {
		if err := checkDescription(tc.phase, tc.d); err == nil {
			t.Errorf("%s: passed the check", tc.name)
		}
	}
	if err := checkDescription(Collect, Description{NoState: true, OnFailure: failure, NoEvidence: true}); err != nil {
		t.Errorf("a collection step that stores no evidence: %v", err)
	}
}

// checkDescription says what a description lacks for a step of a phase
// ("" for a record-only entry).
func checkDescription(phase Phase, d Description) error {
	var errs *multierror.Error
	add := func(msg string) { errs = multierror.Append(errs, errors.New(msg)) }
	switch {
	case d.NoState && (d.View != nil || d.Aspect != "" || d.Order != 0 || d.Unchanged):
		add("NoState, yet a view, an aspect, an order or Unchanged")
	case !d.NoState && d.View == nil:
		add("no view of its before and after (View), and not NoState")
	case !d.NoState && d.Aspect == "":
		add("a view without an Aspect")
	}
	if d.OnFailure == "" {
		add("no failure meaning (OnFailure)")
	}
	storesEvidence := phase == Acquire || phase == Collect
	switch {
	case !storesEvidence && (d.OnSkip != "" || d.NoEvidence):
		add("OnSkip or NoEvidence on a step that is neither Acquire nor Collect")
	case d.OnSkip != "" && d.NoEvidence:
		add("both OnSkip and NoEvidence")
	case storesEvidence && d.OnSkip == "" && !d.NoEvidence:
		add("an evidence step without a skip meaning (OnSkip), and not NoEvidence")
	}
	return errs.ErrorOrNil()
}
