package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/fleet"
)

// fleetClouds are fake account-Regions, served by Region (the default
// Region is the first), counting the clients loaded.
type fleetClouds struct {
	byRegion map[string]*fakeaws.Cloud
	first    string
	loads    atomic.Int32
}

var fleetSeed atomic.Int32

func newFleetClouds(t *testing.T, perRegion map[string]int) (*fleetClouds, map[string][]string) {
	t.Helper()
	fc := &fleetClouds{byRegion: map[string]*fakeaws.Cloud{}}
	ids := map[string][]string{}
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		n, ok := perRegion[region]
		if !ok {
			continue
		}
		c := fakeaws.New(fakeaws.WithRegion(region))
		for range fleetSeed.Add(1) { // distinct IDs in each fake
			c.AddVPC()
		}
		vpc := c.AddVPC()
		subnet := c.AddSubnet(vpc)
		for range n {
			ids[region] = append(ids[region], c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc, SubnetID: subnet, Tags: map[string]string{"app": "web"}}))
		}
		fc.byRegion[region] = c
		if fc.first == "" {
			fc.first = region
		}
	}
	return fc, ids
}

func (fc *fleetClouds) deps() deps {
	d := testDeps(fc.byRegion[fc.first])
	for _, c := range fc.byRegion {
		c.Clock = d.now
	}
	d.loadClients = func(_ context.Context, opts cloud.Options) (*cloud.Clients, error) {
		fc.loads.Add(1)
		region := opts.Region
		if region == "" {
			region = fc.first
		}
		c, ok := fc.byRegion[region]
		if !ok {
			return nil, fmt.Errorf("no fake in %s", region)
		}
		return &cloud.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), S3: c.S3(), AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB(),
			SNS: c.SNS(), Signing: c.KMS(), Region: c.Region}, nil
	}
	return d
}

func (fc *fleetClouds) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"responder"}, args...), &streams{Out: &out, Err: &errOut}, fc.deps())
	return code, out.String(), errOut.String()
}

func (fc *fleetClouds) snapshots() int {
	n := 0
	for _, c := range fc.byRegion {
		n += len(c.Snapshots())
	}
	return n
}

