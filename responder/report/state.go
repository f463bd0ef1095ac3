package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
)

// view turns a step's recorded before or after into what it says about each
// subject (an interface, a VPC, the instance), in words, in a stable order.
type view func(raw json.RawMessage, instanceID string) ([]subjectState, error)

type subjectState struct {
	subject string
	text    string
}

// stateStep says how to read one step's before and after.
type stateStep struct {
	name   string
	aspect string
	view   view
	// unchanged: the step records what it found but changes nothing of it
	// (snapshots: the volumes stay attached).
	unchanged bool
}

// stateSteps are the steps whose before/after the report knows, in the order
// the report shows them. Other steps that record a before are shown as JSON.
var stateSteps = []stateStep{
	{name: "quarantine", aspect: "Security groups of the interface", view: interfaceGroups},
	{name: "quarantine-group", aspect: "Quarantine security group of the VPC", view: quarantineGroups},
	{name: "instance-profile", aspect: "Instance profile (role credentials)", view: instanceProfile},
	{name: "termination-protection", aspect: "Termination protection (DisableApiTermination)", view: terminationProtection},
	{name: "shutdown-behavior", aspect: "Instance-initiated shutdown behaviour", view: shutdownBehavior},
	{name: "case-tag", aspect: "Responder tags on the instance", view: caseTags},
	{name: "snapshots", aspect: "EBS volumes attached", view: attachedVolumes, unchanged: true},
}

// Steps whose before/after are summaries of evidence, not instance state.
// (snapshot-copy: `responder preserve`; its copies have their own section.)
var notState = map[string]bool{"metadata": true, "console-output": true, "console-screenshot": true, "notify": true, "snapshot-copy": true}

