package trigger

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/responder-ir/responder/responder/evidence"
)

// MaxNoteLength is the longest note Security Hub accepts (Note.Text).
const MaxNoteLength = 512

// findingNote is the note the responder writes on one finding.
type findingNote struct {
	FindingID  string
	ProductArn string
	Text       string
	// Notified: a case runs for an instance of the finding, so its workflow
	// status becomes NOTIFIED.
	Notified bool
}

// noteFor says what was done for a finding: for each of its instances, the
// case started or joined, or why there is none; where the evidence is. A
// finding without an EC2 instance is told so. The note never exceeds
// MaxNoteLength: instances that do not fit are counted instead.
func noteFor(p findingPlan, outcomes map[Target]outcome, location func(caseID, path string) string) findingNote {
	n := findingNote{FindingID: p.Finding.ID, ProductArn: p.Finding.ProductArn}
	var items []string
	var cases []string
	for _, t := range p.Targets {
		o := outcomes[t]
		switch {
		case o.Err != nil:
			items = append(items, fmt.Sprintf("no response for %s (%s, %s): it could not be started, see the responder's logs", t.InstanceID, t.AccountID, t.Region))
			continue
		case o.Started.Joined:
			items = append(items, fmt.Sprintf("%s (%s, %s) is already under case %s, started %s",
				t.InstanceID, t.AccountID, t.Region, o.Started.CaseID, o.Started.Since.UTC().Format("2006-01-02 15:04 UTC")))
		default:
			items = append(items, fmt.Sprintf("case %s started for %s (%s, %s)", o.Started.CaseID, t.InstanceID, t.AccountID, t.Region))
		}
		n.Notified = true
		cases = appendUnique(cases, o.Started.CaseID)
	}
	items = append(items, p.Problems...)
	if len(p.Targets) == 0 && len(p.Problems) == 0 {
		what := "this finding names no EC2 instance"
		if len(p.Others) > 0 {
			what += " (its resources: " + strings.Join(uniqueStrings(p.Others), ", ") + ")"
		}
		items = append(items, what+", so no response was started")
	}
	tail := "."
	switch len(cases) {
	case 0:
	case 1:
		tail = ". Evidence: " + location(cases[0], "")
	default:
		tail = ". Evidence: " + location("<case-id>", "")
	}
	n.Text = fitNote("responder: ", items, tail)
	return n
}

// outcomeNotes are the notes the respond task writes on the findings that
// asked for a case, by Region: the case status, the very word of the case
// record, the SNS message and the instance's tag, what it claims, and which
// containment steps did not hold.
func outcomeNotes(in CaseInput, status string, steps []evidence.StepRecord, location string) map[string][]findingNote {
	items := []string{fmt.Sprintf("case %s for %s (%s, %s): %s: %s", in.CaseID, in.InstanceID, in.AccountID, in.Region,
		status, evidence.StatusMeaning(status))}
	var open []string
	for _, st := range steps {
		if st.Containment != "" && (st.Containment != evidence.ContainmentHeld || st.Status == evidence.StatusFailed) {
			open = append(open, fmt.Sprintf("%s (%s)", st.Name, st.Containment))
		}
	}
	if len(open) > 0 {
		items = append(items, "still open: "+strings.Join(open, ", "))
	}
	text := fitNote("responder: ", items, ". Evidence: "+location)
	byRegion := map[string][]findingNote{}
	for _, f := range in.Findings {
		byRegion[f.Region] = append(byRegion[f.Region], findingNote{FindingID: f.ID, ProductArn: f.ProductArn, Text: text})
	}
	return byRegion
}

// fitNote joins head, as many items as fit and tail within MaxNoteLength,
// counting the items left out.
func fitNote(head string, items []string, tail string) string {
	const more = "; and %d more"
	budget := MaxNoteLength - len(head) - len(tail) - len(fmt.Sprintf(more, len(items)))
	var b strings.Builder
	kept := 0
	for i, it := range items {
		sep := ""
		if i > 0 {
			sep = "; "
		}
		if b.Len()+len(sep)+len(it) > budget {
			if kept == 0 {
				// Not even one item fits: cut it.
				b.WriteString(cut(it, budget-3) + "...")
				kept = 1
			}
			break
		}
		b.WriteString(sep + it)
		kept++
	}
	s := head + b.String()
	if kept < len(items) {
		s += fmt.Sprintf(more, len(items)-kept)
	}
	return cut(s+tail, MaxNoteLength)
}

// cut shortens s to at most n bytes without splitting a character.
func cut(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func uniqueStrings(list []string) []string {
	var out []string
	for _, s := range list {
		out = appendUnique(out, s)
	}
	return out
}
