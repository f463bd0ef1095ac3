package step

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

type profileAPI interface {
	DescribeIamInstanceProfileAssociations(context.Context, *ec2.DescribeIamInstanceProfileAssociationsInput, ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	DisassociateIamInstanceProfile(context.Context, *ec2.DisassociateIamInstanceProfileInput, ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error)
	AssociateIamInstanceProfile(context.Context, *ec2.AssociateIamInstanceProfileInput, ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error)
}

// InstanceProfile removes the instance profile, so that the instance gets no
// new role credentials. Credentials already delivered stay valid until they
// expire: revoking them is a separate step.
type InstanceProfile struct{}

func (InstanceProfile) Name() string    { return "instance-profile" }
func (InstanceProfile) Phase() Phase    { return Contain }
func (InstanceProfile) Needs() []string { return []string{"metadata:read", "snapshots"} }
func (InstanceProfile) Isolates() bool  { return true }

type profileState struct {
	Associations []ProfileAssociation `json:"associations"`
	// NeedsReleaseRole is, in the after of a release that could not pass
	// the profile's role, what a person runs with the release role.
	NeedsReleaseRole *ReleaseRoleAction `json:"needs_release_role,omitempty"`
}

// ReleaseRoleAction is the association a release left to a person with the
// member stack's release role (cloudformation/README.md "Release"):
// associating a profile passes its role, which the automation may not.
type ReleaseRoleAction struct {
	InstanceProfileARN string `json:"instance_profile_arn"`
	// Command is the AWS CLI command that restores it, run with the release
	// role's credentials; a release run afterwards finds it done.
	Command string `json:"command"`
}

// restoreProfileCommand is the AWS CLI command that associates a profile.
func restoreProfileCommand(region, instanceID, profileARN string) string {
	cmd := "aws ec2 associate-iam-instance-profile"
	if region != "" {
		cmd += " --region " + region
	}
	return cmd + " --instance-id " + instanceID + " --iam-instance-profile Arn=" + profileARN
}

func (s InstanceProfile) Run(ctx context.Context, env *Env) Result {
	var api profileAPI = env.Clients.EC2
	id := env.Target.InstanceID()
	out, err := api.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{Filters: instanceFilter(id)})
	if err != nil {
		return Failed(fmt.Errorf("list instance profile associations of %s: %w", id, err), nil)
	}
	var before profileState
	for _, a := range out.IamInstanceProfileAssociations {
		if a.State != types.IamInstanceProfileAssociationStateAssociated && a.State != types.IamInstanceProfileAssociationStateAssociating {
			continue
		}
		pa := ProfileAssociation{AssociationID: aws.ToString(a.AssociationId), State: string(a.State)}
		if a.IamInstanceProfile != nil {
			pa.ProfileARN, pa.ProfileID = aws.ToString(a.IamInstanceProfile.Arn), aws.ToString(a.IamInstanceProfile.Id)
		}
		before.Associations = append(before.Associations, pa)
	}
	if len(before.Associations) == 0 {
		return Skipped("no instance profile is associated", before).Held(true)
	}
	var arns []string
	for _, a := range before.Associations {
		arns = append(arns, a.ProfileARN)
	}
	if env.Target.DryRun {
		// DisassociateIamInstanceProfile has no DryRun parameter.
		return Skipped("dry run: would remove instance profile "+strings.Join(arns, ", ")+" (this call has no DryRun permission check)", before).Unchecked()
	}
	var errs *multierror.Error
	for _, a := range before.Associations {
		if _, err := api.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(a.AssociationID)}); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("disassociate %s (%s): %w", a.AssociationID, a.ProfileARN, err))
		}
	}
	res := OK("removed instance profile "+strings.Join(arns, ", ")+"; credentials already on the instance stay valid until they expire, unless revoked (credential-revocation)",
		before, profileState{})
	if err := errs.ErrorOrNil(); err != nil {
		res = Failed(err, before)
	}
	return s.readBack(ctx, api, id, res)
}

// readBack lists the instance's associations again: the removal holds only
// when none is associated or associating (one disassociating is on its way
// out, and serves no new credentials). The after becomes what was read.
func (InstanceProfile) readBack(ctx context.Context, api profileAPI, id string, res Result) Result {
	left, err := associatedProfiles(ctx, api, id)
	if err != nil {
		return failWith(res, fmt.Errorf("read back: %w", err)).Unchecked()
	}
	res.After = profileState{Associations: left}
	if len(left) > 0 {
		var arns []string
		for _, a := range left {
			arns = append(arns, a.inWords())
		}
		return failWith(res, fmt.Errorf("read back: still associated: %s", strings.Join(arns, ", "))).Held(false)
	}
	return res.Held(res.Status != evidence.StatusFailed)
}

