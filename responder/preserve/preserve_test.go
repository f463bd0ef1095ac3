package preserve_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
	"github.com/responder-ir/responder/responder/preserve"
	"github.com/responder-ir/responder/responder/step"
)

const forensicsAccount = "444455556666"

// preserveLab is a workload account with a snapshotted suspect, and a
// forensics account linked to it (it sees what the workload shares with it).
type preserveLab struct {
	src, dst     *fakeaws.Cloud
	store        evidence.Store
	instanceID   string
	snapshots    []string // the case snapshots, in volume order
	shareKey     string   // customer managed key of the workload account the forensics account may use
	evidenceKey  string   // key of the forensics account
	unusableKey  string   // customer managed key of the workload account the forensics account may NOT use
	caseManifest *evidence.Manifest
}

// volumeKey says how the suspect's volumes are encrypted.
type volumeKey int

const (
	unencrypted volumeKey = iota
	awsManagedKey
	sharedCMK
	privateCMK
)

func newPreserveLab(t *testing.T, key volumeKey) *preserveLab {
	t.Helper()
	l := &preserveLab{src: fakeaws.New(), dst: fakeaws.New(fakeaws.WithAccount(forensicsAccount))}
	fakeaws.Link(l.src, l.dst)
	l.shareKey = l.src.AddKMSKey("alias/forensics-share", forensicsAccount)
	l.unusableKey = l.src.AddKMSKey("alias/app")
	l.evidenceKey = l.dst.AddKMSKey("alias/evidence")
	spec := fakeaws.InstanceSpec{Volumes: 2}
	switch key {
	case awsManagedKey:
		spec.Encrypted = true
	case sharedCMK:
		spec.Encrypted, spec.KmsKeyID = true, l.shareKey
	case privateCMK:
		spec.Encrypted, spec.KmsKeyID = true, l.unusableKey
	}
	l.instanceID = l.src.AddInstance(spec)
	l.store = &evidence.Folder{Root: t.TempDir()}
	res := casetest.Respond(t, l.src, l.store, responder.Request{InstanceID: l.instanceID, Plan: []string{"snapshots"}, PlanName: "custom"})
	if res.Err != nil {
		t.Fatalf("respond: %v", res.Err)
	}
	for _, s := range res.Manifest.Snapshots {
		l.snapshots = append(l.snapshots, s.SnapshotID)
	}
	if len(l.snapshots) != 2 {
		t.Fatalf("case snapshots = %v", l.snapshots)
	}
	l.caseManifest = res.Manifest
	// Every snapshot takes a few polls to complete.
	l.src.SnapshotCompletesAfter, l.dst.SnapshotCompletesAfter = 2, 2
	return l
}

