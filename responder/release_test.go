package responder_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// instanceState is what a release restores, field by field.
type instanceState struct {
	Groups                map[string][]string // interface -> sorted group IDs
	Profile               string
	DisableAPITermination bool
	DisableAPIStop        bool
	ShutdownBehavior      string
	DeleteOnTermination   map[string]bool // volume -> flag
	RolePolicies          []string        // inline policies of the profile's role, "app"
}

func stateOf(t *testing.T, c *fakeaws.Cloud, id string) instanceState {
	t.Helper()
	v := c.Instance(id)
	s := instanceState{
		Groups: map[string][]string{}, DeleteOnTermination: map[string]bool{},
		DisableAPITermination: v.DisableAPITermination, DisableAPIStop: v.DisableAPIStop, ShutdownBehavior: v.ShutdownBehavior,
		RolePolicies: c.RolePolicyNames("app"),
	}
	for _, n := range v.NetworkInterfaces {
		var g []string
		for _, gr := range n.Groups {
			g = append(g, aws.ToString(gr.GroupId))
		}
		slices.Sort(g)
		s.Groups[aws.ToString(n.NetworkInterfaceId)] = g
	}
	if v.ProfileAssociation != nil {
		s.Profile = aws.ToString(v.ProfileAssociation.IamInstanceProfile.Arn)
	}
	for _, m := range v.BlockDeviceMappings {
		if m.Ebs != nil {
			s.DeleteOnTermination[aws.ToString(m.Ebs.VolumeId)] = aws.ToBool(m.Ebs.DeleteOnTermination)
		}
	}
	return s
}

func assertSameState(t *testing.T, got, want instanceState) {
	t.Helper()
	for nic, g := range want.Groups {
		if !slices.Equal(got.Groups[nic], g) {
			t.Errorf("interface %s in %v, want %v", nic, got.Groups[nic], g)
		}
	}
	if got.Profile != want.Profile {
		t.Errorf("instance profile %q, want %q", got.Profile, want.Profile)
	}
	if got.DisableAPITermination != want.DisableAPITermination {
		t.Errorf("termination protection %t, want %t", got.DisableAPITermination, want.DisableAPITermination)
	}
	if got.DisableAPIStop != want.DisableAPIStop {
		t.Errorf("stop protection %t, want %t", got.DisableAPIStop, want.DisableAPIStop)
	}
	if got.ShutdownBehavior != want.ShutdownBehavior {
		t.Errorf("shutdown behaviour %q, want %q", got.ShutdownBehavior, want.ShutdownBehavior)
	}
	if !slices.Equal(got.RolePolicies, want.RolePolicies) {
		t.Errorf("role app holds the inline policies %v, want %v", got.RolePolicies, want.RolePolicies)
	}
	for vol, d := range want.DeleteOnTermination {
		if got.DeleteOnTermination[vol] != d {
			t.Errorf("volume %s: DeleteOnTermination %t, want %t", vol, got.DeleteOnTermination[vol], d)
		}
	}
}

// releaseSuspect is an instance with two interfaces in different groups, an
// instance profile, terminate on shutdown and volumes deleted on
// termination: every containment step changes something.
func releaseSuspect(t *testing.T) (*fakeaws.Cloud, string) {
	t.Helper()
	c := fakeaws.New()
	vpc := c.AddVPC()
	web := c.AddSecurityGroup(vpc, "web", nil, fakeaws.DefaultEgress())
	db := c.AddSecurityGroup(vpc, "db", nil, fakeaws.DefaultEgress())
	id := c.AddInstance(fakeaws.InstanceSpec{
		VpcID: vpc, Volumes: 2, NetworkInterfaces: 2, InterfaceGroupIDs: [][]string{{web}, {web, db}},
		InstanceProfileArn: "arn:aws:iam::" + c.Account + ":instance-profile/app", ShutdownBehavior: "terminate",
	})
	return c, id
}

var releasePlan = []string{"metadata", "snapshots", "quarantine-group", "quarantine", "termination-protection", "shutdown-behavior",
	"stop-protection", "delete-on-termination", "instance-profile", "credential-revocation", "case-tag"}

func release(t *testing.T, c *fakeaws.Cloud, store evidence.Store, req responder.ReleaseRequest) *responder.Result {
	t.Helper()
	if req.CaseID == "" {
		req.CaseID = caseID
	}
	res, err := newResponder(c, store).Release(context.Background(), req)
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	return res
}

