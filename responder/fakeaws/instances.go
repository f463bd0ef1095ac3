package fakeaws

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// instance is an EC2 instance. Its volumes and network interfaces are kept
// in their own maps and referenced here in device order.
type instance struct {
	ID              string
	ImageID         string
	Type            types.InstanceType
	Architecture    types.ArchitectureValues
	PlatformDetails string
	State           types.InstanceStateName
	LaunchTime      time.Time
	VpcID           string
	SubnetID        string
	RootDevice      string
	InstanceStore   bool
	VolumeIDs       []string // root first
	InterfaceIDs    []string // by device index
	AssociationID   string   // "" when no instance profile is associated
	Tags            []types.Tag

	DisableAPITermination bool
	DisableAPIStop        bool
	ShutdownBehavior      string // "stop" or "terminate"
	UserData              string // as given, not encoded
	ConsoleOutput         string
	ScreenshotUnsupported bool
	Seq                   int
}

// InstanceSpec describes an instance for AddInstance. The zero value is a
// running x86_64 Linux instance with one 8 GiB EBS root volume and one network
// interface in the default security group of a new VPC.
type InstanceSpec struct {
	// VpcID and SubnetID place the instance. With neither, a new VPC and
	// subnet are made; with only VpcID, the VPC's first subnet is used (made
	// if needed); with only SubnetID, its VPC.
	VpcID    string
	SubnetID string

	// Volumes is the number of EBS volumes; 0 means 1. The first is the root
	// volume at /dev/xvda, the others /dev/sdf, /dev/sdg, ...
	Volumes int
	// InstanceStore gives the instance no EBS volume at all.
	InstanceStore bool
	// VolumeSizeGiB is the size of every volume; 0 means 8.
	VolumeSizeGiB int32
	// Encrypted volumes use KmsKeyID, or the account's aws/ebs key when empty.
	Encrypted bool
	KmsKeyID  string
	// VolumeTags are put on every volume.
	VolumeTags map[string]string

	// NetworkInterfaces is the number of interfaces; 0 means 1. The primary
	// is at device index 0.
	NetworkInterfaces int
	// SecurityGroupIDs are the groups of every interface; when empty, the
	// VPC's default group. InterfaceGroupIDs[i], when given, overrides them for
	// the interface at device index i.
	SecurityGroupIDs  []string
	InterfaceGroupIDs [][]string
	// InterfaceSubnetIDs[i], when given, puts the interface at device index
	// i in that subnet of the instance's VPC (the instance's subnet when
	// empty).
	InterfaceSubnetIDs []string

	// InstanceProfileArn, when set, is associated (state "associated").
	// A profile of this account that IAM does not know yet is added with a
	// role of the same name (see AddInstanceProfile for other shapes).
	InstanceProfileArn string

	// State is running when empty. A terminated instance has no volumes,
	// interfaces or instance profile left, as on AWS.
	State types.InstanceStateName
	// Architecture is x86_64 when empty; InstanceType t3.micro (t4g.micro
	// for arm64); PlatformDetails "Linux/UNIX" ("Windows" makes a Windows
	// instance). DescribeInstanceTypes knows the types of its catalogue
	// (see instancetypes.go); any other type is allowed here, and
	// DescribeInstanceTypes answers InvalidInstanceType for it.
	Architecture    types.ArchitectureValues
	InstanceType    types.InstanceType
	PlatformDetails string

	// ScreenshotUnsupported makes GetConsoleScreenshot answer
	// UnsupportedOperation, as on bare metal and some Graviton types.
	ScreenshotUnsupported bool
	// ConsoleOutput is the text GetConsoleOutput returns.
	ConsoleOutput string
	// UserData is the instance's user data, not encoded.
	UserData string

	Tags                  map[string]string
	DisableAPITermination bool
	// ShutdownBehavior is "stop" (AWS's default) when empty, or "terminate".
	ShutdownBehavior string
}

var stateCodes = map[types.InstanceStateName]int32{
	types.InstanceStateNamePending:      0,
	types.InstanceStateNameRunning:      16,
	types.InstanceStateNameShuttingDown: 32,
	types.InstanceStateNameTerminated:   48,
	types.InstanceStateNameStopping:     64,
	types.InstanceStateNameStopped:      80,
}

