package responder_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// dyingAPI is the evidence bucket as a process sees it that is killed at
// one write: the PutObject of the first key that ends with dieAt fails, and
// so does every write after it (the process is gone; nothing it would have
// written afterwards reaches the store).
type dyingAPI struct {
	evidence.BucketAPI
	dieAt string
	dead  atomic.Bool
}

func (d *dyingAPI) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if d.dead.Load() || strings.HasSuffix(aws.ToString(in.Key), d.dieAt) {
		d.dead.Store(true)
		return nil, errors.New("killed")
	}
	return d.BucketAPI.PutObject(ctx, in, opts...)
}

// clock is a settable clock for runs that follow one another.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func runNumbers(m *evidence.Manifest) []int {
	var out []int
	for _, r := range m.Runs {
		out = append(out, r.Number)
	}
	return out
}

// A first run killed at each write of its save (the history copy, its seal,
// manifest.json): the next run of the case continues it. The record ends
// with every artifact and snapshot of the case; when the killed run's
// history copy was written, its run is kept whole (the before-state a
// release restores comes from it), and the run numbers go on from it; when
// it was not, its number is skipped once its lock has gone stale. Verify
// then finds the case intact. On the code before the recovery, a run killed
// after its history copy wedged the case: every later run took run 1 again
// and failed to save it.
func TestNextRunContinuesAnInterruptedSave(t *testing.T) {
	for _, tc := range []struct {
		dieAt       string
		wantRuns    []int
		firstBefore bool // the killed run's before-states are in the record
	}{
		{dieAt: evidence.HistoryName(1), wantRuns: []int{2}},
		{dieAt: evidence.SealName(1), wantRuns: []int{1, 2}, firstBefore: true},
		{dieAt: evidence.ManifestName, wantRuns: []int{1, 2}, firstBefore: true},
	} {
		t.Run("killed at "+tc.dieAt, func(t *testing.T) {
			ctx := context.Background()
			c, s := fakeaws.NewSuspect()
			c.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
			clk := &clock{now: time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)}
			req := responder.Request{InstanceID: s.InstanceID, CaseID: caseID, CaseIDGiven: true}

			killed := newResponder(c, &evidence.Bucket{API: &dyingAPI{BucketAPI: c.S3(), dieAt: tc.dieAt}, Name: "evidence"})
			killed.Now = clk.Now
			first, err := killed.Respond(ctx, req)
			if err != nil || first.SaveErr == nil {
				t.Fatalf("the killed run: %v, save error %v", err, first.SaveErr)
			}

			clk.Advance(10 * time.Minute)
			store := &evidence.Bucket{API: c.S3(), Name: "evidence"}
			next := newResponder(c, store)
			next.Now = clk.Now
			res, err := next.Respond(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Err != nil {
				t.Fatalf("the next run failed: %v", res.Err)
			}
			m, err := evidence.LoadManifest(ctx, store, caseID)
			if err != nil {
				t.Fatal(err)
			}
			if got := runNumbers(m); !equalInts(got, tc.wantRuns) {
				t.Errorf("runs %v, want %v", got, tc.wantRuns)
			}
			if len(m.Artifacts) != 5 || len(m.Snapshots) != len(caseSnapshots(c, caseID)) || len(m.Snapshots) != 2 {
				t.Errorf("recorded %d artifacts and %d snapshots (%d tagged with the case), want 5 and 2",
					len(m.Artifacts), len(m.Snapshots), len(caseSnapshots(c, caseID)))
			}
			before, ok := m.FirstBefore("quarantine")
			keptGroup := ok && strings.Contains(string(before), s.GroupID)
			if keptGroup != tc.firstBefore {
				t.Errorf("the record keeps the instance's groups before quarantine: %t, want %t (%s)", keptGroup, tc.firstBefore, before)
			}
			c.CompleteSnapshots()
			v, err := (&custody.Custodian{Store: store, Snapshots: c.EC2()}).Verify(ctx, caseID)
			if err != nil || v.Failed() {
				t.Fatalf("verify after the next run: %v %+v", err, v)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Two runs of the same case at once: one runs, the other is refused before
// it does anything; the one that ran ends contained (no false "containment
// failed" from racing the other into the same quarantine group), and every
// snapshot tagged with the case is in the record. On the code before the
// run lock, both ran: two snapshot sets, and the second save failed on the
// history copy of run 1, leaving one set out of the record.
func TestConcurrentRunsOfACase(t *testing.T) {
	ctx := context.Background()
	c, s := fakeaws.NewSuspect()
	c.Latency = 20 * time.Millisecond // both runs are in flight together
	c.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
	store := &evidence.Bucket{API: c.S3(), Name: "evidence"}
	req := responder.Request{InstanceID: s.InstanceID, CaseID: caseID, CaseIDGiven: true}

	type outcome struct {
		res *responder.Result
		err error
	}
	outcomes := make([]outcome, 2)
	var wg sync.WaitGroup
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := newResponder(c, store).Respond(ctx, req)
			outcomes[i] = outcome{res, err}
		}()
	}
	wg.Wait()

	ran, refused := 0, 0
	for _, o := range outcomes {
		var busy *evidence.BusyError
		switch {
		case errors.Is(o.err, responder.ErrCaseBusy) && errors.As(o.err, &busy):
			refused++
		case o.err != nil:
			t.Errorf("a run could not start: %v", o.err)
		default:
			ran++
			if o.res.Status != evidence.CaseContained || o.res.Err != nil {
				t.Errorf("the run that ran: %s, %v", o.res.Status, o.res.Err)
			}
		}
	}
	if ran != 1 || refused != 1 {
		t.Fatalf("%d ran and %d were refused, want 1 and 1", ran, refused)
	}
	assertQuarantined(t, c, s.InstanceID)
	m, err := evidence.LoadManifest(ctx, store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, sn := range m.Snapshots {
		recorded[sn.SnapshotID] = true
	}
	for _, sn := range caseSnapshots(c, caseID) {
		if !recorded[aws.ToString(sn.SnapshotId)] {
			t.Errorf("snapshot %s is tagged with the case but not in its record", aws.ToString(sn.SnapshotId))
		}
	}
	if got := runNumbers(m); !equalInts(got, []int{1}) {
		t.Errorf("runs %v, want [1]", got)
	}

	// Once the first has ended, the case is free again.
	res, err := newResponder(c, store).Respond(ctx, req)
	if err != nil || res.Manifest.LastRun() != 2 {
		t.Fatalf("a later run: %v, run %d", err, res.Manifest.LastRun())
	}
}

// A run refused because another holds the case says who holds it and since
// when; the holder's heartbeats keep it held, and once they stop for
// StaleAfter the next run skips the dead run's number.
func TestRunLockHeartbeats(t *testing.T) {
	ctx := context.Background()
	c, s := fakeaws.NewSuspect()
	store := &evidence.Folder{Root: t.TempDir()}
	clk := &clock{now: time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)}
	holder, _, err := evidence.ClaimRun(ctx, store, &evidence.Record{Run: 1}, caseID, "arn:aws:iam::111122223333:user/alice", clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	req := responder.Request{InstanceID: s.InstanceID, CaseID: caseID, CaseIDGiven: true}
	try := func() (*responder.Result, error) {
		r := newResponder(c, store)
		r.Now = clk.Now
		return r.Respond(ctx, req)
	}
	for range 5 { // beating every minute: held all along
		clk.Advance(evidence.HeartbeatInterval)
		if err := holder.Beat(ctx, store, clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := try(); !errors.Is(err, responder.ErrCaseBusy) || !strings.Contains(err.Error(), "alice") {
			t.Fatalf("at %s: %v, want the case held by alice's run", clk.Now(), err)
		}
	}
	if n := c.CallCount("DescribeInstances"); n != 5 {
		t.Errorf("%d DescribeInstances, want one per refused run", n)
	}
	if n := c.CallCount("CreateSnapshots") + c.CallCount("ModifyNetworkInterfaceAttribute"); n != 0 {
		t.Errorf("a refused run acted on the instance (%d calls)", n)
	}
	clk.Advance(evidence.StaleAfter) // the holder died
	res, err := try()
	if err != nil {
		t.Fatal(err)
	}
	if got := runNumbers(res.Manifest); !equalInts(got, []int{2}) {
		t.Errorf("runs %v, want [2] (the dead run 1 skipped)", got)
	}
}
