package step

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type volumeRetentionAPI interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	ModifyInstanceAttribute(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
}

// VolumeRetention sets DeleteOnTermination=false on every attached EBS
// volume, so that a termination (by Auto Scaling, which termination
// protection does not stop, or by anyone) leaves the volumes, and the
// evidence on them, behind. The before is the mapping DescribeInstances
// showed at the start; one ModifyInstanceAttribute changes every mapping;
// DescribeInstances reads it back (the DescribeInstanceAttribute form of the
// mapping is not served by every EC2-compatible endpoint).
type VolumeRetention struct{}

func (VolumeRetention) Name() string    { return "delete-on-termination" }
func (VolumeRetention) Phase() Phase    { return Contain }
func (VolumeRetention) Needs() []string { return []string{"metadata:read", "snapshots"} }
func (VolumeRetention) Isolates() bool  { return true }

// volumeRetentionState is the DeleteOnTermination of every attached EBS
// volume, by device name.
type volumeRetentionState struct {
	Volumes []volumeRetention `json:"volumes"`
}

type volumeRetention struct {
	DeviceName          string `json:"device_name"`
	VolumeID            string `json:"volume_id"`
	DeleteOnTermination bool   `json:"delete_on_termination"`
}

func (s VolumeRetention) Run(ctx context.Context, env *Env) Result {
	var api volumeRetentionAPI = env.Clients.EC2
	before := retentionOf(env.Target.Instance)
	if len(before.Volumes) == 0 {
		return Skipped("the instance has no EBS volume attached", before).Held(true)
	}
	want := map[string]bool{}
	for _, v := range before.Volumes {
		want[v.DeviceName] = false
	}
	if len(before.deleting()) == 0 {
		return Skipped("no attached volume is deleted on termination", before).Held(true)
	}
	return s.set(ctx, api, env, want, before)
}

// read reads the block device mapping of the instance as EC2 has it now.
func (VolumeRetention) read(ctx context.Context, api volumeRetentionAPI, id string) (volumeRetentionState, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return volumeRetentionState{}, fmt.Errorf("describe %s: %w", id, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		return volumeRetentionState{}, fmt.Errorf("describe %s: the instance is not in the answer", id)
	}
	return retentionOf(out.Reservations[0].Instances[0]), nil
}

// retentionOf is the DeleteOnTermination of every EBS volume of an instance.
func retentionOf(inst types.Instance) volumeRetentionState {
	st := volumeRetentionState{Volumes: []volumeRetention{}}
	for _, m := range inst.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		st.Volumes = append(st.Volumes, volumeRetention{
			DeviceName:          aws.ToString(m.DeviceName),
			VolumeID:            aws.ToString(m.Ebs.VolumeId),
			DeleteOnTermination: aws.ToBool(m.Ebs.DeleteOnTermination),
		})
	}
	sort.Slice(st.Volumes, func(i, j int) bool { return st.Volumes[i].DeviceName < st.Volumes[j].DeviceName })
	return st
}

// deleting lists the devices whose volume is deleted on termination.
func (st volumeRetentionState) deleting() []string {
	var devs []string
	for _, v := range st.Volumes {
		if v.DeleteOnTermination {
			devs = append(devs, v.DeviceName)
		}
	}
	return devs
}

// set gives each device of want its DeleteOnTermination (one value for all:
// false to contain, true to release), in one call, and
// reads the mapping back: the step holds only when every volume is kept on
// termination (after a release: when every device has what want says).
func (s VolumeRetention) set(ctx context.Context, api volumeRetentionAPI, env *Env, want map[string]bool, before volumeRetentionState) Result {
	id := env.Target.InstanceID()
	devices := make([]string, 0, len(want))
	for d := range want {
		devices = append(devices, d)
	}
	sort.Strings(devices)
	mappings := make([]types.InstanceBlockDeviceMappingSpecification, 0, len(devices))
	for _, d := range devices {
		mappings = append(mappings, types.InstanceBlockDeviceMappingSpecification{
			DeviceName: aws.String(d),
			Ebs:        &types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(want[d])},
		})
	}
	_, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: &id, BlockDeviceMappings: mappings, DryRun: aws.Bool(env.Target.DryRun),
	})
	what := fmt.Sprintf("DeleteOnTermination set to %t on %s", want[devices[0]], strings.Join(devices, ", "))
	if env.Target.DryRun {
		return dryRunContainment(dryRun(err, what, before))
	}
	if err != nil {
		return Failed(fmt.Errorf("%s on %s: %w", what, id, err), before)
	}
	after, err := s.read(ctx, api, id)
	if err != nil {
		return Failed(fmt.Errorf("read back: %w", err), before).Unchecked()
	}
	var wrong []string
	for _, v := range after.Volumes {
		if w, ok := want[v.DeviceName]; ok && v.DeleteOnTermination != w {
			wrong = append(wrong, fmt.Sprintf("%s (%s) has DeleteOnTermination=%t", v.DeviceName, v.VolumeID, v.DeleteOnTermination))
		}
	}
	if len(wrong) > 0 {
		r := Failed(fmt.Errorf("accepted, but read back: %s", strings.Join(wrong, "; ")), before)
		r.After = after
		return r.Held(false)
	}
	if want[devices[0]] {
		// A release: every device read back what want says (checked above).
		return OK(what, before, after).Held(true)
	}
	return OK(what, before, after).Held(len(after.deleting()) == 0)
}

// Release gives DeleteOnTermination back to the volumes that had it, when
// they are still attached at the same device.
func (s VolumeRetention) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var before volumeRetentionState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	attached := map[string]string{} // device -> volume
	for _, m := range env.Target.Instance.BlockDeviceMappings {
		if m.Ebs != nil {
			attached[aws.ToString(m.DeviceName)] = aws.ToString(m.Ebs.VolumeId)
		}
	}
	want := map[string]bool{}
	var gone []string
	for _, v := range before.Volumes {
		switch {
		case !v.DeleteOnTermination:
		case attached[v.DeviceName] == v.VolumeID:
			want[v.DeviceName] = true
		default:
			gone = append(gone, v.VolumeID+" ("+v.DeviceName+")")
		}
	}
	left := ""
	if len(gone) > 0 {
		left = "; left as it is: " + strings.Join(gone, ", ") + " no longer attached at its device (DeleteOnTermination belongs to an attachment)"
	}
	if len(want) == 0 {
		r := Skipped("no volume still attached was deleted on termination before the response", before)
		r.Reason += left
		return r
	}
	r := s.set(ctx, env.Clients.EC2, env, want, before)
	r.Reason += left
	return r
}

// Describe: which attached volumes a termination would delete.
func (VolumeRetention) Describe() Description {
	return Description{
		Aspect: "EBS volumes deleted on termination (DeleteOnTermination)",
		View:   viewVolumeRetention,
		Order:  47,
		OnFailure: "Some attached volumes are still deleted when the instance terminates (an Auto Scaling " +
			"group terminates it whatever its termination protection): the evidence on them would be " +
			"lost with the instance. Check the snapshots completed.",
	}
}

// viewVolumeRetention reads a volumeRetentionState: one row per volume.
func viewVolumeRetention(raw json.RawMessage, _ string) ([]SubjectState, error) {
	if err := requireField(raw, "volumes"); err != nil {
		return nil, err
	}
	var v volumeRetentionState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []SubjectState
	for _, vol := range v.Volumes {
		text := "kept on termination"
		if vol.DeleteOnTermination {
			text = "deleted on termination"
		}
		out = append(out, SubjectState{Subject: vol.VolumeID + " (" + vol.DeviceName + ")", Text: text})
	}
	return out, nil
}
