package investigate_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/internal/casetest"
	"github.com/responder-ir/responder/responder/investigate"
)

// carry passes the staged workspace as a Step Functions state does: JSON.
func carry(t *testing.T, s *investigate.Staged) *investigate.Staged {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out investigate.Staged
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// A staged start, stage by stage with the state carried as JSON, builds the
// workspace a blocking start does: recorded starting first, then ready with
// its volumes attached and mounted; a begin retried by the same execution
// carries on with its own workspace, another one is refused.
func TestStagedStartBuildsTheWorkspace(t *testing.T) {
	l := newLab(t, true)
	iv := l.investigator()
	ctx := context.Background()
	s, err := iv.BeginStaged(ctx, l.request(), "arn:aws:iam::444455556666:user/alice", "exec-1")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := evidence.LoadRecord(ctx, l.store, casetest.CaseID)
	if ws := investigate.Workspaces(rec.Manifest); len(ws) != 1 || ws[0].State != evidence.WorkspaceStarting || len(l.instances(t)) != 0 {
		t.Fatalf("before launch: recorded %+v, instances %d", ws, len(l.instances(t)))
	}
	again, err := iv.BeginStaged(ctx, l.request(), "", "exec-1")
	if err != nil || again.Workspace.ID != s.Workspace.ID {
		t.Fatalf("begin retried: %+v, %v", again, err)
	}
	if _, err := iv.BeginStaged(ctx, l.request(), "", "exec-2"); !errors.Is(err, investigate.ErrWorkspaceExists) {
		t.Fatalf("another execution's begin: err %v, want ErrWorkspaceExists", err)
	}
	stages := 0
	for !s.Done() && stages < 50 {
		s = carry(t, s)
		if err := iv.AdvanceStaged(ctx, s); err != nil {
			t.Fatal(err)
		}
		stages++
	}
	res, err := iv.FinishStaged(ctx, carry(t, s), "")
	if err != nil {
		t.Fatal(err)
	}
	ws := res.Workspace
	if ws.State != evidence.WorkspaceReady || len(ws.Mounts) != len(l.copies) || len(ws.Volumes) != len(l.copies) {
		t.Fatalf("after %d stages: state %s, problems %q, mounts %d", stages, ws.State, ws.Problems, len(ws.Mounts))
	}
	for _, v := range ws.Volumes {
		got := l.dst.Volume(v.VolumeID)
		if got == nil || len(got.Attachments) != 1 || *got.Attachments[0].InstanceId != ws.InstanceID || *got.AvailabilityZone != l.az {
			t.Fatalf("volume %s: %+v", v.VolumeID, got)
		}
	}
	if live := l.instances(t); len(live) != 1 {
		t.Fatalf("instances %d, want 1", len(live))
	}
	l.copiesIntact(t)
}
