package evidence

import (
	"encoding/json"
	"time"
)

// SchemaVersion is the version of the manifest format written by this code.
// Readers accept any 1.x manifest; a change that breaks readers bumps the
// major version. The format is documented in FORMAT.md beside this file.
//
// 1.1 added snapshot_copies (responder preserve).
// 1.2 added the artifact fields of OS-level collection (reported_sha256,
// encoding, decoded_sha256, decoded_size, hashed_by).
// 1.3 added steps[].containment (what a containment step read back) and the
// case statuses acquired, partially-contained and interrupted; it no longer
// writes contained-evidence-incomplete (see CaseStatus).
// 1.4 added runs[].forced and runs[].blast_radius (the safeguards).
// 1.5 added runs[].previous_sha256 (the hash chain through the case's
// history), runs[].signature and runs[].signing_error (signed records),
// snapshots[].lock and snapshot_copies[].lock (EBS snapshot lock) and
// steps[].calls[].server_date and local_time (trusted time).
const SchemaVersion = "1.5"

// ManifestName is the manifest's path inside the case folder.
const ManifestName = "manifest.json"

// Step statuses.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// Manifest is the case record: who did what to which instance, what was found
// before each change, and every piece of evidence with its SHA-256. It is
// cumulative: a later run of the same case appends its steps (with their run
// number) and artifacts; nothing recorded earlier is dropped.
type Manifest struct {
	SchemaVersion string    `json:"schema_version"`
	CaseID        string    `json:"case_id"`
	InstanceID    string    `json:"instance_id"`
	AccountID     string    `json:"account_id"`
	Region        string    `json:"region"`
	Actor         string    `json:"actor"`
	ActingAs      string    `json:"acting_as,omitempty"`
	Tool          string    `json:"tool"`
	Location      string    `json:"location"`
	Status        string    `json:"status"`
	StartedAt     time.Time `json:"started_at"`
	EndedAt       time.Time `json:"ended_at"`

	Runs      []Run        `json:"runs"`
	Steps     []StepRecord `json:"steps"`
	Artifacts []Artifact   `json:"artifacts"`
	Snapshots []Snapshot   `json:"snapshots"`
	// SnapshotCopies are the case snapshots copied into the forensics
	// account (responder preserve), one per source snapshot.
	SnapshotCopies []SnapshotCopy `json:"snapshot_copies,omitempty"`
}

// Run is one invocation of respond for the case.
type Run struct {
	Number    int       `json:"run"`
	Actor     string    `json:"actor"`
	ActingAs  string    `json:"acting_as,omitempty"`
	Playbook  string    `json:"playbook"`
	Status    string    `json:"status"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	// Forced is set when the instance carried the protection tag and the
	// run went on because its actor forced it.
	Forced *Forced `json:"forced,omitempty"`
	// BlastRadius is the blast-radius slot (of the account's clock hour,
	// counted over any 60 minutes) this run took before containment, and the limit it was taken under.
	BlastRadius *BlastRadius `json:"blast_radius,omitempty"`
	// PreviousSHA256 is the SHA-256 of the history copy of the run before
	// (history/manifest-run-NNN.json, as stored): each revision holds the
	// digest of the one before it, a hash chain through the case's history.
	// Empty for the first run (and in records before 1.5).
	PreviousSHA256 string `json:"previous_sha256,omitempty"`
	// Signature names the key that signed this run's history copy
	// (SignatureName holds the signature); nil when the run was not signed.
	Signature *Signature `json:"signature,omitempty"`
	// SigningError says why a run asked to be signed was saved unsigned.
	SigningError string `json:"signing_error,omitempty"`
}

// Forced says who overrode the protection of an instance.
type Forced struct {
	By  string `json:"by"`
	Tag string `json:"tag"` // the protection tag the instance carried, key=value
}

// BlastRadius is the slot a run took (see TakeBlastSlot).
type BlastRadius struct {
	Limit int    `json:"limit"`
	Hour  string `json:"hour"`
	Slot  int    `json:"slot,omitempty"`
	// RaisedBy is the actor who raised the limit for this run
	// (--blast-radius above the default).
	RaisedBy string `json:"raised_by,omitempty"`
	// Unchecked says why the limit could not be checked (the evidence store
	// could not be reached): containment went on without a slot.
	Unchecked string `json:"unchecked,omitempty"`
}

// StepRecord is what one step found, did and answered in one run.
type StepRecord struct {
	Run    int    `json:"run"`
	Name   string `json:"name"`
	Phase  string `json:"phase"`
	Status string `json:"status"`
	// Reason says in words what happened: why it was skipped, what it changed.
	Reason string `json:"reason,omitempty"`
	// Before is the state the step found before changing anything; a release
	// restores it. After is the state it left.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	Error  string          `json:"error,omitempty"`
	// Containment is, for a containment step, what its read-back showed:
	// ContainmentHeld, ContainmentNotHeld, ContainmentUnchecked or, in a
	// dry run, ContainmentPermitted. Empty for every other step. The case
	// status is made of these (CaseStatus).
	Containment string    `json:"containment,omitempty"`
	Calls       []Call    `json:"calls,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at"`
}

// Call is one AWS API call as the case record keeps it: enough to find it in
// CloudTrail (the request ID) and to see what it answered. The call recorder
// in package cloud records calls in this shape.
type Call struct {
	Service   string        `json:"service"`
	Operation string        `json:"operation"`
	RequestID string        `json:"request_id,omitempty"`
	ErrorCode string        `json:"error_code,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
	// ServerDate is the Date header of AWS's response (the service's
	// clock, to the second); LocalTime the local clock when the response
	// arrived. The call was sent Duration before LocalTime. Absent when no
	// response came (records before 1.5 have neither).
	ServerDate *time.Time `json:"server_date,omitempty"`
	LocalTime  *time.Time `json:"local_time,omitempty"`
}

