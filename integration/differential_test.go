package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/responder-ir/responder/internal/lab"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// The differential test runs one sequence of EC2 and S3 calls, those the
// engine makes (containment, snapshots, evidence with Object Lock), through
// the cloud registry's interfaces against the in-memory fake
// (responder/fakeaws) and against moto, and compares what each then shows:
// the Describe*, Head and Get answers and the error codes, with the IDs
// replaced by the names the test gave the resources, and times, addresses
// and account IDs left out. So the fake, which every unit test trusts,
// cannot drift from a real emulator unnoticed.
//
// The fake has no CreateVpc or RunInstances (the engine never makes them):
// each backend builds the same starting point its own way (diffSetupMoto,
// diffSetupFake); from there on every call is the same code.
//
// Where moto lacks what the fake models, the difference is listed in
// knownDifferences with the moto limitation that causes it; the test fails
// on any other difference, and on a listed one that no longer differs.

// knownDifferences are the observations (paths in the flattened views,
// prefixes allowed) where moto and the fake legitimately differ: each is
// something moto (checked with 5.2) does not do as AWS does, and the fake
// does.
var knownDifferences = []struct{ path, why string }{
	{"/Errors/describe a malformed instance ID",
		"moto does not check the form of instance IDs: InvalidInstanceID.NotFound where EC2 answers InvalidInstanceID.Malformed"},
	{"/Errors/move eni:0 to an unknown group",
		"moto's ModifyNetworkInterfaceAttribute takes group IDs that do not exist; EC2 answers InvalidGroup.NotFound"},
	{"/Groups/default/ingress",
		"moto's default security group has no ingress rule; on AWS it allows all traffic from its own members"},
	{"/Instance/groups", "moto keeps an instance's group list apart from its primary interface's (what RunInstances gave); " +
		"EC2 shows the primary interface's groups, so after ModifyNetworkInterfaceAttribute moto still shows the old ones"},
	{"/Instance/group_set", "as /Instance/groups, for DescribeInstanceAttribute groupSet"},
	{"/Errors/put a bad Content-MD5", "moto does not check Content-MD5 against the body: it stores the object where S3 answers BadDigest"},
	{"/Objects/plain/d.txt", "as /Errors/put a bad Content-MD5: the object exists in moto only"},
	{"/Errors/legal hold", "moto checks Object Lock's upload headers on PutObjectLegalHold too, and takes Content-MD5 or " +
		"x-amz-sdk-checksum-algorithm only, not the x-amz-checksum-crc32 the SDK sends: MissingUploadObjectWithObjectLockHeaders"},
	{"/Snapshots/snap:/dev/xvda/tags/app", "moto's CreateSnapshots ignores CopyTagsFromSource (\"not yet implemented\"): " +
		"the volume's tags are not on its snapshot"},
	{"/Snapshots/snap:/dev/sdf/tags/app", "as /Snapshots/snap:/dev/xvda/tags/app"},
	{"/Endpoints/com.amazonaws.us-east-1.s3/private_dns", "moto reports PrivateDnsEnabled true for a gateway endpoint, which has no private DNS"},
	{"/Endpoints/com.amazonaws.us-east-1.ssm/interface_details", "moto gives an interface endpoint's network interfaces type interface, " +
		"status available and RequesterManaged false; EC2 shows vpc_endpoint, in-use, requester-managed"},
	{"/S3Prefix/com.amazonaws.us-east-1.s3", "moto makes up the ID of the AWS-managed S3 prefix list and lists no CIDRs; " +
		"in us-east-1 it is pl-63a5400a, with S3's address ranges"},
}

// diffWorld is one backend: the registry's clients, and the IDs of what the
// setup and the sequence made, by name.
type diffWorld struct {
	name string
	ec2  cloud.EC2
	s3   cloud.S3
	// ids maps the test's names to IDs: "vpc", "subnet", "sg:web",
	// "instance", "vol:/dev/sdf", "eni:0", "profile:app" (an ARN), ...
	ids map[string]string
	// settle lets the time pass that moto does not wait for.
	settle func()
}

// Names of the differential test's resources.
const (
	diffCase        = "case-diff-1"
	diffLocked      = "locked"
	diffPlain       = "plain"
	diffOtherAcct   = "444455556666"
	diffUnknownInst = "i-0123456789abcdef0"
	diffUnknownSG   = "sg-0123456789abcdef0"
)

