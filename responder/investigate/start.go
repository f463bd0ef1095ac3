package investigate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// Start builds a workspace for a case: it refuses a case without a
// completed snapshot copy, and a second workspace unless req.New; launches
// the analysis instance, restores one volume per copy in its Availability
// Zone (encrypted), attaches them, mounts them read-only through
// Responder-AnalysisMount (which proves nothing wrote to them) and fetches
// the case's memory image. One volume failing does not stop the others.
// The workspace is recorded as read back; its state is ready only when
// every part was proven. It returns an error only when it could not start.
func (iv *Investigator) Start(ctx context.Context, req Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	req.defaults()
	rec, err := iv.loadCase(ctx, req.CaseID)
	if err != nil {
		return nil, err
	}
	m := rec.Manifest
	copies := completedCopies(m)
	switch {
	case len(copies) == 0:
		return nil, fmt.Errorf("case %s: %w", req.CaseID, ErrNoCopies)
	case len(copies) > maxVolumes:
		return nil, &responder.InputError{Err: fmt.Errorf("case %s has %d snapshot copies; a workspace attaches at most %d", req.CaseID, len(copies), maxVolumes)}
	}
	if ws, ok := active(m); ok && !req.New {
		return nil, fmt.Errorf("case %s: %w: %s (instance %s, %s); stop it (--stop) or ask for another (--new)",
			req.CaseID, ErrWorkspaceExists, ws.ID, ws.InstanceID, ws.State)
	}
	if !req.New {
		if id, err := iv.liveInstance(ctx, req.CaseID); err != nil {
			return nil, err
		} else if id != "" {
			return nil, fmt.Errorf("case %s: %w: instance %s is tagged with the case but not in the record (an interrupted run?); terminate it or ask for another (--new)",
				req.CaseID, ErrWorkspaceExists, id)
		}
	}
	if req.KMSKeyID == "" {
		req.KMSKeyID = copies[0].KMSKeyID
	}

	calls := &cloud.CallLog{}
	ctx = cloud.WithCallLog(ctx, calls)
	runCtx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	actor, account := iv.actor(ctx)
	if account == "" {
		account = iv.Account
	}
	ws := evidence.Workspace{
		ID: "ws-" + fmt.Sprintf("%03d", rec.Run), CaseID: req.CaseID, AccountID: account, Region: iv.Region,
		AMIID: req.AMIID, InstanceType: req.InstanceType, SubnetID: req.SubnetID, KMSKeyID: req.KMSKeyID,
		StartedAt: iv.now(), Run: rec.Run, Volumes: []evidence.WorkVol{},
	}
	before, _ := json.Marshal(map[string]string{"workspace_id": ws.ID, "case_id": req.CaseID})
	r := runRecord{rec: rec, playbook: PlaybookStart, actor: actor, started: ws.StartedAt, before: before, calls: calls}
	job := &startJob{iv: iv, req: req, ws: &ws, m: m}
	job.build(runCtx, copies)
	r.problems, r.artifacts = ws.Problems, job.artifacts
	ws.State = evidence.WorkspaceReady
	if len(ws.Problems) > 0 {
		ws.State = evidence.WorkspaceIncomplete
	}
	iv.log().Info("investigation workspace", "case_id", req.CaseID, "workspace", ws.ID, "state", ws.State)
	return iv.save(ctx, r, ws), nil
}

// startJob is one Start's shared state.
type startJob struct {
	iv  *Investigator
	req Request
	ws  *evidence.Workspace
	m   *evidence.Manifest
	// artifacts are the analysis outputs, recorded with the run.
	artifacts []evidence.Artifact
}

func (j *startJob) problem(format string, args ...any) {
	j.ws.Problems = append(j.ws.Problems, fmt.Sprintf(format, args...))
}

// build does the work; what fails is a problem of the workspace.
func (j *startJob) build(ctx context.Context, copies []evidence.SnapshotCopy) {
	if err := j.runInstance(ctx); err != nil {
		j.problem("analysis instance: %v", err)
		return
	}
	// Before anything on the instance needs it: the instance's own
	// evidence policy.
	j.grantAccess(ctx)
	if err := j.waitRunning(ctx); err != nil {
		j.problem("analysis instance: %v", err)
		return
	}
	for i, c := range copies {
		j.ws.Volumes = append(j.ws.Volumes, j.volume(ctx, c, fmt.Sprintf("/dev/sd%c", firstDevice+i)))
	}
	j.readBackVolumes(ctx)
	if !j.online(ctx) {
		return
	}
	j.mount(ctx)
	j.fetchMemory(ctx)
	j.jobs(ctx)
}

