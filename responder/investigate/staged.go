package investigate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// Phases of a staged start (the Lambda's investigate states): each
// AdvanceStaged call moves through them as far as it can without waiting,
// and returns; the state machine waits between calls, so no invocation
// sleeps for the instance, a volume or an SSM command.
const (
	PhaseLaunch  = "launch"
	PhaseVolumes = "volumes"
	PhaseOnline  = "online"
	PhaseMount   = "mount"
	PhaseFetch   = "fetch"
	PhaseReady   = "ready" // nothing left to do: finish records the workspace
)

// StagedRequest is what a staged start carries of the request (the
// analysis jobs are the CLI's only).
type StagedRequest struct {
	SubnetID         string        `json:"subnet_id"`
	AMIID            string        `json:"ami_id"`
	InstanceType     string        `json:"instance_type"`
	InstanceProfile  string        `json:"instance_profile"`
	AnalysisRole     string        `json:"analysis_role,omitempty"`
	SecurityGroupIDs []string      `json:"security_group_ids"`
	KMSKeyID         string        `json:"kms_key_id"`
	HashDevices      bool          `json:"hash_devices"`
	Timeout          time.Duration `json:"timeout"`
}

func (r StagedRequest) request(caseID string) Request {
	return Request{CaseID: caseID, SubnetID: r.SubnetID, AMIID: r.AMIID, InstanceType: r.InstanceType,
		InstanceProfile: r.InstanceProfile, AnalysisRole: r.AnalysisRole, SecurityGroupIDs: r.SecurityGroupIDs, KMSKeyID: r.KMSKeyID,
		HashDevices: r.HashDevices, Timeout: r.Timeout}
}

// Staged is a workspace being built, as the state machine carries it
// between stages: plain data, a few kilobytes.
type Staged struct {
	Request   StagedRequest      `json:"request"`
	Workspace evidence.Workspace `json:"workspace"`
	Phase     string             `json:"phase"`
	// Command is the SSM command of the mount or fetch phase, once sent.
	Command  *evidence.DocumentRun `json:"command,omitempty"`
	Deadline time.Time             `json:"deadline"`
	Actor    string                `json:"actor"`
}

// Done reports whether nothing is left but to record the workspace.
func (s *Staged) Done() bool { return s.Phase == PhaseReady }

// BeginStaged checks a start as Start does (a case with completed copies,
// no other workspace unless req.New) and records the workspace as
// starting before anything is changed. A retried begin of the same
// execution finds its own starting workspace and carries on with it.
func (iv *Investigator) BeginStaged(ctx context.Context, req Request, actor, execution string) (*Staged, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.Volatility || req.Plaso {
		return nil, &responder.InputError{Err: fmt.Errorf("the analysis jobs run from the CLI only (responder investigate --volatility/--plaso)")}
	}
	req.defaults()
	rec, err := iv.loadCase(ctx, req.CaseID)
	if err != nil {
		return nil, err
	}
	copies := completedCopies(rec.Manifest)
	switch {
	case len(copies) == 0:
		return nil, fmt.Errorf("case %s: %w", req.CaseID, ErrNoCopies)
	case len(copies) > maxVolumes:
		return nil, &responder.InputError{Err: fmt.Errorf("case %s has %d snapshot copies; a workspace attaches at most %d", req.CaseID, len(copies), maxVolumes)}
	}
	staged := StagedRequest{SubnetID: req.SubnetID, AMIID: req.AMIID, InstanceType: req.InstanceType, InstanceProfile: req.InstanceProfile,
		AnalysisRole: req.AnalysisRole, SecurityGroupIDs: req.SecurityGroupIDs, KMSKeyID: req.KMSKeyID, HashDevices: req.HashDevices, Timeout: req.Timeout}
	if ws, ok := active(rec.Manifest); ok {
		if ws.State == evidence.WorkspaceStarting && execution != "" && ws.Execution == execution {
			return iv.resumed(staged, ws, actor), nil
		}
		if !req.New {
			return nil, fmt.Errorf("case %s: %w: %s (instance %s, %s); stop it or ask for another (new)",
				req.CaseID, ErrWorkspaceExists, ws.ID, ws.InstanceID, ws.State)
		}
	}
	if !req.New {
		if id, err := iv.liveInstance(ctx, req.CaseID); err != nil {
			return nil, err
		} else if id != "" {
			return nil, fmt.Errorf("case %s: %w: instance %s is tagged with the case but not in the record; terminate it or ask for another (new)",
				req.CaseID, ErrWorkspaceExists, id)
		}
	}
	if staged.KMSKeyID == "" {
		staged.KMSKeyID = copies[0].KMSKeyID
	}
	_, account := iv.actor(ctx)
	if account == "" {
		account = iv.Account
	}
	ws := evidence.Workspace{
		ID: fmt.Sprintf("ws-%03d", rec.Run), CaseID: req.CaseID, AccountID: account, Region: iv.Region,
		AMIID: req.AMIID, InstanceType: req.InstanceType, SubnetID: req.SubnetID, KMSKeyID: staged.KMSKeyID,
		StartedAt: iv.now(), Run: rec.Run, Volumes: []evidence.WorkVol{}, State: evidence.WorkspaceStarting, Execution: execution,
	}
	for i, c := range copies {
		ws.Volumes = append(ws.Volumes, evidence.WorkVol{SnapshotID: c.SnapshotID, SourceSnapshotID: c.SourceSnapshotID,
			Device: fmt.Sprintf("/dev/sd%c", firstDevice+i), KMSKeyID: staged.KMSKeyID})
	}
	res := iv.save(ctx, iv.stagedRun(rec, actor, ws), ws)
	if res.SaveErr != nil {
		return nil, res.SaveErr
	}
	return iv.resumed(staged, ws, actor), nil
}

