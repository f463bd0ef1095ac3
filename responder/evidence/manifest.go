package evidence

import (
	"encoding/json"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
)

// SchemaVersion is the version of the manifest format written by this code.
// Readers accept any 1.x manifest; a change that breaks readers bumps the
// major version. The format is documented in FORMAT.md beside this file.
const SchemaVersion = "1.0"

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
}

// Case statuses: how the response as a whole ended.
const (
	// CaseContained: every containment step succeeded (or had nothing to do).
	CaseContained = "contained"
	// CaseContainedIncomplete: contained, but some evidence or notification
	// step failed.
	CaseContainedIncomplete = "contained-evidence-incomplete"
	// CaseContainmentFailed: at least one containment step failed; the
	// instance may not be isolated.
	CaseContainmentFailed = "containment-failed"
)

// Run is one invocation of respond for the case.
type Run struct {
	Number    int       `json:"run"`
	Actor     string    `json:"actor"`
	ActingAs  string    `json:"acting_as,omitempty"`
	Playbook  string    `json:"playbook"`
	Status    string    `json:"status"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
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
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
	Error     string          `json:"error,omitempty"`
	Calls     []cloud.Call    `json:"calls,omitempty"`
	StartedAt time.Time       `json:"started_at"`
	EndedAt   time.Time       `json:"ended_at"`
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

// FirstBefore returns the before-state the step recorded the first time it
// changed something in this case: the state a release restores.
func (m *Manifest) FirstBefore(step string) (json.RawMessage, bool) {
	for _, s := range m.Steps {
		if s.Name == step && s.Status == StatusOK && len(s.Before) > 0 {
			return s.Before, true
		}
	}
	return nil, false
}