func TestFakeMatchesMoto(t *testing.T) {
	f := setup(t)
	// Unique also in a moto that outlives the suite (MOTO_ENDPOINT).
	prefix := fmt.Sprintf("d%02d-%06x", labCount.Add(1), time.Now().UnixNano()&0xffffff)
	worlds := []*diffWorld{diffSetupMoto(t, f.aws, prefix), diffSetupFake(t, prefix)}
	views := map[string]map[string]string{}
	for _, w := range worlds {
		w.discover(t)
		errs := w.sequence(t)
		w.settle()
		view := w.observe(t)
		view.Errors = errs
		views[w.name] = flatten(t, view)
		if testing.Verbose() {
			b, _ := json.MarshalIndent(view, "", "  ")
			t.Logf("what %s shows:\n%s", w.name, b)
		}
	}
	compareViews(t, views["moto"], views["fake"])
}

// --- setup ---

func diffSetupMoto(t *testing.T, c *lab.Clients, prefix string) *diffWorld {
	t.Helper()
	ctx := context.Background()
	w := &diffWorld{name: "moto", ec2: c.EC2, s3: c.S3, ids: map[string]string{}, settle: func() {}}
	vpc, err := c.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.40.0.0/16")})
	must(t, err)
	w.ids["vpc"] = aws.ToString(vpc.Vpc.VpcId)
	sub, err := c.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.40.0.0/24")})
	must(t, err)
	w.ids["subnet"] = aws.ToString(sub.Subnet.SubnetId)
	for _, name := range []string{"web", "backend"} {
		g, err := c.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name),
			Description: aws.String(name), VpcId: vpc.Vpc.VpcId})
		must(t, err)
		w.ids["sg:"+name] = aws.ToString(g.GroupId)
	}
	_, err = c.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(w.ids["sg:web"]),
		IpPermissions: diffWebIngress()})
	must(t, err)
	for _, name := range []string{"app", "forensic"} {
		role := prefix + "-" + name
		_, err := c.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: &role, AssumeRolePolicyDocument: aws.String(ec2TrustPolicy)})
		must(t, err)
		p, err := c.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: &role})
		must(t, err)
		_, err = c.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: &role, RoleName: &role})
		must(t, err)
		w.ids["profile:"+name] = aws.ToString(p.InstanceProfile.Arn)
	}
	img, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []ec2types.Filter{
		{Name: aws.String("architecture"), Values: []string{"x86_64"}},
		{Name: aws.String("root-device-name"), Values: []string{"/dev/xvda"}},
	}})
	must(t, err)
	if len(img.Images) == 0 {
		t.Fatal("moto has no x86_64 image with root device /dev/xvda")
	}
	run, err := c.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: img.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: sub.Subnet.SubnetId, SecurityGroupIds: []string{w.ids["sg:web"]},
		IamInstanceProfile:                &ec2types.IamInstanceProfileSpecification{Arn: aws.String(w.ids["profile:app"])},
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorTerminate,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{
			// As the fake's builder makes them.
			{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(8), VolumeType: ec2types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true)}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(8), VolumeType: ec2types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(false)}},
		},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}}},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: []ec2types.Tag{{Key: aws.String("app"), Value: aws.String("shop")}}},
		},
	})
	must(t, err)
	w.ids["instance"] = aws.ToString(run.Instances[0].InstanceId)
	waiter := ec2.NewInstanceRunningWaiter(c.EC2, func(o *ec2.InstanceRunningWaiterOptions) { o.MinDelay = time.Second })
	must(t, waiter.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{w.ids["instance"]}}, time.Minute))
	eni, err := c.EC2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sub.Subnet.SubnetId,
		Groups: []string{w.ids["sg:backend"]}})
	must(t, err)
	_, err = c.EC2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{InstanceId: aws.String(w.ids["instance"]),
		NetworkInterfaceId: eni.NetworkInterface.NetworkInterfaceId, DeviceIndex: aws.Int32(1)})
	must(t, err)

	// The endpoints a forensic access group lets the instance reach: SSM
	// (interface, in the VPC's default group) and S3 (gateway).
	def, err := c.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{w.ids["vpc"]}}, {Name: aws.String("group-name"), Values: []string{"default"}}}})
	must(t, err)
	_, err = c.EC2.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{VpcId: vpc.Vpc.VpcId, ServiceName: aws.String("com.amazonaws.us-east-1.ssm"),
		VpcEndpointType: ec2types.VpcEndpointTypeInterface, SubnetIds: []string{w.ids["subnet"]}, PrivateDnsEnabled: aws.Bool(true),
		SecurityGroupIds: []string{aws.ToString(def.SecurityGroups[0].GroupId)}})
	must(t, err)
	rts, err := c.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{w.ids["vpc"]}}}})
	must(t, err)
	_, err = c.EC2.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{VpcId: vpc.Vpc.VpcId, ServiceName: aws.String("com.amazonaws.us-east-1.s3"),
		VpcEndpointType: ec2types.VpcEndpointTypeGateway, RouteTableIds: []string{aws.ToString(rts.RouteTables[0].RouteTableId)}})
	must(t, err)

	for _, kind := range []string{diffLocked, diffPlain} {
		name := prefix + "-" + kind
		_, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name, ObjectLockEnabledForBucket: aws.Bool(kind == diffLocked)})
		must(t, err)
		w.ids["bucket:"+kind] = name
	}
	_, err = c.S3.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: aws.String(w.ids["bucket:"+diffLocked]),
		ObjectLockConfiguration: &s3types.ObjectLockConfiguration{ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
			Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1)}}}})
	must(t, err)
	return w
}

