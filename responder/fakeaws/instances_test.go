package fakeaws

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/jpeg"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestDescribeInstancesErrors(t *testing.T) {
	c, s := NewSuspect()
	tests := []struct {
		name    string
		ids     []string
		filters []types.Filter
		code    string
		message string
	}{
		{name: "malformed", ids: []string{"i-123"}, code: "InvalidInstanceID.Malformed"},
		{name: "not hex", ids: []string{"i-0123456789abcdefg"}, code: "InvalidInstanceID.Malformed"},
		{name: "unknown", ids: []string{"i-0123456789abcdef0"}, code: "InvalidInstanceID.NotFound",
			message: "The instance ID 'i-0123456789abcdef0' does not exist"},
		{name: "one known one unknown", ids: []string{s.InstanceID, "i-0123456789abcdef0"}, code: "InvalidInstanceID.NotFound"},
		{name: "two unknown", ids: []string{"i-0123456789abcdef0", "i-0123456789abcdef1"}, code: "InvalidInstanceID.NotFound",
			message: "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist"},
		{name: "unknown filter", filters: []types.Filter{{Name: aws.String("no-such-filter"), Values: []string{"x"}}}, code: "InvalidParameterValue"},
		{name: "known", ids: []string{s.InstanceID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: tt.ids, Filters: tt.filters})
			wantCode(t, err, tt.code)
			if tt.message != "" && !bytes.Contains([]byte(err.Error()), []byte(tt.message)) {
				t.Errorf("error %q does not say %q", err, tt.message)
			}
		})
	}
}

func TestDescribeInstancesShowsSuspect(t *testing.T) {
	c, s := NewSuspect()
	out, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{s.InstanceID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("reservations = %+v, want one with one instance", out.Reservations)
	}
	r := out.Reservations[0]
	if got := aws.ToString(r.OwnerId); got != DefaultAccount {
		t.Errorf("OwnerId = %q, want %q", got, DefaultAccount)
	}
	inst := r.Instances[0]
	if !regexp.MustCompile(`^i-[0-9a-f]{17}$`).MatchString(aws.ToString(inst.InstanceId)) {
		t.Errorf("instance ID %q is not i-<17 hex>", aws.ToString(inst.InstanceId))
	}
	if inst.State.Name != types.InstanceStateNameRunning || aws.ToInt32(inst.State.Code) != 16 {
		t.Errorf("state = %v/%d, want running/16", inst.State.Name, aws.ToInt32(inst.State.Code))
	}
	if aws.ToString(inst.VpcId) != s.VpcID || aws.ToString(inst.SubnetId) != s.SubnetID {
		t.Errorf("placement = %s/%s, want %s/%s", aws.ToString(inst.VpcId), aws.ToString(inst.SubnetId), s.VpcID, s.SubnetID)
	}
	wantDevices := []string{"/dev/xvda", "/dev/sdf"}
	if len(inst.BlockDeviceMappings) != 2 {
		t.Fatalf("block devices = %d, want 2", len(inst.BlockDeviceMappings))
	}
	for i, m := range inst.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) != wantDevices[i] || aws.ToString(m.Ebs.VolumeId) != s.VolumeIDs[i] || m.Ebs.Status != types.AttachmentStatusAttached {
			t.Errorf("block device %d = %s %s %s", i, aws.ToString(m.DeviceName), aws.ToString(m.Ebs.VolumeId), m.Ebs.Status)
		}
	}
	if len(inst.NetworkInterfaces) != 2 {
		t.Fatalf("interfaces = %d, want 2", len(inst.NetworkInterfaces))
	}
	for i, n := range inst.NetworkInterfaces {
		if aws.ToString(n.NetworkInterfaceId) != s.InterfaceIDs[i] || aws.ToInt32(n.Attachment.DeviceIndex) != int32(i) ||
			aws.ToString(n.VpcId) != s.VpcID || len(n.Groups) != 1 || aws.ToString(n.Groups[0].GroupId) != s.GroupID {
			t.Errorf("interface %d = %+v", i, n)
		}
	}
	if len(inst.SecurityGroups) != 1 || aws.ToString(inst.SecurityGroups[0].GroupName) != "web" {
		t.Errorf("SecurityGroups = %+v, want the web group", inst.SecurityGroups)
	}
	if inst.IamInstanceProfile == nil || aws.ToString(inst.IamInstanceProfile.Arn) != s.ProfileArn || aws.ToString(inst.IamInstanceProfile.Id) == "" {
		t.Errorf("IamInstanceProfile = %+v, want %s", inst.IamInstanceProfile, s.ProfileArn)
	}
	if !hasTag(inst.Tags, "Name", "web-1") || inst.Architecture != types.ArchitectureValuesX8664 || aws.ToString(inst.PlatformDetails) != "Linux/UNIX" {
		t.Errorf("tags/architecture/platform = %v %v %v", inst.Tags, inst.Architecture, aws.ToString(inst.PlatformDetails))
	}
}

