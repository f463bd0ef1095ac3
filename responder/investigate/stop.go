package investigate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// StopRequest asks to tear a workspace down.
type StopRequest struct {
	CaseID string
	// WorkspaceID is the workspace to stop; empty: the newest not stopped.
	WorkspaceID  string
	PollInterval time.Duration
	Timeout      time.Duration
}

// Validate checks a stop request without calling AWS.
func (req *StopRequest) Validate() error {
	if err := evidence.ValidateCaseID(req.CaseID); err != nil {
		return &responder.InputError{Err: err}
	}
	if req.WorkspaceID != "" && !workspacePatten.MatchString(req.WorkspaceID) {
		return &responder.InputError{Err: fmt.Errorf("invalid workspace ID %q: want ws-NNN", req.WorkspaceID)}
	}
	if req.PollInterval < 0 || req.Timeout < 0 {
		return &responder.InputError{Err: fmt.Errorf("poll interval and timeout must not be negative")}
	}
	return nil
}

// Stop tears a workspace down: each working volume the record names is
// detached and deleted (only volumes made for this workspace: never a
// snapshot, never a volume without the workspace's tag), then the instance
// is terminated. Every part is read back; the workspace is "stopped" only
// when the instance is terminated and every volume gone. Running it again
// finishes what a first run left.
func (iv *Investigator) Stop(ctx context.Context, req StopRequest) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.PollInterval == 0 {
		req.PollInterval = DefaultPoll
	}
	if req.Timeout == 0 {
		req.Timeout = DefaultTimeout
	}
	rec, err := iv.loadCase(ctx, req.CaseID)
	if err != nil {
		return nil, err
	}
	ws, ok := pick(rec.Manifest, req.WorkspaceID)
	if !ok && req.WorkspaceID == "" {
		// A run that launched a workspace and stopped before recording it
		// left it tagged: find it by its tags.
		ws, ok, err = iv.unrecorded(ctx, req.CaseID)
		if err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, fmt.Errorf("case %s: %w", req.CaseID, ErrNoWorkspace)
	}
	calls := &cloud.CallLog{}
	ctx = cloud.WithCallLog(ctx, calls)
	runCtx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	actor, _ := iv.actor(ctx)
	before, _ := json.Marshal(ws)
	r := runRecord{rec: rec, playbook: PlaybookStop, actor: actor, started: iv.now(), before: before, calls: calls}
	ws.Problems = nil
	job := &stopJob{iv: iv, req: Request{PollInterval: req.PollInterval}, ws: &ws}
	// First the case's evidence: credentials taken from the instance lose
	// it with the policy, before the instance is gone.
	job.revokeAccess(runCtx)
	for i := range ws.Volumes {
		job.removeVolume(runCtx, &ws.Volumes[i])
	}
	job.terminate(runCtx)
	r.problems = ws.Problems
	ws.State = evidence.WorkspaceStopped
	if len(ws.Problems) > 0 {
		ws.State = evidence.WorkspaceStopIncomplete
	} else {
		t := iv.now()
		ws.StoppedAt = &t
	}
	iv.log().Info("investigation workspace stopped", "case_id", req.CaseID, "workspace", ws.ID, "state", ws.State)
	return iv.save(ctx, r, ws), nil
}

// pick is the workspace to stop: the one named, or the newest not stopped.
func pick(m *evidence.Manifest, id string) (evidence.Workspace, bool) {
	if id == "" {
		return active(m)
	}
	for _, ws := range Workspaces(m) {
		if ws.ID == id {
			return ws, true
		}
	}
	return evidence.Workspace{}, false
}

type stopJob struct {
	iv  *Investigator
	req Request
	ws  *evidence.Workspace
}

func (j *stopJob) problem(format string, args ...any) {
	j.ws.Problems = append(j.ws.Problems, fmt.Sprintf(format, args...))
}

// removeVolume detaches and deletes one working volume, after checking it
// is the workspace's: restored from the recorded copy and tagged with the
// workspace. It never touches the copy.
func (j *stopJob) removeVolume(ctx context.Context, v *evidence.WorkVol) {
	if v.VolumeID == "" || v.State == "deleted" {
		return
	}
	got, err := j.iv.readVolume(ctx, v.VolumeID)
	if err != nil {
		j.problem("volume %s: %v", v.VolumeID, err)
		return
	}
	if got == nil {
		v.State = "deleted"
		return
	}
	if !hasTag(got.Tags, TagWorkspaceID, j.ws.ID) || aws.ToString(got.SnapshotId) != v.SnapshotID {
		j.problem("volume %s is not this workspace's (tag %s, restored from %s): left as it is", v.VolumeID, TagWorkspaceID, aws.ToString(got.SnapshotId))
		return
	}
	if err := j.detach(ctx, v, *got); err != nil {
		v.Error = err.Error()
		j.problem("volume %s: %v", v.VolumeID, err)
		return
	}
	if _, err := j.iv.EC2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(v.VolumeID)}); err != nil && !cloud.IsErrorCode(err, "InvalidVolume.NotFound") {
		v.Error = err.Error()
		j.problem("delete %s: %v", v.VolumeID, err)
		return
	}
	// Read back: gone (or deleting, on its way).
	if after, err := j.iv.readVolume(ctx, v.VolumeID); err != nil {
		j.problem("read back %s: %v", v.VolumeID, err)
	} else if after == nil || after.State == types.VolumeStateDeleted {
		v.State, v.Error = "deleted", ""
	} else {
		v.State = string(after.State)
		j.problem("volume %s still %s after DeleteVolume", v.VolumeID, after.State)
	}
}