func diffSetupFake(t *testing.T, prefix string) *diffWorld {
	t.Helper()
	c := fakeaws.New()
	w := &diffWorld{name: "fake", ec2: c.EC2(), s3: c.S3(), ids: map[string]string{}, settle: c.CompleteSnapshots}
	w.ids["vpc"] = c.AddVPC()
	w.ids["subnet"] = c.AddSubnet(w.ids["vpc"])
	w.ids["sg:web"] = c.AddSecurityGroup(w.ids["vpc"], "web", diffWebIngress(), fakeaws.DefaultEgress())
	w.ids["sg:backend"] = c.AddSecurityGroup(w.ids["vpc"], "backend", nil, fakeaws.DefaultEgress())
	for _, name := range []string{"app", "forensic"} {
		w.ids["profile:"+name] = "arn:aws:iam::" + c.Account + ":instance-profile/" + prefix + "-" + name
	}
	w.ids["instance"] = c.AddInstance(fakeaws.InstanceSpec{
		VpcID: w.ids["vpc"], SubnetID: w.ids["subnet"], Volumes: 2, VolumeSizeGiB: 8, NetworkInterfaces: 2,
		InterfaceGroupIDs:  [][]string{{w.ids["sg:web"]}, {w.ids["sg:backend"]}},
		InstanceProfileArn: w.ids["profile:app"], ShutdownBehavior: "terminate", Tags: map[string]string{"Name": "web-1"},
		VolumeTags: map[string]string{"app": "shop"},
	})
	c.AddVpcEndpoint(w.ids["vpc"], "ssm", fakeaws.EndpointSpec{SubnetIDs: []string{w.ids["subnet"]},
		SecurityGroupIDs: c.SecurityGroupsByName(w.ids["vpc"], "default")})
	c.AddVpcEndpoint(w.ids["vpc"], "s3", fakeaws.EndpointSpec{Gateway: true})
	c.AddBucket(prefix+"-"+diffLocked, fakeaws.BucketOptions{ObjectLockDefaultRetention: &fakeaws.Retention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: 1}})
	c.AddBucket(prefix+"-"+diffPlain, fakeaws.BucketOptions{})
	w.ids["bucket:"+diffLocked], w.ids["bucket:"+diffPlain] = prefix+"-"+diffLocked, prefix+"-"+diffPlain
	return w
}

func diffWebIngress() []ec2types.IpPermission {
	anywhere := []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}
	return []ec2types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: anywhere},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), IpRanges: anywhere},
	}
}

// discover names the VPC's default group, and the volumes and interfaces
// of the instance by device, through the registry.
func (w *diffWorld) discover(t *testing.T) {
	t.Helper()
	out, err := w.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{w.ids["vpc"]}}, {Name: aws.String("group-name"), Values: []string{"default"}}}})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Fatalf("%s: the default group of %s: %v", w.name, w.ids["vpc"], err)
	}
	w.ids["sg:default"] = aws.ToString(out.SecurityGroups[0].GroupId)
	inst := w.instance(t)
	for _, m := range inst.BlockDeviceMappings {
		w.ids["vol:"+aws.ToString(m.DeviceName)] = aws.ToString(m.Ebs.VolumeId)
	}
	for _, n := range inst.NetworkInterfaces {
		w.ids[fmt.Sprintf("eni:%d", aws.ToInt32(n.Attachment.DeviceIndex))] = aws.ToString(n.NetworkInterfaceId)
	}
	for _, want := range []string{"vol:/dev/xvda", "vol:/dev/sdf", "eni:0", "eni:1"} {
		if w.ids[want] == "" {
			t.Fatalf("%s: the instance has no %s (volumes %d, interfaces %d)", w.name, want, len(inst.BlockDeviceMappings), len(inst.NetworkInterfaces))
		}
	}
}