func TestDescribeInstancesFilters(t *testing.T) {
	c := New()
	running := c.AddInstance(InstanceSpec{Tags: map[string]string{"team": "red"}})
	stopped := c.AddInstance(InstanceSpec{State: types.InstanceStateNameStopped, Tags: map[string]string{"team": "blue"}})
	terminated := c.AddInstance(InstanceSpec{State: types.InstanceStateNameTerminated})
	tests := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"none", nil, []string{running, stopped, terminated}},
		{"state", []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running", "stopped"}}}, []string{running, stopped}},
		{"tag", []types.Filter{{Name: aws.String("tag:team"), Values: []string{"blue"}}}, []string{stopped}},
		{"tag wildcard", []types.Filter{{Name: aws.String("tag:team"), Values: []string{"r*"}}}, []string{running}},
		{"tag-key", []types.Filter{{Name: aws.String("tag-key"), Values: []string{"team"}}}, []string{running, stopped}},
		{"malformed id matches nothing", []types.Filter{{Name: aws.String("instance-id"), Values: []string{"bad"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: tt.filters})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range out.Reservations {
				for _, i := range r.Instances {
					got = append(got, aws.ToString(i.InstanceId))
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestTerminatedInstance(t *testing.T) {
	c := New()
	id := c.AddInstance(InstanceSpec{State: types.InstanceStateNameTerminated, Volumes: 2, InstanceProfileArn: "arn:aws:iam::111122223333:instance-profile/x"})
	ctx := context.Background()

	out, err := c.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Reservations[0].Instances[0]
	if inst.State.Name != types.InstanceStateNameTerminated || len(inst.BlockDeviceMappings) != 0 || len(inst.NetworkInterfaces) != 0 || inst.IamInstanceProfile != nil {
		t.Errorf("terminated instance = %+v, want state terminated with nothing attached", inst)
	}

	mutations := map[string]func() error{
		"ModifyInstanceAttribute": func() error {
			_, err := c.EC2().ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: &id,
				DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}})
			return err
		},
		"CreateSnapshots": func() error {
			_, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &types.InstanceSpecification{InstanceId: &id}})
			return err
		},
		"AssociateIamInstanceProfile": func() error {
			_, err := c.EC2().AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: &id,
				IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("x")}})
			return err
		},
		"CreateTags": func() error {
			_, err := c.EC2().CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		"GetConsoleScreenshot": func() error {
			_, err := c.EC2().GetConsoleScreenshot(ctx, &ec2.GetConsoleScreenshotInput{InstanceId: &id})
			return err
		},
	}
	for name, call := range mutations {
		t.Run(name, func(t *testing.T) {
			wantCode(t, call(), "IncorrectInstanceState")
		})
	}
}

