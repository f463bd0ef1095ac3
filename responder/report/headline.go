package report

import (
	"fmt"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// Verification results a report can be built with (Options.Verification).
const (
	// Verified: `responder verify`'s checks passed when the report was made.
	Verified = "verified"
	// NotVerified: the report was made without verification.
	NotVerified = "not verified"
	// VerificationFailed: verification ran and found a mismatch.
	VerificationFailed = "verification failed"
	// IntactUnsigned: every check passed, but some runs are not signed:
	// who wrote them rests on the store's protection.
	IntactUnsigned = "intact, unsigned"
)

// Verification is what a verification run beside the report found, in
// words: Result is "verified" only when every check passed.
type Verification struct {
	// Result is the word of `responder verify` (verified, intact-unsigned,
	// intact-so-far, failed).
	Result string `json:"result"`
	// Detail says what was checked and what was not.
	Detail string    `json:"detail"`
	At     time.Time `json:"at"`
}

// Headline is what an investigator reads first.
//
//	status                the case status word (the same as the CLI's)
//	isolated              whether a run's containment read-backs proved the instance isolated
//	isolation_run         the first run whose read-backs proved it
//	isolated_at           the end of the last containment read-back of that run
//	time_to_isolation_ns  from that run's start to isolated_at
//	open                  what is still open: each containment step whose read-back
//	                      did not hold in the last respond run, "step (check): why"
//	evidence_count        artifacts in the case; evidence_bytes their total size
//	verification          "verified" only when the report was built with a verification
//	                      that passed; else "not verified" (or "verification failed")
type Headline struct {
	Status          string     `json:"status"`
	StatusHeadline  string     `json:"status_headline"`
	Isolated        bool       `json:"isolated"`
	IsolationRun    int        `json:"isolation_run,omitempty"`
	IsolatedAt      *time.Time `json:"isolated_at,omitempty"`
	TimeToIsolation int64      `json:"time_to_isolation_ns,omitempty"`
	// TimeToIsolationText says it in words ("not isolated: ..." when no
	// run proved it).
	TimeToIsolationText string   `json:"time_to_isolation"`
	Open                []string `json:"open"`
	EvidenceCount       int      `json:"evidence_count"`
	EvidenceBytes       int64    `json:"evidence_bytes"`
	Verification        string   `json:"verification"`
	// VerificationDetail says what the verification checked, or how to
	// run one.
	VerificationDetail string `json:"verification_detail"`
}

// buildHeadline reads the headline from the record.
func buildHeadline(m *evidence.Manifest) Headline {
	h := Headline{Status: m.Status, StatusHeadline: evidence.StatusHeadline(m.Status), Open: []string{}}
	if m.Status == "" {
		h.StatusHeadline = "NO RESPOND RUN"
	}
	for _, a := range m.Artifacts {
		h.EvidenceCount++
		h.EvidenceBytes += a.Size
	}
	h.TimeToIsolationText = "not isolated: no run's containment read-backs all held"
	for _, run := range m.Runs {
		at, ok := isolatedAt(m.Steps, run)
		if !ok {
			continue
		}
		h.Isolated, h.IsolationRun = true, run.Number
		h.IsolatedAt = &at
		d := at.Sub(run.StartedAt)
		h.TimeToIsolation = int64(d)
		h.TimeToIsolationText = fmt.Sprintf("%s (run %d: from its start at %s to the containment read-back at %s)",
			duration(d), run.Number, ts(run.StartedAt), ts(at))
		break
	}
	if m.Status == evidence.CaseAcquired {
		h.TimeToIsolationText = "not isolated: the plan has no containment step"
	}
	h.Open = stillOpen(m)
	h.Verification = NotVerified
	h.VerificationDetail = fmt.Sprintf("this report was made without verification: run responder verify --case-id %s "+
		"(or make the report with responder report --verify) to re-hash every artifact and check the record's seals", m.CaseID)
	return h
}

// isolatedAt is when the containment read-backs of a respond run proved
// the instance isolated: the end of its last containment step, when every
// containment step of the run held.
func isolatedAt(steps []evidence.StepRecord, run evidence.Run) (time.Time, bool) {
	if !evidence.Isolated(run.Status) {
		return time.Time{}, false
	}
	var at time.Time
	for _, s := range steps {
		if s.Run != run.Number || s.Containment == "" {
			continue
		}
		if s.Containment != evidence.ContainmentHeld || s.Status == evidence.StatusFailed {
			return time.Time{}, false
		}
		if s.EndedAt.After(at) {
			at = s.EndedAt.UTC()
		}
	}
	return at, !at.IsZero()
}

// stillOpen names, in the words the CLI uses, the containment steps of the
// last respond run whose read-back did not hold, with why; for a release
// run, the release steps that did not read back the state of before.
func stillOpen(m *evidence.Manifest) []string {
	open := []string{}
	last := 0
	for _, run := range m.Runs {
		if isContainmentRun(m.Steps, run.Number) {
			last = run.Number
		}
	}
	for _, s := range m.Steps {
		if s.Run != last || s.Containment == "" || (s.Containment == evidence.ContainmentHeld && s.Status != evidence.StatusFailed) {
			continue
		}
		why := s.Error
		if why == "" {
			why = s.Reason
		}
		open = append(open, fmt.Sprintf("%s (%s): %s", s.Name, s.Containment, why))
	}
	return open
}

// isContainmentRun reports whether a run has containment (or release)
// read-backs.
func isContainmentRun(steps []evidence.StepRecord, run int) bool {
	for _, s := range steps {
		if s.Run == run && s.Containment != "" {
			return true
		}
	}
	return false
}

// applyVerification puts a verification's result into the headline.
func (h *Headline) applyVerification(v *Verification) {
	if v == nil {
		return
	}
	switch v.Result {
	case "verified":
		h.Verification = Verified
		h.VerificationDetail = fmt.Sprintf("verified at %s: %s", ts(v.At), v.Detail)
	case "intact-unsigned":
		h.Verification = IntactUnsigned
		h.VerificationDetail = fmt.Sprintf("checked at %s: every check passed, but some runs are not signed, so who wrote them rests on the store's protection: %s", ts(v.At), v.Detail)
	case "failed":
		h.Verification = VerificationFailed
		h.VerificationDetail = fmt.Sprintf("verification at %s FAILED: %s", ts(v.At), v.Detail)
	default:
		h.VerificationDetail = fmt.Sprintf("verification at %s ended %s, not verified: %s", ts(v.At), v.Result, v.Detail)
	}
}