func TestFleetBadInputIsRefusedBeforeAnyCall(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 1})
	dir := t.TempDir()
	findings := filepath.Join(dir, "findings.json")
	if err := os.WriteFile(findings, []byte(`{"Findings": [{"Id": "f-1", "Resources": [{"Type": "AwsEc2Instance",
		"Id": "arn:aws:ec2:us-east-1:444455556666:instance/`+ids["us-east-1"][0]+`"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`{"Findings": [{"Id": `), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--filter", "colour=red"}, `DescribeInstances has no filter "colour"`},
		{[]string{"-i", "i-0a0000000000000a1,i-0b0000000000000b2", "--accounts", "111122223333,444455556666", "--role-arn", "arn:aws:iam::111122223333:role/r"}, "has no {account}"},
		{[]string{"-i", "i-0a0000000000000a1", "--accounts", "1111"}, "not an account ID"},
		{[]string{"--findings", findings, "--accounts", "111122223333", "--role-arn", "arn:aws:iam::{account}:role/r"}, "which --accounts does not allow"},
		{[]string{"--findings", broken}, "not ASFF JSON"},
		{[]string{"--findings", filepath.Join(dir, "none.json")}, "--findings"},
		{[]string{"-i", "i-0a0000000000000a1,i-0b0000000000000b2", "--case-id", "case-x"}, "--case-id names one case"},
		{[]string{"-i", "i-0a0000000000000a1,i-0b0000000000000b2", "--fleet-id", "../x"}, "invalid fleet ID"},
	} {
		code, _, errOut := fc.run(t, append([]string{"respond", "--evidence-dir", dir}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("respond %s: exit %d, stderr %q; want 2 saying %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
	if n := fc.loads.Load(); n != 0 {
		t.Errorf("bad input loaded AWS clients %d times; want none", n)
	}
}

func TestFleetNeedsYesWithoutATerminal(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 2, "eu-west-1": 1})
	dir := t.TempDir()
	args := []string{"respond", "--evidence-dir", dir, "-i", strings.Join(ids["us-east-1"], ","), "-i", ids["eu-west-1"][0],
		"--region", "us-east-1,eu-west-1", "--fleet-id", "fleet-yes"}
	code, out, errOut := fc.run(t, args...)
	if code != exitUsage || !strings.Contains(errOut, "Fleet fleet-yes: 3 instances in 1 account and 2 Regions") || !strings.Contains(errOut, "give --yes") {
		t.Fatalf("without --yes: exit %d, stdout %q, stderr %q; want 2 with the plan and the reason", code, out, errOut)
	}
	if n := fc.snapshots(); n != 0 {
		t.Fatalf("without --yes, %d snapshots were taken", n)
	}
	if _, err := evidence.LoadFleet(context.Background(), &evidence.Folder{Root: dir}, "fleet-yes"); err == nil {
		t.Error("without --yes, a fleet record was saved")
	}
	code, out, errOut = fc.run(t, append(args, "--yes", "--output", "json")...)
	if code != exitOK {
		t.Fatalf("with --yes: exit %d, stderr %s", code, errOut)
	}
	var f evidence.FleetRecord
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out)
	}
	if len(f.Cases) != 3 || f.ClosedAt == nil || f.Source != "cli" {
		t.Fatalf("fleet record: %+v; want 3 cases, closed, from the CLI", f)
	}
	for _, tg := range f.Cases {
		m, err := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, tg.CaseID)
		if err != nil || tg.Status != evidence.CaseContained || m.Status != evidence.CaseContained || m.Region != tg.Region {
			t.Errorf("%+v: case %v, %v; want contained as its case says", tg, m, err)
		}
	}
}

// One Region's quarantine is refused: exit 1, and the table names each
// instance's outcome.
func TestFleetPartialFailureExitsOne(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 2, "eu-west-1": 1})
	fc.byRegion["eu-west-1"].Deny("ModifyNetworkInterfaceAttribute")
	dir := t.TempDir()
	code, out, errOut := fc.run(t, "respond", "--evidence-dir", dir, "--filter", "tag:app=web", "--region", "us-east-1", "--region", "eu-west-1",
		"--fleet-id", "fleet-part", "--yes")
	if code != exitContainmentFailed || !strings.Contains(errOut, "1 of 3 targets are NOT proven contained") || !strings.Contains(errOut, "--fleet-id fleet-part") {
		t.Fatalf("exit %d, stderr %s; want 1 naming the open target and the command that continues", code, errOut)
	}
	for region, list := range ids {
		want := "contained"
		if region == "eu-west-1" {
			want = "PARTIALLY-CONTAINED"
		}
		for _, id := range list {
			if !lineHas(out, id, region, strings.ToUpper(want)) {
				t.Errorf("table lacks %s %s %s:\n%s", id, region, strings.ToUpper(want), out)
			}
		}
	}
}

func lineHas(text string, words ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestFleetStatusInEveryFormat(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 2})
	dir := t.TempDir()
	if code, _, errOut := fc.run(t, "respond", "--evidence-dir", dir, "-i", strings.Join(ids["us-east-1"], ","), "--fleet-id", "fleet-st", "--yes"); code != exitOK {
		t.Fatalf("respond: exit %d: %s", code, errOut)
	}
	code, out, errOut := fc.run(t, "status", "--evidence-dir", dir, "--fleet-id", "fleet-st")
	if code != exitOK || !strings.Contains(out, "Targets   2: 2 contained\n") || !lineHas(out, ids["us-east-1"][0], "fleet-st-"+ids["us-east-1"][0], "CONTAINED") {
		t.Errorf("table: exit %d, stderr %s:\n%s", code, errOut, out)
	}
	code, out, _ = fc.run(t, "status", "--evidence-dir", dir, "--fleet-id", "fleet-st", "--output", "json", "--query", "cases[].status")
	if code != exitOK || strings.Join(strings.Fields(out), "") != `["contained","contained"]` {
		t.Errorf("json --query: exit %d: %s", code, out)
	}
	code, out, _ = fc.run(t, "status", "--evidence-dir", dir, "--fleet-id", "fleet-st", "--output", "text")
	if code != exitOK || !strings.HasPrefix(out, "FLEET\tfleet-st\tcli\t") || strings.Count(out, "CASE\t") != 2 || strings.Count(out, "\tcontained\t") != 2 {
		t.Errorf("text: exit %d:\n%s", code, out)
	}
	if code, _, errOut := fc.run(t, "status", "--evidence-dir", dir, "--fleet-id", "fleet-none"); code != exitCannotStart || !strings.Contains(errOut, "not found") {
		t.Errorf("unknown fleet: exit %d, %s", code, errOut)
	}
	if code, _, _ := fc.run(t, "status", "--evidence-dir", dir, "--fleet-id", "fleet-st", "--case-id", "c"); code != exitUsage {
		t.Errorf("--case-id with --fleet-id: exit %d, want 2", code)
	}
}

// A rerun with the same fleet ID leaves the contained instances alone.
func TestFleetRerunLeavesContainedAlone(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 3})
	c := fc.byRegion["us-east-1"]
	dir := t.TempDir()
	args := []string{"respond", "--evidence-dir", dir, "--filter", "tag:app=web", "--fleet-id", "fleet-again", "--yes", "--max-concurrency", "1"}
	c.Fail("ModifyNetworkInterfaceAttribute", "UnauthorizedOperation", 1)
	if code, _, errOut := fc.run(t, args...); code != exitContainmentFailed {
		t.Fatalf("first run: exit %d, %s; want 1 (one quarantine refused)", code, errOut)
	}
	snaps := fc.snapshots()
	code, _, errOut := fc.run(t, args...)
	if code != exitOK || !strings.Contains(errOut, "(2 contained already, by an earlier run of the fleet: left alone)") {
		t.Fatalf("rerun: exit %d, %s", code, errOut)
	}
	if n := fc.snapshots(); n != snaps || n != len(ids["us-east-1"]) {
		t.Errorf("%d snapshots after the rerun, %d before; want one per instance", n, snaps)
	}
	for _, id := range ids["us-east-1"] {
		for _, ni := range c.Instance(id).NetworkInterfaces {
			if h := c.InterfaceGroupHistory(aws.ToString(ni.NetworkInterfaceId)); len(h) > 3 {
				t.Errorf("%s: groups changed %d times: %v", id, len(h)-1, h)
			}
		}
	}
}

func TestFleetBlastRadius(t *testing.T) {
	fc, _ := newFleetClouds(t, map[string]int{"us-east-1": evidence.DefaultBlastRadius + 1})
	dir := t.TempDir()
	args := []string{"respond", "--evidence-dir", dir, "--filter", "tag:app=web", "--yes", "--fleet-id", "fleet-blast"}
	code, _, errOut := fc.run(t, args...)
	if code != exitCannotStart || !strings.Contains(errOut, fmt.Sprintf("--blast-radius %d", evidence.DefaultBlastRadius+1)) {
		t.Fatalf("above the limit: exit %d, %s; want 4 naming --blast-radius", code, errOut)
	}
	if n := fc.snapshots(); n != 0 {
		t.Fatalf("refused, yet %d snapshots taken", n)
	}
	if code, _, errOut := fc.run(t, append(args, "--blast-radius", fmt.Sprint(evidence.DefaultBlastRadius+1))...); code != exitOK {
		t.Fatalf("with --blast-radius: exit %d, %s", code, errOut)
	}
}

// On a terminal, the plan asks before acting and the progress line is
// redrawn in place; a "no" changes nothing.
func TestFleetOnATerminal(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 2})
	dir := t.TempDir()
	args := []string{"responder", "respond", "--evidence-dir", dir, "-i", strings.Join(ids["us-east-1"], ","), "--fleet-id", "fleet-tty"}
	for _, tc := range []struct {
		answer string
		code   int
	}{{"n\n", exitUsage}, {"y\n", exitOK}} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &streams{Out: &out, Err: &errOut, In: strings.NewReader(tc.answer), InIsTerminal: true, ErrIsTerminal: true}, fc.deps())
		if code != tc.code || !strings.Contains(errOut.String(), "Respond to these 2 instances") {
			t.Fatalf("answer %q: exit %d, stderr %q; want %d after the question", tc.answer, code, errOut.String(), tc.code)
		}
		if tc.code == exitUsage && fc.snapshots() != 0 {
			t.Fatal("answered no, yet snapshots were taken")
		}
		if tc.code == exitOK && !strings.Contains(errOut.String(), "\r\033[K2/2 done: 2 isolated, 2 snapshots requested, 0 failed") {
			t.Errorf("no progress line on the terminal: %q", errOut.String())
		}
	}
	code, _, errOut := fc.run(t, "respond", "--evidence-dir", dir, "-i", strings.Join(ids["us-east-1"], ","), "--fleet-id", "fleet-tty2", "--yes")
	if code != exitOK || strings.Contains(errOut, "\r") {
		t.Errorf("not a terminal: exit %d, stderr %q; want no progress line", code, errOut)
	}
}

// A fleet's dry run changes and stores nothing, and needs no --yes.
func TestFleetDryRun(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 2})
	dir := t.TempDir()
	code, out, errOut := fc.run(t, "respond", "--evidence-dir", dir, "-i", strings.Join(ids["us-east-1"], ","), "--fleet-id", "fleet-dry", "--dry-run")
	if code != exitDryRun || !strings.Contains(out, "WOULD-CONTAIN") {
		t.Fatalf("exit %d, stdout %s, stderr %s; want 5, every target would-contain", code, out, errOut)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		t.Errorf("a dry run stored %d entries in the evidence folder", len(entries))
	}
	if n := fc.snapshots(); n != 0 {
		t.Errorf("a dry run took %d snapshots", n)
	}
}

// cancelOnSnapshot is EC2 that cancels the run (a Ctrl-C) once the first
// snapshot set is requested.
type cancelOnSnapshot struct {
	cloud.EC2
	once   sync.Once
	cancel func()
}

func (e *cancelOnSnapshot) CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error) {
	out, err := e.EC2.CreateSnapshots(ctx, in, opts...)
	e.once.Do(e.cancel)
	return out, err
}

// Ctrl-C during a fleet: exit 7, the record says what finished and what is
// left, and the printed command continues the fleet to the end.
func TestFleetInterruptedAndContinued(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 3})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := fc.deps()
	load := d.loadClients
	d.loadClients = func(ctx context.Context, opts cloud.Options) (*cloud.Clients, error) {
		c, err := load(ctx, opts)
		if err == nil {
			c.EC2 = &cancelOnSnapshot{EC2: c.EC2, cancel: cancel}
		}
		return c, err
	}
	var out, errOut bytes.Buffer
	args := []string{"responder", "respond", "--evidence-dir", dir, "-i", strings.Join(ids["us-east-1"], ","), "--fleet-id", "fleet-int", "--yes", "--max-concurrency", "1"}
	code := run(ctx, args, &streams{Out: &out, Err: &errOut}, d)
	if code != exitInterrupted || !strings.Contains(errOut.String(), "responder respond --fleet-id fleet-int --yes") {
		t.Fatalf("exit %d, stderr %s; want 7 with the command that continues", code, errOut.String())
	}
	f, err := fleet.Status(context.Background(), &evidence.Folder{Root: dir}, "fleet-int")
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[string]int{}
	for _, tg := range f.Cases {
		statuses[tg.Status]++
	}
	if f.ClosedAt == nil || statuses[evidence.CaseInterrupted] != 1 || statuses[fleet.Pending] != 2 {
		t.Errorf("record: closed %v, statuses %v; want closed, 1 case interrupted, 2 pending", f.ClosedAt, statuses)
	}
	if code, _, errOut := fc.run(t, args[1:]...); code != exitOK {
		t.Fatalf("continued: exit %d, %s", code, errOut)
	}
	if n := fc.snapshots(); n != len(ids["us-east-1"]) {
		t.Errorf("%d snapshots after the fleet was continued, want one per instance", n)
	}
}

// A later run of a fleet keeps its recorded plan: targets the plan lacks are
// refused before anything is done.
func TestFleetKeepsItsPlan(t *testing.T) {
	fc, ids := newFleetClouds(t, map[string]int{"us-east-1": 3})
	dir := t.TempDir()
	list := ids["us-east-1"]
	if code, _, errOut := fc.run(t, "respond", "--evidence-dir", dir, "-i", strings.Join(list[:2], ","), "--fleet-id", "fleet-plan", "--yes"); code != exitOK {
		t.Fatalf("first run: exit %d, %s", code, errOut)
	}
	snaps := fc.snapshots()
	code, _, errOut := fc.run(t, "respond", "--evidence-dir", dir, "-i", strings.Join(list, ","), "--fleet-id", "fleet-plan", "--yes")
	if code != exitUsage || !strings.Contains(errOut, list[2]+" not among them") {
		t.Fatalf("another target under the same fleet: exit %d, %s; want 2 naming it", code, errOut)
	}
	if n := fc.snapshots(); n != snaps {
		t.Errorf("refused, yet %d snapshots were taken", n-snaps)
	}
}