// AddInstance adds an instance and returns its ID. It panics on a spec that
// names unknown resources.
func (c *Cloud) AddInstance(spec InstanceSpec) string {
	c.mu.Lock()
	defer c.mu.Unlock()

	vpcID, subnetID := c.placeLocked(spec.VpcID, spec.SubnetID)
	inst := &instance{
		ID:                    c.hexIDLocked("i"),
		ImageID:               c.hexIDLocked("ami"),
		Type:                  spec.InstanceType,
		Architecture:          spec.Architecture,
		PlatformDetails:       spec.PlatformDetails,
		State:                 spec.State,
		LaunchTime:            c.now().Truncate(time.Second),
		VpcID:                 vpcID,
		SubnetID:              subnetID,
		RootDevice:            "/dev/xvda",
		InstanceStore:         spec.InstanceStore,
		Tags:                  tagsFromMap(spec.Tags),
		DisableAPITermination: spec.DisableAPITermination,
		ShutdownBehavior:      spec.ShutdownBehavior,
		UserData:              spec.UserData,
		ConsoleOutput:         spec.ConsoleOutput,
		ScreenshotUnsupported: spec.ScreenshotUnsupported,
		Seq:                   c.nextSeqLocked(),
	}
	if inst.State == "" {
		inst.State = types.InstanceStateNameRunning
	}
	if _, ok := stateCodes[inst.State]; !ok {
		panic(fmt.Sprintf("fakeaws: AddInstance: unknown state %q", inst.State))
	}
	if inst.Architecture == "" {
		inst.Architecture = types.ArchitectureValuesX8664
	}
	if inst.Type == "" {
		inst.Type = "t3.micro"
		if inst.Architecture == types.ArchitectureValuesArm64 {
			inst.Type = "t4g.micro"
		}
	}
	if inst.PlatformDetails == "" {
		inst.PlatformDetails = "Linux/UNIX"
	}
	switch inst.ShutdownBehavior {
	case "":
		inst.ShutdownBehavior = "stop"
	case "stop", "terminate":
	default:
		panic(fmt.Sprintf("fakeaws: AddInstance: shutdown behaviour %q is neither stop nor terminate", inst.ShutdownBehavior))
	}
	if inst.InstanceStore {
		inst.RootDevice = "/dev/sda1"
	}
	c.st.Instances[inst.ID] = inst

	if inst.State == types.InstanceStateNameTerminated {
		return inst.ID // nothing attached survives termination
	}
	if !spec.InstanceStore {
		c.addVolumesLocked(inst, spec)
	}
	n := max(spec.NetworkInterfaces, 1)
	for i := range n {
		groups := spec.SecurityGroupIDs
		if i < len(spec.InterfaceGroupIDs) && spec.InterfaceGroupIDs[i] != nil {
			groups = spec.InterfaceGroupIDs[i]
		}
		if len(groups) == 0 {
			groups = []string{c.st.VPCs[vpcID].DefaultGroupID}
		}
		for _, g := range groups {
			sg, ok := c.st.Groups[g]
			if !ok || sg.VpcID != vpcID {
				panic(fmt.Sprintf("fakeaws: AddInstance: no security group %q in VPC %s", g, vpcID))
			}
		}
		c.addInterfaceLocked(inst, int32(i), slices.Clone(groups))
		if i < len(spec.InterfaceSubnetIDs) && spec.InterfaceSubnetIDs[i] != "" {
			c.moveInterfaceLocked(inst, i, spec.InterfaceSubnetIDs[i])
		}
	}
	if spec.InstanceProfileArn != "" {
		c.ensureProfileLocked(spec.InstanceProfileArn)
		c.associateLocked(inst, spec.InstanceProfileArn)
	}
	return inst.ID
}

// placeLocked resolves where an instance goes, making a VPC and subnet when
// needed.
func (c *Cloud) placeLocked(vpcID, subnetID string) (string, string) {
	if subnetID != "" {
		s, ok := c.st.Subnets[subnetID]
		if !ok {
			panic(fmt.Sprintf("fakeaws: AddInstance: no subnet %q", subnetID))
		}
		if vpcID != "" && vpcID != s.VpcID {
			panic(fmt.Sprintf("fakeaws: AddInstance: subnet %s is not in VPC %s", subnetID, vpcID))
		}
		return s.VpcID, subnetID
	}
	if vpcID == "" {
		vpcID = c.addVPCLocked()
	} else if !c.hasVPC(vpcID) {
		panic(fmt.Sprintf("fakeaws: AddInstance: no VPC %q", vpcID))
	}
	for _, s := range sortedBySeq(c.st.Subnets, func(s *subnet) int { return s.Seq }) {
		if s.VpcID == vpcID {
			return vpcID, s.ID
		}
	}
	return vpcID, c.addSubnetLocked(vpcID)
}

