package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
)

// TestInvestigate builds an investigation workspace through the binary,
// against moto: after respond and preserve (the copies are made in the same
// account, see TestPreserve), `responder investigate` launches an analysis
// instance into a subnet of the second Availability Zone, restores one
// volume from each snapshot copy there and attaches it; `--stop` detaches
// and deletes the working volumes and terminates the instance, and the
// copies are still there, completed.
//
// moto lists no managed node, so the workspace ends "incomplete" (exit 1)
// when --timeout ends the wait for the instance's SSM Agent: the mounts and the
// memory fetch are covered by the fake-cloud tests (responder/investigate)
// and by the mount script run for real on loop devices
// (ssm-documents/mount_test.go).
func TestInvestigate(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	ctx := context.Background()
	caseID := "case-investigate"
	if res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-dir", f.caseDir, "--steps", "snapshots"); res.Code != exitOK {
		t.Fatalf("respond: want exit %d:\n%s", exitOK, res)
	}
	key := "arn:aws:kms:" + l.Region + ":" + l.AccountID + ":key/11111111-2222-3333-4444-555555555555"
	if res := f.run("preserve", "--case-id", caseID, "--forensics-account", l.AccountID, "--forensics-kms-key", key,
		"--evidence-dir", f.caseDir, "--wait", "--poll-interval", "200ms", "--timeout", "1m"); res.Code != exitOK {
		t.Fatalf("preserve: want exit %d:\n%s", exitOK, res)
	}
	copies := copiesOf(t, f, caseID)
	az := l.Region + "b"
	sub, err := f.aws.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(l.VpcID), CidrBlock: aws.String("10.20.200.0/24"), AvailabilityZone: aws.String(az)})
	must(t, err)
	subnet := aws.ToString(sub.Subnet.SubnetId)
	profile := l.InstanceProfileARN[strings.LastIndex(l.InstanceProfileARN, "/")+1:]

	res := f.run("investigate", "--case-id", caseID, "--subnet-id", subnet, "--ami-id", l.ImageID, "--instance-type", "t3.micro",
		"--instance-profile", profile, "--evidence-dir", f.caseDir, "--poll-interval", "200ms", "--timeout", "8s", "--output", "json")
	if res.Code != 1 {
		t.Fatalf("investigate: want exit 1 (moto runs no SSM command):\n%s", res)
	}
	var printed struct {
		Workspace struct {
			ID               string `json:"workspace_id"`
			State            string `json:"state"`
			InstanceID       string `json:"instance_id"`
			AvailabilityZone string `json:"availability_zone"`
			Volumes          []struct {
				VolumeID   string `json:"volume_id"`
				SnapshotID string `json:"snapshot_id"`
				Device     string `json:"device"`
				Error      string `json:"error"`
			} `json:"volumes"`
			Problems []string `json:"problems"`
		} `json:"workspace"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &printed); err != nil {
		t.Fatalf("investigate printed %v:\n%s", err, res)
	}
	ws := printed.Workspace
	if ws.State != "incomplete" || ws.AvailabilityZone != az || len(ws.Volumes) != len(copies) ||
		!strings.Contains(strings.Join(ws.Problems, ";"), "not a managed node") {
		t.Fatalf("workspace %+v", ws)
	}
	// As AWS shows them: the instance in the subnet's zone, tagged with the
	// case; each volume restored from its copy there and attached to it.
	inst := describeOne(t, f, ws.InstanceID)
	if aws.ToString(inst.Placement.AvailabilityZone) != az || tagOf(inst.Tags, tagCase) != caseID || tagOf(inst.Tags, "responder:role") != "analysis" {
		t.Errorf("instance %s: zone %s tags %v", ws.InstanceID, aws.ToString(inst.Placement.AvailabilityZone), inst.Tags)
	}
	for _, v := range ws.Volumes {
		out, err := f.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{v.VolumeID}})
		must(t, err)
		got := out.Volumes[0]
		if aws.ToString(got.SnapshotId) != v.SnapshotID || !copies[v.SnapshotID] || aws.ToString(got.AvailabilityZone) != az ||
			len(got.Attachments) != 1 || aws.ToString(got.Attachments[0].InstanceId) != ws.InstanceID || tagOf(got.Tags, tagCase) != caseID {
			t.Errorf("volume %s: from %s in %s, attachments %v, tags %v", v.VolumeID, aws.ToString(got.SnapshotId), aws.ToString(got.AvailabilityZone), got.Attachments, got.Tags)
		}
	}
	// A second workspace is refused; --stop tears this one down.
	if res := f.run("investigate", "--case-id", caseID, "--subnet-id", subnet, "--ami-id", l.ImageID, "--evidence-dir", f.caseDir); res.Code != exitCouldNotStart {
		t.Errorf("second workspace: want exit %d:\n%s", exitCouldNotStart, res)
	}
	res = f.run("investigate", "--case-id", caseID, "--stop", "--evidence-dir", f.caseDir, "--poll-interval", "200ms", "--timeout", "1m")
	if res.Code != exitOK || !strings.Contains(res.Stdout, "STOPPED") {
		t.Fatalf("stop: want exit %d:\n%s", exitOK, res)
	}
	for _, v := range ws.Volumes {
		out, err := f.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("volume-id"), Values: []string{v.VolumeID}}}})
		must(t, err)
		if len(out.Volumes) != 0 {
			t.Errorf("working volume %s left: %v", v.VolumeID, out.Volumes[0].State)
		}
	}
	if inst := describeOne(t, f, ws.InstanceID); inst.State.Name != ec2types.InstanceStateNameTerminated {
		t.Errorf("instance %s is %s", ws.InstanceID, inst.State.Name)
	}
	if after := copiesOf(t, f, caseID); len(after) != len(copies) {
		t.Errorf("copies after teardown %v, before %v", after, copies)
	}
}

// copiesOf returns the case's snapshot copies (by the tag preserve puts on
// them) that are completed.
func copiesOf(t *testing.T, f *fixture, caseID string) map[string]bool {
	t.Helper()
	out, err := f.aws.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:responder:source-account-id"), Values: []string{"*"}},
			{Name: aws.String("tag:" + tagCase), Values: []string{caseID}}}})
	must(t, err)
	got := map[string]bool{}
	for _, s := range out.Snapshots {
		if s.State == ec2types.SnapshotStateCompleted {
			got[aws.ToString(s.SnapshotId)] = true
		}
	}
	if len(got) == 0 {
		t.Fatalf("no completed copy of case %s", caseID)
	}
	return got
}

func describeOne(t *testing.T, f *fixture, id string) ec2types.Instance {
	t.Helper()
	out, err := f.aws.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	must(t, err)
	if len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		t.Fatalf("instance %s not found", id)
	}
	return out.Reservations[0].Instances[0]
}

func tagOf(tags []ec2types.Tag, key string) string {
	for _, tg := range tags {
		if aws.ToString(tg.Key) == key {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

// TestInvestigateConfinesTheAnalysisRole: with the case in the evidence
// bucket, `responder investigate` puts on the analysis role (moto's IAM)
// the workspace's evidence policy, exactly: the case's prefix of the bucket
// only, every statement under ArnEquals ec2:SourceInstanceARN = the
// workspace's instance; `--stop` deletes it (GetRolePolicy: NoSuchEntity).
func TestInvestigateConfinesTheAnalysisRole(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	ctx := context.Background()
	caseID := "case-confine"
	store := []string{"--evidence-bucket", l.Bucket}
	if res := f.run(append([]string{"respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--steps", "snapshots"}, store...)...); res.Code != exitOK {
		t.Fatalf("respond: want exit %d:\n%s", exitOK, res)
	}
	key := "arn:aws:kms:" + l.Region + ":" + l.AccountID + ":key/11111111-2222-3333-4444-555555555555"
	if res := f.run(append([]string{"preserve", "--case-id", caseID, "--forensics-account", l.AccountID, "--forensics-kms-key", key,
		"--wait", "--poll-interval", "200ms", "--timeout", "1m"}, store...)...); res.Code != exitOK {
		t.Fatalf("preserve: want exit %d:\n%s", exitOK, res)
	}
	sub, err := f.aws.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(l.VpcID), CidrBlock: aws.String("10.20.201.0/24"), AvailabilityZone: aws.String(l.Region + "b")})
	must(t, err)
	profile := l.InstanceProfileARN[strings.LastIndex(l.InstanceProfileARN, "/")+1:]
	res := f.run(append([]string{"investigate", "--case-id", caseID, "--subnet-id", aws.ToString(sub.Subnet.SubnetId), "--ami-id", l.ImageID,
		"--instance-type", "t3.micro", "--instance-profile", profile, "--analysis-role", l.RoleName,
		"--poll-interval", "200ms", "--timeout", "8s", "--output", "json"}, store...)...)
	if res.Code != 1 {
		t.Fatalf("investigate: want exit 1 (moto runs no SSM command):\n%s", res)
	}
	var printed struct {
		Workspace struct {
			ID         string `json:"workspace_id"`
			InstanceID string `json:"instance_id"`
			Access     struct {
				Role, State string
				PolicyName  string          `json:"policy_name"`
				Document    json.RawMessage `json:"document"`
			} `json:"evidence_access"`
		} `json:"workspace"`
	}
	must(t, json.Unmarshal([]byte(res.Stdout), &printed))
	ws := printed.Workspace
	name := "responder-analysis-" + caseID + "-" + ws.ID
	if ws.Access.State != "granted" || ws.Access.PolicyName != name || ws.Access.Role != l.RoleName {
		t.Fatalf("recorded access %+v, want %s granted on %s", ws.Access, name, l.RoleName)
	}
	arn := "arn:aws:ec2:" + l.Region + ":" + l.AccountID + ":instance/" + ws.InstanceID
	only := map[string]any{"ec2:SourceInstanceARN": arn}
	bucket, prefix := "arn:aws:s3:::"+l.Bucket, "cases/"+caseID+"/"
	want := map[string]any{"Version": "2012-10-17", "Statement": []any{
		map[string]any{"Effect": "Allow", "Action": "s3:GetObject", "Resource": bucket + "/" + prefix + "*", "Condition": map[string]any{"ArnEquals": only}},
		map[string]any{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket,
			"Condition": map[string]any{"ArnEquals": only, "StringLike": map[string]any{"s3:prefix": prefix + "*"}}},
		map[string]any{"Effect": "Allow", "Action": "s3:PutObject", "Resource": bucket + "/" + prefix + "analysis/*", "Condition": map[string]any{"ArnEquals": only}},
		map[string]any{"Effect": "Allow", "Action": []any{"kms:Decrypt", "kms:GenerateDataKey"}, "Resource": "arn:aws:kms:" + l.Region + ":" + l.AccountID + ":key/*",
			"Condition": map[string]any{"ArnEquals": only, "StringEquals": map[string]any{"kms:ViaService": "s3." + l.Region + ".amazonaws.com"}}},
	}}
	got, err := f.aws.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(l.RoleName), PolicyName: aws.String(name)})
	must(t, err)
	doc := aws.ToString(got.PolicyDocument)
	if decoded, derr := url.PathUnescape(doc); derr == nil {
		doc = decoded
	}
	var onRole, recorded any
	must(t, json.Unmarshal([]byte(doc), &onRole))
	must(t, json.Unmarshal(ws.Access.Document, &recorded))
	if !reflect.DeepEqual(onRole, want) || !reflect.DeepEqual(recorded, want) {
		t.Errorf("policy %s on %s:\n%s\nrecorded:\n%s\nwant %v", name, l.RoleName, doc, ws.Access.Document, want)
	}

	if res := f.run(append([]string{"investigate", "--case-id", caseID, "--stop", "--poll-interval", "200ms", "--timeout", "1m"}, store...)...); res.Code != exitOK {
		t.Fatalf("stop: want exit %d:\n%s", exitOK, res)
	}
	_, err = f.aws.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(l.RoleName), PolicyName: aws.String(name)})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchEntity" {
		t.Errorf("after --stop, GetRolePolicy %s: %v, want NoSuchEntity", name, err)
	}
}