func tagOf(c *fakeaws.Cloud, id, key string) string {
	for _, tg := range c.Instance(id).Tags {
		if aws.ToString(tg.Key) == key {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

func TestReleaseGivesBackTheStateBeforeTheResponse(t *testing.T) {
	c, id := releaseSuspect(t)
	original := stateOf(t, c, id)
	if !original.DeleteOnTermination[original.firstVolume()] || original.ShutdownBehavior != "terminate" || original.Profile == "" {
		t.Fatalf("the suspect does not exercise every step: %+v", original)
	}
	store := &evidence.Folder{Root: t.TempDir()}
	res := respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	if res.Status != evidence.CaseContained {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	contained := stateOf(t, c, id)
	if contained.Profile != "" || !contained.DisableAPIStop || contained.ShutdownBehavior != "stop" || len(contained.RolePolicies) != 1 {
		t.Fatalf("not contained: %+v", contained)
	}
	snapshots, artifacts := len(caseSnapshots(c, id)), len(res.Manifest.Artifacts)

	rel := release(t, c, store, responder.ReleaseRequest{})
	if rel.Status != evidence.CaseReleased || rel.Err != nil {
		t.Fatalf("release: %s %v\n%+v", rel.Status, rel.Err, rel.Steps)
	}
	assertSameState(t, stateOf(t, c, id), original)
	if got := tagOf(c, id, step.TagStatus); got != evidence.CaseReleased {
		t.Errorf("responder:status tag %q, want released", got)
	}
	if got := tagOf(c, id, step.TagCaseID); got != caseID {
		t.Errorf("responder:case-id tag %q", got)
	}

	// Reverse order of containment, the tag last.
	var order []string
	for _, s := range rel.Steps {
		order = append(order, s.Name)
		if s.Run != 2 {
			t.Errorf("%s recorded in run %d, want 2", s.Name, s.Run)
		}
	}
	want := []string{"credential-revocation", "instance-profile", "delete-on-termination", "stop-protection", "shutdown-behavior", "termination-protection", "quarantine", "case-tag"}
	if !slices.Equal(order, want) {
		t.Errorf("release order %v, want %v", order, want)
	}

	// A new run of the record, sealed; evidence untouched.
	m, err := responder.Status(context.Background(), store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Runs) != 2 || m.Runs[1].Playbook != responder.ReleasePlaybook || m.Runs[1].Status != evidence.CaseReleased || m.Status != evidence.CaseReleased {
		t.Fatalf("runs %+v, status %s", m.Runs, m.Status)
	}
	if len(m.Artifacts) != artifacts || len(caseSnapshots(c, id)) != snapshots {
		t.Errorf("evidence changed: %d artifacts (was %d), %d snapshots (was %d)", len(m.Artifacts), artifacts, len(caseSnapshots(c, id)), snapshots)
	}
	if _, err := evidence.CheckSealed(context.Background(), store, caseID); err != nil {
		t.Errorf("the release's record is not sealed: %v", err)
	}

	// Releasing again changes nothing.
	after := c.StateDigest()
	again := release(t, c, store, responder.ReleaseRequest{})
	if again.Status != evidence.CaseReleased || c.StateDigest() != after {
		t.Errorf("second release: %s, changed the cloud: %t", again.Status, c.StateDigest() != after)
	}
}

// A release with KeepCredentialRevocation restores everything else and
// leaves the deny on the role; the release's record says it was kept.
func TestReleaseKeepsTheCredentialRevocation(t *testing.T) {
	c, id := releaseSuspect(t)
	original := stateOf(t, c, id)
	store := &evidence.Folder{Root: t.TempDir()}
	if res := respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan}); res.Status != evidence.CaseContained {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	rel := release(t, c, store, responder.ReleaseRequest{KeepCredentialRevocation: true})
	if rel.Status != evidence.CaseReleased || rel.Err != nil {
		t.Fatalf("release: %s %v", rel.Status, rel.Err)
	}
	got := stateOf(t, c, id)
	if want := []string{step.RevocationPolicyName(caseID)}; !slices.Equal(got.RolePolicies, want) {
		t.Errorf("role app holds %v, want the revocation kept %v", got.RolePolicies, want)
	}
	got.RolePolicies = original.RolePolicies
	assertSameState(t, got, original)
	m, err := responder.Status(context.Background(), store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Steps {
		var after struct{ Kept bool }
		if s.Run == 2 && s.Name == "credential-revocation" && (json.Unmarshal(s.After, &after) != nil || !after.Kept) {
			t.Errorf("the release's record of credential-revocation does not say kept: %s (%s)", s.After, s.Reason)
		}
	}
}

func (s instanceState) firstVolume() string {
	var vols []string
	for v := range s.DeleteOnTermination {
		vols = append(vols, v)
	}
	slices.Sort(vols)
	return vols[0]
}

func TestReleaseAfterPartialFailure(t *testing.T) {
	c, id := releaseSuspect(t)
	original := stateOf(t, c, id)
	store := &evidence.Folder{Root: t.TempDir()}
	// One interface move fails (the other moves), the profile stays.
	c.Fail("ModifyNetworkInterfaceAttribute", "InternalError", 1)
	c.Fail("DisassociateIamInstanceProfile", "InternalError", -1)
	res := respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	if res.Status != evidence.CasePartiallyContained {
		t.Fatalf("respond: %s", res.Status)
	}
	moved := 0
	for nic, g := range stateOf(t, c, id).Groups {
		if !slices.Equal(g, original.Groups[nic]) {
			moved++
		}
	}
	if moved != 1 {
		t.Fatalf("%d interfaces moved, want 1 (the test's premise)", moved)
	}
	c.ClearFaults()

	rel := release(t, c, store, responder.ReleaseRequest{})
	if rel.Status != evidence.CaseReleased {
		t.Fatalf("release: %s %v", rel.Status, rel.Err)
	}
	assertSameState(t, stateOf(t, c, id), original)
	if st := stepOf(t, rel.Steps, "instance-profile"); st.Status != evidence.StatusSkipped || st.Containment != evidence.ContainmentHeld {
		t.Errorf("instance-profile: %s %s %q", st.Status, st.Containment, st.Reason)
	}
}

func TestReleaseRefusesWhatChangedSince(t *testing.T) {
	c, id := releaseSuspect(t)
	store := &evidence.Folder{Root: t.TempDir()}
	respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	// Someone associated another profile since the response.
	other := "arn:aws:iam::" + c.Account + ":instance-profile/other"
	if _, err := c.EC2().AssociateIamInstanceProfile(context.Background(), &ec2.AssociateIamInstanceProfileInput{
		InstanceId: aws.String(id), IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(other)},
	}); err != nil {
		t.Fatal(err)
	}
	rel := release(t, c, store, responder.ReleaseRequest{})
	if rel.Status != evidence.CaseReleaseIncomplete {
		t.Fatalf("release: %s, want release-incomplete", rel.Status)
	}
	st := stepOf(t, rel.Steps, "instance-profile")
	if st.Status != evidence.StatusFailed || !strings.Contains(st.Error, "refused") || !strings.Contains(st.Error, other) {
		t.Errorf("instance-profile: %s %q", st.Status, st.Error)
	}
	if got := stateOf(t, c, id).Profile; got != other {
		t.Errorf("profile %q: the release replaced the one associated since", got)
	}
	if got := tagOf(c, id, step.TagStatus); got != evidence.CaseReleaseIncomplete {
		t.Errorf("responder:status tag %q, want release-incomplete", got)
	}
	if st := stepOf(t, rel.Steps, "termination-protection"); st.Containment != evidence.ContainmentHeld {
		t.Errorf("the other steps were not released: %+v", st)
	}
}

func TestReleaseDryRunChangesNothing(t *testing.T) {
	c, id := releaseSuspect(t)
	dir := t.TempDir()
	store := &evidence.Folder{Root: dir}
	respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	before := c.StateDigest()
	files := listFiles(t, dir)
	rel := release(t, c, store, responder.ReleaseRequest{DryRun: true})
	if c.StateDigest() != before {
		t.Fatalf("dry run changed the cloud:\n%s", c.StateDump())
	}
	if !slices.Equal(listFiles(t, dir), files) {
		t.Fatal("dry run stored something")
	}
	if rel.Status != evidence.CaseWouldRelease {
		t.Fatalf("dry run: %s %v", rel.Status, rel.Err)
	}
	if st := stepOf(t, rel.Steps, "termination-protection"); st.Containment != evidence.ContainmentPermitted {
		t.Errorf("termination-protection: %+v", st)
	}
	if st := stepOf(t, rel.Steps, "instance-profile"); !strings.Contains(st.Reason, "would associate") {
		t.Errorf("instance-profile: %q", st.Reason)
	}

	c.Deny("ModifyInstanceAttribute")
	if rel := release(t, c, store, responder.ReleaseRequest{DryRun: true}); rel.Status != evidence.CaseWouldFail {
		t.Errorf("dry run without permission: %s", rel.Status)
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReleaseRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, c *fakeaws.Cloud, dir string, id string) responder.ReleaseRequest
		want  error
		input bool
	}{
		{"unknown case", func(*testing.T, *fakeaws.Cloud, string, string) responder.ReleaseRequest {
			return responder.ReleaseRequest{CaseID: "case-nobody"}
		}, responder.ErrCaseNotFound, false},
		{"another instance", func(_ *testing.T, c *fakeaws.Cloud, _ string, _ string) responder.ReleaseRequest {
			return responder.ReleaseRequest{CaseID: caseID, InstanceID: c.AddInstance(fakeaws.InstanceSpec{})}
		}, responder.ErrCaseMismatch, true},
		{"another account", func(t *testing.T, _ *fakeaws.Cloud, dir string, _ string) responder.ReleaseRequest {
			rewrite(t, dir, func(s string) string {
				return strings.Replace(s, `"account_id": "`, `"account_id": "9`, 1)
			}, true)
			return responder.ReleaseRequest{CaseID: caseID}
		}, responder.ErrCaseMismatch, true},
		{"tampered before-state", func(t *testing.T, _ *fakeaws.Cloud, dir string, _ string) responder.ReleaseRequest {
			rewrite(t, dir, func(s string) string {
				s = strings.Replace(s, `"disable_api_termination":false`, `"disable_api_termination":true`, 1)
				return strings.Replace(s, `"disable_api_termination": false`, `"disable_api_termination": true`, 1)
			}, false)
			return responder.ReleaseRequest{CaseID: caseID}
		}, responder.ErrRecordTampered, false},
		{"seal removed", func(t *testing.T, _ *fakeaws.Cloud, dir string, _ string) responder.ReleaseRequest {
			if err := os.Remove(filepath.Join(dir, caseID, evidence.SealName(1))); err != nil {
				t.Fatal(err)
			}
			return responder.ReleaseRequest{CaseID: caseID}
		}, responder.ErrRecordTampered, false},
		{"another run at work", func(t *testing.T, _ *fakeaws.Cloud, dir string, _ string) responder.ReleaseRequest {
			store := &evidence.Folder{Root: dir}
			rec, err := evidence.LoadRecord(context.Background(), store, caseID)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := evidence.ClaimRun(context.Background(), store, rec, caseID, "arn:aws:iam::111122223333:user/other", time.Now); err != nil {
				t.Fatal(err)
			}
			return responder.ReleaseRequest{CaseID: caseID}
		}, responder.ErrCaseBusy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, id := releaseSuspect(t)
			dir := t.TempDir()
			store := &evidence.Folder{Root: dir}
			respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
			req := tc.setup(t, c, dir, id)
			before := c.StateDigest()
			files := listFiles(t, dir)
			_, err := newResponder(c, store).Release(context.Background(), req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ie *responder.InputError
			if errors.As(err, &ie) != tc.input {
				t.Errorf("input error: %t, want %t (%v)", !tc.input, tc.input, err)
			}
			if c.StateDigest() != before {
				t.Error("a refused release changed the cloud")
			}
			if !slices.Equal(listFiles(t, dir), files) {
				t.Error("a refused release wrote to the case folder")
			}
		})
	}
}

// rewrite changes manifest.json of the case, resealing it (a consistent
// record of another account) or not (tampering).
func rewrite(t *testing.T, dir string, edit func(string) string, reseal bool) {
	t.Helper()
	path := filepath.Join(dir, caseID, evidence.ManifestName)
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	changed := edit(string(body))
	if changed == string(body) {
		t.Fatal("the edit changed nothing")
	}
	write := func(p, s string) {
		_ = os.Chmod(p, 0o600)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(path, changed)
	if reseal {
		write(filepath.Join(dir, caseID, evidence.SealName(1)), evidence.SHA256([]byte(changed))+"\n")
	}
}

// The member role may not pass the instance's role: the profile step says
// how to restore it, the rest is released, and a second release after the
// profile is back says released.
func TestReleaseWithoutPassRoleSaysHowToRestoreTheProfile(t *testing.T) {
	c, id := releaseSuspect(t)
	original := stateOf(t, c, id)
	store := &evidence.Folder{Root: t.TempDir()}
	respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	c.Deny("AssociateIamInstanceProfile")
	rel := release(t, c, store, responder.ReleaseRequest{})
	st := stepOf(t, rel.Steps, "instance-profile")
	if rel.Status != evidence.CaseReleaseIncomplete || st.Containment != evidence.ContainmentNotHeld || !strings.Contains(st.Error, "release role") {
		t.Fatalf("release: %s; instance-profile %s %q", rel.Status, st.Containment, st.Error)
	}
	c.Allow("AssociateIamInstanceProfile")
	if _, err := c.EC2().AssociateIamInstanceProfile(context.Background(), &ec2.AssociateIamInstanceProfileInput{
		InstanceId: aws.String(id), IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(original.Profile)},
	}); err != nil {
		t.Fatal(err)
	}
	if rel := release(t, c, store, responder.ReleaseRequest{}); rel.Status != evidence.CaseReleased {
		t.Fatalf("second release: %s %v", rel.Status, rel.Err)
	}
	assertSameState(t, stateOf(t, c, id), original)
}
