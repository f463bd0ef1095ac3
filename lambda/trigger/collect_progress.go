package trigger

import (
	"encoding/json"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// collectionSummary is what GET /cases/{id} shows of the memory capture:
// the newest record of the access or capture stages.
type collectionSummary struct {
	// Stage is the last stage recorded (access, prepare, send, poll,
	// finish, abort), Status its step status, Run its run of the case.
	Stage  string    `json:"stage"`
	Status string    `json:"status"`
	Run    int       `json:"run"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	Error  string    `json:"error,omitempty"`
	step.StagedProgress
	// Volatile is the newest record of the staged volatile-data collection.
	Volatile *volatileSummary `json:"volatile,omitempty"`
}

// volatileSummary is what GET /cases/{id} shows of the volatile data.
type volatileSummary struct {
	Stage         string `json:"stage"`
	Status        string `json:"status"`
	Ended         bool   `json:"ended"`
	Error         string `json:"error,omitempty"`
	CommandStatus string `json:"command_status,omitempty"`
	ArchivePath   string `json:"archive_path,omitempty"`
	ArchiveSHA256 string `json:"archive_sha256,omitempty"`
}

// volatileProgress reads the newest staged volatile-data record.
func volatileProgress(m *evidence.Manifest) *volatileSummary {
	for i := len(m.Steps) - 1; i >= 0; i-- {
		st := m.Steps[i]
		if st.Name != (step.VolatileData{}).Name() {
			continue
		}
		var rec struct {
			Command struct {
				Status string `json:"status"`
			} `json:"command"`
			Archive *evidence.Artifact `json:"archive"`
			Staged  *struct {
				Stage string `json:"stage"`
				Ended bool   `json:"ended"`
			} `json:"staged"`
		}
		if json.Unmarshal(st.After, &rec) != nil || rec.Staged == nil {
			continue // a CLI run: the steps show it
		}
		v := &volatileSummary{Stage: rec.Staged.Stage, Status: st.Status, Ended: rec.Staged.Ended, Error: st.Error, CommandStatus: rec.Command.Status}
		if rec.Archive != nil {
			v.ArchivePath, v.ArchiveSHA256 = rec.Archive.Path, rec.Archive.SHA256
		}
		return v
	}
	return nil
}

// collectionProgress reads the newest memory-capture (or, before it,
// ssm-access) record of a staged collection; nil when the case has none.
func collectionProgress(m *evidence.Manifest) *collectionSummary {
	for _, name := range []string{"memory-capture", "ssm-access"} {
		for i := len(m.Steps) - 1; i >= 0; i-- {
			st := m.Steps[i]
			if st.Name != name {
				continue
			}
			var staged struct {
				Collection string `json:"collection"`
				Staged     *struct {
					Stage string `json:"stage"`
				} `json:"staged"`
			}
			if json.Unmarshal(st.After, &staged) != nil || (staged.Staged == nil && staged.Collection == "") {
				continue // a CLI run: the steps show it
			}
			stage := step.StageAccess
			if staged.Staged != nil {
				stage = staged.Staged.Stage
			}
			return &collectionSummary{Stage: stage, Status: st.Status, Run: st.Run, At: st.EndedAt, Reason: st.Reason, Error: st.Error,
				StagedProgress: step.ReadStagedProgress(st.After), Volatile: volatileProgress(m)}
		}
	}
	return nil
}