// Instance returns the instance as DescribeInstances shows it, with the
// attributes DescribeInstanceAttribute and the profile association, or nil
// when there is no such instance. It is a copy.
func (c *Cloud) Instance(id string) *InstanceView {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, ok := c.st.Instances[id]
	if !ok {
		return nil
	}
	v := &InstanceView{
		Instance:              c.renderInstanceLocked(inst),
		DisableAPITermination: inst.DisableAPITermination,
		DisableAPIStop:        inst.DisableAPIStop,
		ShutdownBehavior:      inst.ShutdownBehavior,
		UserData:              inst.UserData,
	}
	if a, ok := c.st.Associations[inst.AssociationID]; ok {
		r := c.renderAssociation(a, types.IamInstanceProfileAssociationStateAssociated)
		v.ProfileAssociation = &r
	}
	return v
}

// InstanceView is what Instance returns.
type InstanceView struct {
	types.Instance
	DisableAPITermination bool
	DisableAPIStop        bool
	ShutdownBehavior      string // "stop" or "terminate"
	UserData              string // not encoded
	// ProfileAssociation is the current instance profile association, or nil.
	ProfileAssociation *types.IamInstanceProfileAssociation
}

// instanceLocked returns an instance, or the Malformed / NotFound error.
func (c *Cloud) instanceLocked(id string) (*instance, error) {
	if err := kindInstance.check([]string{id}, c.hasInstance); err != nil {
		return nil, err
	}
	return c.st.Instances[id], nil
}

// liveInstanceLocked is instanceLocked for calls that change an instance: a
// terminated one answers IncorrectInstanceState.
func (c *Cloud) liveInstanceLocked(id string) (*instance, error) {
	inst, err := c.instanceLocked(id)
	if err != nil {
		return nil, err
	}
	if inst.State == types.InstanceStateNameTerminated || inst.State == types.InstanceStateNameShuttingDown {
		return nil, incorrectInstanceState(id, inst.State)
	}
	return inst, nil
}

func (c *Cloud) renderInstanceLocked(inst *instance) types.Instance {
	out := types.Instance{
		InstanceId:            aws.String(inst.ID),
		ImageId:               aws.String(inst.ImageID),
		InstanceType:          inst.Type,
		Architecture:          inst.Architecture,
		PlatformDetails:       aws.String(inst.PlatformDetails),
		State:                 &types.InstanceState{Name: inst.State, Code: aws.Int32(stateCodes[inst.State])},
		LaunchTime:            aws.Time(inst.LaunchTime),
		AmiLaunchIndex:        aws.Int32(0),
		Placement:             &types.Placement{AvailabilityZone: aws.String(c.instanceAZLocked(inst)), Tenancy: types.TenancyDefault},
		Hypervisor:            types.HypervisorTypeXen,
		VirtualizationType:    types.VirtualizationTypeHvm,
		RootDeviceName:        aws.String(inst.RootDevice),
		RootDeviceType:        types.DeviceTypeEbs,
		EnaSupport:            aws.Bool(true),
		EbsOptimized:          aws.Bool(false),
		Monitoring:            &types.Monitoring{State: types.MonitoringStateDisabled},
		Tags:                  copyTags(inst.Tags),
		StateTransitionReason: aws.String(""),
	}
	if strings.HasPrefix(inst.PlatformDetails, "Windows") {
		out.Platform = types.PlatformValuesWindows
	}
	if inst.InstanceStore {
		out.RootDeviceType = types.DeviceTypeInstanceStore
	}
	switch inst.State {
	case types.InstanceStateNameStopped, types.InstanceStateNameTerminated:
		out.StateReason = &types.StateReason{Code: aws.String("Client.UserInitiatedShutdown"),
			Message: aws.String("Client.UserInitiatedShutdown: User initiated shutdown")}
		out.StateTransitionReason = aws.String("User initiated")
	}
	if inst.State == types.InstanceStateNameTerminated {
		// A terminated instance keeps its ID, type and tags, and loses its
		// network placement, volumes and profile.
		return out
	}
	out.VpcId = aws.String(inst.VpcID)
	out.SubnetId = aws.String(inst.SubnetID)
	out.SourceDestCheck = aws.Bool(true)
	for _, id := range inst.VolumeIDs {
		v := c.st.Volumes[id]
		out.BlockDeviceMappings = append(out.BlockDeviceMappings, types.InstanceBlockDeviceMapping{
			DeviceName: aws.String(v.Device),
			Ebs: &types.EbsInstanceBlockDevice{
				VolumeId:            aws.String(v.ID),
				Status:              types.AttachmentStatusAttached,
				AttachTime:          aws.Time(v.AttachTime),
				DeleteOnTermination: aws.Bool(v.DeleteOnTermination),
			},
		})
	}
	for _, id := range inst.InterfaceIDs {
		n := c.st.Interfaces[id]
		rn := c.renderInterfaceLocked(n)
		out.NetworkInterfaces = append(out.NetworkInterfaces, rn)
		if n.DeviceIndex == 0 {
			out.SecurityGroups = slices.Clone(rn.Groups)
			out.PrivateIpAddress = aws.String(n.PrivateIP)
			out.PrivateDnsName = aws.String(privateDNSName(n.PrivateIP))
		}
	}
	if a, ok := c.st.Associations[inst.AssociationID]; ok {
		out.IamInstanceProfile = &types.IamInstanceProfile{Arn: aws.String(a.ProfileArn), Id: aws.String(a.ProfileID)}
	}
	return out
}

