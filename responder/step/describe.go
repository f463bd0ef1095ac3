package step

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
)

// Describer is a step that says how the case record reads its work: what its
// before and after show, and what its failure (or, for a step that stores
// evidence, its skip) means for the investigation. The report takes these
// from the step instead of knowing every step itself. Every registered step
// and record-only entry is a Describer; TestEveryStepDescribesItself keeps it
// so.
type Describer interface {
	Describe() Description
}

// Description is how the case record reads one step. A step either shows a
// state (Aspect and View) or says it has none (NoState); it always says what
// its failure means (OnFailure).
type Description struct {
	// Aspect says what the step's before and after are about, as the
	// report's state table names it ("Security groups of the interface").
	Aspect string
	// View reads the step's recorded before or after. Nil with NoState.
	View View
	// Order places the step's rows in the state table, lowest first. Zero:
	// after every step that has an Order, in the order the record first
	// names the steps, and only when the step recorded a before (the way the
	// report shows a step it does not know; see RawState).
	Order int
	// Unchanged says the step records what it found and changes nothing of
	// it: its after is its before (snapshots: the volumes stay attached), and
	// its failure leaves the state as it was.
	Unchanged bool
	// NoState says the step's before and after summarise what it stored or
	// sent (evidence, a notification), not a state of the instance: the
	// report shows them only in the record.
	NoState bool

	// OnFailure says what the step's failure means for the investigation:
	// what evidence is missing, or what the instance can still do.
	OnFailure string
	// OnSkip says, for a step that stores evidence, what it means that the
	// step was skipped and the case holds none of its evidence. Only Acquire
	// and Collect steps have one.
	OnSkip string
	// NoEvidence says an Acquire or Collect step stores no evidence itself
	// (ssm-access opens the way for the collection steps): its skip loses
	// nothing, so it has no OnSkip.
	NoEvidence bool
	// Holds reports whether the case holds the step's evidence, which
	// decides whether a skip is worth saying. Nil: the case holds an
	// artifact recorded by the step.
	Holds func(m *evidence.Manifest) bool
	// Subject, for an entry recorded once per thing (a snapshot copy, once
	// per source snapshot), names the thing from the entry's before ("" when
	// it cannot): a later success resolves a failure of the same thing only.
	// Nil for a step recorded once per run.
	Subject func(before json.RawMessage) string
}

// View reads a state a step recorded (its before or its after) and says what
// it shows of each subject (an interface, a VPC, the instance), in words, in
// a stable order. An error says the record cannot be read as this step's
// state.
type View func(raw json.RawMessage, instanceID string) ([]SubjectState, error)

// SubjectState is what a recorded state says of one subject.
type SubjectState struct {
	Subject string
	Text    string
}

// RawState describes a step whose state has no view of its own: the report
// shows its before and after as the JSON recorded, after the steps that have
// an Order. The report describes a step it does not know this way.
func RawState(name string) Description {
	return Description{Aspect: "Recorded by step " + name, View: RawJSON}
}

// RawJSON is the View of a state shown as the compact JSON recorded, as a
// state of the instance.
func RawJSON(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	if !json.Valid(raw) {
		return nil, errors.New("not JSON")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return []SubjectState{{Subject: instanceID, Text: buf.String()}}, nil
}

// Describe returns the description of a registered step or record-only
// entry; false when no step or entry has the name, or the step does not
// describe itself.
func Describe(name string) (Description, bool) {
	if mk, ok := recordOnly[name]; ok {
		return mk(), true
	}
	mk, ok := registry[name]
	if !ok {
		return Description{}, false
	}
	d, ok := mk().(Describer)
	if !ok {
		return Description{}, false
	}
	return d.Describe(), true
}

// Descriptions returns the description of every registered step and
// record-only entry that has one, by name.
func Descriptions() map[string]Description {
	out := map[string]Description{}
	for _, name := range append(Names(), RecordNames()...) {
		if d, ok := Describe(name); ok {
			out[name] = d
		}
	}
	return out
}

// RecordNames lists the record-only entries, sorted: names the case record
// uses for work that no plan runs (see recordOnly).
func RecordNames() []string {
	names := make([]string, 0, len(recordOnly))
	for n := range recordOnly {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// joinOr joins items with commas, or says none when there are none.
func joinOr(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}

// requireField fails when a recorded state lacks a field (absent or null),
// so that a view does not show the zero value of a field the step did not
// record as a state.
func requireField(raw json.RawMessage, name string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return err
	}
	if f, ok := fields[name]; !ok || string(f) == "null" {
		return missingField(name)
	}
	return nil
}

// missingField says a recorded state lacks a field a view needs.
func missingField(name string) error { return fmt.Errorf("no %s", name) }
