package fleet_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/fleet"
	"github.com/responder-ir/responder/responder/internal/casetest"
)

var clouds atomic.Int32

// region is one fake account-Region with n running instances tagged
// app=web, each with one volume and one interface.
func region(t *testing.T, name string, n int) (*fakeaws.Cloud, []string) {
	t.Helper()
	c := fakeaws.New(fakeaws.WithRegion(name))
	// Every fake cloud draws its IDs from the same seed: draw some first,
	// so that two clouds' instances have different IDs, as on AWS.
	for range clouds.Add(1) {
		c.AddVPC()
	}
	vpc := c.AddVPC()
	subnet := c.AddSubnet(vpc)
	web := c.AddSecurityGroup(vpc, "web", nil, fakeaws.DefaultEgress())
	var ids []string
	for range n {
		ids = append(ids, c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc, SubnetID: subnet, Volumes: 1, SecurityGroupIDs: []string{web},
			Tags: map[string]string{"app": "web"}}))
	}
	return c, ids
}

// connectTo serves each Region's scope from its fake cloud, with one engine
// per scope (built once, as the CLI does).
func connectTo(store evidence.Store, clouds ...*fakeaws.Cloud) fleet.Connector {
	return func(_ context.Context, sc fleet.Scope) (*responder.Responder, error) {
		for _, c := range clouds {
			if c.Region == sc.Region || sc.Region == "" {
				return casetest.NewResponder(c, store), nil
			}
		}
		return nil, fmt.Errorf("no cloud in %q", sc.Region)
	}
}

func plan(t *testing.T, spec fleet.Spec, connect fleet.Connector) *fleet.Plan {
	t.Helper()
	targets, err := spec.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	return fleet.NewPlan(context.Background(), targets, connect)
}

// snapshotsOf counts the snapshots of an instance's volumes.
func snapshotsOf(c *fakeaws.Cloud, instanceID string) int {
	vols := map[string]bool{}
	for _, m := range c.Instance(instanceID).BlockDeviceMappings {
		vols[aws.ToString(m.Ebs.VolumeId)] = true
	}
	n := 0
	for _, s := range c.Snapshots() {
		if vols[aws.ToString(s.VolumeId)] {
			n++
		}
	}
	return n
}

// groupMoves counts the changes of the groups of an instance's interfaces.
func groupMoves(c *fakeaws.Cloud, instanceID string) int {
	n := 0
	for _, ni := range c.Instance(instanceID).NetworkInterfaces {
		n += len(c.InterfaceGroupHistory(aws.ToString(ni.NetworkInterfaceId))) - 1
	}
	return n
}

// runFleet is fleet.Run, failing the test (safe from any goroutine) when
// the run refuses to start.
func runFleet(t testing.TB, ctx context.Context, p *fleet.Plan, o fleet.Options) *fleet.Result {
	res, err := fleet.Run(ctx, p, o)
	if err != nil {
		t.Errorf("fleet.Run: %v", err)
		return &fleet.Result{Record: &evidence.FleetRecord{}}
	}
	return res
}

func targetsByID(f *evidence.FleetRecord) map[string]evidence.FleetCase {
	out := map[string]evidence.FleetCase{}
	for _, t := range f.Cases {
		out[t.InstanceID] = t
	}
	return out
}

func TestPlanFindsNotFoundAndTerminated(t *testing.T) {
	c, ids := region(t, "us-east-1", 3)
	gone := c.AddInstance(fakeaws.InstanceSpec{State: types.InstanceStateNameTerminated})
	missing := "i-0fffffffffffffff0"
	store := &evidence.Folder{Root: t.TempDir()}
	p := plan(t, fleet.Spec{InstanceIDs: append([]string{missing, gone}, ids...), Regions: []string{"us-east-1"}}, connectTo(store, c))
	if p.Count() != 3 {
		t.Fatalf("plan acts on %d instances, want 3", p.Count())
	}
	got := map[string]string{}
	for _, m := range p.Missing {
		got[m.InstanceID] = m.Status
	}
	if got[missing] != fleet.NotFound || got[gone] != fleet.Terminated || len(got) != 2 {
		t.Errorf("missing %v: want %s not-found and %s terminated", got, missing, gone)
	}
}

