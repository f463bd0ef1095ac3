package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/preserve"
)

const forensicsAccount = "444455556666"

// preserveWorld is a workload account holding a responded case (its
// snapshots completed) and the forensics account the function runs in,
// linked to it: it sees the snapshots the workload account shares with it.
type preserveWorld struct {
	src, dst    *fakeaws.Cloud
	h           *trigger.Handler
	store       evidence.Store
	caseID      string
	snapshots   []string
	evidenceKey string
}

// preserveSetup configures the handler of a preserveWorld.
type preserveSetup struct {
	volumes       string // "plain", "aws/ebs" or "shared-cmk"
	forensicsKey  bool   // RESPONDER_FORENSICS_KMS_KEY set
	sourceAlias   bool   // RESPONDER_SOURCE_KMS_KEY_ALIAS set (and the alias exists in the workload account)
	copyCompletes int    // DescribeSnapshots calls that see a copy pending
}

func newPreserveWorld(t *testing.T, s preserveSetup) *preserveWorld {
	t.Helper()
	w := &preserveWorld{src: fakeaws.New(), dst: fakeaws.New(fakeaws.WithAccount(forensicsAccount)), store: &evidence.Folder{Root: t.TempDir()}}
	fakeaws.Link(w.src, w.dst)
	w.evidenceKey = w.dst.AddKMSKey("alias/evidence")
	spec := fakeaws.InstanceSpec{Volumes: 2}
	switch s.volumes {
	case "aws/ebs":
		spec.Encrypted = true
	case "shared-cmk":
		spec.Encrypted, spec.KmsKeyID = true, w.src.AddKMSKey("alias/app", forensicsAccount)
	}
	if s.sourceAlias {
		w.src.AddKMSKey("alias/responder-evidence", forensicsAccount)
	}
	instanceID := w.src.AddInstance(spec)
	cfg := trigger.Config{
		EvidenceBucket:  "evidence",
		StateMachineARN: "arn:aws:states:" + w.dst.Region + ":" + forensicsAccount + ":stateMachine:responder-response",
		HomePartition:   "aws", HomeAccount: forensicsAccount, AllowedAccounts: []string{w.src.Account},
		MemberRoleName: trigger.DefaultMemberRoleName, LockWindow: trigger.DefaultLockWindow, Region: w.dst.Region,
	}
	if s.forensicsKey {
		cfg.ForensicsKMSKey = w.evidenceKey
	}
	if s.sourceAlias {
		cfg.SourceKMSKeyAlias = "responder-evidence"
	}
	w.h = &trigger.Handler{
		Config: cfg, Store: w.store, SNS: w.dst.SNS(), Forensics: w.dst.EC2(), PreservePoll: time.Millisecond,
		Workload: func(_ context.Context, tg trigger.Target, _ string) (*cloud.Clients, error) {
			if tg.AccountID != w.src.Account || tg.Region != w.src.Region {
				return nil, errors.New("assume role in " + tg.String() + ": AccessDenied")
			}
			return &cloud.Clients{EC2: w.src.EC2(), STS: w.src.STS(), IAM: w.src.IAM(), AutoScaling: w.src.AutoScaling(), ELBv2: w.src.ELBv2(), ELB: w.src.ELB(), KMS: w.src.KMS(), CallerSTS: w.dst.STS()}, nil
		},
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	w.caseID = "2026-11-23-preserve-0001"
	res, err := w.h.Handle(context.Background(), mustJSON(t, map[string]any{
		"task": trigger.TaskRespond, "case_id": w.caseID, "instance_id": instanceID,
		"account_id": w.src.Account, "region": w.src.Region, "playbook": "", "actor": "test",
		"source": "api", "case_id_given": true, "requested_at": "2026-11-23T10:00:00Z",
	}))
	if err != nil {
		t.Fatalf("respond task: %v", err)
	}
	var r struct {
		SnapshotIDs []string `json:"snapshot_ids"`
	}
	if err := json.Unmarshal(res, &r); err != nil || len(r.SnapshotIDs) != 2 {
		t.Fatalf("respond task: %s (%v)", res, err)
	}
	w.snapshots = r.SnapshotIDs
	w.src.CompleteSnapshots()
	// Re-encrypted copies complete at once; forensics copies after a few looks.
	w.src.SnapshotCompletesAfter, w.dst.SnapshotCompletesAfter = 1, s.copyCompletes
	return w
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// preserveAnswer is the preserve task's answer.
type preserveAnswer struct {
	CaseID     string   `json:"case_id"`
	Configured bool     `json:"configured"`
	Complete   bool     `json:"complete"`
	Failed     bool     `json:"failed"`
	Percent    int      `json:"percent"`
	Total      int      `json:"total"`
	Completed  int      `json:"completed"`
	Pending    int      `json:"pending"`
	Problems   []string `json:"problems"`
	Polls      int      `json:"polls"`
	Note       string   `json:"note"`
}

func (w *preserveWorld) preserve(t *testing.T, polls int, edit ...func(map[string]any)) (preserveAnswer, error) {
	t.Helper()
	p := map[string]any{"task": trigger.TaskPreserve, "case_id": w.caseID, "account_id": w.src.Account, "region": w.src.Region, "polls": polls}
	for _, e := range edit {
		e(p)
	}
	out, err := w.h.Handle(context.Background(), mustJSON(t, p))
	if err != nil {
		return preserveAnswer{}, err
	}
	var a preserveAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	return a, nil
}

// forensicsCopies are the copies the forensics account holds, by source.
func (w *preserveWorld) forensicsCopies() map[string][]types.Snapshot {
	out := map[string][]types.Snapshot{}
	for _, s := range w.dst.Snapshots() {
		for _, tg := range s.Tags {
			if aws.ToString(tg.Key) == preserve.TagSourceSnapshotID {
				out[aws.ToString(tg.Value)] = append(out[aws.ToString(tg.Value)], s)
			}
		}
	}
	return out
}

// The task copies every case snapshot into the forensics account once, and
// reports the copies pending until they complete, as the state machine
// polls it.
func TestPreserveTaskCopiesIntoTheForensicsAccount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		volumes string
	}{
		{"unencrypted volumes", "plain"},
		{"volumes under a shareable key", "shared-cmk"},
		{"volumes under aws/ebs, re-encrypted with the alias", "aws/ebs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newPreserveWorld(t, preserveSetup{volumes: tc.volumes, forensicsKey: true, sourceAlias: true, copyCompletes: 2})
			var answers []preserveAnswer
			for polls := 0; polls < 10; polls++ {
				a, err := w.preserve(t, polls)
				if err != nil {
					t.Fatalf("poll %d: %v", polls, err)
				}
				answers = append(answers, a)
				if a.Complete || a.Failed {
					break
				}
			}
			first, last := answers[0], answers[len(answers)-1]
			if first.Complete || first.Failed || first.Pending != 2 || first.Total != 2 || !first.Configured || first.Polls != 1 {
				t.Errorf("first answer %+v, want both copies pending", first)
			}
			if !last.Complete || last.Failed || last.Percent != 100 || last.Completed != 2 || len(last.Problems) != 0 || last.Polls != len(answers) {
				t.Fatalf("last answer %+v after %d polls, want complete", last, len(answers))
			}

			copies := w.forensicsCopies()
			for _, src := range w.snapshots {
				got := copies[src]
				if len(got) != 1 {
					t.Fatalf("forensics account holds %d copies of %s, want 1", len(got), src)
				}
				if got[0].State != types.SnapshotStateCompleted || !aws.ToBool(got[0].Encrypted) || aws.ToString(got[0].KmsKeyId) != w.evidenceKey {
					t.Errorf("copy of %s: %s, encrypted %v with %s; want completed under %s",
						src, got[0].State, aws.ToBool(got[0].Encrypted), aws.ToString(got[0].KmsKeyId), w.evidenceKey)
				}
			}
			m, err := evidence.LoadManifest(context.Background(), w.store, w.caseID)
			if err != nil {
				t.Fatal(err)
			}
			for _, src := range w.snapshots {
				cp, ok := m.SnapshotCopy(src)
				if !ok || cp.State != evidence.CopyCompleted || cp.AccountID != forensicsAccount || cp.SnapshotID != aws.ToString(copies[src][0].SnapshotId) {
					t.Errorf("record of the copy of %s: %+v", src, cp)
				}
				if tc.volumes == "aws/ebs" && !strings.Contains(cp.IntermediateKMSKeyID, ":alias/responder-evidence") {
					t.Errorf("copy of %s re-encrypted with %q, want the alias ARN", src, cp.IntermediateKMSKeyID)
				}
			}
			if runs := m.Runs[len(m.Runs)-1]; runs.Playbook != preserve.Playbook || runs.Status != preserve.Completed {
				t.Errorf("last run %+v, want a completed preserve run", runs)
			}
		})
	}
}

