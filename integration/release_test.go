package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// exitReleased is release's exit when every step read back the state the
// case recorded (released).
const exitReleased = exitOK

// TestReleaseRestoresTheInstance contains the lab instance with the real
// binary, releases the case, and checks on moto that the instance is as it
// was before the response (groups of every interface, termination and stop
// protection, shutdown behaviour, the instance profile, delete on
// termination), that the evidence is untouched, and that the case records
// the release and still verifies.
func TestReleaseRestoresTheInstance(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	caseID := "case-release-1"
	before := observe(t, f.aws, l)
	beforeDisk := lifecycle(t, f, l.InstanceID)

	store := []string{"--evidence-dir", f.caseDir}
	if res := f.run(append([]string{"respond", "--instance-id", l.InstanceID, "--case-id", caseID}, store...)...); res.Code != exitOK {
		t.Fatalf("respond: want exit %d:\n%s", exitOK, res)
	}
	assertContained(t, f.aws, l, caseID)
	contained := observe(t, f.aws, l)
	// Connection tracking timeouts at their minimums on every interface (the
	// lab's t3.micro is Nitro; the proxy keeps what moto ignores).
	for eni := range contained.InterfaceGroups {
		if got, _ := f.connTrack.Of(eni); got != (ConnTrack{TCPEstablished: 60, UDPStream: 60, UDP: 30}) {
			t.Errorf("connection tracking timeouts of %s after respond: %+v, want 60/60/30", eni, got)
		}
	}
	// The response changed what the release must give back, or the round
	// trip below would prove nothing.
	if reflect.DeepEqual(contained.InterfaceGroups, before.InterfaceGroups) || contained.DisableAPITermination == before.DisableAPITermination ||
		len(contained.ProfileAssociations) == len(before.ProfileAssociations) || reflect.DeepEqual(lifecycle(t, f, l.InstanceID), beforeDisk) {
		t.Fatalf("the response left the instance as it was: %+v", contained)
	}

	// No terminal and no --yes: refused before anything changes.
	if res := f.run(append([]string{"release", "--case-id", caseID}, store...)...); res.Code != exitUsage {
		t.Fatalf("release without --yes: want exit %d:\n%s", exitUsage, res)
	}
	if got := observe(t, f.aws, l); !reflect.DeepEqual(got, contained) {
		t.Fatalf("a refused release changed the instance:\n%+v\nwas\n%+v", got, contained)
	}

	if res := f.run(append([]string{"release", "--case-id", caseID, "--yes"}, store...)...); res.Code != exitReleased {
		t.Fatalf("release: want exit %d:\n%s", exitReleased, res)
	}
	after := observe(t, f.aws, l)
	if !reflect.DeepEqual(after.InterfaceGroups, before.InterfaceGroups) {
		t.Errorf("interface groups after release %v, before the response %v", after.InterfaceGroups, before.InterfaceGroups)
	}
	if after.DisableAPITermination != before.DisableAPITermination || after.ShutdownBehavior != before.ShutdownBehavior {
		t.Errorf("termination protection %t, shutdown %q after release; before %t, %q",
			after.DisableAPITermination, after.ShutdownBehavior, before.DisableAPITermination, before.ShutdownBehavior)
	}
	if doc, found := revocationPolicy(t, f.aws, l, caseID); found {
		t.Errorf("the credential revocation is still on role %s after release: %s", l.RoleName, doc)
	}
	if len(after.ProfileAssociations) != len(before.ProfileAssociations) {
		t.Errorf("%d profile associations after release, %d before", len(after.ProfileAssociations), len(before.ProfileAssociations))
	}
	if got := lifecycle(t, f, l.InstanceID); !reflect.DeepEqual(got, beforeDisk) {
		t.Errorf("stop protection and delete on termination after release %+v, before %+v", got, beforeDisk)
	}
	// Timeouts not set before come back as their documented defaults.
	for eni := range after.InterfaceGroups {
		if got, _ := f.connTrack.Of(eni); got != (ConnTrack{TCPEstablished: 432000, UDPStream: 180, UDP: 30}) {
			t.Errorf("connection tracking timeouts of %s after release: %+v, want the defaults 432000/180/30", eni, got)
		}
	}
	if after.Tags["responder:status"] != "released" {
		t.Errorf("tag responder:status = %q, want released", after.Tags["responder:status"])
	}
	// Evidence is never touched: the snapshots stay.
	if !reflect.DeepEqual(after.Snapshots, contained.Snapshots) || len(after.Snapshots) == 0 {
		t.Errorf("snapshots after release %v, after the response %v", after.Snapshots, contained.Snapshots)
	}
	assertReleaseRecorded(t, f, caseID)
	if res := f.run(append([]string{"verify", "--case-id", caseID, "--no-snapshots"}, store...)...); res.Code != exitOK {
		t.Errorf("verify after release: want exit %d:\n%s", exitOK, res)
	}
}

// diskLifecycle is what the lifecycle steps change: stop protection and
// each device's DeleteOnTermination.
type diskLifecycle struct {
	StopProtection      bool
	DeleteOnTermination map[string]bool
}

func lifecycle(t *testing.T, f *fixture, instanceID string) diskLifecycle {
	t.Helper()
	ctx := context.Background()
	out, err := f.aws.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	must(t, err)
	d := diskLifecycle{DeleteOnTermination: map[string]bool{}}
	for _, m := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if m.Ebs != nil {
			d.DeleteOnTermination[aws.ToString(m.DeviceName)] = aws.ToBool(m.Ebs.DeleteOnTermination)
		}
	}
	attr, err := f.aws.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: &instanceID, Attribute: "disableApiStop"})
	must(t, err)
	if attr.DisableApiStop != nil {
		d.StopProtection = aws.ToBool(attr.DisableApiStop.Value)
	}
	return d
}

// assertReleaseRecorded checks the case record: a last run with playbook
// release and status released, after the response's run.
func assertReleaseRecorded(t *testing.T, f *fixture, caseID string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.caseDir, caseID, "manifest.json"))
	must(t, err)
	var m struct {
		Status string `json:"status"`
		Runs   []struct {
			Playbook string `json:"playbook"`
			Status   string `json:"status"`
		} `json:"runs"`
	}
	must(t, json.Unmarshal(b, &m))
	if n := len(m.Runs); n != 2 || m.Runs[1].Playbook != "release" || m.Runs[1].Status != "released" {
		t.Errorf("runs %+v, want the response then a release run ending released", m.Runs)
	}
}