func TestPlanResolvesMoreThanOneCallOfIDs(t *testing.T) {
	c, ids := region(t, "us-east-1", fleet.MaxIDsPerCall+5)
	store := &evidence.Folder{Root: t.TempDir()}
	p := plan(t, fleet.Spec{InstanceIDs: append(ids, "i-0fffffffffffffff0")}, connectTo(store, c))
	if p.Count() != len(ids) || len(p.Missing) != 1 {
		t.Errorf("plan: %d instances and %d missing, want %d and 1", p.Count(), len(p.Missing), len(ids))
	}
}

func TestPlanByFilter(t *testing.T) {
	c, ids := region(t, "us-east-1", 3)
	c.AddInstance(fakeaws.InstanceSpec{Tags: map[string]string{"app": "db"}})
	store := &evidence.Folder{Root: t.TempDir()}
	p := plan(t, fleet.Spec{Filters: []string{"tag:app=web"}}, connectTo(store, c))
	if p.Count() != len(ids) {
		t.Errorf("tag:app=web found %d instances, want %d", p.Count(), len(ids))
	}
}

// One Region's quarantine is refused: its instances are reported not
// contained, each with why, and the other Region's are contained all the
// same.
func TestPartialFailureIsReportedPerInstance(t *testing.T) {
	east, eastIDs := region(t, "us-east-1", 3)
	west, westIDs := region(t, "eu-west-1", 2)
	west.Deny("ModifyNetworkInterfaceAttribute")
	store := &evidence.Folder{Root: t.TempDir()}
	p := plan(t, fleet.Spec{Filters: []string{"tag:app=web"}, Regions: []string{"us-east-1", "eu-west-1"}}, connectTo(store, east, west))
	res := runFleet(t, context.Background(), p, fleet.Options{FleetID: "fleet-partial", Store: store})
	if res.SaveErr != nil || res.Interrupted {
		t.Fatalf("save %v, interrupted %v", res.SaveErr, res.Interrupted)
	}
	got := targetsByID(res.Record)
	for _, id := range eastIDs {
		tg := got[id]
		m, err := evidence.LoadManifest(context.Background(), store, tg.CaseID)
		if err != nil || tg.Status != evidence.CaseContained || m.Status != evidence.CaseContained || tg.SecondsToIsolation <= 0 {
			t.Errorf("%s: %+v (case %v, %v): want contained, as its case says", id, tg, m != nil && m.Status == evidence.CaseContained, err)
		}
	}
	for _, id := range westIDs {
		tg := got[id]
		m, err := evidence.LoadManifest(context.Background(), store, tg.CaseID)
		if err != nil || !fleet.Open(tg) || tg.Status != m.Status || tg.Reason == "" {
			t.Errorf("%s: %+v: want not contained, the status of its case, and why", id, tg)
		}
	}
	plan, err := evidence.LoadFleet(context.Background(), store, "fleet-partial")
	closed, cerr := evidence.LastFleetClose(context.Background(), store, "fleet-partial")
	if err != nil || cerr != nil || len(plan.Cases) != 5 || len(closed.Cases) != 5 || closed.Counts[evidence.CaseContained] != 3 {
		t.Fatalf("stored fleet: plan %+v (%v), closed %+v (%v): want 5 cases in both, 3 contained", plan, err, closed, cerr)
	}
}