// What the task answers when it cannot or need not copy: the state machine
// then ends (complete) or fails (failed) without polling on.
func TestPreserveTaskOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    preserveSetup
		edit     func(map[string]any)
		complete bool
		failed   bool
		problem  string
		copies   int
	}{
		{name: "not configured", setup: preserveSetup{volumes: "plain"}, complete: true},
		{name: "aws/ebs without a source key alias", setup: preserveSetup{volumes: "aws/ebs", forensicsKey: true, copyCompletes: 1},
			failed: true, problem: "cannot be shared"},
		{name: "case in another Region", setup: preserveSetup{volumes: "plain", forensicsKey: true},
			edit: func(p map[string]any) { p["region"] = "eu-north-1" }, failed: true, problem: "only within its Region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newPreserveWorld(t, tc.setup)
			var edits []func(map[string]any)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			a, err := w.preserve(t, 0, edits...)
			if err != nil {
				t.Fatal(err)
			}
			if a.Complete != tc.complete || a.Failed != tc.failed || a.Polls != 1 {
				t.Fatalf("answer %+v, want complete %v failed %v", a, tc.complete, tc.failed)
			}
			if tc.problem != "" && (len(a.Problems) == 0 || !strings.Contains(strings.Join(a.Problems, "; "), tc.problem)) {
				t.Errorf("problems %q, want one saying %q", a.Problems, tc.problem)
			}
			if got := len(w.dst.Snapshots()); got != tc.copies {
				t.Errorf("forensics account holds %d snapshots, want %d", got, tc.copies)
			}
		})
	}
}

func TestPreserveTaskRejects(t *testing.T) {
	w := newPreserveWorld(t, preserveSetup{volumes: "plain", forensicsKey: true})
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		typ  string
	}{
		{"unknown field", func(p map[string]any) { p["instance_id"] = "i-0123456789abcdef0" }, trigger.ErrorInput},
		{"bad case ID", func(p map[string]any) { p["case_id"] = "../x" }, trigger.ErrorInput},
		{"account not allowed", func(p map[string]any) { p["account_id"] = "999988887777" }, trigger.ErrorInput},
		{"bad Region", func(p map[string]any) { p["region"] = "mars" }, trigger.ErrorInput},
		{"no record", func(p map[string]any) { p["case_id"] = "2026-11-23-nothing-0002" }, trigger.ErrorInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.preserve(t, 0, tc.edit)
			var f *trigger.Failure
			if !errors.As(err, &f) || f.Type != tc.typ {
				t.Fatalf("error %v, want a %s failure", err, tc.typ)
			}
		})
	}
	if got := len(w.dst.Snapshots()); got != 0 {
		t.Errorf("rejected tasks made %d copies", got)
	}
}
