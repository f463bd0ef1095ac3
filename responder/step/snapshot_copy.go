package step

import "encoding/json"

// SnapshotCopyRecord names the entry `responder preserve` records for each
// case snapshot it copies into the forensics account. It is not a step a
// plan runs: preserve writes it after the response, one entry per source
// snapshot, with the source it found as its before and the copy (an
// evidence.SnapshotCopy) as its after.
const SnapshotCopyRecord = "snapshot-copy"

// describeSnapshotCopy: the copies have their own section in the report, so
// the entry's before and after are not instance state.
func describeSnapshotCopy() Description {
	return Description{
		NoState: true,
		OnFailure: "This snapshot was not preserved in the forensics account: the disk image exists only in the " +
			"instance's account, where anyone with enough access there can delete it. Preserve it again " +
			"(responder preserve) and check the copy with responder verify before relying on it.",
		Subject: snapshotCopySource,
	}
}

// snapshotCopySource is the source snapshot a snapshot-copy entry is about,
// from its before ({"snapshot_id": ...}); "" when it cannot be read.
func snapshotCopySource(before json.RawMessage) string {
	var v struct {
		SnapshotID string `json:"snapshot_id"`
	}
	if err := json.Unmarshal(before, &v); err != nil {
		return ""
	}
	return v.SnapshotID
}
