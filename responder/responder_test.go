package responder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
	"github.com/responder-ir/responder/responder/step"
)

const caseID = casetest.CaseID

var newResponder = casetest.NewResponder

func respond(t *testing.T, c *fakeaws.Cloud, store evidence.Store, req responder.Request) *responder.Result {
	t.Helper()
	return casetest.Respond(t, c, store, req)
}

func stepOf(t *testing.T, steps []evidence.StepRecord, name string) evidence.StepRecord {
	t.Helper()
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q in %v", name, steps)
	return evidence.StepRecord{}
}

// assertQuarantined checks the cloud state: every interface of the instance
// is in one group, tagged as the quarantine group, with no rule at all.
func assertQuarantined(t *testing.T, c *fakeaws.Cloud, instanceID string) string {
	t.Helper()
	v := c.Instance(instanceID)
	var qg string
	for _, n := range v.NetworkInterfaces {
		if len(n.Groups) != 1 {
			t.Fatalf("interface %s has groups %v, want only the quarantine group", aws.ToString(n.NetworkInterfaceId), n.Groups)
		}
		id := aws.ToString(n.Groups[0].GroupId)
		if qg != "" && id != qg {
			t.Fatalf("interfaces in different groups %s and %s", qg, id)
		}
		qg = id
	}
	g := c.SecurityGroup(qg)
	if g == nil {
		t.Fatalf("quarantine group %s does not exist", qg)
	}
	if len(g.IpPermissions) != 0 || len(g.IpPermissionsEgress) != 0 {
		t.Fatalf("quarantine group %s has rules: ingress %v egress %v", qg, g.IpPermissions, g.IpPermissionsEgress)
	}
	if !hasTag(g.Tags, step.TagQuarantine, "true") {
		t.Fatalf("quarantine group %s is not tagged %s=true: %v", qg, step.TagQuarantine, g.Tags)
	}
	return qg
}

func hasTag(tags []types.Tag, k, v string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}

func caseSnapshots(c *fakeaws.Cloud, id string) []types.Snapshot {
	var out []types.Snapshot
	for _, s := range c.Snapshots() {
		if hasTag(s.Tags, step.TagCaseID, id) {
			out = append(out, s)
		}
	}
	return out
}

