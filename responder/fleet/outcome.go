package fleet

import "github.com/responder-ir/responder/responder/evidence"

// Outcomes of a fleet target that has no case status (a target with a case
// carries its case's status word: contained, partially-contained...).
const (
	// Pending: planned, not started (the run was interrupted before it).
	Pending = "pending"
	// NotFound: DescribeInstances does not know the instance where it was
	// looked for (or found it under another account than its finding's).
	NotFound = "not-found"
	// Terminated: the instance is shutting down or terminated; its volumes
	// and memory are gone.
	Terminated = "terminated"
	// NotStarted: the response could not start (Reason says why: another
	// case at work on the instance, a protected instance, the blast
	// radius, an account not reached); nothing was changed.
	NotStarted = "not-started"
)

// Open reports whether a target is not proven contained (or acquired, for
// a plan without containment).
func Open(t evidence.FleetCase) bool {
	return t.Status != evidence.CaseContained && t.Status != evidence.CaseAcquired
}