// Release associates the instance profile found before again, and reads
// the association back. It refuses when another profile is associated
// since: the instance changed in a way the record cannot speak for.
func (s InstanceProfile) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var api profileAPI = env.Clients.EC2
	var before profileState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	if len(before.Associations) == 0 {
		return Skipped("no instance profile was associated before the response", before)
	}
	id := env.Target.InstanceID()
	// An instance has at most one association at a time.
	a := before.Associations[0]
	now, err := associatedProfiles(ctx, api, id)
	if err != nil {
		return Failed(err, before).Unchecked()
	}
	for _, n := range now {
		if n.ProfileARN == a.ProfileARN {
			r := Skipped("instance profile "+a.ProfileARN+" is associated already", before)
			r.After = profileState{Associations: now}
			return r.Held(true)
		}
	}
	if len(now) > 0 {
		return Failed(fmt.Errorf("refused: %s has instance profile %s associated since the response, not %s as recorded before it",
			id, now[0].ProfileARN, a.ProfileARN), before).Held(false)
	}
	if env.Target.CannotPassRoles {
		return s.leaveToReleaseRole(env, before, now, a)
	}
	if env.Target.DryRun {
		return Skipped("dry run: would associate "+a.ProfileARN+" again (this call has no DryRun permission check)", before)
	}
	if _, err := api.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId:         &id,
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(a.ProfileARN)},
	}); err != nil {
		err = fmt.Errorf("associate %s with %s: %w", a.ProfileARN, id, err)
		if cloud.IsErrorCode(err, "AccessDenied", "UnauthorizedOperation") {
			// The member role passes no instance role but the forensic one.
			err = fmt.Errorf("%w; associating a profile passes its role (iam:PassRole), which the member role may not: "+
				"associate it with the release role (<MemberRoleName>-release, cloudformation/README.md \"Release\"), then release again", err)
		}
		return Failed(err, before).Held(false)
	}
	got, err := associatedProfiles(ctx, api, id)
	if err != nil {
		return Failed(fmt.Errorf("read back: %w", err), before).Unchecked()
	}
	res := OK("associated instance profile "+a.ProfileARN+" again", before, profileState{Associations: got})
	if len(got) != 1 || got[0].ProfileARN != a.ProfileARN {
		return failWith(res, fmt.Errorf("accepted, but read back: associated %v, want %s", got, a.ProfileARN)).Held(false)
	}
	return res.Held(true)
}

// leaveToReleaseRole records, without calling AWS, that the profile is not
// restored because these credentials may not pass its role, and the command
// a person runs with the release role: the release does not hold.
func (InstanceProfile) leaveToReleaseRole(env *Env, before profileState, now []ProfileAssociation, a ProfileAssociation) Result {
	id := env.Target.InstanceID()
	act := &ReleaseRoleAction{InstanceProfileARN: a.ProfileARN, Command: restoreProfileCommand(env.Target.Region, id, a.ProfileARN)}
	r := Failed(fmt.Errorf("not restored: associating instance profile %s passes its role (iam:PassRole), which this automation may not; "+
		"with the member stack's release role (<MemberRoleName>-release, cloudformation/README.md \"Release\") run: %s; then release again",
		a.ProfileARN, act.Command), before)
	r.After = profileState{Associations: now, NeedsReleaseRole: act}
	return r.Held(false)
}

// Describe: the instance profile associations of the instance.
func (InstanceProfile) Describe() Description {
	return Description{
		Aspect: "Instance profile (role credentials)",
		View:   viewInstanceProfile,
		Order:  30,
		OnFailure: "The instance profile may still be attached: code on the instance can keep getting " +
			"fresh credentials for its role and act in the account with the role's permissions. Credentials " +
			"delivered after the response are not revoked by credential-revocation, which denies only those issued before it.",
	}
}

// viewInstanceProfile reads a profileState: each association's profile,
// with its ID and state.
func viewInstanceProfile(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	var v profileState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var items []string
	for _, a := range v.Associations {
		items = append(items, a.inWords())
	}
	return []SubjectState{{Subject: instanceID, Text: joinOr(items, "none")}}, nil
}

// inWords says an association in words: the profile ARN (association ID,
// state).
func (a ProfileAssociation) inWords() string {
	var extra []string
	if a.AssociationID != "" {
		extra = append(extra, a.AssociationID)
	}
	if a.State != "" {
		extra = append(extra, a.State)
	}
	if len(extra) == 0 {
		return a.ProfileARN
	}
	return a.ProfileARN + " (" + strings.Join(extra, ", ") + ")"
}