// A second run of the fleet leaves the contained instances alone and
// continues the others' cases: no snapshot and no group change is made
// twice.
func TestRerunContinuesAndDoublesNothing(t *testing.T) {
	c, ids := region(t, "us-east-1", 4)
	store := &evidence.Folder{Root: t.TempDir()}
	connect := connectTo(store, c)
	spec := fleet.Spec{InstanceIDs: ids}
	// The first run: the quarantine of half the fleet is refused.
	c.Fail("ModifyNetworkInterfaceAttribute", "UnauthorizedOperation", 2)
	first := runFleet(t, context.Background(), plan(t, spec, connect), fleet.Options{FleetID: "fleet-rerun", Store: store, MaxConcurrency: 1})
	open := 0
	for _, tg := range first.Record.Cases {
		if fleet.Open(tg) {
			open++
		}
	}
	if open == 0 {
		t.Fatalf("first run: every instance contained; the test needs some not to be: %+v", first.Record.Cases)
	}
	before := map[string][2]int{}
	for _, id := range ids {
		before[id] = [2]int{snapshotsOf(c, id), groupMoves(c, id)}
	}

	p := plan(t, spec, connect)
	p.FindContained(context.Background(), store, "fleet-rerun")
	if p.Acting() != open {
		t.Errorf("the rerun's plan acts on %d instances, want the %d not contained", p.Acting(), open)
	}
	second := runFleet(t, context.Background(), p, fleet.Options{FleetID: "fleet-rerun", Store: store})
	prior := targetsByID(first.Record)
	for _, tg := range second.Record.Cases {
		if tg.Status != evidence.CaseContained {
			t.Errorf("%s: %s after the rerun (%s)", tg.InstanceID, tg.Status, tg.Reason)
		}
		m, err := evidence.LoadManifest(context.Background(), store, tg.CaseID)
		if err != nil {
			t.Fatal(err)
		}
		wasOpen := fleet.Open(prior[tg.InstanceID])
		if wantRuns := map[bool]int{true: 2, false: 1}[wasOpen]; len(m.Runs) != wantRuns {
			t.Errorf("%s: case %s has %d runs, want %d (open after the first run: %v)", tg.InstanceID, tg.CaseID, len(m.Runs), wantRuns, wasOpen)
		}
		snaps, moves := snapshotsOf(c, tg.InstanceID), groupMoves(c, tg.InstanceID)
		if snaps != 1 || snaps != before[tg.InstanceID][0] {
			t.Errorf("%s: %d snapshots (%d after the first run), want the first run's one", tg.InstanceID, snaps, before[tg.InstanceID][0])
		}
		if !wasOpen && moves != before[tg.InstanceID][1] {
			t.Errorf("%s: contained in the first run, its groups changed again (%d changes, %d before)", tg.InstanceID, moves, before[tg.InstanceID][1])
		}
	}
	if _, err := evidence.LoadFleet(context.Background(), store, "fleet-rerun"); err != nil {
		t.Errorf("fleet plan: %v", err)
	}
}

// Two runs of a fleet at once on the same instances: each instance's case
// is acted on by one run at a time (the case's run lock); nothing is done
// twice.
func TestConcurrentRunsRespectTheCaseLock(t *testing.T) {
	c, ids := region(t, "us-east-1", 6)
	store := &evidence.Folder{Root: t.TempDir()}
	connect := connectTo(store, c)
	var wg sync.WaitGroup
	results := make([]*fleet.Result, 2)
	for i := range results {
		p := plan(t, fleet.Spec{InstanceIDs: ids}, connect)
		wg.Go(func() {
			results[i] = runFleet(t, context.Background(), p, fleet.Options{FleetID: "fleet-twice", Store: store})
		})
	}
	wg.Wait()
	for _, id := range ids {
		if n := snapshotsOf(c, id); n != 1 {
			t.Errorf("%s: %d snapshots, want 1", id, n)
		}
		if n := groupMoves(c, id); n > 2 {
			m, _ := evidence.LoadManifest(context.Background(), store, evidence.FleetCaseID("fleet-twice", id))
			for _, ni := range c.Instance(id).NetworkInterfaces {
				t.Logf("history %v", c.InterfaceGroupHistory(aws.ToString(ni.NetworkInterfaceId)))
			}
			for _, r := range m.Runs {
				t.Logf("run %+v", r)
			}
			for _, st := range m.Steps {
				t.Logf("step %d %s %s %s", st.Run, st.Name, st.Status, st.Reason)
			}
			t.Errorf("%s: %d group changes, want at most the untracking and the quarantine move", id, n)
		}
		m, err := evidence.LoadManifest(context.Background(), store, evidence.FleetCaseID("fleet-twice", id))
		if err != nil || m.Status != evidence.CaseContained {
			t.Errorf("%s: case %v, %v: want contained", id, m, err)
		}
	}
	for _, r := range results {
		for _, tg := range r.Record.Cases {
			if tg.Status != evidence.CaseContained && tg.Status != fleet.NotStarted {
				t.Errorf("%s: %s (%s): want contained, or not started because the other run held the case", tg.InstanceID, tg.Status, tg.Reason)
			}
		}
	}
}