func (w *diffWorld) instance(t *testing.T) ec2types.Instance {
	t.Helper()
	out, err := w.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{w.ids["instance"]}})
	if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("%s: describe instance %s: %v", w.name, w.ids["instance"], err)
	}
	return out.Reservations[0].Instances[0]
}

// --- the sequence ---

// diffCaseTags are the tags the engine puts on what it makes.
func diffCaseTags(extra ...string) []ec2types.Tag {
	tags := []ec2types.Tag{{Key: aws.String("responder:case-id"), Value: aws.String(diffCase)}}
	for i := 0; i+1 < len(extra); i += 2 {
		tags = append(tags, ec2types.Tag{Key: aws.String(extra[i]), Value: aws.String(extra[i+1])})
	}
	return tags
}

// sequence makes the calls, the same on both backends, and returns the
// error code of each step ("" when it succeeded).
func (w *diffWorld) sequence(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	e, s := w.ec2, w.s3
	errs := map[string]string{}
	step := func(name string, err error) { errs[name] = cloud.ErrorCode(err) }
	allOut := []ec2types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}
	dry := aws.Bool(true)

	// Containment: a quarantine group without rules, both interfaces in it.
	for _, g := range []struct{ name, value string }{{"quarantine", "isolated"}, {"forensic-access", "forensic-access"}} {
		out, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(g.name),
			Description: aws.String("responder " + g.name), VpcId: aws.String(w.ids["vpc"]),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup,
				Tags: diffCaseTags("responder:quarantine", g.value)}}})
		step("create group "+g.name, err)
		if err == nil {
			w.ids["sg:"+g.name] = aws.ToString(out.GroupId)
		}
		_, err = e.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(w.ids["sg:"+g.name]), IpPermissions: allOut})
		step("revoke egress of "+g.name, err)
	}
	_, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("quarantine"),
		Description: aws.String("again"), VpcId: aws.String(w.ids["vpc"])})
	step("create group quarantine again", err)
	_, err = e.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(w.ids["sg:forensic-access"]),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("10.40.0.5/32"), Description: aws.String("ssm endpoint")}}}}})
	step("authorize forensic egress", err)
	_, err = e.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(w.ids["sg:web"]),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	step("revoke ssh into web", err)

	_, err = e.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: dry,
		NetworkInterfaceId: aws.String(w.ids["eni:0"]), Groups: []string{w.ids["sg:quarantine"]}})
	step("isolate eni:0 (dry run)", err)
	_, err = e.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(w.ids["eni:0"]), Groups: []string{diffUnknownSG}})
	step("move eni:0 to an unknown group", err)
	for _, eni := range []string{"eni:0", "eni:1"} {
		_, err = e.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(w.ids[eni]), Groups: []string{w.ids["sg:quarantine"]}})
		step("isolate "+eni, err)
	}

	// Keep the instance: termination protection, stop on shutdown.
	_, err = e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{DryRun: dry, InstanceId: aws.String(w.ids["instance"]),
		DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	step("termination protection (dry run)", err)
	_, err = e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(w.ids["instance"]),
		DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	step("termination protection", err)
	// The Attribute + Value form, as the engine sends it (moto ignores the
	// InstanceInitiatedShutdownBehavior field).
	_, err = e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(w.ids["instance"]),
		Attribute: ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior, Value: aws.String("stop")})
	step("stop on shutdown", err)
	_, err = e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{w.ids["instance"]}, Tags: diffCaseTags("responder:status", "contained")})
	step("tag the instance", err)

	// The instance profile: the instance's removed, the forensic one associated.
	assoc, err := e.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{w.ids["instance"]}}}})
	step("describe profile associations", err)
	if err == nil && len(assoc.IamInstanceProfileAssociations) == 1 {
		_, err = e.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{
			AssociationId: assoc.IamInstanceProfileAssociations[0].AssociationId})
		step("remove the instance profile", err)
	}
	_, err = e.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(w.ids["instance"]),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Arn: aws.String(w.ids["profile:forensic"])}})
	step("associate the forensic profile", err)

	// Snapshots of every volume, tagged, shared with the forensics account.
	snapIn := &ec2.CreateSnapshotsInput{InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(w.ids["instance"])},
		Description: aws.String("responder " + diffCase), CopyTagsFromSource: ec2types.CopyTagsFromSourceVolume,
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: diffCaseTags("responder:source-instance-id", w.ids["instance"])}}}
	dryIn := *snapIn
	dryIn.DryRun = dry
	_, err = e.CreateSnapshots(ctx, &dryIn)
	step("snapshots (dry run)", err)
	snaps, err := e.CreateSnapshots(ctx, snapIn)
	step("snapshots", err)
	if err == nil {
		for _, sn := range snaps.Snapshots {
			for dev, id := range w.ids {
				if id == aws.ToString(sn.VolumeId) {
					w.ids["snap:"+strings.TrimPrefix(dev, "vol:")] = aws.ToString(sn.SnapshotId)
				}
			}
		}
	}
	_, err = e.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(w.ids["snap:/dev/sdf"]),
		Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission, OperationType: ec2types.OperationTypeAdd, UserIds: []string{diffOtherAcct}})
	step("share a snapshot", err)

	_, err = e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{diffUnknownInst}})
	step("describe an unknown instance", err)
	_, err = e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-bad"}})
	step("describe a malformed instance ID", err)

	// Evidence: objects with Object Lock, a conditional write, a legal hold.
	locked, plain := w.ids["bucket:"+diffLocked], w.ids["bucket:"+diffPlain]
	put := func(name, bucket, key, body string, edit func(*s3.PutObjectInput)) {
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body),
			ContentMD5: aws.String(md5Of(body)), ContentType: aws.String("text/plain"), Metadata: map[string]string{"case": diffCase}}
		if edit != nil {
			edit(in)
		}
		_, err := s.PutObject(ctx, in)
		step(name, err)
	}
	until := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	put("put with retention", locked, "cases/a.txt", "evidence a\n", func(in *s3.PutObjectInput) {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = s3types.ObjectLockModeGovernance, &until
	})
	put("put with the default retention", locked, "cases/b.txt", "evidence b\n", nil)
	put("put once", plain, "c.txt", "plain c\n", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	put("put again if none matches", plain, "c.txt", "plain c again\n", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	put("put a bad Content-MD5", plain, "d.txt", "plain d\n", func(in *s3.PutObjectInput) { in.ContentMD5 = aws.String(md5Of("other")) })
	put("put with retention without Object Lock", plain, "e.txt", "plain e\n", func(in *s3.PutObjectInput) {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = s3types.ObjectLockModeGovernance, &until
	})
	_, err = s.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: aws.String(locked), Key: aws.String("cases/a.txt"),
		LegalHold: &s3types.ObjectLockLegalHold{Status: s3types.ObjectLockLegalHoldStatusOn}})
	step("legal hold", err)
	_, err = s.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: aws.String(plain), Key: aws.String("c.txt"),
		LegalHold: &s3types.ObjectLockLegalHold{Status: s3types.ObjectLockLegalHoldStatusOn}})
	step("legal hold without Object Lock", err)
	_, err = s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(plain), Key: aws.String("missing")})
	step("get a missing object", err)
	_, err = s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(plain), Key: aws.String("missing")})
	step("head a missing object", err)

	// A multipart upload that is never completed (the engine's parts come
	// from the instance, through presigned URLs).
	up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(plain), Key: aws.String("image")})
	step("create multipart upload", err)
	if err == nil {
		_, err = s.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(plain), Key: aws.String("image"),
			UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{
				{PartNumber: aws.Int32(1), ETag: aws.String(`"` + strings.Repeat("0", 32) + `"`)}}}})
		step("complete a part never uploaded", err)
		_, err = s.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(plain), Key: aws.String("image"), UploadId: up.UploadId})
		step("abort multipart upload", err)
		_, err = s.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(plain), Key: aws.String("image"), UploadId: up.UploadId})
		step("list parts of an aborted upload", err)
	}
	return errs
}

