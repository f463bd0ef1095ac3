package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// snapshotPayload is the payload of the snapshot-status task.
type snapshotPayload struct {
	Task       string `json:"task"`
	CaseID     string `json:"case_id"`
	InstanceID string `json:"instance_id"`
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	// Polls is how many times the state machine asked before.
	Polls int `json:"polls"`
}

// snapshotStatus is the answer of the snapshot-status task.
type snapshotStatus struct {
	CaseID string `json:"case_id"`
	// Complete: every snapshot of the case is completed (or the case has
	// none). Failed: one is in the error state or gone.
	Complete  bool     `json:"complete"`
	Failed    bool     `json:"failed"`
	Percent   int      `json:"percent"`
	Total     int      `json:"total"`
	Completed int      `json:"completed"`
	Pending   int      `json:"pending"`
	Problems  []string `json:"problems"`
	Polls     int      `json:"polls"`
}

// snapshotStatus reads the state of the case's snapshots (those its record
// lists for the instance) in the workload account.
func (h *Handler) snapshotStatus(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p snapshotPayload
	if err := decodeStrict(payload, &p); err != nil {
		log.Error("snapshot-status task rejected", "error", err)
		return nil, fail(ErrorInput, "snapshot-status task payload: %v", err)
	}
	t := Target{AccountID: p.AccountID, Region: p.Region, InstanceID: p.InstanceID}
	log = log.With("case_id", p.CaseID, "instance_id", p.InstanceID)
	if err := h.checkCase(p.CaseID, t); err != nil {
		log.Error("snapshot-status task rejected", "error", err)
		return nil, fail(ErrorInput, "snapshot-status task: %v", err)
	}
	m, err := evidence.LoadManifest(ctx, h.Store, p.CaseID)
	if errors.Is(err, evidence.ErrNotFound) {
		return nil, fail(ErrorInternal, "case %s has no record: the respond task must run first", p.CaseID)
	}
	if err != nil {
		return nil, awsFailure(fmt.Errorf("read the record of case %s: %w", p.CaseID, err))
	}
	var ids []string
	for _, s := range m.Snapshots {
		if s.InstanceID == p.InstanceID {
			ids = appendUnique(ids, s.SnapshotID)
		}
	}
	out := snapshotStatus{CaseID: p.CaseID, Total: len(ids), Problems: []string{}, Polls: p.Polls + 1}
	if len(ids) == 0 {
		out.Complete, out.Percent = true, 100
		log.Info("snapshot status: the case has no snapshot")
		return out, nil
	}
	clients, err := h.workload(ctx, t, p.CaseID)
	if err != nil {
		return nil, awsFailure(err)
	}
	found, err := describeSnapshots(ctx, clients.EC2, ids)
	if err != nil {
		log.Error("snapshot status not read", "error", err)
		return nil, awsFailure(err)
	}
	sum := 0
	for _, id := range ids {
		s, ok := found[id]
		switch {
		case !ok:
			out.Failed = true
			out.Problems = append(out.Problems, id+": not found (deleted?)")
		case s.State == types.SnapshotStateCompleted:
			out.Completed++
			sum += 100
		case s.State == types.SnapshotStateError:
			out.Failed = true
			out.Problems = append(out.Problems, id+": "+strings.TrimSpace("error "+aws.ToString(s.StateMessage)))
		default:
			out.Pending++
			sum += progress(aws.ToString(s.Progress))
		}
	}
	out.Percent = sum / len(ids)
	out.Complete = out.Completed == len(ids)
	log.Info("snapshot status", "complete", out.Complete, "failed", out.Failed, "percent", out.Percent,
		"completed", out.Completed, "total", out.Total, "polls", out.Polls)
	return out, nil
}

// describeSnapshots reads the snapshots by ID. A snapshot that does not exist
// is left out of the answer (EC2 fails the whole call for it, so the call is
// made again without the missing IDs it names).
func describeSnapshots(ctx context.Context, api snapshotsAPI, ids []string) (map[string]types.Snapshot, error) {
	want := append([]string(nil), ids...)
	for range len(ids) + 1 {
		if len(want) == 0 {
			return map[string]types.Snapshot{}, nil
		}
		out, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: want})
		if cloud.IsErrorCode(err, "InvalidSnapshot.NotFound") {
			missing := missingIDs(err, want)
			if len(missing) == 0 {
				return nil, fmt.Errorf("describe snapshots %s: %w", strings.Join(want, ", "), err)
			}
			want = remove(want, missing)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("describe snapshots %s: %w", strings.Join(want, ", "), err)
		}
		found := make(map[string]types.Snapshot, len(out.Snapshots))
		for _, s := range out.Snapshots {
			found[aws.ToString(s.SnapshotId)] = s
		}
		return found, nil
	}
	return nil, fmt.Errorf("describe snapshots %s: too many missing snapshots", strings.Join(ids, ", "))
}

// missingIDs are the IDs of want that a NotFound error message names.
func missingIDs(err error, want []string) []string {
	var missing []string
	for _, id := range want {
		if strings.Contains(err.Error(), id) {
			missing = append(missing, id)
		}
	}
	return missing
}

func remove(list, drop []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(drop, s) {
			out = append(out, s)
		}
	}
	return out
}

// progress reads EC2's "NN%" progress.
func progress(p string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(p), "%"))
	if err != nil || n < 0 {
		return 0
	}
	return min(n, 99)
}