// liveInstance finds an analysis instance of the case that is not
// terminated (a run that launched it and did not record it).
func (iv *Investigator) liveInstance(ctx context.Context, caseID string) (string, error) {
	out, err := iv.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagCaseID), Values: []string{caseID}},
		{Name: aws.String("tag:" + TagRole), Values: []string{RoleAnalysis}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	if err != nil {
		return "", fmt.Errorf("look for an analysis instance of case %s: %w", caseID, err)
	}
	for _, r := range out.Reservations {
		if len(r.Instances) > 0 {
			return aws.ToString(r.Instances[0].InstanceId), nil
		}
	}
	return "", nil
}

func (j *startJob) tags(rt types.ResourceType, name string) types.TagSpecification {
	return types.TagSpecification{ResourceType: rt, Tags: []types.Tag{
		{Key: aws.String(TagCaseID), Value: aws.String(j.req.CaseID)},
		{Key: aws.String(TagWorkspaceID), Value: aws.String(j.ws.ID)},
		{Key: aws.String(TagRole), Value: aws.String(RoleAnalysis)},
		{Key: aws.String("Name"), Value: aws.String(name)},
	}}
}

// runInstance launches the analysis instance (IMDSv2 only, tagged with the
// case; the client token makes a retried launch the same instance).
func (j *startJob) runInstance(ctx context.Context) error {
	profile := &types.IamInstanceProfileSpecification{Name: aws.String(j.req.InstanceProfile)}
	if strings.HasPrefix(j.req.InstanceProfile, "arn:") {
		profile = &types.IamInstanceProfileSpecification{Arn: aws.String(j.req.InstanceProfile)}
	}
	name := j.req.CaseID + " analysis " + j.ws.ID
	out, err := j.iv.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(j.req.AMIID), InstanceType: types.InstanceType(j.req.InstanceType),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(j.req.SubnetID),
		SecurityGroupIds: j.req.SecurityGroupIDs, IamInstanceProfile: profile,
		ClientToken: clientToken(j.req.CaseID, j.ws.ID),
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens: types.HttpTokensStateRequired, HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
		},
		TagSpecifications: []types.TagSpecification{j.tags(types.ResourceTypeInstance, name), j.tags(types.ResourceTypeVolume, name+" root")},
	})
	if err != nil {
		return fmt.Errorf("launch from %s in %s: %w", j.req.AMIID, j.req.SubnetID, err)
	}
	if len(out.Instances) == 0 {
		return fmt.Errorf("launch from %s: no instance in the answer", j.req.AMIID)
	}
	j.ws.InstanceID = aws.ToString(out.Instances[0].InstanceId)
	if j.ws.AccountID == "" {
		j.ws.AccountID = aws.ToString(out.OwnerId)
	}
	return nil
}

// waitRunning waits until the analysis instance runs.
func (j *startJob) waitRunning(ctx context.Context) error {
	return poll(ctx, j.req.PollInterval, "instance "+j.ws.InstanceID, func() (bool, error) { return j.running(ctx) })
}

// running reads the instance once: true when it runs (its Availability
// Zone is then the workspace's), false while pending, an error otherwise.
func (j *startJob) running(ctx context.Context) (bool, error) {
	in, err := j.iv.describeInstance(ctx, j.ws.InstanceID)
	if err != nil {
		return false, err
	}
	j.ws.InstanceState = string(in.State.Name)
	if in.Placement != nil {
		j.ws.AvailabilityZone = aws.ToString(in.Placement.AvailabilityZone)
	}
	switch in.State.Name {
	case types.InstanceStateNameRunning:
		return true, nil
	case types.InstanceStateNamePending:
		return false, nil
	}
	return false, fmt.Errorf("instance %s is %s", j.ws.InstanceID, in.State.Name)
}

// clientToken makes an EC2 idempotency token (at most 64 ASCII
// characters) from what identifies a request: a retried call with it makes
// no second resource.
func clientToken(parts ...string) *string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return aws.String(hex.EncodeToString(sum[:]))
}

func (iv *Investigator) describeInstance(ctx context.Context, id string) (types.Instance, error) {
	out, err := iv.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return types.Instance{}, fmt.Errorf("describe %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		if len(r.Instances) > 0 {
			in := r.Instances[0]
			if in.State == nil {
				in.State = &types.InstanceState{}
			}
			return in, nil
		}
	}
	return types.Instance{}, fmt.Errorf("instance %s not found", id)
}
