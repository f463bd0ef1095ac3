package evidence

import "strings"

// Case statuses: how a respond run ended. A status is a claim, and each word
// claims only what the run proved: contained is written only when every
// containment step read back the state it is there for. The same word goes
// into the case record, the CLI, the report, the SNS message, the Security
// Hub note, the instance's responder:status tag and the CLI's exit code.
const (
	// CaseAcquired: the plan had no containment step (evidence only); the
	// instance was not isolated and nothing claims it was.
	CaseAcquired = "acquired"
	// CaseContained: every containment step read back the state it is there
	// for (or found it already so).
	CaseContained = "contained"
	// CasePartiallyContained: some containment steps read back their state,
	// others did not: the instance is NOT fully isolated.
	CasePartiallyContained = "partially-contained"
	// CaseContainmentFailed: no containment step read back its state: the
	// instance may not be isolated at all.
	CaseContainmentFailed = "containment-failed"
	// CaseInterrupted: the run was cancelled (Ctrl-C, SIGTERM, a deadline)
	// before every step finished; the steps say what was done. Running the
	// same case again resumes it.
	CaseInterrupted = "interrupted"

	// Dry runs change nothing and store nothing; their words say what a real
	// run would do, never what it did.

	// CaseWouldContain: a dry run whose every check passed (EC2's DryRun
	// permission checks, or the state already holds); some steps may have
	// no check (their reason says so).
	CaseWouldContain = "would-contain"
	// CaseWouldAcquire: as CaseWouldContain, for a plan without containment.
	CaseWouldAcquire = "would-acquire"
	// CaseWouldFail: a dry run in which some check was refused: a real run
	// would fail that step.
	CaseWouldFail = "would-fail"

	// Release runs (responder release) restore what the case changed, from
	// the recorded before-states.

	// CaseReleased: every release step read back the state recorded before
	// the response (or found it so): the instance is no longer contained.
	CaseReleased = "released"
	// CaseReleaseIncomplete: some release step did not read back the
	// recorded state: part of the containment is still in place.
	CaseReleaseIncomplete = "release-incomplete"
	// CaseWouldRelease: a release dry run whose every check passed.
	CaseWouldRelease = "would-release"

	// CaseContainedIncomplete is written by records before schema 1.3:
	// contained, but an evidence, record or notification step failed. Since
	// 1.3 that run is contained, and its failed steps say what is missing.
	CaseContainedIncomplete = "contained-evidence-incomplete"
)

// Containment checks: what a containment step's read-back showed, in
// StepRecord.Containment. Only containment steps have one.
const (
	// ContainmentHeld: read back, the instance is in the state the step is
	// there for (or it was found so, and nothing needed to change).
	ContainmentHeld = "held"
	// ContainmentNotHeld: read back, the instance is not in that state (the
	// change failed, or was accepted and did not take effect).
	ContainmentNotHeld = "not-held"
	// ContainmentUnchecked: the state could not be read back (the step
	// failed before it could look, or the run was cancelled).
	ContainmentUnchecked = "unchecked"
	// ContainmentPermitted: dry run: EC2's DryRun check says the change is
	// permitted; nothing was changed.
	ContainmentPermitted = "permitted"
)

// Outcome is what, besides its step records, decides how a run ended.
type Outcome struct {
	DryRun bool
	// Interrupted: the run was cancelled before every step had finished.
	Interrupted bool
}

// CaseStatus says how a run ended, from what its containment steps read
// back (StepRecord.Containment), never from the mere absence of an error: a
// containment step holds when it did not fail and its read-back held. A
// step that failed without being a containment step (evidence, the tag, the
// notification) does not change the word: its record says what is missing.
func CaseStatus(steps []StepRecord, o Outcome) string {
	if o.Interrupted {
		return CaseInterrupted
	}
	if o.DryRun {
		return dryRunStatus(steps)
	}
	held, total := 0, 0
	for _, s := range steps {
		if s.Containment == "" {
			continue
		}
		total++
		if s.Containment == ContainmentHeld && s.Status != StatusFailed {
			held++
		}
	}
	switch {
	case total == 0:
		return CaseAcquired
	case held == total:
		return CaseContained
	case held == 0:
		return CaseContainmentFailed
	}
	return CasePartiallyContained
}

func dryRunStatus(steps []StepRecord) string {
	contains := false
	for _, s := range steps {
		if s.Status == StatusFailed {
			return CaseWouldFail
		}
		if s.Containment != "" {
			contains = true
		}
	}
	if contains {
		return CaseWouldContain
	}
	return CaseWouldAcquire
}

// ReleaseStatus says how a release run ended, from what its release steps
// read back (StepRecord.Containment: held is the recorded before-state read
// back), never from the mere absence of an error. A dry run is would-release
// or, when a check was refused, would-fail.
func ReleaseStatus(steps []StepRecord, o Outcome) string {
	if o.Interrupted {
		return CaseInterrupted
	}
	for _, s := range steps {
		switch {
		case o.DryRun && s.Status == StatusFailed:
			return CaseWouldFail
		case o.DryRun || s.Containment == "":
		case s.Containment != ContainmentHeld || s.Status == StatusFailed:
			return CaseReleaseIncomplete
		}
	}
	if o.DryRun {
		return CaseWouldRelease
	}
	return CaseReleased
}

// Isolated reports whether a status claims the instance isolated.
func Isolated(status string) bool {
	return status == CaseContained || status == CaseContainedIncomplete
}

// StatusHeadline is a case status as a headline: "PARTIALLY CONTAINED".
func StatusHeadline(status string) string {
	return strings.ToUpper(strings.ReplaceAll(status, "-", " "))
}

// StatusMeaning says what a case status claims, in one sentence: the CLI,
// the report and the notification say it in these words.
func StatusMeaning(status string) string {
	switch status {
	case CaseAcquired:
		return "evidence acquired; the plan has no containment step, so the instance was NOT isolated"
	case CaseContained:
		return "every containment step read back the state it is there for"
	case CasePartiallyContained:
		return "some containment steps did not hold: the instance is NOT fully isolated"
	case CaseContainmentFailed:
		return "no containment step held: the instance may NOT be isolated at all"
	case CaseInterrupted:
		return "the run was cancelled before every step finished; the steps say what was done"
	case CaseWouldContain:
		return "dry run: nothing was changed; every check that could be made passed (a step skipped in the dry run says what it could not check)"
	case CaseWouldAcquire:
		return "dry run: nothing was changed; every check that could be made passed; the plan has no containment step"
	case CaseWouldFail:
		return "dry run: nothing was changed; a check was refused, and a real run would fail the steps marked failed"
	case CaseReleased:
		return "every step the case changed read back the state recorded before the response: the instance is released"
	case CaseReleaseIncomplete:
		return "some steps did not read back the state recorded before the response: part of the containment is still in place"
	case CaseWouldRelease:
		return "dry run: nothing was changed; every check that could be made passed (a step skipped in the dry run says what it could not check)"
	case CaseContainedIncomplete:
		return "contained, but some evidence, the record or the notification failed (written before schema 1.3)"
	}
	return status
}