func TestInstanceAttributes(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	e := c.EC2()
	describe := func(attr types.InstanceAttributeName) *ec2.DescribeInstanceAttributeOutput {
		t.Helper()
		out, err := e.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: &s.InstanceID, Attribute: attr})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	if v := describe(types.InstanceAttributeNameDisableApiTermination); aws.ToBool(v.DisableApiTermination.Value) {
		t.Error("termination protection on at start")
	}
	if v := describe(types.InstanceAttributeNameInstanceInitiatedShutdownBehavior); aws.ToString(v.InstanceInitiatedShutdownBehavior.Value) != "stop" {
		t.Errorf("shutdown behaviour = %q, want AWS's default stop", aws.ToString(v.InstanceInitiatedShutdownBehavior.Value))
	}
	ud := describe(types.InstanceAttributeNameUserData)
	if raw, _ := base64.StdEncoding.DecodeString(aws.ToString(ud.UserData.Value)); string(raw) != SuspectUserData {
		t.Errorf("user data = %q, want %q", raw, SuspectUserData)
	}
	if g := describe(types.InstanceAttributeNameGroupSet).Groups; len(g) != 1 || aws.ToString(g[0].GroupId) != s.GroupID {
		t.Errorf("groupSet = %+v", g)
	}

	tests := []struct {
		name string
		in   ec2.ModifyInstanceAttributeInput
		code string
	}{
		{"protect", ec2.ModifyInstanceAttributeInput{DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}}, ""},
		{"shutdown stop", ec2.ModifyInstanceAttributeInput{InstanceInitiatedShutdownBehavior: &types.AttributeValue{Value: aws.String("stop")}}, ""},
		{"bad shutdown", ec2.ModifyInstanceAttributeInput{InstanceInitiatedShutdownBehavior: &types.AttributeValue{Value: aws.String("halt")}}, "InvalidParameterValue"},
		{"nothing", ec2.ModifyInstanceAttributeInput{}, "InvalidParameterCombination"},
		{"two at once", ec2.ModifyInstanceAttributeInput{
			DisableApiTermination:             &types.AttributeBooleanValue{Value: aws.Bool(true)},
			InstanceInitiatedShutdownBehavior: &types.AttributeValue{Value: aws.String("stop")}}, "InvalidParameterCombination"},
		{"groups with two interfaces", ec2.ModifyInstanceAttributeInput{Groups: []string{s.GroupID}}, "InvalidInstanceID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.InstanceId = &s.InstanceID
			_, err := e.ModifyInstanceAttribute(ctx, &in)
			wantCode(t, err, tt.code)
		})
	}
	v := c.Instance(s.InstanceID)
	if !v.DisableAPITermination || v.ShutdownBehavior != "stop" {
		t.Errorf("after modifications: protection %v, behaviour %q", v.DisableAPITermination, v.ShutdownBehavior)
	}

	// The Attribute/Value form.
	if _, err := e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: &s.InstanceID,
		Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior, Value: aws.String("terminate")}); err != nil {
		t.Fatal(err)
	}
	if got := c.Instance(s.InstanceID).ShutdownBehavior; got != "terminate" {
		t.Errorf("shutdown behaviour = %q, want terminate", got)
	}
}

func TestModifyInstanceGroupsSingleInterface(t *testing.T) {
	c := New()
	vpc := c.AddVPC()
	quarantine := c.AddSecurityGroup(vpc, "quarantine", nil, nil)
	id := c.AddInstance(InstanceSpec{VpcID: vpc})
	if _, err := c.EC2().ModifyInstanceAttribute(context.Background(), &ec2.ModifyInstanceAttributeInput{InstanceId: &id, Groups: []string{quarantine}}); err != nil {
		t.Fatal(err)
	}
	if g := c.Instance(id).SecurityGroups; len(g) != 1 || aws.ToString(g[0].GroupId) != quarantine {
		t.Errorf("SecurityGroups = %+v, want quarantine only", g)
	}
}