func md5Of(s string) string {
	sum := md5.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// --- what each backend shows ---

// diffView is what a backend shows after the sequence, with IDs replaced
// by the test's names.
type diffView struct {
	Instance  map[string]any
	Groups    map[string]any // by name
	Volumes   map[string]any // by device
	Snapshots map[string]any // by the device of their volume
	Profiles  []string       // live associations: "state profile"
	Endpoints map[string]any // by service name
	S3Prefix  map[string]any // the S3 prefix list
	Types     map[string]any // by instance type
	Objects   map[string]any // by bucket kind and key
	Listing   []string       // ListObjectsV2 of the locked bucket
	Errors    map[string]string
}

func (w *diffWorld) observe(t *testing.T) diffView {
	t.Helper()
	ctx := context.Background()
	e := w.ec2
	name := w.namer()
	v := diffView{Groups: map[string]any{}, Volumes: map[string]any{}, Snapshots: map[string]any{}, Objects: map[string]any{},
		Endpoints: map[string]any{}, S3Prefix: map[string]any{}, Types: map[string]any{}}

	inst := w.instance(t)
	attr := func(a ec2types.InstanceAttributeName) *ec2.DescribeInstanceAttributeOutput {
		out, err := e.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: inst.InstanceId, Attribute: a})
		if err != nil {
			t.Fatalf("%s: describe attribute %s: %v", w.name, a, err)
		}
		return out
	}
	var groupSet, instGroups []string
	for _, g := range attr(ec2types.InstanceAttributeNameGroupSet).Groups {
		groupSet = append(groupSet, name(aws.ToString(g.GroupId)))
	}
	for _, g := range inst.SecurityGroups {
		instGroups = append(instGroups, name(aws.ToString(g.GroupId))+" "+aws.ToString(g.GroupName))
	}
	devices := map[string]string{}
	for _, m := range inst.BlockDeviceMappings {
		devices[aws.ToString(m.DeviceName)] = fmt.Sprintf("%s %s delete-on-termination=%v", name(aws.ToString(m.Ebs.VolumeId)),
			m.Ebs.Status, aws.ToBool(m.Ebs.DeleteOnTermination))
	}
	interfaces := map[string]any{}
	for _, n := range inst.NetworkInterfaces {
		var groups []string
		for _, g := range n.Groups {
			groups = append(groups, name(aws.ToString(g.GroupId)))
		}
		interfaces[name(aws.ToString(n.NetworkInterfaceId))] = map[string]any{"groups": sorted(groups),
			"device": aws.ToInt32(n.Attachment.DeviceIndex), "subnet": name(aws.ToString(n.SubnetId)), "vpc": name(aws.ToString(n.VpcId))}
	}
	profile := ""
	if inst.IamInstanceProfile != nil {
		profile = name(aws.ToString(inst.IamInstanceProfile.Arn))
	}
	v.Instance = map[string]any{
		"state": inst.State.Name, "type": inst.InstanceType, "architecture": inst.Architecture, "root": aws.ToString(inst.RootDeviceName),
		"vpc": name(aws.ToString(inst.VpcId)), "subnet": name(aws.ToString(inst.SubnetId)), "tags": tagMap(inst.Tags, name),
		"groups": sorted(instGroups), "group_set": sorted(groupSet), "devices": devices, "interfaces": interfaces, "profile": profile,
		"termination_protection": aws.ToBool(attr(ec2types.InstanceAttributeNameDisableApiTermination).DisableApiTermination.Value),
		"shutdown":               aws.ToString(attr(ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value),
	}

	groups, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{w.ids["vpc"]}}}})
	if err != nil {
		t.Fatalf("%s: describe security groups: %v", w.name, err)
	}
	for _, g := range groups.SecurityGroups {
		v.Groups[aws.ToString(g.GroupName)] = map[string]any{"id": name(aws.ToString(g.GroupId)), "vpc": name(aws.ToString(g.VpcId)),
			"description": aws.ToString(g.Description), "tags": tagMap(g.Tags, name),
			"ingress": rules(g.IpPermissions, name), "egress": rules(g.IpPermissionsEgress, name)}
	}

	vols, err := e.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{w.ids["instance"]}}}})
	if err != nil {
		t.Fatalf("%s: describe volumes: %v", w.name, err)
	}
	for _, vol := range vols.Volumes {
		var att []string
		for _, a := range vol.Attachments {
			att = append(att, fmt.Sprintf("%s %s %s", name(aws.ToString(a.InstanceId)), aws.ToString(a.Device), a.State))
		}
		v.Volumes[name(aws.ToString(vol.VolumeId))] = map[string]any{"size": aws.ToInt32(vol.Size), "state": vol.State,
			"encrypted": aws.ToBool(vol.Encrypted), "type": vol.VolumeType, "attachments": att, "tags": tagMap(vol.Tags, name)}
	}

	snaps, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{
		{Name: aws.String("tag:responder:case-id"), Values: []string{diffCase}},
		{Name: aws.String("volume-id"), Values: []string{w.ids["vol:/dev/xvda"], w.ids["vol:/dev/sdf"]}}}})
	if err != nil {
		t.Fatalf("%s: describe snapshots: %v", w.name, err)
	}
	for _, sn := range snaps.Snapshots {
		v.Snapshots[name(aws.ToString(sn.SnapshotId))] = map[string]any{"volume": name(aws.ToString(sn.VolumeId)), "size": aws.ToInt32(sn.VolumeSize),
			"state": sn.State, "description": aws.ToString(sn.Description), "encrypted": aws.ToBool(sn.Encrypted), "tags": tagMap(sn.Tags, name)}
	}

	assoc, err := e.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{w.ids["instance"]}}}})
	if err != nil {
		t.Fatalf("%s: describe profile associations: %v", w.name, err)
	}
	for _, a := range assoc.IamInstanceProfileAssociations {
		v.Profiles = append(v.Profiles, fmt.Sprintf("%s %s", a.State, name(aws.ToString(a.IamInstanceProfile.Arn))))
	}
	sort.Strings(v.Profiles)

	w.observeNetwork(t, &v, name)
	w.observeObjects(t, &v, name)
	return v
}

