package evidence

import (
	"context"
	"sort"
	"time"
)

// SaveTimeout bounds the write of a case record once a run is done.
const SaveTimeout = 30 * time.Second

// Revision is what one run adds to a case record. Every engine that records
// a run (respond, preserve) describes it as a Revision and calls AppendRun,
// so the rules of a cumulative record live in one place.
type Revision struct {
	Run   Run
	Steps []StepRecord
	// Artifacts and Snapshots are added unless the record already holds
	// them (by path, by snapshot ID): evidence is never recorded twice.
	Artifacts []Artifact
	Snapshots []Snapshot
	// Copies replace the record's copy of the same source snapshot.
	Copies []SnapshotCopy
	// SetStatus makes Run.Status the case status (a response); a preserve
	// run leaves the case status, which says how containment ended.
	SetStatus bool
	// Tool names the toolkit and its version; Location is the case folder.
	Tool     string
	Location string
}

// AppendRun returns the case record after a run: a copy of prior with the
// revision appended. prior is nil for a new case; the case fields are then
// taken from newCase. Neither prior nor newCase is changed.
func AppendRun(prior *Manifest, newCase Manifest, rev Revision) *Manifest {
	m := &Manifest{}
	if prior != nil {
		*m = *prior
		m.Runs = append([]Run(nil), prior.Runs...)
		m.Steps = append([]StepRecord(nil), prior.Steps...)
		m.Artifacts = append([]Artifact(nil), prior.Artifacts...)
		m.Snapshots = append([]Snapshot(nil), prior.Snapshots...)
		m.SnapshotCopies = append([]SnapshotCopy(nil), prior.SnapshotCopies...)
	} else {
		m.CaseID, m.InstanceID, m.AccountID, m.Region = newCase.CaseID, newCase.InstanceID, newCase.AccountID, newCase.Region
		m.Actor, m.ActingAs, m.StartedAt = rev.Run.Actor, rev.Run.ActingAs, rev.Run.StartedAt
	}
	m.SchemaVersion = SchemaVersion
	m.Tool = rev.Tool
	m.Location = rev.Location
	if rev.SetStatus {
		m.Status = rev.Run.Status
	}
	m.EndedAt = rev.Run.EndedAt
	m.Runs = append(m.Runs, rev.Run)
	m.Steps = append(m.Steps, rev.Steps...)
	m.addArtifacts(rev.Artifacts)
	m.addSnapshots(rev.Snapshots)
	m.putCopies(rev.Copies)
	if m.Runs == nil {
		m.Runs = []Run{}
	}
	if m.Artifacts == nil {
		m.Artifacts = []Artifact{}
	}
	if m.Snapshots == nil {
		m.Snapshots = []Snapshot{}
	}
	return m
}

func (m *Manifest) addArtifacts(as []Artifact) {
	if len(as) == 0 {
		return
	}
	for _, a := range as {
		if _, dup := m.Artifact(a.Path); !dup {
			m.Artifacts = append(m.Artifacts, a)
		}
	}
	sort.SliceStable(m.Artifacts, func(i, j int) bool { return m.Artifacts[i].Path < m.Artifacts[j].Path })
}

func (m *Manifest) addSnapshots(ss []Snapshot) {
	seen := map[string]bool{}
	for _, s := range m.Snapshots {
		seen[s.SnapshotID] = true
	}
	for _, s := range ss {
		if !seen[s.SnapshotID] {
			seen[s.SnapshotID] = true
			m.Snapshots = append(m.Snapshots, s)
		}
	}
}

func (m *Manifest) putCopies(copies []SnapshotCopy) {
	for _, c := range copies {
		replaced := false
		for i := range m.SnapshotCopies {
			if m.SnapshotCopies[i].SourceSnapshotID == c.SourceSnapshotID {
				m.SnapshotCopies[i], replaced = c, true
			}
		}
		if !replaced {
			m.SnapshotCopies = append(m.SnapshotCopies, c)
		}
	}
}

// SaveRun stores and seals the record a run left (Store.SaveManifest),
// unsigned: SaveSignedRun with no signer. It saves even when ctx is already
// cancelled (Ctrl-C, a Lambda deadline, a run timeout): what was done must
// be written down. SaveTimeout bounds it.
func SaveRun(ctx context.Context, store Store, m *Manifest) error {
	return SaveSignedRun(ctx, store, m, nil)
}

// CustodyRecord is what a legal hold or its removal leaves in the case
// folder, under custody/: who did it, when, and to which objects. It is
// written once and never replaced.
type CustodyRecord struct {
	CaseID   string    `json:"case_id"`
	Action   string    `json:"action"` // CustodyHoldOn or CustodyHoldOff
	Actor    string    `json:"actor"`
	At       time.Time `json:"at"`
	Objects  []string  `json:"objects"`
	Failures []string  `json:"failures,omitempty"`
	Record   string    `json:"record"`
}

// Custody actions.
const (
	CustodyHoldOn  = "legal-hold-on"
	CustodyHoldOff = "legal-hold-off"
)

// CustodyFolder holds the custody records of a case.
const CustodyFolder = "custody/"

// CustodyRecordName is the path of a custody record made at a given time.
func CustodyRecordName(at time.Time, action string) string {
	return CustodyFolder + at.UTC().Format("20060102T150405.000000000Z") + "-" + action + ".json"
}