func TestConsole(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	e := c.EC2()
	silent := c.AddInstance(InstanceSpec{VpcID: s.VpcID})
	stopped := c.AddInstance(InstanceSpec{VpcID: s.VpcID, State: types.InstanceStateNameStopped})
	graviton := c.AddInstance(InstanceSpec{VpcID: s.VpcID, Architecture: types.ArchitectureValuesArm64, ScreenshotUnsupported: true})

	out, err := e.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: &s.InstanceID, Latest: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := base64.StdEncoding.DecodeString(aws.ToString(out.Output)); string(raw) != SuspectConsoleOutput {
		t.Errorf("console output = %q", raw)
	}
	out, err = e.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: &silent})
	if err != nil || out.Output != nil {
		t.Errorf("console output of a silent instance = %v, %v; want none", out.Output, err)
	}

	shot, err := e.GetConsoleScreenshot(ctx, &ec2.GetConsoleScreenshotInput{InstanceId: &s.InstanceID})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(shot.ImageData))
	if err != nil {
		t.Fatal(err)
	}
	if img, err := jpeg.Decode(bytes.NewReader(raw)); err != nil || img.Bounds().Dx() != 2 {
		t.Errorf("screenshot is not a 2x2 JPEG: %v", err)
	}

	tests := []struct {
		name, id, code string
	}{
		{"stopped", stopped, "IncorrectInstanceState"},
		{"unsupported", graviton, "UnsupportedOperation"},
		{"unknown", "i-0123456789abcdef0", "InvalidInstanceID.NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.GetConsoleScreenshot(ctx, &ec2.GetConsoleScreenshotInput{InstanceId: aws.String(tt.id)})
			wantCode(t, err, tt.code)
		})
	}
}

func TestDescribeVolumes(t *testing.T) {
	c, s := NewSuspect()
	other := c.AddInstance(InstanceSpec{VpcID: s.VpcID, Encrypted: true, KmsKeyID: "arn:aws:kms:us-east-1:111122223333:key/k1"})
	ctx := context.Background()

	out, err := c.EC2().DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{s.InstanceID}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Volumes) != 2 || aws.ToString(out.Volumes[0].VolumeId) != s.VolumeIDs[0] ||
		aws.ToString(out.Volumes[0].Attachments[0].InstanceId) != s.InstanceID {
		t.Errorf("volumes of the suspect = %+v", out.Volumes)
	}
	out, err = c.EC2().DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{other}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Volumes) != 1 || !aws.ToBool(out.Volumes[0].Encrypted) || aws.ToString(out.Volumes[0].KmsKeyId) != "arn:aws:kms:us-east-1:111122223333:key/k1" {
		t.Errorf("encrypted volume = %+v", out.Volumes)
	}
	_, err = c.EC2().DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-0123456789abcdef0"}})
	wantCode(t, err, "InvalidVolume.NotFound")
	_, err = c.EC2().DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-x"}})
	wantCode(t, err, "InvalidVolumeID.Malformed")
}

func TestCreateTags(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	tag := []types.Tag{{Key: aws.String("case"), Value: aws.String("IR-1")}}
	tests := []struct {
		name      string
		resources []string
		tags      []types.Tag
		code      string
	}{
		{"all kinds", []string{s.InstanceID, s.VolumeIDs[0], s.GroupID, s.InterfaceIDs[0], s.VpcID}, tag, ""},
		{"unknown instance", []string{s.InstanceID, "i-0123456789abcdef0"}, tag, "InvalidInstanceID.NotFound"},
		{"unknown snapshot", []string{"snap-0123456789abcdef0"}, tag, "InvalidSnapshot.NotFound"},
		{"unknown group", []string{"sg-0123456789abcdef0"}, tag, "InvalidGroup.NotFound"},
		{"bad prefix", []string{"foo-123"}, tag, "InvalidID"},
		{"reserved key", []string{s.InstanceID}, []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.StateDigest()
			_, err := c.EC2().CreateTags(ctx, &ec2.CreateTagsInput{Resources: tt.resources, Tags: tt.tags})
			wantCode(t, err, tt.code)
			if err != nil && c.StateDigest() != before {
				t.Error("a failed CreateTags changed the state")
			}
		})
	}
	if !hasTag(c.Instance(s.InstanceID).Tags, "case", "IR-1") || !hasTag(c.SecurityGroup(s.GroupID).Tags, "case", "IR-1") {
		t.Error("tags not applied")
	}
}