// Cancelling a fleet saves what finished; the others say they were not
// started (pending), and the run says it was interrupted.
func TestInterruptedRunSaysWhatIsLeft(t *testing.T) {
	c, ids := region(t, "us-east-1", 5)
	store := &evidence.Folder{Root: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := runFleet(t, ctx, plan(t, fleet.Spec{InstanceIDs: ids}, connectTo(store, c)), fleet.Options{
		FleetID: "fleet-stop", Store: store, MaxConcurrency: 1,
		Progress: func(n fleet.Counts) {
			if n.Done == 2 {
				cancel()
			}
		},
	})
	if !res.Interrupted || res.SaveErr != nil {
		t.Fatalf("interrupted %v, save %v", res.Interrupted, res.SaveErr)
	}
	saved, err := fleet.Status(context.Background(), store, "fleet-stop")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, tg := range saved.Cases {
		counts[tg.Status]++
		if tg.Status == fleet.Pending {
			if _, err := evidence.LoadManifest(context.Background(), store, tg.CaseID); err == nil {
				t.Errorf("%s: pending, but its case has a record", tg.InstanceID)
			}
		}
	}
	if counts[evidence.CaseContained] < 2 || counts[fleet.Pending] == 0 || saved.ClosedAt == nil {
		t.Errorf("saved: %v, closed %v: want the 2 contained, the rest pending, the run closed", counts, saved.ClosedAt)
	}
}

// A case at work on an instance (another fleet's, another respond's) holds
// it: a fleet leaves that instance alone, says why, and does the others.
func TestOtherCaseAtWorkHoldsTheInstance(t *testing.T) {
	c, ids := region(t, "us-east-1", 2)
	store := &evidence.Folder{Root: t.TempDir()}
	ctx := context.Background()
	busy := ids[0]
	rec, err := evidence.LoadRecord(ctx, store, "case-other")
	if err != nil {
		t.Fatal(err)
	}
	if err := evidence.ClaimInstance(ctx, store, evidence.InstanceClaim{AccountID: c.Account, Region: c.Region, InstanceID: busy,
		CaseID: "case-other", Holder: "someone", Taken: time.Now()}, time.Now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := evidence.ClaimRun(ctx, store, rec, "case-other", "someone", time.Now); err != nil {
		t.Fatal(err)
	}
	res := runFleet(t, ctx, plan(t, fleet.Spec{InstanceIDs: ids}, connectTo(store, c)), fleet.Options{FleetID: "fleet-second", Store: store})
	got := targetsByID(res.Record)
	if tg := got[busy]; tg.Status != fleet.NotStarted || !strings.Contains(tg.Reason, "case-other") {
		t.Errorf("held instance: %+v; want not-started, naming the case at work", tg)
	}
	if n := snapshotsOf(c, busy); n != 0 {
		t.Errorf("held instance: %d snapshots, want none", n)
	}
	if tg := got[ids[1]]; tg.Status != evidence.CaseContained {
		t.Errorf("free instance: %+v; want contained", tg)
	}
}

// Two fleets at once whose targets overlap: on each instance, the cases of
// the two fleets never act at the same time (the steps of one case end
// before the other's begin).
func TestOverlappingFleetsTakeTurns(t *testing.T) {
	c, ids := region(t, "us-east-1", 6)
	c.Latency = 5 * time.Millisecond // so that the two fleets' responses overlap
	store := &evidence.Folder{Root: t.TempDir()}
	connect := connectTo(store, c)
	fleets := map[string][]string{"fleet-one": ids[:4], "fleet-two": ids[2:]}
	var wg sync.WaitGroup
	for id, targets := range fleets {
		p := plan(t, fleet.Spec{InstanceIDs: targets}, connect)
		wg.Go(func() { runFleet(t, context.Background(), p, fleet.Options{FleetID: id, Store: store}) })
	}
	wg.Wait()
	for _, inst := range ids[2:4] {
		var spans [][2]time.Time
		for fleetID := range fleets {
			m, err := evidence.LoadManifest(context.Background(), store, evidence.FleetCaseID(fleetID, inst))
			if err != nil {
				continue // refused while the other fleet's case was at work
			}
			first, last := m.Steps[0].StartedAt, m.Steps[0].EndedAt
			for _, s := range m.Steps {
				if s.StartedAt.Before(first) {
					first = s.StartedAt
				}
				if s.EndedAt.After(last) {
					last = s.EndedAt
				}
			}
			spans = append(spans, [2]time.Time{first, last})
		}
		if len(spans) == 2 && spans[0][0].Before(spans[1][1]) && spans[1][0].Before(spans[0][1]) {
			t.Errorf("%s: the two fleets' cases acted at once: %v", inst, spans)
		}
		if len(spans) == 0 {
			t.Errorf("%s: no case of either fleet acted on it", inst)
		}
	}
}

// A finding's instance is acted on in the finding's account only: found
// under another owner, it is left out, saying so.
func TestFindingOfAnotherAccountIsLeftOut(t *testing.T) {
	c, ids := region(t, "us-east-1", 2)
	store := &evidence.Folder{Root: t.TempDir()}
	findings := []fleet.FindingTarget{{FindingID: "f-2", InstanceID: ids[1], AccountID: "999988887777", Region: "us-east-1"}}
	p := plan(t, fleet.Spec{InstanceIDs: ids[:1], Findings: findings}, connectTo(store, c))
	if p.Count() != 1 || len(p.Missing) != 1 || p.Missing[0].InstanceID != ids[1] || !strings.Contains(p.Missing[0].Reason, "999988887777") {
		t.Fatalf("plan: %d instances, missing %+v; want %s only, %s left out naming the finding's account", p.Count(), p.Missing, ids[0], ids[1])
	}
	res := runFleet(t, context.Background(), p, fleet.Options{FleetID: "fleet-findings", Store: store})
	got := targetsByID(res.Record)
	if got[ids[0]].Status != evidence.CaseContained || got[ids[1]].Status != fleet.NotFound || snapshotsOf(c, ids[1]) != 0 {
		t.Errorf("targets %+v; want the first contained, the second not-found and untouched", res.Record.Cases)
	}
}

// The progress counts an instance isolated as soon as its quarantine reads
// back held, before its response ends.
func TestProgressIsLive(t *testing.T) {
	c, ids := region(t, "us-east-1", 3)
	store := &evidence.Folder{Root: t.TempDir()}
	var (
		mu   sync.Mutex
		seen []fleet.Counts
	)
	runFleet(t, context.Background(), plan(t, fleet.Spec{InstanceIDs: ids}, connectTo(store, c)), fleet.Options{
		FleetID: "fleet-live", Store: store, MaxConcurrency: 1,
		Progress: func(n fleet.Counts) { mu.Lock(); seen = append(seen, n); mu.Unlock() },
	})
	early := false
	for _, n := range seen {
		early = early || (n.Isolated > n.Done && n.SnapshotsRequested > n.Done)
	}
	last := seen[len(seen)-1]
	if !early || last.Done != 3 || last.Isolated != 3 || last.SnapshotsRequested != 3 || last.Failed != 0 {
		t.Errorf("progress %+v: want isolation and snapshots counted before their response ends, and 3/3/3/0 at the end", seen)
	}
}
