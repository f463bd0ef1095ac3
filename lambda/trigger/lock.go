package trigger

import (
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// LockFolder is the folder of the evidence store that holds the locks
// (cases/locks/ in the bucket): evidence.LocksFolder. No case may take its
// name (evidence.ValidateCaseID refuses it).
const LockFolder = evidence.LocksFolder

// Lock is the record of the case that holds an instance: the object
// cases/locks/<account>/<region>/<instance-id>/<window>.json, taken through
// an evidence.Locker (its doc says how windows release it).
type Lock struct {
	CaseID    string    `json:"case_id"`
	Target    Target    `json:"target"`
	CreatedAt time.Time `json:"created_at"`
	// Input is the input of the case's execution: an event that finds the
	// lock taken starts (or finds) the execution with exactly this input, so
	// a retried or duplicate event never makes a second execution.
	Input CaseInput `json:"input"`
}

// TakenAt is when the case took the instance.
func (l Lock) TakenAt() time.Time { return l.CreatedAt }

// lockKey names the lock of a target: one case per instance at a time.
func lockKey(t Target) string {
	return t.AccountID + "/" + t.Region + "/" + t.InstanceID
}