func TestRespondContainsAndRecords(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.EnableGuardDuty() // findings: both sources answer
	c.EnableSecurityHub()
	topic := c.AddTopic("responder")
	dir := t.TempDir()
	store := &evidence.Folder{Root: dir}
	res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID, TopicARN: topic})

	if res.Status != evidence.CaseContained || res.Err != nil {
		t.Fatalf("status %s, err %v", res.Status, res.Err)
	}
	// Cloud state.
	qg := assertQuarantined(t, c, s.InstanceID)
	v := c.Instance(s.InstanceID)
	if !v.DisableAPITermination {
		t.Error("termination protection not enabled")
	}
	if v.ShutdownBehavior != "stop" {
		t.Errorf("shutdown behavior %q, want stop", v.ShutdownBehavior)
	}
	if v.ProfileAssociation != nil {
		t.Errorf("instance profile still associated: %v", aws.ToString(v.ProfileAssociation.AssociationId))
	}
	if !hasTag(v.Tags, step.TagCaseID, caseID) || !hasTag(v.Tags, step.TagStatus, evidence.CaseContained) {
		t.Errorf("instance tags %v", v.Tags)
	}
	snaps := caseSnapshots(c, caseID)
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots tagged with the case, want 2", len(snaps))
	}
	for _, sn := range snaps {
		if !hasTag(sn.Tags, step.TagSourceInstance, s.InstanceID) {
			t.Errorf("snapshot %s not tagged with the source instance", aws.ToString(sn.SnapshotId))
		}
	}
	// The web group is untouched (other instances may use it).
	if g := c.SecurityGroup(s.GroupID); len(g.IpPermissions) != 2 {
		t.Errorf("the instance's original group was changed: %v", g.IpPermissions)
	}

	// The record, read back from the store.
	m, err := responder.Status(context.Background(), store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	if m.InstanceID != s.InstanceID || m.AccountID != c.Account || m.Region != c.Region || m.Actor == "" || m.SchemaVersion != evidence.SchemaVersion {
		t.Errorf("manifest header %+v", m)
	}
	for _, name := range step.DefaultPlan {
		rec := stepOf(t, m.Steps, name)
		if name == "shutdown-behavior" && rec.Status == evidence.StatusSkipped {
			continue // "stop" is AWS's default: nothing to change
		}
		if (name == "auto-scaling" || name == "load-balancers") && rec.Status == evidence.StatusSkipped && rec.Containment == evidence.ContainmentHeld {
			continue // the suspect is in no Auto Scaling group, behind no load balancer
		}
		if rec.Status != evidence.StatusOK {
			t.Errorf("step %s: %s %s %s", name, rec.Status, rec.Reason, rec.Error)
		}
	}
	q := stepOf(t, m.Steps, "quarantine")
	var before struct {
		Interfaces []step.InterfaceGroups `json:"interfaces"`
	}
	if err := json.Unmarshal(q.Before, &before); err != nil || len(before.Interfaces) != 2 {
		t.Fatalf("quarantine before = %s (%v)", q.Before, err)
	}
	for _, n := range before.Interfaces {
		if !slices.Equal(n.Groups, []string{s.GroupID}) {
			t.Errorf("recorded groups of %s = %v, want the original %s", n.NetworkInterfaceID, n.Groups, s.GroupID)
		}
	}
	// Two moves per interface (through the untracking group), then their
	// read-back.
	if len(q.Calls) != 5 || q.Calls[0].RequestID == "" || q.Calls[0].Operation != "ModifyNetworkInterfaceAttribute" ||
		q.Calls[3].Operation != "ModifyNetworkInterfaceAttribute" || q.Calls[4].Operation != "DescribeNetworkInterfaces" {
		t.Errorf("quarantine calls %+v", q.Calls)
	}
	p := stepOf(t, m.Steps, "instance-profile")
	if !strings.Contains(string(p.Before), s.ProfileArn) {
		t.Errorf("instance-profile before %s does not record %s", p.Before, s.ProfileArn)
	}
	if len(m.Snapshots) != 2 {
		t.Errorf("manifest snapshots %v", m.Snapshots)
	}
	// Every artifact is in the folder with the recorded hash.
	wantPaths := []string{"cloudtrail-events.json", "console-output.txt", "console-screenshot.jpg", "findings.json", "metadata.json"}
	if len(m.Artifacts) != len(wantPaths) {
		t.Fatalf("artifacts %v", m.Artifacts)
	}
	for _, a := range m.Artifacts {
		body, err := os.ReadFile(filepath.Join(dir, caseID, a.Path))
		if err != nil {
			t.Fatal(err)
		}
		if evidence.SHA256(body) != a.SHA256 || int64(len(body)) != a.Size {
			t.Errorf("%s: stored content does not match the recorded hash", a.Path)
		}
	}
	meta, _ := os.ReadFile(filepath.Join(dir, caseID, s.InstanceID, "metadata.json"))
	for _, want := range []string{s.ProfileArn, s.VolumeIDs[1], s.InterfaceIDs[1], "payload | sh", `"FromPort": 22`} {
		if !strings.Contains(string(meta), want) {
			t.Errorf("metadata.json lacks %q", want)
		}
	}
	console, _ := os.ReadFile(filepath.Join(dir, caseID, s.InstanceID, "console-output.txt"))
	if string(console) != fakeaws.SuspectConsoleOutput {
		t.Errorf("console output %q", console)
	}

	// The notification.
	pub := c.Published()
	if len(pub) != 1 {
		t.Fatalf("%d messages published, want 1", len(pub))
	}
	if !strings.Contains(pub[0].Message, "CONTAINED") || !strings.Contains(pub[0].Subject, caseID) {
		t.Errorf("message %q / %q", pub[0].Subject, pub[0].Message)
	}
	n, err := step.ParseNotification(pub[0].Message)
	if err != nil {
		t.Fatal(err)
	}
	if n.CaseID != caseID || n.Status != evidence.CaseContained || len(n.Snapshots) != 2 || len(n.Artifacts) != 5 || n.Manifest != store.Location(caseID, "manifest.json") {
		t.Errorf("notification JSON %+v", n)
	}
	_ = qg
}

func TestRespondStartErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c *fakeaws.Cloud) string
		want  error
	}{
		{"not found", func(c *fakeaws.Cloud) string { return "i-0123456789abcdef0" }, responder.ErrInstanceNotFound},
		{"terminated", func(c *fakeaws.Cloud) string {
			return c.AddInstance(fakeaws.InstanceSpec{State: types.InstanceStateNameTerminated})
		}, responder.ErrInstanceTerminated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeaws.New()
			id := tc.setup(c)
			before := c.StateDigest()
			_, err := newResponder(c, &evidence.Folder{Root: t.TempDir()}).Respond(context.Background(), responder.Request{InstanceID: id, CaseID: caseID})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if c.StateDigest() != before {
				t.Fatal("a response that could not start changed the cloud")
			}
		})
	}
}

func TestBadInputMakesNoCall(t *testing.T) {
	for _, req := range []responder.Request{
		{InstanceID: "i-123", CaseID: caseID},
		{InstanceID: "i-0123456789abcdef0; rm -rf /", CaseID: caseID},
		{InstanceID: "I-0123456789ABCDEF0", CaseID: caseID},
		{InstanceID: "i-0123456789abcdef0", CaseID: "../../etc"},
		{InstanceID: "i-0123456789abcdef0", CaseID: "$(id)"},
		{InstanceID: "i-0123456789abcdef0", CaseID: caseID, Plan: []string{"snapshots", "format-disk"}},
	} {
		c := fakeaws.New()
		_, err := newResponder(c, &evidence.Folder{Root: t.TempDir()}).Respond(context.Background(), req)
		var ie *responder.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%+v: err = %v, want an InputError", req, err)
		}
		if n := c.CallCount("DescribeInstances") + c.CallCount("GetCallerIdentity"); n != 0 {
			t.Errorf("%+v: %d AWS calls made on bad input", req, n)
		}
	}
}

func TestRespondEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name       string
		spec       fakeaws.InstanceSpec
		prepare    func(c *fakeaws.Cloud)
		wantStatus string
		wantSteps  map[string]string // step -> status
		// stepTimeout bounds each step (default: the engine's): a step
		// that retries a server error until its deadline ends sooner.
		stepTimeout time.Duration
	}{
		{
			name:       "stopped instance",
			spec:       fakeaws.InstanceSpec{State: types.InstanceStateNameStopped, Volumes: 2, InstanceProfileArn: "arn:aws:iam::111122223333:instance-profile/p"},
			wantStatus: evidence.CaseContained,
			wantSteps:  map[string]string{"console-screenshot": "skipped", "snapshots": "ok", "quarantine": "ok", "instance-profile": "ok"},
		},
		{
			name:       "no instance profile",
			spec:       fakeaws.InstanceSpec{},
			wantStatus: evidence.CaseContained,
			wantSteps:  map[string]string{"instance-profile": "skipped", "quarantine": "ok"},
		},
		{
			name:       "no EBS volume",
			spec:       fakeaws.InstanceSpec{InstanceStore: true},
			wantStatus: evidence.CaseContained,
			wantSteps:  map[string]string{"snapshots": "skipped", "quarantine": "ok"},
		},
		{
			name:       "screenshot unsupported",
			spec:       fakeaws.InstanceSpec{ScreenshotUnsupported: true, Architecture: types.ArchitectureValuesArm64},
			wantStatus: evidence.CaseContained,
			wantSteps:  map[string]string{"console-screenshot": "skipped", "quarantine": "ok"},
		},
		{
			name:       "four interfaces",
			spec:       fakeaws.InstanceSpec{NetworkInterfaces: 4},
			wantStatus: evidence.CaseContained,
			wantSteps:  map[string]string{"quarantine": "ok"},
		},
		{
			name:       "shutdown behavior terminate",
			spec:       fakeaws.InstanceSpec{ShutdownBehavior: "terminate"},
			wantStatus: evidence.CaseContained,
			wantSteps:  map[string]string{"shutdown-behavior": "ok"},
		},
		{
			name:       "snapshots throttled beyond retries",
			spec:       fakeaws.InstanceSpec{Volumes: 2},
			prepare:    func(c *fakeaws.Cloud) { c.Throttle("CreateSnapshots", -1) },
			wantStatus: evidence.CaseContained, // the failed evidence step says what is missing
			wantSteps:  map[string]string{"snapshots": "failed", "quarantine": "ok", "termination-protection": "ok"},
		},
		{
			name:       "screenshot fails",
			spec:       fakeaws.InstanceSpec{},
			prepare:    func(c *fakeaws.Cloud) { c.Fail("GetConsoleScreenshot", "InternalError", -1) },
			wantStatus: evidence.CaseContained,
			wantSteps:  map[string]string{"console-screenshot": "failed", "quarantine": "ok"},
			// The screenshot is retried until the step's deadline.
			stepTimeout: 10 * time.Second,
		},
		{
			name:       "quarantine denied",
			spec:       fakeaws.InstanceSpec{InstanceProfileArn: "arn:aws:iam::111122223333:instance-profile/p"},
			prepare:    func(c *fakeaws.Cloud) { c.Deny("ModifyNetworkInterfaceAttribute") },
			wantStatus: evidence.CasePartiallyContained, // the other containment steps held
			wantSteps:  map[string]string{"quarantine": "failed", "instance-profile": "ok", "termination-protection": "ok", "snapshots": "ok"},
		},
		{
			name:       "new quarantine group not yet visible",
			spec:       fakeaws.InstanceSpec{NetworkInterfaces: 2},
			prepare:    func(c *fakeaws.Cloud) { c.GroupPropagationCalls = 3 },
			wantStatus: evidence.CaseContained,
			wantSteps:  map[string]string{"quarantine-group": "ok", "quarantine": "ok"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeaws.New()
			id := c.AddInstance(tc.spec)
			if tc.prepare != nil {
				tc.prepare(c)
			}
			res := respond(t, c, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: id, StepTimeout: tc.stepTimeout})
			if res.Status != tc.wantStatus {
				t.Errorf("status %s, want %s (err %v)", res.Status, tc.wantStatus, res.Err)
			}
			for name, want := range tc.wantSteps {
				if got := stepOf(t, res.Steps, name); got.Status != want {
					t.Errorf("step %s: %s (%s%s), want %s", name, got.Status, got.Reason, got.Error, want)
				}
			}
			if stepOf(t, res.Steps, "quarantine").Status == evidence.StatusOK {
				assertQuarantined(t, c, id)
			}
			if tc.wantSteps["shutdown-behavior"] == "ok" && c.Instance(id).ShutdownBehavior != "stop" {
				t.Error("shutdown behavior not set to stop")
			}
		})
	}
}

func TestRerunSameCaseChangesNothing(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	store := &evidence.Folder{Root: t.TempDir()}
	respond(t, c, store, responder.Request{InstanceID: s.InstanceID})
	after1 := c.StateDigest()

	res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID, CaseIDGiven: true})
	if c.StateDigest() != after1 {
		t.Fatalf("second run of the same case changed the cloud:\n%s", c.StateDump())
	}
	for _, rec := range res.Steps {
		if rec.Name == "quarantine-group" || rec.Name == "notify" {
			continue // reuses the group (ok); no topic (skipped)
		}
		if rec.Status != evidence.StatusSkipped {
			t.Errorf("rerun step %s: %s (%s), want skipped", rec.Name, rec.Status, rec.Reason)
		}
	}
	if r := stepOf(t, res.Steps, "quarantine").Reason; !strings.Contains(r, "already") {
		t.Errorf("rerun quarantine reason %q does not say it was already done", r)
	}
	m, err := responder.Status(context.Background(), store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	if m.LastRun() != 2 || len(m.Snapshots) != 2 || len(m.Artifacts) != 5 {
		t.Fatalf("after rerun: runs %d, snapshots %d, artifacts %d", m.LastRun(), len(m.Snapshots), len(m.Artifacts))
	}
	// The first run's before-state (the one a release needs) is kept.
	before, ok := m.FirstBefore("quarantine")
	if !ok || !strings.Contains(string(before), s.GroupID) {
		t.Errorf("first before of quarantine = %s", before)
	}
}