// observeNetwork records the VPC's endpoints, their interfaces, the S3
// prefix list and the instance's type: what the collection steps read.
func (w *diffWorld) observeNetwork(t *testing.T, v *diffView, name func(string) string) {
	t.Helper()
	ctx := context.Background()
	e := w.ec2
	eps, err := e.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{w.ids["vpc"]}}}})
	if err != nil {
		t.Fatalf("%s: describe VPC endpoints: %v", w.name, err)
	}
	for _, ep := range eps.VpcEndpoints {
		var groups, subnets []string
		for _, g := range ep.Groups {
			groups = append(groups, name(aws.ToString(g.GroupId)))
		}
		for _, sn := range ep.SubnetIds {
			subnets = append(subnets, name(sn))
		}
		view := map[string]any{"type": ep.VpcEndpointType, "state": ep.State, "private_dns": aws.ToBool(ep.PrivateDnsEnabled),
			"vpc": name(aws.ToString(ep.VpcId)), "groups": sorted(groups), "subnets": sorted(subnets),
			"route_tables": len(ep.RouteTableIds), "interfaces": len(ep.NetworkInterfaceIds)}
		if len(ep.NetworkInterfaceIds) > 0 {
			nis, err := e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ep.NetworkInterfaceIds})
			if err != nil {
				t.Fatalf("%s: describe the interfaces of %s: %v", w.name, aws.ToString(ep.VpcEndpointId), err)
			}
			var ifaces []string
			for _, ni := range nis.NetworkInterfaces {
				ifaces = append(ifaces, fmt.Sprintf("%s %s requester-managed=%v address=%v", ni.InterfaceType, ni.Status,
					aws.ToBool(ni.RequesterManaged), aws.ToString(ni.PrivateIpAddress) != ""))
			}
			view["interface_details"] = sorted(ifaces)
		}
		v.Endpoints[aws.ToString(ep.ServiceName)] = view
	}
	pls, err := e.DescribePrefixLists(ctx, &ec2.DescribePrefixListsInput{Filters: []ec2types.Filter{
		{Name: aws.String("prefix-list-name"), Values: []string{"com.amazonaws.us-east-1.s3"}}}})
	if err != nil {
		t.Fatalf("%s: describe prefix lists: %v", w.name, err)
	}
	for _, pl := range pls.PrefixLists {
		v.S3Prefix[aws.ToString(pl.PrefixListName)] = map[string]any{"id": aws.ToString(pl.PrefixListId), "has_cidrs": len(pl.Cidrs) > 0}
	}
	types, err := e.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{ec2types.InstanceTypeT3Micro}})
	if err != nil {
		t.Fatalf("%s: describe instance types: %v", w.name, err)
	}
	for _, it := range types.InstanceTypes {
		v.Types[string(it.InstanceType)] = map[string]any{"memory_mib": aws.ToInt64(it.MemoryInfo.SizeInMiB),
			"vcpus": aws.ToInt32(it.VCpuInfo.DefaultVCpus), "architectures": it.ProcessorInfo.SupportedArchitectures}
	}
}

