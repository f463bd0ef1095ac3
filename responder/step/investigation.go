package step

import "encoding/json"

// InvestigationRecord names the entry `responder investigate` records for
// each run on a case's investigation workspace in the forensics account
// (start, stop, analysis): it is not a step a plan runs. Its before is the
// workspace as the record had it (for a new one, only its workspace_id and
// case_id), its after the workspace as read back (an evidence.Workspace).
const InvestigationRecord = "investigation"

// describeInvestigation: the workspace has its own section in the report.
func describeInvestigation() Description {
	return Description{
		NoState: true,
		OnFailure: "The investigation workspace is not as asked: see its problems. Nothing of the evidence " +
			"changed (the snapshot copies are never modified; the working volumes are restored copies), but a " +
			"volume that is not proven unwritten must not be relied on: stop the workspace and start a new one " +
			"(responder investigate --stop, then --new).",
		Subject: investigationWorkspace,
	}
}

// investigationWorkspace is the workspace an investigation entry is about,
// from its before; "" when it cannot be read.
func investigationWorkspace(before json.RawMessage) string {
	var v struct {
		ID string `json:"workspace_id"`
	}
	if err := json.Unmarshal(before, &v); err != nil {
		return ""
	}
	return v.ID
}
