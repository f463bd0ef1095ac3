package investigate

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// volume restores one working volume from a snapshot copy in the
// instance's Availability Zone, encrypted with the workspace key, and
// attaches it at device. The copy is only read.
func (j *startJob) volume(ctx context.Context, c evidence.SnapshotCopy, device string) evidence.WorkVol {
	v := evidence.WorkVol{SnapshotID: c.SnapshotID, SourceSnapshotID: c.SourceSnapshotID,
		AvailabilityZone: j.ws.AvailabilityZone, Device: device, KMSKeyID: j.ws.KMSKeyID}
	if err := j.restore(ctx, &v); err != nil {
		v.Error = err.Error()
		j.problem("volume from %s: %v", c.SnapshotID, err)
	}
	return v
}

func (j *startJob) restore(ctx context.Context, v *evidence.WorkVol) error {
	if err := j.createVolume(ctx, v); err != nil {
		return err
	}
	if err := j.iv.waitVolume(ctx, j.req, v, types.VolumeStateAvailable); err != nil {
		return err
	}
	if err := j.attach(ctx, v); err != nil {
		return err
	}
	return j.iv.waitVolume(ctx, j.req, v, types.VolumeStateInUse)
}

// createVolume restores the working volume (the client token makes a
// retried call the same volume).
func (j *startJob) createVolume(ctx context.Context, v *evidence.WorkVol) error {
	out, err := j.iv.EC2.CreateVolume(ctx, &ec2.CreateVolumeInput{
		AvailabilityZone: aws.String(v.AvailabilityZone), SnapshotId: aws.String(v.SnapshotID),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String(v.KMSKeyID), VolumeType: types.VolumeTypeGp3,
		ClientToken:       clientToken(j.ws.CaseID, j.ws.ID, v.SnapshotID),
		TagSpecifications: []types.TagSpecification{j.tags(types.ResourceTypeVolume, j.ws.CaseID+" "+v.SourceSnapshotID+" (working copy)")},
	})
	if err != nil {
		return fmt.Errorf("create volume in %s: %w", v.AvailabilityZone, err)
	}
	v.VolumeID, v.State = aws.ToString(out.VolumeId), string(out.State)
	return nil
}

func (j *startJob) attach(ctx context.Context, v *evidence.WorkVol) error {
	if _, err := j.iv.EC2.AttachVolume(ctx, &ec2.AttachVolumeInput{
		VolumeId: aws.String(v.VolumeID), InstanceId: aws.String(j.ws.InstanceID), Device: aws.String(v.Device),
	}); err != nil {
		return fmt.Errorf("attach %s to %s at %s: %w", v.VolumeID, j.ws.InstanceID, v.Device, err)
	}
	return nil
}

// waitVolume polls a volume until it is in state want (in-use: attached).
func (iv *Investigator) waitVolume(ctx context.Context, req Request, v *evidence.WorkVol, want types.VolumeState) error {
	return poll(ctx, req.PollInterval, "volume "+v.VolumeID, func() (bool, error) {
		got, err := iv.readVolume(ctx, v.VolumeID)
		if err != nil {
			return false, err
		}
		if got == nil {
			return false, fmt.Errorf("volume %s is gone", v.VolumeID)
		}
		v.State, v.Encrypted = string(got.State), aws.ToBool(got.Encrypted)
		v.KMSKeyID = aws.ToString(got.KmsKeyId)
		if got.State == types.VolumeStateError {
			return false, fmt.Errorf("volume %s is in state error", v.VolumeID)
		}
		if got.State != want {
			return false, nil
		}
		return want != types.VolumeStateInUse || attachedState(*got) == types.VolumeAttachmentStateAttached, nil
	})
}

// readVolume reads a volume back; nil when it does not exist.
func (iv *Investigator) readVolume(ctx context.Context, id string) (*types.Volume, error) {
	out, err := iv.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	switch {
	case cloud.IsErrorCode(err, "InvalidVolume.NotFound"):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("describe %s: %w", id, err)
	case len(out.Volumes) == 0:
		return nil, nil
	}
	return &out.Volumes[0], nil
}

func attachedState(v types.Volume) types.VolumeAttachmentState {
	if len(v.Attachments) == 0 {
		return ""
	}
	return v.Attachments[0].State
}

func attachedTo(v types.Volume) (instance, device string) {
	if len(v.Attachments) == 0 {
		return "", ""
	}
	return aws.ToString(v.Attachments[0].InstanceId), aws.ToString(v.Attachments[0].Device)
}

// readBackVolumes records each working volume as DescribeVolumes shows it:
// attached to the instance, at its device, encrypted.
func (j *startJob) readBackVolumes(ctx context.Context) {
	for i := range j.ws.Volumes {
		v := &j.ws.Volumes[i]
		if v.VolumeID == "" || v.Error != "" {
			continue
		}
		got, err := j.iv.readVolume(ctx, v.VolumeID)
		if err != nil || got == nil {
			j.problem("read back %s: %v", v.VolumeID, err)
			continue
		}
		inst, dev := attachedTo(*got)
		v.State, v.Encrypted, v.KMSKeyID = string(got.State), aws.ToBool(got.Encrypted), aws.ToString(got.KmsKeyId)
		switch {
		case inst != j.ws.InstanceID || dev != v.Device:
			j.problem("volume %s is attached to %q at %q, not to %s at %s", v.VolumeID, inst, dev, j.ws.InstanceID, v.Device)
		case !v.Encrypted:
			j.problem("volume %s is not encrypted", v.VolumeID)
		case aws.ToString(got.SnapshotId) != v.SnapshotID:
			j.problem("volume %s was restored from %s, not from %s", v.VolumeID, aws.ToString(got.SnapshotId), v.SnapshotID)
		}
	}
}