func (iv *Investigator) resumed(req StagedRequest, ws evidence.Workspace, actor string) *Staged {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Staged{Request: req, Workspace: ws, Phase: PhaseLaunch, Deadline: ws.StartedAt.Add(timeout), Actor: actor}
}

func (iv *Investigator) stagedRun(rec *evidence.Record, actor string, ws evidence.Workspace) runRecord {
	before, _ := json.Marshal(map[string]string{"workspace_id": ws.ID, "case_id": ws.CaseID})
	return runRecord{rec: rec, playbook: PlaybookStart, actor: actor, started: iv.now(), before: before, calls: &cloud.CallLog{}}
}

// AdvanceStaged moves the workspace through its phases until one has to
// wait (the instance pending, a volume creating or attaching, the agent
// offline, a command running) or it is ready. What fails is a problem of
// the workspace; a wait past the deadline is one too. An error is an AWS
// call that failed: the stage may be retried with the same input.
func (iv *Investigator) AdvanceStaged(ctx context.Context, s *Staged) error {
	j := &startJob{iv: iv, req: s.Request.request(s.Workspace.CaseID), ws: &s.Workspace}
	for !s.Done() {
		waiting, err := iv.phase(ctx, j, s)
		if err != nil {
			return err
		}
		if !waiting {
			continue
		}
		if iv.now().After(s.Deadline) {
			j.problem("%s: gave up waiting at %s (the start's timeout)", s.Phase, s.Deadline.Format(time.RFC3339))
			s.Phase = PhaseReady
		}
		return nil
	}
	return nil
}

// phase does what the current phase can do now; true when it must wait.
func (iv *Investigator) phase(ctx context.Context, j *startJob, s *Staged) (bool, error) {
	switch s.Phase {
	case PhaseLaunch:
		return iv.launchPhase(ctx, j, s)
	case PhaseVolumes:
		return iv.volumesPhase(ctx, j, s)
	case PhaseOnline:
		return iv.onlinePhase(ctx, j, s)
	case PhaseMount, PhaseFetch:
		return iv.commandPhase(ctx, j, s)
	}
	return false, fmt.Errorf("unknown phase %q", s.Phase)
}

func (iv *Investigator) launchPhase(ctx context.Context, j *startJob, s *Staged) (bool, error) {
	if s.Workspace.InstanceID == "" {
		if err := j.runInstance(ctx); err != nil {
			j.problem("analysis instance: %v", err)
			s.Phase = PhaseReady
			return false, nil
		}
	}
	if s.Workspace.Access == nil {
		// Once, right after the launch; a retried stage (the same launch,
		// by its client token) finds the policy as wanted and reads it back.
		j.grantAccess(ctx)
	}
	ok, err := j.running(ctx)
	switch {
	case err != nil && s.Workspace.InstanceState == "":
		return false, err // not read: try again
	case err != nil:
		j.problem("analysis instance: %v", err)
		s.Phase = PhaseReady
	case ok:
		for i := range s.Workspace.Volumes {
			s.Workspace.Volumes[i].AvailabilityZone = s.Workspace.AvailabilityZone
		}
		s.Phase = PhaseVolumes
	}
	return !ok && err == nil, nil
}

func (iv *Investigator) volumesPhase(ctx context.Context, j *startJob, s *Staged) (bool, error) {
	waiting := false
	for i := range s.Workspace.Volumes {
		v := &s.Workspace.Volumes[i]
		if v.Error != "" {
			continue
		}
		w, err := j.volumeStep(ctx, v)
		if err != nil {
			v.Error = err.Error()
			j.problem("volume from %s: %v", v.SnapshotID, err)
			continue
		}
		waiting = waiting || w
	}
	if waiting {
		return true, nil
	}
	j.readBackVolumes(ctx)
	s.Phase = PhaseOnline
	return false, nil
}

