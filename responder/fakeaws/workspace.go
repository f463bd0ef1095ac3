package fakeaws

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
)

// The operations an investigation workspace uses in the forensics account:
// launch an analysis instance, restore volumes from snapshot copies, attach
// and detach them, delete them and terminate the instance. As on AWS: a
// volume lives in one Availability Zone and attaches only to an instance
// there; only a completed snapshot restores; an attached volume cannot be
// deleted; a snapshot outlives every volume made from it.

// AddSubnetIn adds a /24 subnet in the given Availability Zone of a VPC.
func (c *Cloud) AddSubnetIn(vpcID, az string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.addSubnetLocked(vpcID)
	c.st.Subnets[id].AZ = az
	return id
}

// Volume returns a volume as DescribeVolumes shows it, or nil when there is
// none (never made, or deleted).
func (c *Cloud) Volume(id string) *types.Volume {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.st.Volumes[id]
	if !ok {
		return nil
	}
	out := c.renderVolume(v)
	return &out
}

func attachedIf(attached bool) []string {
	if attached {
		return one("attached")
	}
	return nil
}

func volumeState(v *volume) types.VolumeState {
	if v.InstanceID == "" {
		return types.VolumeStateAvailable
	}
	return types.VolumeStateInUse
}

// instanceAZLocked is the Availability Zone of an instance: its subnet's.
func (c *Cloud) instanceAZLocked(inst *instance) string {
	if s, ok := c.st.Subnets[inst.SubnetID]; ok && s.AZ != "" {
		return s.AZ
	}
	return c.Region + "a"
}