// buildState makes one row per subject of each step that recorded a state.
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
	known := map[string]bool{}
	for _, st := range stateSteps {
		known[st.name] = true
		if recs := byStep[st.name]; len(recs) > 0 {
			rows = append(rows, stepState(st, recs, m.InstanceID)...)
		}
	}
	for _, name := range order {
		if known[name] || notState[name] {
			continue
		}
		recs := byStep[name]
		if !anyBefore(recs) {
			continue
		}
		rows = append(rows, stepState(stateStep{name: name, aspect: "Recorded by step " + name, view: rawJSON}, recs, m.InstanceID)...)
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
		states, err := st.view(raw, instanceID)
		if err != nil {
			notes = append(notes, fmt.Sprintf("run %d recorded a state this report cannot read (%v): %s", run, err, compact(raw)))
			return
		}
		for _, s := range states {
			if _, ok := before[s.subject]; !ok {
				if _, ok := after[s.subject]; !ok {
					subjects = append(subjects, s.subject)
				}
			}
			if _, ok := into[s.subject]; ok && first {
				continue
			}
			into[s.subject] = recorded{text: s.text, run: run}
		}
	}
	for _, r := range recs {
		if present(r.Before) {
			see(before, r.Before, r.Run, true)
		}
		switch {
		case st.unchanged && present(r.Before):
			see(after, r.Before, r.Run, false)
		case !st.unchanged && present(r.After):
			see(after, r.After, r.Run, false)
		case r.Status == evidence.StatusSkipped && present(r.Before):
			// Skipped: nothing to change, the state is as found.
			see(after, r.Before, r.Run, false)
		}
	}
	last := recs[len(recs)-1]
	if last.Status == evidence.StatusFailed && !st.unchanged {
		notes = append(notes, fmt.Sprintf("step %s FAILED in run %d (see the failures): the state now may differ from the last one recorded", st.name, last.Run))
	}
	note := strings.Join(notes, "; ")
	rows := make([]StateRow, 0, len(subjects))
	for _, sub := range subjects {
		b, hasBefore := before[sub]
		a, hasAfter := after[sub]
		row := StateRow{Aspect: st.aspect, Subject: sub, Step: st.name, BeforeRun: b.run, AfterRun: a.run, Note: note}
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
		rows = append(rows, StateRow{Aspect: st.aspect, Subject: instanceID, Step: st.name,
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

func rawJSON(raw json.RawMessage, instanceID string) ([]subjectState, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("not JSON")
	}
	return []subjectState{{subject: instanceID, text: compact(raw)}}, nil
}

func orNone(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}

// quarantine: {"interfaces":[{"network_interface_id","vpc_id","groups":[…]}]}
func interfaceGroups(raw json.RawMessage, _ string) ([]subjectState, error) {
	var v struct {
		Interfaces []struct {
			ID     string   `json:"network_interface_id"`
			VPC    string   `json:"vpc_id"`
			Groups []string `json:"groups"`
		} `json:"interfaces"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []subjectState
	for _, i := range v.Interfaces {
		sub := i.ID
		if i.VPC != "" {
			sub += " (" + i.VPC + ")"
		}
		out = append(out, subjectState{subject: sub, text: orNone(i.Groups, "no security group")})
	}
	return out, nil
}

// quarantine-group: [{"vpc_id","group_id","created","rules_found":[…]}]
func quarantineGroups(raw json.RawMessage, _ string) ([]subjectState, error) {
	var v []struct {
		VPC     string   `json:"vpc_id"`
		GroupID string   `json:"group_id"`
		Created bool     `json:"created"`
		Rules   []string `json:"rules_found"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []subjectState
	for _, g := range v {
		var text string
		switch {
		case g.GroupID == "":
			text = "none"
		case len(g.Rules) > 0:
			text = g.GroupID + " with rules: " + strings.Join(g.Rules, "; ")
		case g.Created:
			text = g.GroupID + ", no rules (created for this case)"
		default:
			text = g.GroupID + ", no rules"
		}
		out = append(out, subjectState{subject: g.VPC, text: text})
	}
	return out, nil
}

// instance-profile: {"associations":[{"association_id","instance_profile_arn","state"}]}
func instanceProfile(raw json.RawMessage, instanceID string) ([]subjectState, error) {
	var v struct {
		Associations []struct {
			ID    string `json:"association_id"`
			ARN   string `json:"instance_profile_arn"`
			State string `json:"state"`
		} `json:"associations"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var items []string
	for _, a := range v.Associations {
		item := a.ARN
		var extra []string
		if a.ID != "" {
			extra = append(extra, a.ID)
		}
		if a.State != "" {
			extra = append(extra, a.State)
		}
		if len(extra) > 0 {
			item += " (" + strings.Join(extra, ", ") + ")"
		}
		items = append(items, item)
	}
	return []subjectState{{subject: instanceID, text: orNone(items, "none")}}, nil
}

// termination-protection: {"disable_api_termination": bool}
func terminationProtection(raw json.RawMessage, instanceID string) ([]subjectState, error) {
	var v struct {
		On *bool `json:"disable_api_termination"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if v.On == nil {
		return nil, fmt.Errorf("no disable_api_termination")
	}
	text := "disabled: the instance can be terminated through the API"
	if *v.On {
		text = "enabled"
	}
	return []subjectState{{subject: instanceID, text: text}}, nil
}

// shutdown-behavior: {"instance_initiated_shutdown_behavior": "stop"|"terminate"}
func shutdownBehavior(raw json.RawMessage, instanceID string) ([]subjectState, error) {
	var v struct {
		Behavior string `json:"instance_initiated_shutdown_behavior"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if v.Behavior == "" {
		return nil, fmt.Errorf("no instance_initiated_shutdown_behavior")
	}
	return []subjectState{{subject: instanceID, text: v.Behavior}}, nil
}

// case-tag: {"tags":{key: value}}
func caseTags(raw json.RawMessage, instanceID string) ([]subjectState, error) {
	var v struct {
		Tags map[string]string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var items []string
	for k, val := range v.Tags {
		items = append(items, k+"="+val)
	}
	sort.Strings(items)
	return []subjectState{{subject: instanceID, text: orNone(items, "none")}}, nil
}

// snapshots: {"volumes":[…]}
func attachedVolumes(raw json.RawMessage, instanceID string) ([]subjectState, error) {
	var v struct {
		Volumes []string `json:"volumes"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return []subjectState{{subject: instanceID, text: orNone(v.Volumes, "none")}}, nil
}
