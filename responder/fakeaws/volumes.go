package fakeaws

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// volume is an EBS volume attached to an instance.
type volume struct {
	ID                  string
	InstanceID          string
	Device              string
	AZ                  string
	SizeGiB             int32
	Encrypted           bool
	KmsKeyID            string
	DeleteOnTermination bool
	CreateTime          time.Time
	AttachTime          time.Time
	Tags                []types.Tag
	Seq                 int
	// SnapshotID is the snapshot a volume made by CreateVolume was
	// restored from; an instance's own volumes have none.
	SnapshotID string `json:",omitempty"`
}

// addVolumesLocked gives an instance its EBS volumes: the root volume at
// /dev/xvda, the others at /dev/sdf, /dev/sdg, ...
func (c *Cloud) addVolumesLocked(inst *instance, spec InstanceSpec) {
	size := spec.VolumeSizeGiB
	if size == 0 {
		size = 8
	}
	key := spec.KmsKeyID
	if spec.Encrypted && key == "" {
		key = c.ebsDefaultKeyLocked()
	}
	for i := range max(spec.Volumes, 1) {
		v := &volume{
			ID:                  c.hexIDLocked("vol"),
			InstanceID:          inst.ID,
			Device:              inst.RootDevice,
			AZ:                  c.Region + "a",
			SizeGiB:             size,
			Encrypted:           spec.Encrypted,
			DeleteOnTermination: i == 0,
			CreateTime:          inst.LaunchTime,
			AttachTime:          inst.LaunchTime,
			Tags:                tagsFromMap(spec.VolumeTags),
			Seq:                 c.nextSeqLocked(),
		}
		if i > 0 {
			v.Device = fmt.Sprintf("/dev/sd%c", 'f'+i-1)
		}
		if spec.Encrypted {
			v.KmsKeyID = key
		}
		c.st.Volumes[v.ID] = v
		inst.VolumeIDs = append(inst.VolumeIDs, v.ID)
	}
}

// ebsDefaultKeyLocked is the ARN of the account's AWS managed key aws/ebs,
// derived from the account so that it is stable.
func (c *Cloud) ebsDefaultKeyLocked() string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", c.Region, c.Account, stableUUID("aws/ebs", c.Account))
}

func (c *Cloud) renderVolume(v *volume) types.Volume {
	out := types.Volume{
		VolumeId:           aws.String(v.ID),
		AvailabilityZone:   aws.String(v.AZ),
		CreateTime:         aws.Time(v.CreateTime),
		Encrypted:          aws.Bool(v.Encrypted),
		Size:               aws.Int32(v.SizeGiB),
		State:              types.VolumeStateInUse,
		VolumeType:         types.VolumeTypeGp3,
		Iops:               aws.Int32(3000),
		Throughput:         aws.Int32(125),
		MultiAttachEnabled: aws.Bool(false),
		Tags:               copyTags(v.Tags),
	}
	if v.SnapshotID != "" {
		out.SnapshotId = aws.String(v.SnapshotID)
	}
	if v.InstanceID == "" {
		// Made by CreateVolume and not attached, or detached.
		out.State = types.VolumeStateAvailable
		out.Attachments = []types.VolumeAttachment{}
	} else {
		out.Attachments = []types.VolumeAttachment{{
			VolumeId:            aws.String(v.ID),
			InstanceId:          aws.String(v.InstanceID),
			Device:              aws.String(v.Device),
			State:               types.VolumeAttachmentStateAttached,
			AttachTime:          aws.Time(v.AttachTime),
			DeleteOnTermination: aws.Bool(v.DeleteOnTermination),
		}}
	}
	if v.Encrypted {
		out.KmsKeyId = aws.String(v.KmsKeyID)
	}
	return out
}

var volumeFields = fields[*volume]{
	"volume-id":                        func(v *volume) []string { return one(v.ID) },
	"attachment.instance-id":           func(v *volume) []string { return one(v.InstanceID) },
	"attachment.device":                func(v *volume) []string { return one(v.Device) },
	"attachment.status":                func(v *volume) []string { return attachedIf(v.InstanceID != "") },
	"status":                           func(v *volume) []string { return one(string(volumeState(v))) },
	"snapshot-id":                      func(v *volume) []string { return one(v.SnapshotID) },
	"encrypted":                        func(v *volume) []string { return one(fmt.Sprint(v.Encrypted)) },
	"availability-zone":                func(v *volume) []string { return one(v.AZ) },
	"attachment.delete-on-termination": func(v *volume) []string { return one(fmt.Sprint(v.DeleteOnTermination)) },
}

// DescribeVolumes describes volumes by ID and filters (volume-id,
// attachment.instance-id, attachment.device, attachment.status, status,
// encrypted, availability-zone, tag:<key>, tag-key, tag-value).
func (e *EC2) DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, _ ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	if in == nil {
		in = &ec2.DescribeVolumesInput{}
	}
	c := e.c
	out := &ec2.DescribeVolumesOutput{}
	err := c.call(ctx, serviceEC2, "DescribeVolumes", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := kindVolume.check(in.VolumeIds, c.hasVolume); err != nil {
			return nil, err
		}
		if err := checkFilters(in.Filters, volumeFields); err != nil {
			return nil, err
		}
		vols := sortedBySeq(c.st.Volumes, func(v *volume) int { return v.Seq })
		if len(in.VolumeIds) > 0 {
			vols = nil
			for _, id := range dedupe(in.VolumeIds) {
				vols = append(vols, c.st.Volumes[id])
			}
		}
		vols = filter(vols, in.Filters, volumeFields, func(v *volume) []types.Tag { return v.Tags })
		result := []types.Volume{}
		for _, v := range vols {
			result = append(result, c.renderVolume(v))
		}
		return func() { out.Volumes = result }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