// RunInstances launches instances (MinCount = MaxCount = 1 only) into a
// subnet with the given groups, instance profile (by ARN) and tags. The
// answer shows them pending; they are running from the next describe.
func (e *EC2) RunInstances(ctx context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	c := e.c
	out := &ec2.RunInstancesOutput{}
	err := c.call(ctx, serviceEC2, "RunInstances", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := checkClientToken(in.ClientToken); err != nil {
			return nil, err
		}
		if done := c.relaunchLocked(aws.ToString(in.ClientToken), out); done != nil {
			return done, nil
		}
		if aws.ToInt32(in.MinCount) != 1 || aws.ToInt32(in.MaxCount) != 1 {
			return nil, notModelled("RunInstances", "with a count other than 1")
		}
		image := aws.ToString(in.ImageId)
		if !strings.HasPrefix(image, "ami-") {
			return nil, apiError("InvalidAMIID.Malformed", "Invalid id: %q (expecting \"ami-...\")", image)
		}
		subnetID := aws.ToString(in.SubnetId)
		if subnetID == "" {
			return nil, notModelled("RunInstances", "without SubnetId")
		}
		if err := kindSubnet.check([]string{subnetID}, c.hasSubnet); err != nil {
			return nil, err
		}
		vpcID := c.st.Subnets[subnetID].VpcID
		groups := in.SecurityGroupIds
		if len(groups) == 0 {
			groups = []string{c.st.VPCs[vpcID].DefaultGroupID}
		}
		if err := kindGroup.check(groups, c.hasGroup); err != nil {
			return nil, err
		}
		for _, g := range groups {
			if c.st.Groups[g].VpcID != vpcID {
				return nil, apiError("InvalidParameter", "Security group %s and subnet %s belong to different networks.", g, subnetID)
			}
		}
		instTags, err := tagsFor(only(in.TagSpecifications, types.ResourceTypeInstance), types.ResourceTypeInstance)
		if err != nil {
			return nil, err
		}
		volTags, err := tagsFor(only(in.TagSpecifications, types.ResourceTypeVolume), types.ResourceTypeVolume)
		if err != nil {
			return nil, err
		}
		profile := ""
		if p := in.IamInstanceProfile; p != nil {
			profile = aws.ToString(p.Arn)
			if profile == "" && aws.ToString(p.Name) != "" {
				profile = fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", c.Account, aws.ToString(p.Name))
			}
			if !profileArnPattern.MatchString(profile) {
				return nil, apiError("InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.arn is invalid.", profile)
			}
		}
		return func() {
			inst := c.launchLocked(in, image, subnetID, groups, profile, instTags, volTags)
			r := c.renderInstanceLocked(inst)
			r.State = &types.InstanceState{Name: types.InstanceStateNamePending, Code: aws.Int32(stateCodes[types.InstanceStateNamePending])}
			out.Instances = []types.Instance{r}
			out.ReservationId = aws.String(c.hexIDLocked("r"))
			out.OwnerId = aws.String(c.Account)
			if token := aws.ToString(in.ClientToken); token != "" {
				if c.st.LaunchTokens == nil {
					c.st.LaunchTokens = map[string]string{}
				}
				c.st.LaunchTokens[token] = aws.ToString(r.InstanceId)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// relaunchLocked answers a launch whose client token launched an instance
// already, as EC2 does: that instance, nothing new (nil when the token is
// new).
func (c *Cloud) relaunchLocked(token string, out *ec2.RunInstancesOutput) func() {
	id, ok := c.st.LaunchTokens[token]
	inst, exists := c.st.Instances[id]
	if token == "" || !ok || !exists {
		return nil
	}
	return func() {
		out.Instances = []types.Instance{c.renderInstanceLocked(inst)}
		out.ReservationId = aws.String(c.hexIDLocked("r"))
		out.OwnerId = aws.String(c.Account)
	}
}

// checkClientToken: an idempotency token is at most 64 ASCII characters
// (EC2 API reference, ClientToken); a token seen before answers its
// instance (relaunchLocked).
func checkClientToken(token *string) error {
	if t := aws.ToString(token); len(t) > 64 {
		return apiError("InvalidParameterValue", "Value (%s) for parameter clientToken is invalid. Length must be at most 64.", t)
	}
	return nil
}

// only keeps the tag specifications of one resource type.
func only(specs []types.TagSpecification, rt types.ResourceType) []types.TagSpecification {
	var out []types.TagSpecification
	for _, s := range specs {
		if s.ResourceType == rt {
			out = append(out, s)
		}
	}
	return out
}

func (c *Cloud) launchLocked(in *ec2.RunInstancesInput, image, subnetID string, groups []string, profile string, instTags, volTags []types.Tag) *instance {
	inst := &instance{
		ID: c.hexIDLocked("i"), ImageID: image, Type: in.InstanceType, Architecture: types.ArchitectureValuesX8664,
		PlatformDetails: "Linux/UNIX", State: types.InstanceStateNameRunning, LaunchTime: c.now().Truncate(1e9),
		VpcID: c.st.Subnets[subnetID].VpcID, SubnetID: subnetID, RootDevice: "/dev/xvda", Tags: instTags,
		ShutdownBehavior: "stop", Seq: c.nextSeqLocked(),
	}
	if inst.Type == "" {
		inst.Type = "m7i.large" // RunInstances' default is m1.small; the fake knows no such type
	}
	if in.InstanceInitiatedShutdownBehavior != "" {
		inst.ShutdownBehavior = string(in.InstanceInitiatedShutdownBehavior)
	}
	c.st.Instances[inst.ID] = inst
	root := &volume{
		ID: c.hexIDLocked("vol"), InstanceID: inst.ID, Device: inst.RootDevice, AZ: c.instanceAZLocked(inst),
		SizeGiB: 8, DeleteOnTermination: true, CreateTime: inst.LaunchTime, AttachTime: inst.LaunchTime,
		Tags: volTags, Seq: c.nextSeqLocked(),
	}
	c.st.Volumes[root.ID] = root
	inst.VolumeIDs = []string{root.ID}
	c.addInterfaceLocked(inst, 0, slices.Clone(groups))
	if profile != "" {
		c.associateLocked(inst, profile)
	}
	return inst
}

// TerminateInstances terminates instances: their delete-on-termination
// volumes are deleted, the others detached (available), their interfaces and
// profile association are gone. Termination protection refuses it.
func (e *EC2) TerminateInstances(ctx context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	c := e.c
	out := &ec2.TerminateInstancesOutput{}
	err := c.call(ctx, serviceEC2, "TerminateInstances", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if len(in.InstanceIds) == 0 {
			return nil, missingParameter("InstanceId")
		}
		if err := kindInstance.check(in.InstanceIds, c.hasInstance); err != nil {
			return nil, err
		}
		for _, id := range in.InstanceIds {
			if c.st.Instances[id].DisableAPITermination {
				return nil, apiError("OperationNotPermitted",
					"The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", id)
			}
		}
		return func() {
			for _, id := range dedupe(in.InstanceIds) {
				inst := c.st.Instances[id]
				prev := inst.State
				c.terminateLocked(inst)
				out.TerminatingInstances = append(out.TerminatingInstances, types.InstanceStateChange{
					InstanceId:    aws.String(id),
					PreviousState: &types.InstanceState{Name: prev, Code: aws.Int32(stateCodes[prev])},
					CurrentState:  &types.InstanceState{Name: types.InstanceStateNameShuttingDown, Code: aws.Int32(stateCodes[types.InstanceStateNameShuttingDown])},
				})
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Cloud) terminateLocked(inst *instance) {
	if inst.State == types.InstanceStateNameTerminated {
		return
	}
	inst.State = types.InstanceStateNameTerminated
	for _, id := range inst.VolumeIDs {
		v := c.st.Volumes[id]
		if v.DeleteOnTermination {
			delete(c.st.Volumes, id)
			continue
		}
		v.InstanceID, v.Device = "", ""
	}
	inst.VolumeIDs = nil
	for _, id := range inst.InterfaceIDs {
		delete(c.st.Interfaces, id)
	}
	inst.InterfaceIDs = nil
	if inst.AssociationID != "" {
		delete(c.st.Associations, inst.AssociationID)
		inst.AssociationID = ""
	}
}

// CreateVolume restores a volume from a completed snapshot in an
// Availability Zone of the Region. A volume from an encrypted snapshot is
// encrypted; KmsKeyId (with Encrypted) chooses its key, else the
// snapshot's. The answer shows it creating; it is available from the next
// describe.
func (e *EC2) CreateVolume(ctx context.Context, in *ec2.CreateVolumeInput, _ ...func(*ec2.Options)) (*ec2.CreateVolumeOutput, error) {
	c := e.c
	out := &ec2.CreateVolumeOutput{}
	err := c.call(ctx, serviceEC2, "CreateVolume", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := checkClientToken(in.ClientToken); err != nil {
			return nil, err
		}
		az := aws.ToString(in.AvailabilityZone)
		if az == "" {
			return nil, missingParameter("AvailabilityZone")
		}
		if !strings.HasPrefix(az, c.Region) {
			return nil, apiError("InvalidParameterValue", "Invalid availability zone: [%s]", az)
		}
		snapID := aws.ToString(in.SnapshotId)
		if snapID == "" {
			return nil, notModelled("CreateVolume", "without SnapshotId")
		}
		if err := kindSnapshot.check([]string{snapID}, c.hasSnapshot); err != nil {
			return nil, err
		}
		s := c.st.Snapshots[snapID]
		if !s.Completed || s.Failed != "" {
			return nil, apiError("IncorrectState", "Snapshot '%s' is not in a valid state for this operation.", snapID)
		}
		key := aws.ToString(in.KmsKeyId)
		if key != "" && !aws.ToBool(in.Encrypted) {
			return nil, apiError("InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.")
		}
		encrypted := s.Encrypted || aws.ToBool(in.Encrypted)
		if encrypted && key == "" {
			key = s.KmsKeyID
			if key == "" {
				key = c.ebsDefaultKeyLocked()
			}
		}
		tags, err := tagsFor(in.TagSpecifications, types.ResourceTypeVolume)
		if err != nil {
			return nil, err
		}
		return func() {
			v := &volume{
				ID: c.hexIDLocked("vol"), AZ: az, SizeGiB: s.SizeGiB, Encrypted: encrypted, CreateTime: c.now(),
				Tags: tags, Seq: c.nextSeqLocked(), SnapshotID: snapID,
			}
			if encrypted {
				v.KmsKeyID = key
			}
			c.st.Volumes[v.ID] = v
			r := c.renderVolume(v)
			r.State = types.VolumeStateCreating
			out.VolumeId, out.AvailabilityZone, out.SnapshotId = r.VolumeId, r.AvailabilityZone, r.SnapshotId
			out.Size, out.Encrypted, out.KmsKeyId, out.State, out.Tags = r.Size, r.Encrypted, r.KmsKeyId, r.State, r.Tags
			out.CreateTime, out.VolumeType = r.CreateTime, r.VolumeType
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AttachVolume attaches an available volume to an instance in its
// Availability Zone, at a free device name.
func (e *EC2) AttachVolume(ctx context.Context, in *ec2.AttachVolumeInput, _ ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error) {
	c := e.c
	out := &ec2.AttachVolumeOutput{}
	err := c.call(ctx, serviceEC2, "AttachVolume", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		volID, instID, device := aws.ToString(in.VolumeId), aws.ToString(in.InstanceId), aws.ToString(in.Device)
		if device == "" {
			return nil, missingParameter("Device")
		}
		if err := kindVolume.check([]string{volID}, c.hasVolume); err != nil {
			return nil, err
		}
		inst, err := c.instanceLocked(instID)
		if err != nil {
			return nil, err
		}
		if inst.State != types.InstanceStateNameRunning && inst.State != types.InstanceStateNameStopped {
			return nil, incorrectInstanceState(instID, inst.State)
		}
		v := c.st.Volumes[volID]
		if v.InstanceID != "" {
			return nil, apiError("VolumeInUse", "%s is already attached to an instance", volID)
		}
		if v.AZ != c.instanceAZLocked(inst) {
			return nil, apiError("InvalidVolume.ZoneMismatch",
				"The volume '%s' is not in the same availability zone as instance '%s'", volID, instID)
		}
		for _, id := range inst.VolumeIDs {
			if c.st.Volumes[id].Device == device {
				return nil, apiError("InvalidParameterValue", "Invalid value '%s' for unixDevice. Attachment point %s is already in use", device, device)
			}
		}
		return func() {
			v.InstanceID, v.Device, v.AttachTime, v.DeleteOnTermination = instID, device, c.now(), false
			inst.VolumeIDs = append(inst.VolumeIDs, volID)
			out.VolumeId, out.InstanceId, out.Device = aws.String(volID), aws.String(instID), aws.String(device)
			out.State, out.AttachTime = types.VolumeAttachmentStateAttaching, aws.Time(v.AttachTime)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DetachVolume detaches an attached volume (not the root volume of a running
// instance); it is available from then on.
func (e *EC2) DetachVolume(ctx context.Context, in *ec2.DetachVolumeInput, _ ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error) {
	c := e.c
	out := &ec2.DetachVolumeOutput{}
	err := c.call(ctx, serviceEC2, "DetachVolume", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		volID := aws.ToString(in.VolumeId)
		if err := kindVolume.check([]string{volID}, c.hasVolume); err != nil {
			return nil, err
		}
		v := c.st.Volumes[volID]
		if v.InstanceID == "" {
			return nil, apiError("IncorrectState", "Volume '%s' is in the 'available' state.", volID)
		}
		if id := aws.ToString(in.InstanceId); id != "" && id != v.InstanceID {
			return nil, apiError("InvalidAttachment.NotFound", "The volume %s is not attached to instance %s", volID, id)
		}
		inst := c.st.Instances[v.InstanceID]
		if v.Device == inst.RootDevice && inst.State == types.InstanceStateNameRunning {
			return nil, apiError("OperationNotPermitted", "Unable to detach root volume '%s' from instance '%s'", volID, inst.ID)
		}
		return func() {
			out.VolumeId, out.InstanceId, out.Device = aws.String(volID), aws.String(inst.ID), aws.String(v.Device)
			out.State = types.VolumeAttachmentStateDetaching
			inst.VolumeIDs = slices.DeleteFunc(inst.VolumeIDs, func(id string) bool { return id == volID })
			v.InstanceID, v.Device = "", ""
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteVolume deletes an available volume; an attached one answers
// VolumeInUse.
func (e *EC2) DeleteVolume(ctx context.Context, in *ec2.DeleteVolumeInput, _ ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error) {
	c := e.c
	out := &ec2.DeleteVolumeOutput{}
	err := c.call(ctx, serviceEC2, "DeleteVolume", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		volID := aws.ToString(in.VolumeId)
		if err := kindVolume.check([]string{volID}, c.hasVolume); err != nil {
			return nil, err
		}
		if v := c.st.Volumes[volID]; v.InstanceID != "" {
			return nil, apiError("VolumeInUse", "Volume %s is currently attached to %s", volID, v.InstanceID)
		}
		return func() { delete(c.st.Volumes, volID) }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var _ cloud.InvestigationEC2 = (*EC2)(nil)