func TestRerunAfterUnrecordedRunReusesSnapshots(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	// A first run took the snapshots, then died before writing its record.
	respond(t, c, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: s.InstanceID, Plan: []string{"snapshots"}})
	res := respond(t, c, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: s.InstanceID, CaseIDGiven: true})
	if n := len(caseSnapshots(c, caseID)); n != 2 {
		t.Fatalf("%d snapshots for the case, want the first run's 2", n)
	}
	if st := stepOf(t, res.Steps, "snapshots"); st.Status != evidence.StatusSkipped || len(res.Manifest.Snapshots) != 2 {
		t.Fatalf("snapshots step %s %s; recorded %v", st.Status, st.Reason, res.Manifest.Snapshots)
	}
}

func TestSecondCaseOnQuarantinedInstance(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	store := &evidence.Folder{Root: t.TempDir()}
	respond(t, c, store, responder.Request{InstanceID: s.InstanceID, CaseID: "case-a"})
	qg := assertQuarantined(t, c, s.InstanceID)

	res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID, CaseID: "case-b"})
	if got := assertQuarantined(t, c, s.InstanceID); got != qg {
		t.Fatalf("second case moved the instance to %s, want the existing %s", got, qg)
	}
	if n := len(c.SecurityGroupsByTag(step.TagQuarantine, "true")); n != 1 {
		t.Fatalf("%d quarantine groups, want the one reused", n)
	}
	if n := len(caseSnapshots(c, "case-b")); n != 2 {
		t.Errorf("second case took %d snapshots, want fresh 2", n)
	}
	if st := stepOf(t, res.Steps, "metadata"); st.Status != evidence.StatusOK {
		t.Errorf("second case metadata: %s", st.Status)
	}
	if st := stepOf(t, res.Steps, "quarantine"); st.Status != evidence.StatusSkipped {
		t.Errorf("second case quarantine: %s %s, want skipped (already quarantined)", st.Status, st.Reason)
	}
	if res.Status != evidence.CaseContained {
		t.Errorf("status %s", res.Status)
	}
}

func TestLookalikeQuarantineGroupIsLeftAlone(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	qg := c.AddSecurityGroup(s.VpcID, "responder-quarantine-"+s.VpcID, []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}, fakeaws.DefaultEgress())
	respond(t, c, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: s.InstanceID})
	// Untagged, so not ours: a new group is made and the lookalike left alone.
	if got := assertQuarantined(t, c, s.InstanceID); got == qg {
		t.Fatal("an untagged group was taken for the quarantine group")
	}
	if g := c.SecurityGroup(qg); len(g.IpPermissions) != 1 {
		t.Fatal("an unrelated group was changed")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	topic := c.AddTopic("responder")
	dir := t.TempDir()
	before := c.StateDigest()
	res := respond(t, c, &evidence.Folder{Root: dir}, responder.Request{InstanceID: s.InstanceID, DryRun: true, TopicARN: topic})
	if c.StateDigest() != before {
		t.Fatalf("dry run changed the cloud:\n%s", c.StateDump())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("dry run stored %d entries", len(entries))
	}
	if len(c.Published()) != 0 {
		t.Fatal("dry run published a notification")
	}
	for _, name := range []string{"snapshots", "quarantine", "termination-protection", "case-tag", "quarantine-group"} {
		st := stepOf(t, res.Steps, name)
		if st.Status != evidence.StatusOK || !strings.HasPrefix(st.Reason, "dry run") {
			t.Errorf("dry-run step %s: %s %q %s", name, st.Status, st.Reason, st.Error)
		}
	}
	if st := stepOf(t, res.Steps, "instance-profile"); st.Status != evidence.StatusSkipped || !strings.Contains(st.Reason, "would remove") {
		t.Errorf("dry-run instance-profile: %s %q", st.Status, st.Reason)
	}
}

func TestDryRunReportsMissingPermission(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.Deny("CreateSnapshots")
	before := c.StateDigest()
	res := respond(t, c, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: s.InstanceID, DryRun: true})
	if c.StateDigest() != before {
		t.Fatal("dry run changed the cloud")
	}
	if st := stepOf(t, res.Steps, "snapshots"); st.Status != evidence.StatusFailed || !strings.Contains(st.Error, "UnauthorizedOperation") {
		t.Errorf("snapshots: %s %s", st.Status, st.Error)
	}
}