// volumeStep moves one working volume on: created, then attached once it
// is available; true while it has to be waited for.
func (j *startJob) volumeStep(ctx context.Context, v *evidence.WorkVol) (bool, error) {
	if v.VolumeID == "" {
		return true, j.createVolume(ctx, v)
	}
	got, err := j.iv.readVolume(ctx, v.VolumeID)
	if err != nil {
		return false, err
	}
	if got == nil {
		return false, fmt.Errorf("volume %s is gone", v.VolumeID)
	}
	v.State, v.Encrypted, v.KMSKeyID = string(got.State), aws.ToBool(got.Encrypted), aws.ToString(got.KmsKeyId)
	switch got.State {
	case types.VolumeStateCreating:
		return true, nil
	case types.VolumeStateAvailable:
		err := j.attach(ctx, v)
		if cloud.IsErrorCode(err, "VolumeInUse", "IncorrectState") {
			err = nil // attached by an earlier attempt of this stage
		}
		return true, err
	case types.VolumeStateInUse:
		return attachedState(*got) != types.VolumeAttachmentStateAttached, nil
	}
	return false, fmt.Errorf("volume %s is %s", v.VolumeID, got.State)
}

func (iv *Investigator) onlinePhase(ctx context.Context, j *startJob, s *Staged) (bool, error) {
	out, err := iv.SSM.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{s.Workspace.InstanceID}}},
	})
	if err != nil {
		return false, fmt.Errorf("describe instance information: %w", err)
	}
	for _, n := range out.InstanceInformationList {
		if aws.ToString(n.InstanceId) == s.Workspace.InstanceID && n.PingStatus == ssmtypes.PingStatusOnline {
			s.Phase = PhaseMount
			return false, nil
		}
	}
	if iv.now().After(s.Deadline) {
		j.problem("the analysis instance is not a managed node, nothing was mounted (check the instance profile, the VPC's ssm, ssmmessages and ec2messages endpoints, and the image's SSM Agent)")
		s.Phase = PhaseReady
		return false, nil
	}
	return true, nil
}

// commandPhase sends the phase's document once, then reads it until it
// ends and records its report.
func (iv *Investigator) commandPhase(ctx context.Context, j *startJob, s *Staged) (bool, error) {
	if s.Command == nil {
		return iv.sendPhase(ctx, j, s)
	}
	done, out, err := j.invocation(ctx, s.Command)
	if !done {
		return err == nil, err
	}
	s.Workspace.Documents = append(s.Workspace.Documents, *s.Command)
	s.Command = nil
	if s.Phase == PhaseMount {
		j.mounted(out, err)
		s.Phase = PhaseFetch
		return false, nil
	}
	if err := iv.withCase(ctx, j); err != nil {
		return false, err
	}
	img, _ := memoryImage(j.m)
	j.fetched(img, out, err)
	s.Phase = PhaseReady
	return false, nil
}

func (iv *Investigator) sendPhase(ctx context.Context, j *startJob, s *Staged) (bool, error) {
	doc, next := ssmdocuments.AnalysisMount, PhaseFetch
	params, ok := j.mountParams()
	if s.Phase == PhaseFetch {
		if err := iv.withCase(ctx, j); err != nil {
			return false, err
		}
		doc, next = ssmdocuments.AnalysisFetch, PhaseReady
		_, params, ok = j.fetchParams()
		if ok && iv.now().Before(iv.accessSettled(&s.Workspace)) {
			return true, nil // the evidence policy settling in IAM
		}
	}
	if !ok {
		s.Phase = next
		return false, nil
	}
	run, err := j.sendDocument(ctx, doc, params)
	if err != nil {
		j.problem("%s: %v", s.Phase, err)
		s.Phase = next
		return false, nil
	}
	s.Command = &run
	return true, nil
}

func (iv *Investigator) withCase(ctx context.Context, j *startJob) error {
	if j.m != nil {
		return nil
	}
	rec, err := iv.loadCase(ctx, j.ws.CaseID)
	if err != nil {
		return err
	}
	j.m = rec.Manifest
	return nil
}

// FinishStaged records the workspace as built: ready only when every part
// was proven, incomplete otherwise; reason is why the states stopped
// early (a stage that failed), a problem too.
func (iv *Investigator) FinishStaged(ctx context.Context, s *Staged, reason string) (*Result, error) {
	rec, err := iv.loadCase(ctx, s.Workspace.CaseID)
	if err != nil {
		return nil, err
	}
	ws := s.Workspace
	if reason != "" {
		ws.Problems = append(ws.Problems, "stopped in phase "+s.Phase+": "+reason)
	} else if !s.Done() {
		ws.Problems = append(ws.Problems, "stopped in phase "+s.Phase)
	}
	if s.Command != nil {
		ws.Documents = append(ws.Documents, *s.Command)
	}
	ws.State = evidence.WorkspaceReady
	if len(ws.Problems) > 0 || ws.InstanceID == "" {
		ws.State = evidence.WorkspaceIncomplete
	}
	r := iv.stagedRun(rec, s.Actor, ws)
	r.problems = ws.Problems
	res := iv.save(ctx, r, ws)
	if res.SaveErr != nil {
		return nil, res.SaveErr
	}
	return res, nil
}