func (j *stopJob) detach(ctx context.Context, v *evidence.WorkVol, got types.Volume) error {
	if got.State == types.VolumeStateAvailable {
		return nil
	}
	// Named with the instance and device it is attached at: it detaches
	// only from there (moto, unlike AWS, also requires the instance).
	inst, dev := attachedTo(got)
	in := &ec2.DetachVolumeInput{VolumeId: aws.String(v.VolumeID)}
	if inst != "" {
		in.InstanceId, in.Device = aws.String(inst), aws.String(dev)
	}
	if _, err := j.iv.EC2.DetachVolume(ctx, in); err != nil &&
		!cloud.IsErrorCode(err, "IncorrectState") {
		return fmt.Errorf("detach: %w", err)
	}
	return j.iv.waitVolume(ctx, j.req, v, types.VolumeStateAvailable)
}

// terminate ends the analysis instance and waits until it reads back
// terminated.
func (j *stopJob) terminate(ctx context.Context) {
	id := j.ws.InstanceID
	if id == "" {
		return
	}
	_, err := j.iv.EC2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil && !cloud.IsErrorCode(err, "InvalidInstanceID.NotFound") {
		j.problem("terminate %s: %v", id, err)
		return
	}
	err = poll(ctx, j.req.PollInterval, "termination of "+id, func() (bool, error) {
		in, err := j.iv.describeInstance(ctx, id)
		if err != nil {
			return false, err
		}
		j.ws.InstanceState = string(in.State.Name)
		return in.State.Name == types.InstanceStateNameTerminated, nil
	})
	if err != nil {
		j.problem("instance %s not read back terminated: %v", id, err)
	}
}

func hasTag(tags []types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}

// unrecorded rebuilds a workspace the record does not hold from the tags
// of its analysis instance and working volumes.
func (iv *Investigator) unrecorded(ctx context.Context, caseID string) (evidence.Workspace, bool, error) {
	id, err := iv.liveInstance(ctx, caseID)
	if err != nil || id == "" {
		return evidence.Workspace{}, false, err
	}
	in, err := iv.describeInstance(ctx, id)
	if err != nil {
		return evidence.Workspace{}, false, err
	}
	ws := evidence.Workspace{ID: tagValue(in.Tags, TagWorkspaceID), CaseID: caseID, Region: iv.Region, InstanceID: id,
		InstanceState: string(in.State.Name), AMIID: aws.ToString(in.ImageId), InstanceType: string(in.InstanceType),
		SubnetID: aws.ToString(in.SubnetId), Volumes: []evidence.WorkVol{}}
	if !workspacePatten.MatchString(ws.ID) {
		return evidence.Workspace{}, false, fmt.Errorf("instance %s is tagged with case %s but has no valid %s tag: terminate it yourself", id, caseID, TagWorkspaceID)
	}
	if bucket, _ := s3Location(iv.Store.Location(caseID, "")); bucket != "" && in.IamInstanceProfile != nil {
		ws.Access = unrecordedAccess(aws.ToString(in.IamInstanceProfile.Arn), caseID, ws.ID)
	}
	out, err := iv.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagWorkspaceID), Values: []string{ws.ID}},
		{Name: aws.String("tag:" + TagCaseID), Values: []string{caseID}},
	}})
	if err != nil {
		return evidence.Workspace{}, false, fmt.Errorf("find the volumes of workspace %s: %w", ws.ID, err)
	}
	for _, v := range out.Volumes {
		if aws.ToString(v.SnapshotId) == "" {
			continue // the instance's root volume: terminated with it
		}
		_, dev := attachedTo(v)
		ws.Volumes = append(ws.Volumes, evidence.WorkVol{VolumeID: aws.ToString(v.VolumeId), SnapshotID: aws.ToString(v.SnapshotId),
			AvailabilityZone: aws.ToString(v.AvailabilityZone), Device: dev, State: string(v.State)})
	}
	return ws, true, nil
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}