func TestBucketStore(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
	store := &evidence.Bucket{API: c.S3(), Name: "evidence", KMSKeyID: "arn:aws:kms:us-east-1:111122223333:key/1234"}
	respond(t, c, store, responder.Request{InstanceID: s.InstanceID})
	objects := c.Objects("evidence")
	m, err := responder.Status(context.Background(), store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range m.Artifacts {
		o, ok := objects["cases/"+caseID+"/"+a.Path]
		if !ok {
			t.Fatalf("artifact %s not in the bucket", a.Path)
		}
		if evidence.SHA256(o.Body) != a.SHA256 || o.ContentType != a.ContentType {
			t.Errorf("%s: object does not match the record", a.Path)
		}
		if o.ServerSideEncryption != "aws:kms" || o.SSEKMSKeyID == "" || o.ChecksumSHA256 == "" {
			t.Errorf("%s: sse %s key %q checksum %q", a.Path, o.ServerSideEncryption, o.SSEKMSKeyID, o.ChecksumSHA256)
		}
	}
	if _, ok := objects["cases/"+caseID+"/history/manifest-run-001.json"]; !ok {
		t.Error("no history copy of the manifest")
	}
}

func TestCaseOfAnotherInstanceIsRefused(t *testing.T) {
	c := fakeaws.New()
	a := c.AddInstance(fakeaws.InstanceSpec{})
	b := c.AddInstance(fakeaws.InstanceSpec{})
	store := &evidence.Folder{Root: t.TempDir()}
	respond(t, c, store, responder.Request{InstanceID: a})
	_, err := newResponder(c, store).Respond(context.Background(), responder.Request{InstanceID: b, CaseID: caseID, CaseIDGiven: true})
	if !errors.Is(err, responder.ErrCaseMismatch) {
		t.Fatalf("err = %v, want ErrCaseMismatch", err)
	}
}

func TestTaggedQuarantineGroupWithRulesIsEmptied(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	// A quarantine group someone made by hand, tagged, with its default
	// all-traffic egress rule still there.
	out, err := c.EC2().CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("hand-made-quarantine"), Description: aws.String("q"), VpcId: aws.String(s.VpcID),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup,
			Tags: []types.Tag{{Key: aws.String(step.TagQuarantine), Value: aws.String("true")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := respond(t, c, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: s.InstanceID})
	if got := assertQuarantined(t, c, s.InstanceID); got != aws.ToString(out.GroupId) {
		t.Fatalf("instance in %s, want the existing tagged group %s", got, aws.ToString(out.GroupId))
	}
	if st := stepOf(t, res.Steps, "quarantine-group"); !strings.Contains(st.Reason, "revoked 1 rule") {
		t.Errorf("quarantine-group reason %q", st.Reason)
	}
}

func TestActorGivenByTheCaller(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	res := respond(t, c, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: s.InstanceID, Actor: "arn:aws:iam::444455556666:user/analyst"})
	if res.Manifest.Actor != "arn:aws:iam::444455556666:user/analyst" || res.Manifest.ActingAs != "arn:aws:iam::111122223333:user/responder-test" {
		t.Fatalf("actor %q acting as %q", res.Manifest.Actor, res.Manifest.ActingAs)
	}
}

// heldStore holds every artifact write until open is closed, as a far or
// throttled evidence bucket holds an upload.
type heldStore struct {
	evidence.Store
	open <-chan struct{}
}

func (s heldStore) Put(ctx context.Context, caseID, path string, body []byte, ct string) (evidence.Stored, error) {
	if caseID == evidence.LocksFolder {
		// The case's run lock is taken before containment: it is not evidence.
		return s.Store.Put(ctx, caseID, path, body, ct)
	}
	select {
	case <-s.open:
		return s.Store.Put(ctx, caseID, path, body, ct)
	case <-ctx.Done():
		return evidence.Stored{}, fmt.Errorf("upload of %s held until the instance is isolated: %w", path, ctx.Err())
	}
}

// isolationWatch is the response's EC2 client: after each call that moves
// an interface or removes a profile it runs check, which reads the cloud.
type isolationWatch struct {
	cloud.EC2
	check func()
}

func (w isolationWatch) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	defer w.check()
	return w.EC2.ModifyNetworkInterfaceAttribute(ctx, in, opts...)
}