// ClockSkew is how far the local clock was from AWS's during the call,
// positive when the local clock was ahead: zero when the response's Date
// (a whole second, so any instant of [date, date+1s)) could have been
// stamped while the call was in flight (sent at LocalTime-Duration, answered
// at LocalTime). ok is false when the call recorded no Date.
func (c Call) ClockSkew() (skew time.Duration, ok bool) {
	if c.ServerDate == nil || c.LocalTime == nil {
		return 0, false
	}
	sent, received := c.LocalTime.Add(-c.Duration), *c.LocalTime
	earliest, latest := *c.ServerDate, c.ServerDate.Add(time.Second)
	switch {
	case latest.Before(sent):
		return sent.Sub(latest), true // the local clock is ahead
	case earliest.After(received):
		return received.Sub(earliest), true // the local clock is behind
	}
	return 0, true
}

// Artifact is one piece of evidence stored in the case folder.
type Artifact struct {
	// Path is relative to the case folder, with forward slashes.
	Path        string    `json:"path"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type"`
	CollectedAt time.Time `json:"collected_at"`
	// Step is the step that collected it; Source says what it is of.
	Step   string `json:"step"`
	Source string `json:"source,omitempty"`
	// VersionID and Encryption are reported by the store (S3).
	VersionID  string `json:"version_id,omitempty"`
	Encryption string `json:"encryption,omitempty"`
	// Evidence the instance uploaded itself (OS-level collection): the
	// SHA-256 the instance reported for the stored bytes, and, when the
	// object is compressed, its encoding (zstd, gzip) and the SHA-256 and
	// size of the decoded content as hashed on the instance while streaming.
	// SHA256 is always computed by the toolkit from the stored object,
	// unless HashedBy says "instance" (the image was not read back).
	ReportedSHA256 string `json:"reported_sha256,omitempty"`
	Encoding       string `json:"encoding,omitempty"`
	DecodedSHA256  string `json:"decoded_sha256,omitempty"`
	DecodedSize    int64  `json:"decoded_size,omitempty"`
	HashedBy       string `json:"hashed_by,omitempty"`
}

// Snapshot is one EBS snapshot taken for the case.
type Snapshot struct {
	SnapshotID string    `json:"snapshot_id"`
	VolumeID   string    `json:"volume_id"`
	InstanceID string    `json:"instance_id"`
	State      string    `json:"state"`
	StartedAt  time.Time `json:"started_at"`
	Encrypted  bool      `json:"encrypted"`
	Run        int       `json:"run"`
}

// Snapshot copy states.
const (
	CopyPending   = "pending"   // CopySnapshot accepted; the copy is not complete
	CopyCompleted = "completed" // the copy is complete in the forensics account
	CopyFailed    = "failed"    // a step failed; Error says which and why
)