func privateDNSName(ip string) string {
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + ".ec2.internal"
}

// instanceFieldsLocked returns the filters DescribeInstances supports. Those
// about placement, interfaces, volumes and the profile look at the instance
// as described (a terminated instance has none).
func (c *Cloud) instanceFieldsLocked() fields[*instance] {
	rendered := func(i *instance) types.Instance { return c.renderInstanceLocked(i) }
	return fields[*instance]{
		"instance-id":         func(i *instance) []string { return one(i.ID) },
		"instance-state-name": func(i *instance) []string { return one(string(i.State)) },
		"instance-state-code": func(i *instance) []string { return one(fmt.Sprint(stateCodes[i.State])) },
		"instance-type":       func(i *instance) []string { return one(string(i.Type)) },
		"architecture":        func(i *instance) []string { return one(string(i.Architecture)) },
		"image-id":            func(i *instance) []string { return one(i.ImageID) },
		"platform-details":    func(i *instance) []string { return one(i.PlatformDetails) },
		"owner-id":            func(*instance) []string { return one(c.Account) },
		"vpc-id":              func(i *instance) []string { return one(aws.ToString(rendered(i).VpcId)) },
		"subnet-id":           func(i *instance) []string { return one(aws.ToString(rendered(i).SubnetId)) },
		"private-ip-address":  func(i *instance) []string { return one(aws.ToString(rendered(i).PrivateIpAddress)) },
		"network-interface.network-interface-id": func(i *instance) []string {
			var ids []string
			for _, n := range rendered(i).NetworkInterfaces {
				ids = append(ids, aws.ToString(n.NetworkInterfaceId))
			}
			return ids
		},
		"block-device-mapping.volume-id": func(i *instance) []string {
			var ids []string
			for _, m := range rendered(i).BlockDeviceMappings {
				ids = append(ids, aws.ToString(m.Ebs.VolumeId))
			}
			return ids
		},
		"instance.group-id": func(i *instance) []string {
			var ids []string
			for _, g := range rendered(i).SecurityGroups {
				ids = append(ids, aws.ToString(g.GroupId))
			}
			return ids
		},
		"iam-instance-profile.arn": func(i *instance) []string {
			if p := rendered(i).IamInstanceProfile; p != nil {
				return one(aws.ToString(p.Arn))
			}
			return nil
		},
	}
}

