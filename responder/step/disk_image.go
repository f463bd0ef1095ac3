package step

import "encoding/json"

// DiskImageRecord names the entry `responder image` records for each
// snapshot copy it images. It is not a step a plan runs: the image engine
// writes it after the response, with the copy it read as its before and
// what it stored (hashes, blocks, a refused block) as its after.
const DiskImageRecord = "disk-image"

// describeDiskImage: the image is an artifact of the case; the entry's
// before and after are not instance state.
func describeDiskImage() Description {
	return Description{
		NoState: true,
		OnFailure: "No disk image of this snapshot copy was stored: the snapshot copy itself is still the " +
			"evidence. A refused block means AWS sent data that did not match its own checksum; run " +
			"responder image again, and if the same block is refused, keep the copy and report it.",
		Subject: diskImageSnapshot,
	}
}

// diskImageSnapshot is the snapshot copy a disk-image entry is about.
func diskImageSnapshot(before json.RawMessage) string {
	var v struct {
		SnapshotID string `json:"snapshot_id"`
	}
	if err := json.Unmarshal(before, &v); err != nil {
		return ""
	}
	return v.SnapshotID
}