// SnapshotCopy is one case snapshot preserved in the forensics account: the
// source, the re-encrypted intermediate copy when the source was encrypted
// with the AWS managed key aws/ebs (which cannot be shared), and the copy.
type SnapshotCopy struct {
	SourceSnapshotID string `json:"source_snapshot_id"`
	SourceAccountID  string `json:"source_account_id"`
	SourceKMSKeyID   string `json:"source_kms_key_id,omitempty"`
	// IntermediateSnapshotID is the copy made in the source account under
	// IntermediateKMSKeyID (a customer managed key the forensics account may
	// use), and shared instead of the source.
	IntermediateSnapshotID string `json:"intermediate_snapshot_id,omitempty"`
	IntermediateKMSKeyID   string `json:"intermediate_kms_key_id,omitempty"`
	// SharedSnapshotID is the snapshot shared with the forensics account.
	SharedSnapshotID string `json:"shared_snapshot_id,omitempty"`
	// SnapshotID is the copy in the forensics account (AccountID, Region),
	// encrypted with KMSKeyID.
	SnapshotID  string     `json:"snapshot_id,omitempty"`
	AccountID   string     `json:"account_id"`
	Region      string     `json:"region"`
	KMSKeyID    string     `json:"kms_key_id"`
	State       string     `json:"state"`
	Error       string     `json:"error,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	// Run is the run that made the copy.
	Run int `json:"run"`
	// Lock is the copy's EBS snapshot lock as read back (since 1.5);
	// LockError says why the copy is not locked.
	Lock      *SnapshotLock `json:"lock,omitempty"`
	LockError string        `json:"lock_error,omitempty"`
}

// SnapshotCopy looks up the copy of a source snapshot.
func (m *Manifest) SnapshotCopy(sourceSnapshotID string) (SnapshotCopy, bool) {
	for _, c := range m.SnapshotCopies {
		if c.SourceSnapshotID == sourceSnapshotID {
			return c, true
		}
	}
	return SnapshotCopy{}, false
}

// Artifact looks up an artifact by path.
func (m *Manifest) Artifact(path string) (Artifact, bool) {
	for _, a := range m.Artifacts {
		if a.Path == path {
			return a, true
		}
	}
	return Artifact{}, false
}

// LastRun is the number of the newest run, 0 for a new case.
func (m *Manifest) LastRun() int {
	if m == nil || len(m.Runs) == 0 {
		return 0
	}
	return m.Runs[len(m.Runs)-1].Number
}

// ReleasePlaybook is the playbook a release run of a case is recorded under.
const ReleasePlaybook = "release"

// FirstBefore returns the before-state the step recorded the first time it
// set out to change something in this case (its status ok, or failed: a
// failed step may have changed part of what it set out to, such as some of
// the interfaces): the state a release restores. A release run that read
// back that state for the step (its containment held) closes it: a later
// containment of the case records, and its release restores, the state
// found then (what changed on the instance between the release and the new
// containment is kept), not the state of the first response.
func (m *Manifest) FirstBefore(step string) (json.RawMessage, bool) {
	releases := map[int]bool{}
	for _, r := range m.Runs {
		if r.Playbook == ReleasePlaybook {
			releases[r.Number] = true
		}
	}
	var first json.RawMessage
	for _, s := range m.Steps {
		switch {
		case s.Name != step:
		case releases[s.Run]:
			if s.Containment == ContainmentHeld {
				first = nil
			}
		case first == nil && s.Status != StatusSkipped && len(s.Before) > 0:
			first = s.Before
		}
	}
	return first, first != nil
}

// SnapshotLock is an EBS snapshot lock as DescribeLockedSnapshots read it
// back (since 1.5).
type SnapshotLock struct {
	SnapshotID string `json:"snapshot_id"`
	// State is governance, compliance, compliance-cooloff or expired.
	State        string     `json:"state"`
	Days         int        `json:"days,omitempty"`
	CoolOffHours int        `json:"cool_off_hours,omitempty"`
	LockedAt     *time.Time `json:"locked_at,omitempty"`
	ExpiresOn    *time.Time `json:"expires_on,omitempty"`
}

// Holds reports whether the lock protects the snapshot now (its state is
// not expired; the expiry date itself is EBS's to enforce).
func (l SnapshotLock) Holds() bool {
	switch l.State {
	case "governance", "compliance", "compliance-cooloff":
		return true
	}
	return false
}