// DescribeInstances describes instances by ID and filters, one reservation
// per instance. Terminated instances are still described.
func (e *EC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if in == nil {
		in = &ec2.DescribeInstancesInput{}
	}
	c := e.c
	out := &ec2.DescribeInstancesOutput{}
	err := c.call(ctx, serviceEC2, "DescribeInstances", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := kindInstance.check(in.InstanceIds, c.hasInstance); err != nil {
			return nil, err
		}
		f := c.instanceFieldsLocked()
		if err := checkFilters(in.Filters, f); err != nil {
			return nil, err
		}
		insts := sortedBySeq(c.st.Instances, func(i *instance) int { return i.Seq })
		if len(in.InstanceIds) > 0 {
			insts = nil
			for _, id := range dedupe(in.InstanceIds) {
				insts = append(insts, c.st.Instances[id])
			}
		}
		insts = filter(insts, in.Filters, f, func(i *instance) []types.Tag { return i.Tags })
		var reservations []types.Reservation
		for _, inst := range insts {
			reservations = append(reservations, types.Reservation{
				ReservationId: aws.String("r-" + strings.TrimPrefix(inst.ID, "i-")),
				OwnerId:       aws.String(c.Account),
				Instances:     []types.Instance{c.renderInstanceLocked(inst)},
			})
		}
		return func() { out.Reservations = reservations }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeInstanceAttribute answers disableApiTermination, disableApiStop,
// instanceInitiatedShutdownBehavior, userData (base64), groupSet,
// instanceType, rootDeviceName and blockDeviceMapping.
func (e *EC2) DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	if in == nil {
		in = &ec2.DescribeInstanceAttributeInput{}
	}
	c := e.c
	out := &ec2.DescribeInstanceAttributeOutput{}
	err := c.call(ctx, serviceEC2, "DescribeInstanceAttribute", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.InstanceId == nil {
			return nil, missingParameter("instanceId")
		}
		if in.Attribute == "" {
			return nil, missingParameter("attribute")
		}
		if !slices.Contains(in.Attribute.Values(), in.Attribute) {
			return nil, apiError("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", in.Attribute)
		}
		inst, err := c.instanceLocked(aws.ToString(in.InstanceId))
		if err != nil {
			return nil, err
		}
		r := ec2.DescribeInstanceAttributeOutput{InstanceId: aws.String(inst.ID)}
		rendered := c.renderInstanceLocked(inst)
		switch in.Attribute {
		case types.InstanceAttributeNameDisableApiTermination:
			r.DisableApiTermination = &types.AttributeBooleanValue{Value: aws.Bool(inst.DisableAPITermination)}
		case types.InstanceAttributeNameDisableApiStop:
			r.DisableApiStop = &types.AttributeBooleanValue{Value: aws.Bool(inst.DisableAPIStop)}
		case types.InstanceAttributeNameInstanceInitiatedShutdownBehavior:
			r.InstanceInitiatedShutdownBehavior = &types.AttributeValue{Value: aws.String(inst.ShutdownBehavior)}
		case types.InstanceAttributeNameUserData:
			r.UserData = &types.AttributeValue{} // AWS answers an empty value when there is none
			if inst.UserData != "" {
				r.UserData.Value = aws.String(base64.StdEncoding.EncodeToString([]byte(inst.UserData)))
			}
		case types.InstanceAttributeNameGroupSet:
			r.Groups = rendered.SecurityGroups
			if r.Groups == nil {
				r.Groups = []types.GroupIdentifier{}
			}
		case types.InstanceAttributeNameInstanceType:
			r.InstanceType = &types.AttributeValue{Value: aws.String(string(inst.Type))}
		case types.InstanceAttributeNameRootDeviceName:
			r.RootDeviceName = &types.AttributeValue{Value: aws.String(inst.RootDevice)}
		case types.InstanceAttributeNameBlockDeviceMapping:
			r.BlockDeviceMappings = rendered.BlockDeviceMappings
		default:
			return nil, notModelled("DescribeInstanceAttribute", "attribute "+string(in.Attribute))
		}
		return func() { *out = r }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ModifyInstanceAttribute changes one attribute per call:
// DisableApiTermination, DisableApiStop, InstanceInitiatedShutdownBehavior,
// Groups (only for an instance with one network interface, as on AWS),
// BlockDeviceMappings (DeleteOnTermination of attached EBS volumes, by device
// name), or the Attribute/Value form of the first and third.
func (e *EC2) ModifyInstanceAttribute(ctx context.Context, in *ec2.ModifyInstanceAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error) {
	if in == nil {
		in = &ec2.ModifyInstanceAttributeInput{}
	}
	c := e.c
	out := &ec2.ModifyInstanceAttributeOutput{}
	err := c.call(ctx, serviceEC2, "ModifyInstanceAttribute", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.InstanceId == nil {
			return nil, missingParameter("instanceId")
		}
		var set []string
		for name, present := range map[string]bool{
			"disableApiTermination":             in.DisableApiTermination != nil,
			"instanceInitiatedShutdownBehavior": in.InstanceInitiatedShutdownBehavior != nil,
			"groupSet":                          len(in.Groups) > 0,
			"attribute":                         in.Attribute != "" || in.Value != nil,
			"blockDeviceMapping":                len(in.BlockDeviceMappings) > 0,
			"disableApiStop":                    in.DisableApiStop != nil,
			"ebsOptimized":                      in.EbsOptimized != nil,
			"enaSupport":                        in.EnaSupport != nil,
			"enclaveOptions":                    in.EnclaveOptions != nil,
			"instanceType":                      in.InstanceType != nil,
			"kernel":                            in.Kernel != nil,
			"ramdisk":                           in.Ramdisk != nil,
			"sourceDestCheck":                   in.SourceDestCheck != nil,
			"sriovNetSupport":                   in.SriovNetSupport != nil,
			"userData":                          in.UserData != nil,
		} {
			if present {
				set = append(set, name)
			}
		}
		slices.Sort(set)
		switch len(set) {
		case 0:
			return nil, apiError("InvalidParameterCombination", "No attributes specified.")
		case 1:
		default:
			return nil, apiError("InvalidParameterCombination", "Fields for multiple attribute types specified: %s", strings.Join(set, ", "))
		}
		inst, err := c.liveInstanceLocked(aws.ToString(in.InstanceId))
		if err != nil {
			return nil, err
		}

		attr, value := set[0], ""
		switch attr {
		case "disableApiTermination":
			if in.DisableApiTermination.Value == nil {
				return nil, missingParameter("disableApiTermination.value")
			}
			value = fmt.Sprint(*in.DisableApiTermination.Value)
		case "disableApiStop":
			if in.DisableApiStop.Value == nil {
				return nil, missingParameter("disableApiStop.value")
			}
			stop := *in.DisableApiStop.Value
			return func() { inst.DisableAPIStop = stop }, nil
		case "blockDeviceMapping":
			return c.deleteOnTerminationLocked(inst, in.BlockDeviceMappings)
		case "instanceInitiatedShutdownBehavior":
			value = aws.ToString(in.InstanceInitiatedShutdownBehavior.Value)
		case "attribute":
			attr, value = string(in.Attribute), aws.ToString(in.Value)
			if attr != "disableApiTermination" && attr != "instanceInitiatedShutdownBehavior" {
				return nil, notModelled("ModifyInstanceAttribute", "attribute "+attr)
			}
		case "groupSet":
			ifaces := inst.InterfaceIDs
			if len(ifaces) > 1 {
				return nil, apiError("InvalidInstanceID", "There are multiple interfaces attached to instance '%s'. Please specify an interface ID for the operation instead.", inst.ID)
			}
			if len(ifaces) == 0 {
				return nil, incorrectInstanceState(inst.ID, inst.State)
			}
			n := c.st.Interfaces[ifaces[0]]
			if err := c.checkGroupsForInterfaceLocked(n, in.Groups); err != nil {
				return nil, err
			}
			groups := dedupe(in.Groups)
			return func() { n.GroupIDs = groups }, nil
		default:
			return nil, notModelled("ModifyInstanceAttribute", "attribute "+attr)
		}

		switch attr {
		case "disableApiTermination":
			if value != "true" && value != "false" {
				return nil, apiError("InvalidParameterValue", "Value (%s) for parameter value is invalid. Expected: 'true' or 'false'.", value)
			}
			return func() { inst.DisableAPITermination = value == "true" }, nil
		default: // instanceInitiatedShutdownBehavior
			if value != "stop" && value != "terminate" {
				return nil, apiError("InvalidParameterValue", "Value (%s) for parameter instanceInitiatedShutdownBehavior is invalid. Expected: 'stop' or 'terminate'.", value)
			}
			return func() { inst.ShutdownBehavior = value }, nil
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// deleteOnTerminationLocked checks a BlockDeviceMappings change of
// ModifyInstanceAttribute and returns what applies it: each mapping names an
// attached EBS volume by device name and sets its DeleteOnTermination.
func (c *Cloud) deleteOnTerminationLocked(inst *instance, mappings []types.InstanceBlockDeviceMappingSpecification) (func(), error) {
	byDevice := map[string]*volume{}
	for _, id := range inst.VolumeIDs {
		v := c.st.Volumes[id]
		byDevice[v.Device] = v
	}
	set := map[*volume]bool{}
	for _, m := range mappings {
		dev := aws.ToString(m.DeviceName)
		v, ok := byDevice[dev]
		if !ok {
			return nil, apiError("InvalidInstanceAttributeValue", "No device is currently mapped at %s", dev)
		}
		if m.Ebs == nil || m.Ebs.DeleteOnTermination == nil {
			return nil, missingParameter("blockDeviceMapping.ebs.deleteOnTermination")
		}
		set[v] = *m.Ebs.DeleteOnTermination
	}
	return func() {
		for v, del := range set {
			v.DeleteOnTermination = del
		}
	}, nil
}