func (w *diffWorld) observeObjects(t *testing.T, v *diffView, name func(string) string) {
	t.Helper()
	ctx := context.Background()
	for _, o := range []struct{ kind, key string }{
		{diffLocked, "cases/a.txt"}, {diffLocked, "cases/b.txt"}, {diffPlain, "c.txt"}, {diffPlain, "d.txt"}, {diffPlain, "e.txt"}} {
		bucket := w.ids["bucket:"+o.kind]
		head, err := w.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(o.key)})
		if err != nil {
			v.Objects[o.kind+"/"+o.key] = "head: " + cloud.ErrorCode(err)
			continue
		}
		get, err := w.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(o.key)})
		if err != nil {
			t.Fatalf("%s: get %s/%s: %v", w.name, bucket, o.key, err)
		}
		body, err := io.ReadAll(get.Body)
		get.Body.Close()
		if err != nil {
			t.Fatalf("%s: read %s/%s: %v", w.name, bucket, o.key, err)
		}
		v.Objects[o.kind+"/"+o.key] = map[string]any{
			"body": string(body), "size": aws.ToInt64(head.ContentLength), "etag": aws.ToString(head.ETag),
			"get_etag": aws.ToString(get.ETag), "type": aws.ToString(head.ContentType), "metadata": head.Metadata,
			"versioned": aws.ToString(head.VersionId) != "", "lock": head.ObjectLockMode,
			"retain_until": retainUntil(head.ObjectLockRetainUntilDate), "legal_hold": head.ObjectLockLegalHoldStatus,
		}
	}
	list, err := w.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(w.ids["bucket:"+diffLocked]), Prefix: aws.String("cases/")})
	if err != nil {
		t.Fatalf("%s: list: %v", w.name, err)
	}
	for _, o := range list.Contents {
		v.Listing = append(v.Listing, fmt.Sprintf("%s %d %s", aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag)))
	}
}