func (w isolationWatch) DisassociateIamInstanceProfile(ctx context.Context, in *ec2.DisassociateIamInstanceProfileInput, opts ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error) {
	defer w.check()
	return w.EC2.DisassociateIamInstanceProfile(ctx, in, opts...)
}

// isolated reports whether the cloud shows the instance without an instance
// profile and every interface in the tagged quarantine group alone.
func isolated(c *fakeaws.Cloud, instanceID string) bool {
	v := c.Instance(instanceID)
	if v.ProfileAssociation != nil {
		return false
	}
	for _, n := range v.NetworkInterfaces {
		if len(n.Groups) != 1 {
			return false
		}
		if g := c.SecurityGroup(aws.ToString(n.Groups[0].GroupId)); g == nil || !hasTag(g.Tags, step.TagQuarantine, "true") {
			return false
		}
	}
	return true
}

// Every upload is held until the cloud shows the instance isolated: the
// evidence steps can succeed only if isolation did not wait for them.
func TestIsolationDoesNotWaitForEvidenceUploads(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	open := make(chan struct{})
	var once sync.Once
	r := newResponder(c, heldStore{Store: &evidence.Folder{Root: t.TempDir()}, open: open})
	r.Clients.EC2 = isolationWatch{EC2: r.Clients.EC2, check: func() {
		if isolated(c, s.InstanceID) {
			once.Do(func() { close(open) })
		}
	}}
	// The step timeout only bounds a failure: a held upload gives up then.
	res, err := r.Respond(context.Background(), responder.Request{InstanceID: s.InstanceID, CaseID: caseID, StepTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	if m := stepOf(t, res.Steps, "metadata"); m.Status != evidence.StatusOK {
		t.Fatalf("metadata %s (%s): isolation waited for the upload", m.Status, m.Error)
	}
	for _, name := range []string{"quarantine", "instance-profile"} {
		if st := stepOf(t, res.Steps, name); st.Status != evidence.StatusOK {
			t.Errorf("%s %s (%s)", name, st.Status, st.Error)
		}
	}
	assertQuarantined(t, c, s.InstanceID)
	if !isolated(c, s.InstanceID) {
		t.Error("the instance keeps its instance profile")
	}
}

// The evidence comes first: when an interface is moved into the quarantine
// group, the cloud already holds a snapshot of every volume of the instance
// (the move through the untracking group, which restricts nothing, may go
// out beside the snapshot request).
func TestSnapshotsRequestedBeforeIsolation(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	r := newResponder(c, &evidence.Folder{Root: t.TempDir()})
	var mu sync.Mutex
	var isolatedEarly []string
	r.Clients.EC2 = moveWatch{EC2: r.Clients.EC2, before: func(in *ec2.ModifyNetworkInterfaceAttributeInput) {
		if len(in.Groups) != 1 {
			return
		}
		if g := c.SecurityGroup(in.Groups[0]); g == nil || !hasTag(g.Tags, step.TagQuarantine, "true") {
			return
		}
		if len(c.Snapshots()) < len(c.Instance(s.InstanceID).BlockDeviceMappings) {
			mu.Lock()
			isolatedEarly = append(isolatedEarly, aws.ToString(in.NetworkInterfaceId))
			mu.Unlock()
		}
	}}
	res, err := r.Respond(context.Background(), responder.Request{InstanceID: s.InstanceID, CaseID: caseID})
	if err != nil || res.Status != evidence.CaseContained {
		t.Fatalf("Respond: %v, status %v (%v)", err, res.Status, res.Err)
	}
	if len(isolatedEarly) > 0 {
		t.Errorf("%v moved into the quarantine group before the snapshots were taken", isolatedEarly)
	}
	assertQuarantined(t, c, s.InstanceID)
}

// moveWatch calls before ahead of every interface move, and answers
// CreateSnapshots slowly, as a busy EC2 may.
type moveWatch struct {
	cloud.EC2
	before func(*ec2.ModifyNetworkInterfaceAttributeInput)
}

func (w moveWatch) CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error) {
	time.Sleep(200 * time.Millisecond)
	return w.EC2.CreateSnapshots(ctx, in, opts...)
}

func (w moveWatch) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	w.before(in)
	return w.EC2.ModifyNetworkInterfaceAttribute(ctx, in, opts...)
}