func (l *preserveLab) preserver() *preserve.Preserver {
	return &preserve.Preserver{
		Source: l.src.EC2(), KMS: l.src.KMS(), Forensics: l.dst.EC2(), Caller: l.dst.STS(), ActingAs: l.src.STS(),
		Store: l.store, Region: l.src.Region, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func (l *preserveLab) request(wait bool) preserve.Request {
	return preserve.Request{CaseID: casetest.CaseID, ForensicsAccountID: forensicsAccount, ForensicsKMSKeyID: l.evidenceKey,
		SourceKMSKeyID: l.shareKey, Wait: wait, PollInterval: time.Millisecond, Timeout: 10 * time.Second}
}

func (l *preserveLab) preserve(t *testing.T, req preserve.Request) *preserve.Result {
	t.Helper()
	res, err := l.preserver().Preserve(context.Background(), req)
	if err != nil {
		t.Fatalf("Preserve: %v", err)
	}
	return res
}

// copyOf returns the forensics account's copy of a source snapshot (found by
// its tags), failing the test when there is not exactly one.
func (l *preserveLab) copyOf(t *testing.T, source string) types.Snapshot {
	t.Helper()
	var found []types.Snapshot
	for _, s := range l.dst.Snapshots() {
		if tagValue(s.Tags, preserve.TagSourceSnapshotID) == source {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("forensics account holds %d copies of %s, want 1", len(found), source)
	}
	return found[0]
}

func tagValue(tags []types.Tag, key string) string {
	for _, tg := range tags {
		if aws.ToString(tg.Key) == key {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

func TestPreserveCopiesIntoTheForensicsAccount(t *testing.T) {
	for _, tc := range []struct {
		name       string
		key        volumeKey
		reencrypt  bool // an intermediate copy under the share key is made and shared
		noShareKey bool
		noKMS      bool // DescribeKey cannot tell: sharing is refused, then re-encrypted
		wantErr    string
	}{
		{name: "unencrypted", key: unencrypted},
		{name: "customer managed key", key: sharedCMK},
		{name: "aws/ebs key", key: awsManagedKey, reencrypt: true},
		{name: "aws/ebs key, KMS denied", key: awsManagedKey, reencrypt: true, noKMS: true},
		{name: "aws/ebs key without a share key", key: awsManagedKey, noShareKey: true, wantErr: "cannot be shared"},
		{name: "key the forensics account may not use", key: privateCMK, wantErr: "not accessible"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newPreserveLab(t, tc.key)
			req := l.request(true)
			if tc.noKMS {
				l.src.Deny("DescribeKey")
			}
			if tc.noShareKey {
				req.SourceKMSKeyID = ""
			}
			res := l.preserve(t, req)
			m, err := evidence.LoadManifest(context.Background(), l.store, casetest.CaseID)
			if err != nil {
				t.Fatal(err)
			}
			run := m.Runs[len(m.Runs)-1]
			if run.Playbook != preserve.Playbook || run.Number != 2 || run.Actor == "" {
				t.Errorf("recorded run %+v", run)
			}
			if m.Status != l.caseManifest.Status {
				t.Errorf("case status changed from %s to %s", l.caseManifest.Status, m.Status)
			}
			if len(m.SnapshotCopies) != len(l.snapshots) {
				t.Fatalf("snapshot_copies = %+v", m.SnapshotCopies)
			}
			if tc.wantErr != "" {
				if res.Err == nil || !strings.Contains(res.Err.Error(), tc.wantErr) || run.Status != preserve.Failed {
					t.Fatalf("err = %v, run status %s; want %q", res.Err, run.Status, tc.wantErr)
				}
				for _, cp := range m.SnapshotCopies {
					if cp.State != evidence.CopyFailed || !strings.Contains(cp.Error, tc.wantErr) {
						t.Errorf("copy record %+v, want failed with %q", cp, tc.wantErr)
					}
				}
				return
			}
			if res.Err != nil || run.Status != preserve.Completed {
				t.Fatalf("err = %v, run status %s", res.Err, run.Status)
			}
			for i, src := range l.snapshots {
				cp, ok := m.SnapshotCopy(src)
				if !ok {
					t.Fatalf("no copy recorded for %s", src)
				}
				got := l.copyOf(t, src)
				if aws.ToString(got.SnapshotId) != cp.SnapshotID || got.State != types.SnapshotStateCompleted ||
					!aws.ToBool(got.Encrypted) || aws.ToString(got.KmsKeyId) != l.evidenceKey {
					t.Errorf("copy %d: %+v, recorded %+v", i, got, cp)
				}
				for key, want := range map[string]string{preserve.TagCaseID: casetest.CaseID, preserve.TagSourceAccountID: l.src.Account} {
					if v := tagValue(got.Tags, key); v != want {
						t.Errorf("copy %d: tag %s = %q, want %q", i, key, v, want)
					}
				}
				if cp.State != evidence.CopyCompleted || cp.CompletedAt == nil || cp.AccountID != forensicsAccount ||
					cp.SourceAccountID != l.src.Account || cp.KMSKeyID != l.evidenceKey || cp.Run != 2 || cp.Region != l.src.Region {
					t.Errorf("copy record %+v", cp)
				}
				shared := src
				if tc.reencrypt {
					shared = cp.IntermediateSnapshotID
					if shared == "" || cp.IntermediateKMSKeyID != l.shareKey {
						t.Fatalf("no re-encrypted copy recorded: %+v", cp)
					}
					if sw := l.src.SnapshotSharedWith(src); len(sw) != 0 {
						t.Errorf("the aws/ebs snapshot %s is shared with %v", src, sw)
					}
				} else if cp.IntermediateSnapshotID != "" {
					t.Errorf("unneeded re-encrypted copy %s", cp.IntermediateSnapshotID)
				}
				if want := l.src.Account + "/" + shared; l.dst.CopiedFrom(cp.SnapshotID) != want || cp.SharedSnapshotID != shared {
					t.Errorf("copy %s made from %s, recorded shared %s; want %s", cp.SnapshotID, l.dst.CopiedFrom(cp.SnapshotID), cp.SharedSnapshotID, want)
				}
				if sw := l.src.SnapshotSharedWith(shared); !slices.Equal(sw, []string{forensicsAccount}) {
					t.Errorf("%s shared with %v, want the forensics account", shared, sw)
				}
			}
			steps := res.Steps
			if len(steps) != 2 || steps[0].Status != evidence.StatusOK || len(steps[0].Calls) == 0 || len(steps[0].Before) == 0 || len(steps[0].After) == 0 {
				t.Errorf("steps %+v", steps)
			}
		})
	}
}

func TestPreserveWaitsForPendingSnapshotsAndReportsProgress(t *testing.T) {
	l := newPreserveLab(t, unencrypted)
	l.src.SnapshotCompletesAfter, l.dst.SnapshotCompletesAfter = 3, 3
	var mu sync.Mutex
	percents := map[string][]int{} // stage -> percents seen
	req := l.request(true)
	req.Progress = func(p preserve.Progress) {
		mu.Lock()
		defer mu.Unlock()
		percents[p.Stage] = append(percents[p.Stage], p.Percent)
	}
	res := l.preserve(t, req)
	if res.Err != nil || res.Status != preserve.Completed {
		t.Fatalf("status %s, err %v", res.Status, res.Err)
	}
	for _, stage := range []string{preserve.StageSource, preserve.StageCopy} {
		seen := percents[stage]
		between := slices.ContainsFunc(seen, func(p int) bool { return p > 0 && p < 100 })
		if !slices.Contains(seen, 100) || !between {
			t.Errorf("stage %s reported %v, want progress between 0 and 100, then 100", stage, seen)
		}
	}
	for _, src := range l.snapshots {
		if got := l.copyOf(t, src); got.State != types.SnapshotStateCompleted {
			t.Errorf("copy of %s is %s", src, got.State)
		}
	}
}

func TestPreserveWithoutWaitRecordsPendingCopies(t *testing.T) {
	l := newPreserveLab(t, unencrypted)
	res := l.preserve(t, l.request(false))
	if res.Err != nil || res.Status != preserve.Pending {
		t.Fatalf("status %s, err %v", res.Status, res.Err)
	}
	for _, cp := range res.Manifest.SnapshotCopies {
		if cp.State != evidence.CopyPending || cp.SnapshotID == "" {
			t.Errorf("copy %+v, want pending", cp)
		}
	}
	// A later run with --wait completes the record without copying again.
	res = l.preserve(t, l.request(true))
	if res.Err != nil || res.Status != preserve.Completed {
		t.Fatalf("second run: status %s, err %v", res.Status, res.Err)
	}
	if n := len(l.dst.Snapshots()); n != len(l.snapshots) {
		t.Errorf("forensics account holds %d snapshots, want %d", n, len(l.snapshots))
	}
}

func TestPreserveFailedCopyDoesNotStopTheOthers(t *testing.T) {
	l := newPreserveLab(t, awsManagedKey)
	l.dst.Fail("CopySnapshot", "InternalError", 1)
	res := l.preserve(t, l.request(true))
	if res.Err == nil || res.Status != preserve.Failed || !strings.Contains(res.Err.Error(), "InternalError") {
		t.Fatalf("status %s, err %v", res.Status, res.Err)
	}
	var failed, completed []evidence.SnapshotCopy
	for _, cp := range res.Manifest.SnapshotCopies {
		switch cp.State {
		case evidence.CopyFailed:
			failed = append(failed, cp)
		case evidence.CopyCompleted:
			completed = append(completed, cp)
		}
	}
	if len(failed) != 1 || len(completed) != 1 || failed[0].SnapshotID != "" || !strings.Contains(failed[0].Error, "InternalError") {
		t.Fatalf("copies %+v", res.Manifest.SnapshotCopies)
	}
	l.copyOf(t, completed[0].SourceSnapshotID)

	// A second run copies the failed one, reusing its re-encrypted copy, and
	// leaves the other alone.
	intermediates := len(l.src.Snapshots())
	res = l.preserve(t, l.request(true))
	if res.Err != nil || res.Status != preserve.Completed {
		t.Fatalf("second run: status %s, err %v", res.Status, res.Err)
	}
	for _, src := range l.snapshots {
		l.copyOf(t, src) // exactly one each
	}
	if n := len(l.src.Snapshots()); n != intermediates {
		t.Errorf("the second run made %d more snapshots in the workload account", n-intermediates)
	}
	m, _ := evidence.LoadManifest(context.Background(), l.store, casetest.CaseID)
	if len(m.Runs) != 3 || len(m.SnapshotCopies) != 2 {
		t.Errorf("runs %d, copies %+v", len(m.Runs), m.SnapshotCopies)
	}
}

func TestPreserveRerunMakesNoSecondCopy(t *testing.T) {
	l := newPreserveLab(t, awsManagedKey)
	first := l.preserve(t, l.request(true))
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	srcCount, dstCount := len(l.src.Snapshots()), len(l.dst.Snapshots())

	t.Run("recorded", func(t *testing.T) {
		res := l.preserve(t, l.request(true))
		if res.Err != nil || res.Status != preserve.Completed {
			t.Fatalf("status %s, err %v", res.Status, res.Err)
		}
		for _, st := range res.Steps {
			if st.Status != evidence.StatusSkipped || !strings.Contains(st.Reason, "already copied") {
				t.Errorf("step %s: %s", st.Status, st.Reason)
			}
		}
	})
	t.Run("found by tags", func(t *testing.T) {
		// The same case recorded elsewhere, without its copies: the copies
		// are found in the forensics account by their tags.
		l.store = &evidence.Folder{Root: t.TempDir()}
		if err := l.store.SaveManifest(context.Background(), l.caseManifest); err != nil {
			t.Fatal(err)
		}
		res := l.preserve(t, l.request(true))
		if res.Err != nil || res.Status != preserve.Completed {
			t.Fatalf("status %s, err %v", res.Status, res.Err)
		}
		for _, cp := range res.Manifest.SnapshotCopies {
			if cp.SnapshotID != aws.ToString(l.copyOf(t, cp.SourceSnapshotID).SnapshotId) {
				t.Errorf("recorded %s", cp.SnapshotID)
			}
		}
	})
	if len(l.src.Snapshots()) != srcCount || len(l.dst.Snapshots()) != dstCount {
		t.Errorf("reruns made snapshots: workload %d -> %d, forensics %d -> %d", srcCount, len(l.src.Snapshots()), dstCount, len(l.dst.Snapshots()))
	}
}

func TestPreserveRetriesTheConcurrentCopyLimit(t *testing.T) {
	l := newPreserveLab(t, unencrypted)
	l.dst.ConcurrentCopyLimit = 1
	res := l.preserve(t, l.request(true))
	if res.Err != nil || res.Status != preserve.Completed {
		t.Fatalf("status %s, err %v", res.Status, res.Err)
	}
	// Only to show that the limit was met (and retried): one copy per
	// snapshot is what the state below proves.
	if n := l.dst.CallCount("CopySnapshot"); n <= len(l.snapshots) {
		t.Fatalf("CopySnapshot called %d times: the limit was never reached", n)
	}
	for _, src := range l.snapshots {
		if got := l.copyOf(t, src); got.State != types.SnapshotStateCompleted {
			t.Errorf("copy of %s is %s", src, got.State)
		}
	}
}

func TestPreserveTimeoutLeavesCopiesPending(t *testing.T) {
	l := newPreserveLab(t, unencrypted)
	l.dst.SnapshotCompletesAfter = 0 // the copies never complete
	req := l.request(true)
	req.Timeout = 200 * time.Millisecond
	res := l.preserve(t, req)
	if res.Err != nil || res.Status != preserve.Pending || res.SaveErr != nil {
		t.Fatalf("status %s, err %v", res.Status, res.Err)
	}
}

func TestPreserveRejectsBadInput(t *testing.T) {
	l := newPreserveLab(t, unencrypted)
	for _, req := range []preserve.Request{
		{CaseID: casetest.CaseID, ForensicsAccountID: "4444", ForensicsKMSKeyID: l.evidenceKey},
		{CaseID: casetest.CaseID, ForensicsAccountID: forensicsAccount},
		{CaseID: "../x", ForensicsAccountID: forensicsAccount, ForensicsKMSKeyID: l.evidenceKey},
	} {
		_, err := l.preserver().Preserve(context.Background(), req)
		var ie *responder.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%+v: err %v, want an input error", req, err)
		}
	}
	_, err := l.preserver().Preserve(context.Background(), preserve.Request{CaseID: "case-none", ForensicsAccountID: forensicsAccount, ForensicsKMSKeyID: l.evidenceKey})
	if !errors.Is(err, evidence.ErrNotFound) {
		t.Errorf("unknown case: %v", err)
	}
	if n := l.dst.CallCount("CopySnapshot"); n != 0 {
		t.Errorf("bad input made %d copies", n)
	}
}

func TestVerifySnapshotCopies(t *testing.T) {
	l := newPreserveLab(t, unencrypted)
	l.src.CompleteSnapshots()
	copyChecks := func(reader custody.SnapshotReader) []custody.Check {
		t.Helper()
		v, err := (&custody.Custodian{Store: l.store, Snapshots: l.src.EC2(), Copies: reader}).Verify(context.Background(), casetest.CaseID)
		if err != nil {
			t.Fatal(err)
		}
		var out []custody.Check
		for _, c := range v.Checks {
			if c.Kind == "snapshot-copy" {
				out = append(out, c)
			}
		}
		return out
	}
	statuses := func(checks []custody.Check) []string {
		var s []string
		for _, c := range checks {
			s = append(s, c.Status)
		}
		return s
	}

	l.dst.SnapshotCompletesAfter = 0 // copies stay pending until CompleteSnapshots
	if res := l.preserve(t, l.request(false)); res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, tc := range []struct {
		name    string
		prepare func()
		reader  func() custody.SnapshotReader
		want    string
	}{
		{"pending", func() {}, func() custody.SnapshotReader { return l.dst.EC2() }, custody.CheckPending},
		{"completed", l.dst.CompleteSnapshots, func() custody.SnapshotReader { return l.dst.EC2() }, custody.CheckOK},
		// Another (empty) forensics account does not have the copies.
		{"missing", func() {}, func() custody.SnapshotReader { return fakeaws.New(fakeaws.WithAccount(forensicsAccount)).EC2() }, custody.CheckMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare()
			got := statuses(copyChecks(tc.reader()))
			if !slices.Equal(got, []string{tc.want, tc.want}) {
				t.Errorf("snapshot-copy checks %v, want two %s", got, tc.want)
			}
		})
	}
	v, err := (&custody.Custodian{Store: l.store, Snapshots: l.src.EC2(), Copies: fakeaws.New().EC2()}).Verify(context.Background(), casetest.CaseID)
	if err != nil || !v.Failed() {
		t.Errorf("a missing copy must fail verification: %v", err)
	}
}

// A case whose respond run stopped saving before manifest.json is preserved
// as the history copy left it: the preserve run is run 2, after the
// completed save of run 1, and the case verifies intact.
func TestPreserveContinuesAnInterruptedSave(t *testing.T) {
	l := newPreserveLab(t, sharedCMK)
	manifest := l.store.Location(casetest.CaseID, evidence.ManifestName)
	if err := os.Chmod(manifest, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	res := l.preserve(t, l.request(true))
	if res.SaveErr != nil || res.Manifest.LastRun() != 2 || len(res.Manifest.Runs) != 2 {
		t.Fatalf("preserve: save error %v, runs %+v", res.SaveErr, res.Manifest.Runs)
	}
	v, err := (&custody.Custodian{Store: l.store}).Verify(context.Background(), casetest.CaseID)
	if err != nil || v.Failed() {
		t.Fatalf("verify: %v %+v", err, v)
	}
}

// Each copy is locked as soon as it is requested (still pending), with the
// lock the case snapshots were given (defaults: governance, 90 days), and
// the lock is recorded as read back.
func TestPreserveLocksTheCopies(t *testing.T) {
	l := newPreserveLab(t, unencrypted)
	res := l.preserve(t, l.request(false))
	if res.Err != nil || res.Status != preserve.Pending {
		t.Fatalf("status %s, err %v", res.Status, res.Err)
	}
	for _, cp := range res.Manifest.SnapshotCopies {
		out, err := l.dst.EC2().DescribeLockedSnapshots(context.Background(), &ec2.DescribeLockedSnapshotsInput{SnapshotIds: []string{cp.SnapshotID}})
		if err != nil || len(out.Snapshots) != 1 || out.Snapshots[0].LockState != types.LockStateGovernance || aws.ToInt32(out.Snapshots[0].LockDuration) != 90 {
			t.Fatalf("copy %s: locks %+v, %v", cp.SnapshotID, out, err)
		}
		if cp.Lock == nil || cp.Lock.State != "governance" || cp.State != evidence.CopyPending {
			t.Fatalf("recorded copy %+v", cp)
		}
	}

	// A case whose snapshots were locked in compliance mode: its copies too.
	c := newPreserveLab(t, unencrypted)
	r := casetest.NewResponder(c.src, c.store)
	rec, err := r.Respond(context.Background(), responder.Request{InstanceID: c.instanceID, CaseID: casetest.CaseID, Plan: []string{"snapshots", "snapshot-lock"},
		PlanName: "custom", SnapshotLock: step.SnapshotLock{Mode: step.LockCompliance, Days: 3}})
	if err != nil || rec.Err != nil {
		t.Fatalf("respond: %v %v", err, rec.Err)
	}
	res = c.preserve(t, c.request(false))
	for _, cp := range res.Manifest.SnapshotCopies {
		if cp.Lock == nil || cp.Lock.State != "compliance" || cp.Lock.Days != 3 {
			t.Fatalf("copy %+v, lock %+v", cp, cp.Lock)
		}
	}
}

// A copy that cannot be locked is kept, recorded with why, and the run
// says so.
func TestPreserveRecordsACopyItCouldNotLock(t *testing.T) {
	l := newPreserveLab(t, unencrypted)
	l.dst.Deny("LockSnapshot")
	res := l.preserve(t, l.request(false))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "not locked") {
		t.Fatalf("err %v", res.Err)
	}
	for _, cp := range res.Manifest.SnapshotCopies {
		if cp.SnapshotID == "" || cp.Lock != nil || !strings.Contains(cp.LockError, "UnauthorizedOperation") {
			t.Fatalf("copy %+v", cp)
		}
	}
}