// retainUntil says how far away a retention date is, in whole days, so
// that the two backends' clocks do not matter.
func retainUntil(t *time.Time) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf("in %d days", int(time.Until(*t).Round(time.Hour).Hours()/24))
}

// namer returns the function that replaces an ID or ARN with the test's
// name for it; an ID the test did not name shows its kind only.
func (w *diffWorld) namer() func(string) string {
	byID := map[string]string{}
	for name, id := range w.ids {
		byID[id] = name
	}
	return func(id string) string {
		if n, ok := byID[id]; ok {
			return n
		}
		if i := strings.LastIndex(id, "-"); i > 0 && !strings.Contains(id, ":") {
			return "unnamed " + id[:i]
		}
		return "unnamed " + id
	}
}

// tagMap is the tags by key; a value that is an ID the test named shows
// the name.
func tagMap(tags []ec2types.Tag, name func(string) string) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		v := aws.ToString(t.Value)
		if n := name(v); !strings.HasPrefix(n, "unnamed ") {
			v = n
		}
		m[aws.ToString(t.Key)] = v
	}
	return m
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// rules writes each rule of a group as one line: protocol, ports, target.
func rules(perms []ec2types.IpPermission, name func(string) string) []string {
	var out []string
	for _, p := range perms {
		head := fmt.Sprintf("%s %d-%d", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort))
		for _, r := range p.IpRanges {
			out = append(out, fmt.Sprintf("%s %s %q", head, aws.ToString(r.CidrIp), aws.ToString(r.Description)))
		}
		for _, r := range p.Ipv6Ranges {
			out = append(out, fmt.Sprintf("%s %s", head, aws.ToString(r.CidrIpv6)))
		}
		for _, g := range p.UserIdGroupPairs {
			out = append(out, fmt.Sprintf("%s %s", head, name(aws.ToString(g.GroupId))))
		}
		for _, pl := range p.PrefixListIds {
			out = append(out, fmt.Sprintf("%s %s", head, aws.ToString(pl.PrefixListId)))
		}
	}
	return sorted(out)
}

// --- comparing ---

// flatten turns a view into "path = value" leaves: path segments joined
// with "/", values in JSON.
func flatten(t *testing.T, v diffView) map[string]string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(path string, x any)
	walk = func(path string, x any) {
		switch x := x.(type) {
		case map[string]any:
			if len(x) == 0 {
				out[path] = "{}"
			}
			for k, v := range x {
				walk(path+"/"+k, v)
			}
		default:
			leaf, _ := json.Marshal(x)
			out[path] = string(leaf)
		}
	}
	walk("", tree)
	return out
}

// known returns the reason a path is a known difference, or "".
func known(path string) string {
	for _, d := range knownDifferences {
		if path == d.path || strings.HasPrefix(path, d.path+"/") {
			return d.why
		}
	}
	return ""
}

func compareViews(t *testing.T, motoView, fakeView map[string]string) {
	t.Helper()
	paths := map[string]bool{}
	for p := range motoView {
		paths[p] = true
	}
	for p := range fakeView {
		paths[p] = true
	}
	var diffs []string
	differs := map[string]bool{} // known differences seen differing
	skipped := 0                 // observations left out as known differences
	for p := range paths {
		m, mok := motoView[p]
		f, fok := fakeView[p]
		if mok == fok && m == f {
			continue
		}
		if why := known(p); why != "" {
			for _, d := range knownDifferences {
				if why == d.why {
					differs[d.path] = true
				}
			}
			skipped++
			continue
		}
		if !mok {
			m = "(absent)"
		}
		if !fok {
			f = "(absent)"
		}
		diffs = append(diffs, fmt.Sprintf("%s\n\tmoto: %s\n\tfake: %s", p, m, f))
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Errorf("the fake differs from moto at %s", d)
	}
	for _, d := range knownDifferences {
		if !differs[d.path] {
			t.Errorf("known difference %s (%s) no longer differs: remove it from knownDifferences", d.path, d.why)
		}
	}
	if len(diffs) == 0 {
		t.Logf("moto and the fake agree on %d observations; %d differ as knownDifferences says", len(paths)-skipped, skipped)
	}
}
