package report

import (
	"github.com/responder-ir/responder/responder/evidence"
	steps "github.com/responder-ir/responder/responder/step"
)

// failureMeaning and skipMeaning are what each step says its failure, or
// its skip while the case holds none of its evidence, means for the
// investigation (step.Description), by step name. They are read once from
// the step registry.
var failureMeaning, skipMeaning = meanings()

func meanings() (onFailure, onSkip map[string]string) {
	onFailure, onSkip = map[string]string{}, map[string]string{}
	for name, d := range steps.Descriptions() {
		if d.OnFailure != "" {
			onFailure[name] = d.OnFailure
		}
		if d.OnSkip != "" {
			onSkip[name] = d.OnSkip
		}
	}
	return onFailure, onSkip
}

// unknownMeaning is said of a failed step the report does not know.
const unknownMeaning = "See the error. This report does not know the step; check the case record."

// containMeaning is said of an unknown failed containment step.
const containMeaning = "A containment step failed: the instance may not be isolated. See the error."

// failures lists every failed step, and every evidence step skipped while
// the case holds none of that evidence, in record order.
func failures(m *evidence.Manifest) []Failure {
	out := []Failure{}
	for i, s := range m.Steps {
		switch s.Status {
		case evidence.StatusFailed:
			meaning, ok := failureMeaning[s.Name]
			if !ok {
				meaning = unknownMeaning
				if s.Phase == "contain" {
					meaning = containMeaning
				}
			}
			detail := s.Error
			if sub := stepSubject(s); sub != "" {
				detail = sub + ": " + detail
			}
			out = append(out, Failure{Run: s.Run, Step: s.Name, Phase: s.Phase, Status: s.Status,
				Detail: detail, Meaning: meaning, ResolvedInRun: resolvedIn(m.Steps[i+1:], s)})
		case evidence.StatusSkipped:
			meaning, ok := skipMeaning[s.Name]
			if !ok || holdsEvidence(m, s.Name) {
				continue
			}
			out = append(out, Failure{Run: s.Run, Step: s.Name, Phase: s.Phase, Status: s.Status,
				Detail: s.Reason, Meaning: meaning})
		}
	}
	return out
}

// resolvedIn is the first later run in which the step succeeded, or, for a
// containment step, found nothing to do (the state it sets was there).
// Steps recorded once per thing (a snapshot copy) must be about the same
// thing.
func resolvedIn(later []evidence.StepRecord, failed evidence.StepRecord) int {
	for _, s := range later {
		if s.Name != failed.Name || s.Run <= failed.Run || stepSubject(s) != stepSubject(failed) {
			continue
		}
		if s.Status == evidence.StatusOK || (s.Status == evidence.StatusSkipped && s.Phase == "contain") {
			return s.Run
		}
	}
	return 0
}

// stepSubject is what an entry recorded once per thing is about (the
// source snapshot of a snapshot copy; see step.Description.Subject), or "".
func stepSubject(s evidence.StepRecord) string {
	d, _ := steps.Describe(s.Name)
	if d.Subject == nil || !present(s.Before) {
		return ""
	}
	return d.Subject(s.Before)
}

// holdsEvidence reports whether the case holds what an evidence step
// collects: what the step says it holds, or else an artifact it recorded.
func holdsEvidence(m *evidence.Manifest, step string) bool {
	if d, _ := steps.Describe(step); d.Holds != nil {
		return d.Holds(m)
	}
	for _, a := range m.Artifacts {
		if a.Step == step {
			return true
		}
	}
	return false
}
