package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
	steps "github.com/responder-ir/responder/responder/step"
)

// stateStep is a step whose before and after the report shows, and how it
// reads them: the step's own description (step.Describer).
type stateStep struct {
	name string
	steps.Description
}

// orderedStates are the steps with a place in the state table
// (Description.Order), in that order.
func orderedStates() []stateStep {
	var out []stateStep
	for name, d := range steps.Descriptions() {
		if !d.NoState && d.Order != 0 {
			out = append(out, stateStep{name: name, Description: d})
		}
	}
	slices.SortFunc(out, func(a, b stateStep) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), strings.Compare(a.name, b.name))
	})
	return out
}

// inRecordOrder says how to show a step that has no place in the state
// table: by its own view, or as the JSON it recorded when the report does
// not know it. False for a step whose before and after are not state, and
// for a step with a place.
func inRecordOrder(name string) (stateStep, bool) {
	d, known := steps.Describe(name)
	if !known {
		d = steps.RawState(name)
	}
	return stateStep{name: name, Description: d}, !d.NoState && d.Order == 0
}

// buildState makes one row per subject of each step that recorded a state:
// first the steps with a place in the table, in its order; then the others
// that recorded a before, in the order the record first names them.
// Before is the first state recorded in the case; After the last: a step's
// after when it changed something, or its before when it was skipped
// (nothing to change).
func buildState(m *evidence.Manifest) []StateRow {
	byStep := map[string][]evidence.StepRecord{}
	var order []string
	for _, s := range m.Steps {
		if _, seen := byStep[s.Name]; !seen {
			order = append(order, s.Name)
		}
		byStep[s.Name] = append(byStep[s.Name], s)
	}
	rows := []StateRow{}
	for _, st := range orderedStates() {
		if recs := byStep[st.name]; len(recs) > 0 {
			rows = append(rows, stepState(st, recs, m.InstanceID)...)
		}
	}
	for _, name := range order {
		st, ok := inRecordOrder(name)
		if ok && anyBefore(byStep[name]) {
			rows = append(rows, stepState(st, byStep[name], m.InstanceID)...)
		}
	}
	return rows
}

func anyBefore(recs []evidence.StepRecord) bool {
	for _, r := range recs {
		if present(r.Before) {
			return true
		}
	}
	return false
}

// present reports whether a recorded state holds anything.
func present(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

type recorded struct {
	text string
	run  int
}

func stepState(st stateStep, recs []evidence.StepRecord, instanceID string) []StateRow {
	var subjects []string
	before := map[string]recorded{}
	after := map[string]recorded{}
	var notes []string
	see := func(into map[string]recorded, raw json.RawMessage, run int, first bool) {
		states, err := st.View(raw, instanceID)
		if err != nil {
			notes = append(notes, fmt.Sprintf("run %d recorded a state this report cannot read (%v): %s", run, err, compact(raw)))
			return
		}
		for _, s := range states {
			if _, ok := before[s.Subject]; !ok {
				if _, ok := after[s.Subject]; !ok {
					subjects = append(subjects, s.Subject)
				}
			}
			if _, ok := into[s.Subject]; ok && first {
				continue
			}
			into[s.Subject] = recorded{text: s.Text, run: run}
		}
	}
	for _, r := range recs {
		if present(r.Before) {
			see(before, r.Before, r.Run, true)
		}
		switch {
		case st.Unchanged && present(r.Before):
			see(after, r.Before, r.Run, false)
		case !st.Unchanged && present(r.After):
			see(after, r.After, r.Run, false)
		case r.Status == evidence.StatusSkipped && present(r.Before):
			// Skipped: nothing to change, the state is as found.
			see(after, r.Before, r.Run, false)
		}
	}
	last := recs[len(recs)-1]
	if last.Status == evidence.StatusFailed && !st.Unchanged {
		notes = append(notes, fmt.Sprintf("step %s FAILED in run %d (see the failures): the state now may differ from the last one recorded", st.name, last.Run))
	}
	note := strings.Join(notes, "; ")
	rows := make([]StateRow, 0, len(subjects))
	for _, sub := range subjects {
		b, hasBefore := before[sub]
		a, hasAfter := after[sub]
		row := StateRow{Aspect: st.Aspect, Subject: sub, Step: st.name, BeforeRun: b.run, AfterRun: a.run, Note: note}
		row.Before, row.After = b.text, a.text
		if !hasBefore {
			row.Before = "not recorded"
		}
		if !hasAfter {
			row.After = "unknown: no run recorded the state after this step"
		}
		row.Changed = hasBefore && hasAfter && b.text != a.text
		rows = append(rows, row)
	}
	if len(rows) == 0 && note != "" {
		rows = append(rows, StateRow{Aspect: st.Aspect, Subject: instanceID, Step: st.name,
			Before: "not recorded", After: "unknown", Note: note})
	}
	return rows
}

func compact(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}
