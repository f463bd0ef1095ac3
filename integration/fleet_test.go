package integration

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/internal/lab"
)

// TestFleet runs the real binary on a fleet of 10 instances across two
// Regions found by a tag filter: every instance gets its case and is
// contained (each interface in the quarantine group, as moto shows it), the
// fleet record lists them all, status --fleet-id shows it, and a second run
// of the same fleet changes nothing (no snapshot more).
func TestFleet(t *testing.T) {
	f := setup(t)
	tag := "fleet-" + slug(t.Name())
	ctx := context.Background()
	regions := map[string]int{"us-east-1": 6, "eu-west-1": 4}
	clients := map[string]*lab.Clients{}
	var all []string
	for region, n := range regions {
		c, err := lab.NewClients(ctx, suite.moto.URL, region)
		if err != nil {
			t.Fatal(err)
		}
		clients[region] = c
		all = append(all, launchFleet(t, c, tag, n)...)
	}

	args := []string{"respond", "--filter", "tag:fleet=" + tag, "--region", "us-east-1,eu-west-1",
		"--fleet-id", tag, "--evidence-dir", f.caseDir, "--output", "json"}
	if res := f.run(args...); res.Code != exitUsage || !strings.Contains(res.Stderr, "give --yes") {
		t.Fatalf("without --yes and a terminal: want exit %d and the reason:\n%s", exitUsage, res)
	}
	res := f.run(append(args, "--yes")...)
	if res.Code != exitOK {
		t.Fatalf("want exit %d:\n%s", exitOK, res)
	}
	var rec struct {
		Cases []struct {
			InstanceID string `json:"instance_id"`
			Region     string `json:"region"`
			CaseID     string `json:"case_id"`
			Status     string `json:"status"`
		} `json:"cases"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &rec); err != nil {
		t.Fatalf("--output json: %v\n%s", err, res.Stdout)
	}
	if len(rec.Cases) != len(all) {
		t.Fatalf("fleet record: %d targets, want %d", len(rec.Cases), len(all))
	}
	for _, tg := range rec.Cases {
		if !slices.Contains(all, tg.InstanceID) || tg.Status != "contained" || tg.CaseID != tag+"-"+tg.InstanceID {
			t.Errorf("target %+v: want one of the fleet, contained, in case %s-<instance>", tg, tag)
		}
		body := dirStore(f.caseDir, tg.CaseID)(t, "manifest.json")
		var man struct {
			Status string `json:"status"`
			Region string `json:"region"`
		}
		if err := json.Unmarshal(body, &man); err != nil || man.Status != "contained" || man.Region != tg.Region {
			t.Errorf("%s: case record %s in %s (%v): want contained in %s", tg.InstanceID, man.Status, man.Region, err, tg.Region)
		}
		assertQuarantinedInMoto(t, clients[tg.Region], tg.InstanceID)
	}
	snaps := fleetSnapshots(t, clients, all)
	if snaps != 2*len(all) {
		t.Errorf("%d snapshots of the fleet's volumes, want %d (one per volume)", snaps, 2*len(all))
	}

	status := f.run("status", "--fleet-id", tag, "--evidence-dir", f.caseDir, "--output", "text", "--query", "length(cases[?status=='contained'])")
	if status.Code != exitOK || status.Stdout != "10\n" {
		t.Errorf("status --fleet-id: want 10 contained:\n%s", status)
	}
	again := f.run(append(args, "--yes")...)
	if again.Code != exitOK || !strings.Contains(again.Stderr, "10 contained already") {
		t.Errorf("second run: want exit 0, every instance left alone:\n%s", again)
	}
	if n := fleetSnapshots(t, clients, all); n != snaps {
		t.Errorf("second run: %d snapshots, %d before", n, snaps)
	}
}

// launchFleet runs n instances with two volumes each in the Region's
// default VPC, tagged fleet=tag.
func launchFleet(t *testing.T, c *lab.Clients, tag string, n int) []string {
	t.Helper()
	ctx := context.Background()
	imgs, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []ec2types.Filter{
		{Name: aws.String("architecture"), Values: []string{"x86_64"}}, {Name: aws.String("root-device-type"), Values: []string{"ebs"}}}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("%s: no image (%v)", c.Region, err)
	}
	img := imgs.Images[0]
	out, err := c.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: img.ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{
			{DeviceName: img.RootDeviceName, Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(8)}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(4)}},
		},
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String("fleet"), Value: aws.String(tag)}}}},
	})
	if err != nil {
		t.Fatalf("%s: run %d instances: %v", c.Region, n, err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	return ids
}

// assertQuarantinedInMoto checks that every interface of the instance is in
// the toolkit's quarantine group. moto adds the instance's own group list
// to an attached interface's (see assertContained): only the groups the
// interface has beyond that list are its own.
func assertQuarantinedInMoto(t *testing.T, c *lab.Clients, id string) {
	t.Helper()
	out, err := c.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		t.Fatalf("%s: describe: %v", id, err)
	}
	inst := out.Reservations[0].Instances[0]
	quarantine := map[string]bool{}
	groups, err := c.EC2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{aws.ToString(inst.VpcId)}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.SecurityGroups {
		for _, tg := range g.Tags {
			if aws.ToString(tg.Key) == "responder:quarantine" && aws.ToString(tg.Value) == "true" {
				quarantine[aws.ToString(g.GroupId)] = true
			}
		}
	}
	for _, ni := range inst.NetworkInterfaces {
		in := false
		for _, g := range ni.Groups {
			in = in || quarantine[aws.ToString(g.GroupId)]
		}
		if !in {
			t.Errorf("%s: interface %s in %v, not in a quarantine group (%v)", id, aws.ToString(ni.NetworkInterfaceId), ni.Groups, quarantine)
		}
	}
}

// fleetSnapshots counts the snapshots of the fleet's volumes.
func fleetSnapshots(t *testing.T, clients map[string]*lab.Clients, ids []string) int {
	t.Helper()
	n := 0
	for _, c := range clients {
		out, err := c.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("instance-id"), Values: ids}}})
		if err != nil {
			t.Fatal(err)
		}
		var vols []string
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				for _, m := range in.BlockDeviceMappings {
					vols = append(vols, aws.ToString(m.Ebs.VolumeId))
				}
			}
		}
		if len(vols) == 0 {
			continue
		}
		snaps, err := c.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("volume-id"), Values: vols}}})
		if err != nil {
			t.Fatal(err)
		}
		n += len(snaps.Snapshots)
	}
	return n
}
