package step

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/responder-ir/responder/responder/evidence"
)

type nodeAPI interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

type forensicProfileAPI interface {
	DescribeIamInstanceProfileAssociations(context.Context, *ec2.DescribeIamInstanceProfileAssociationsInput, ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	AssociateIamInstanceProfile(context.Context, *ec2.AssociateIamInstanceProfileInput, ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error)
}

// SSMAccess makes sure Systems Manager can run commands on the instance
// before the collection steps start. It asks SSM whether the instance is a
// managed node that is online (DescribeInstanceInformation). When the
// instance has no instance profile (it never had one, or containment removed
// it), it associates the minimal forensic instance profile of the
// member-account stack, so that the SSM Agent gets credentials to register,
// and waits for the node to come online, within RegistrationTimeout.
// forensic-access-close removes that profile when the collection is over.
//
// It does not replace an instance profile the instance has: when that one
// does not let the agent register, the collection cannot run (the collect
// playbook removes the profile first, as containment).
type SSMAccess struct{}

func (SSMAccess) Name() string    { return "ssm-access" }
func (SSMAccess) Phase() Phase    { return Collect }
func (SSMAccess) Needs() []string { return []string{"metadata:read", "snapshots"} }

// Timeout covers the wait for registration.
func (SSMAccess) Timeout(env *Env) time.Duration {
	return env.Collection.RegistrationTimeout.Or(DefaultRegistrationTimeout) + 2*time.Minute
}

// DefaultRegistrationTimeout bounds the wait for the agent to come online
// after the forensic profile is associated.
const DefaultRegistrationTimeout = 10 * time.Minute

type ssmAccessState struct {
	Node     *SSMNode             `json:"managed_node,omitempty"` // nil: not a managed node
	Profiles []ProfileAssociation `json:"instance_profiles"`
	// Isolation says how this run left the interfaces before the
	// collection: "forensic-access", "closed" or "" (not isolated).
	Isolation string `json:"isolation,omitempty"`
	// ForensicProfile is the association this step made.
	ForensicProfile *ProfileAssociation `json:"forensic_profile,omitempty"`
	WaitedSeconds   float64             `json:"waited_seconds,omitempty"`
}

func (s SSMAccess) Run(ctx context.Context, env *Env) Result {
	if env.Stage.Name != "" {
		return s.accessStage(ctx, env)
	}
	if env.Collection.Order == CaptureFirst {
		env.setCollectionDeadline(env.now().Add(time.Duration(env.Collection.CaptureTimeout.Or(DefaultCaptureTimeout))))
	}
	res := s.run(ctx, env)
	if node, _ := env.ssmNode(); node == nil {
		reason := res.Reason
		if res.Err != nil {
			reason = res.Err.Error()
		}
		env.setNode(nil, "ssm-access: "+reason)
	}
	return res
}

// run looks at the instance (is it a managed node, what profile has it),
// decides whether it needs the forensic profile, and connects it: associate
// the profile, wait for the node to come online.
func (s SSMAccess) run(ctx context.Context, env *Env) Result {
	if env.Clients.SSM == nil {
		return Failed(errors.New("no SSM client: OS-level collection is not configured"), nil)
	}
	before := ssmAccessState{Isolation: s.isolation(env)}
	if before.Isolation == "closed" {
		return Failed(errors.New("the instance is in the closed quarantine group (its VPC lacks the SSM and S3 endpoints a forensic access group needs), "+
			"so SSM cannot reach it: OS-level evidence is not collected. The collect-before-isolate playbook collects first, at the cost of leaving the network open meanwhile"), before)
	}
	id := env.Target.InstanceID()
	node, err := describeNode(ctx, env.Clients.SSM, id)
	if err != nil {
		return Failed(err, before)
	}
	before.Node = node
	before.Profiles, err = associatedProfiles(ctx, env.Clients.EC2, id)
	if err != nil {
		return Failed(err, before)
	}
	online := node != nil && node.PingStatus == string(ssmtypes.PingStatusOnline)
	attach, err := s.mustAttach(env, before, online)
	if err != nil {
		return Failed(err, before)
	}
	if env.Target.DryRun {
		if attach {
			return Skipped(fmt.Sprintf("dry run: %s is %s; would associate %s and wait up to %s for the SSM Agent (AssociateIamInstanceProfile has no DryRun check)",
				id, nodeState(node), env.Collection.ForensicProfileARN, env.Collection.RegistrationTimeout.Or(DefaultRegistrationTimeout)), before)
		}
		return Skipped(fmt.Sprintf("dry run: %s is %s", id, nodeState(node)), before)
	}
	return s.connect(ctx, env, before, attach, online)
}

// mustAttach decides whether the forensic profile must be associated, or
// says why SSM cannot run commands on the instance.
func (SSMAccess) mustAttach(env *Env, before ssmAccessState, online bool) (bool, error) {
	id, forensicARN := env.Target.InstanceID(), env.Collection.ForensicProfileARN
	switch {
	case len(before.Profiles) > 0 && online:
	case len(before.Profiles) > 0 && before.Profiles[0].ProfileARN == forensicARN:
		// Associated by an earlier run of the case: wait for it.
	case len(before.Profiles) > 0:
		return false, fmt.Errorf("%s has instance profile %s but is %s: SSM cannot run commands on it (its role may lack SSM permissions, or the agent is not running). "+
			"The forensic profile is associated only to an instance without a profile; the collect playbook removes the profile first",
			id, before.Profiles[0].ProfileARN, nodeState(before.Node))
	case forensicARN == "" && online:
		// Online without a profile (Default Host Management Configuration,
		// or credentials still cached after containment removed the
		// profile): nothing to associate.
	case forensicARN == "":
		return false, fmt.Errorf("%s is %s and has no instance profile, and no forensic instance profile is configured (--forensic-profile, the member-account stack's ForensicInstanceProfileArn)",
			id, nodeState(before.Node))
	default:
		// No profile: give the agent credentials that outlast the run. When
		// containment has just removed the instance's profile, the agent is
		// still online on cached credentials that will not be renewed.
		return true, nil
	}
	return false, nil
}

// connect associates the forensic profile (attach) and waits for the node
// to come online (unless it is), then tells the collection steps the node
// is ready.
func (s SSMAccess) connect(ctx context.Context, env *Env, before ssmAccessState, attach, online bool) Result {
	id, forensicARN := env.Target.InstanceID(), env.Collection.ForensicProfileARN
	after, node := before, before.Node
	if attach {
		a, err := associateProfile(ctx, env.Clients.EC2, id, forensicARN)
		if err != nil {
			return Failed(err, before)
		}
		after.ForensicProfile, after.Profiles = a, []ProfileAssociation{*a}
	}
	if !online {
		start := env.now()
		bound := time.Duration(env.Collection.RegistrationTimeout.Or(DefaultRegistrationTimeout))
		var err error
		node, err = waitOnline(ctx, env, env.Clients.SSM, id, start.Add(bound))
		after.Node, after.WaitedSeconds = node, env.now().Sub(start).Seconds()
		if err != nil {
			res := Failed(fmt.Errorf("%w (the forensic profile stays associated until forensic-access-close removes it)", err), before)
			res.After = after
			return res
		}
	}
	env.setNode(node, "")
	what := fmt.Sprintf("%s is an online managed node (%s %s, agent %s)", id, node.PlatformType, node.PlatformName, node.AgentVersion)
	if attach {
		what += "; associated forensic profile " + forensicARN
	}
	if after.WaitedSeconds > 0 {
		what += fmt.Sprintf("; online after %.0f s", after.WaitedSeconds)
	}
	if attach || after.WaitedSeconds > 0 {
		return OK(what, before, after)
	}
	return Skipped(what+": nothing to change", before)
}

// associateProfile associates the forensic instance profile with the
// instance.
func associateProfile(ctx context.Context, api forensicProfileAPI, id, profileARN string) (*ProfileAssociation, error) {
	out, err := api.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId:         aws.String(id),
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(profileARN)},
	})
	if err != nil {
		return nil, fmt.Errorf("associate forensic profile %s with %s: %w", profileARN, id, err)
	}
	a := out.IamInstanceProfileAssociation
	return &ProfileAssociation{AssociationID: aws.ToString(a.AssociationId), ProfileARN: profileARN, State: string(a.State)}, nil
}

// isolation says how this run isolated the interfaces: "closed" when the
// quarantine step put at least one, and none into a forensic access group.
func (SSMAccess) isolation(env *Env) string {
	quarantined := false
	for _, r := range env.Finished() {
		if r.Name == quarantineStep && r.Status == evidence.StatusOK {
			quarantined = true
		}
	}
	if !quarantined {
		return ""
	}
	if len(env.forensicInterfaces()) > 0 {
		return "forensic-access"
	}
	return "closed"
}

func describeNode(ctx context.Context, api nodeAPI, id string) (*SSMNode, error) {
	out, err := api.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}},
	})
	if err != nil {
		return nil, fmt.Errorf("ask SSM about %s (DescribeInstanceInformation): %w", id, err)
	}
	for _, info := range out.InstanceInformationList {
		if aws.ToString(info.InstanceId) == id {
			return &SSMNode{
				PingStatus: string(info.PingStatus), PlatformType: string(info.PlatformType),
				PlatformName: aws.ToString(info.PlatformName), AgentVersion: aws.ToString(info.AgentVersion),
				IAMRole: aws.ToString(info.IamRole),
			}, nil
		}
	}
	return nil, nil
}

// waitOnline polls SSM until the node is online or the deadline passes.
func waitOnline(ctx context.Context, env *Env, api nodeAPI, id string, deadline time.Time) (*SSMNode, error) {
	poll := time.Duration(env.Collection.PollInterval.Or(5 * time.Second))
	if d := env.collectionDeadline(); !d.IsZero() && d.Before(deadline) {
		deadline = d
	}
	var node *SSMNode
	for {
		var err error
		node, err = describeNode(ctx, api, id)
		if err != nil && ctx.Err() == nil {
			return node, err
		}
		if node != nil && node.PingStatus == string(ssmtypes.PingStatusOnline) {
			return node, nil
		}
		env.progress(ctx, "waiting for the SSM Agent of "+id+" ("+nodeState(node)+"); gives up at "+deadline.UTC().Format(time.TimeOnly)+" UTC (registration_timeout)", 0, 0)
		if ctx.Err() != nil || !env.now().Before(deadline) {
			return node, fmt.Errorf("%s did not come online in SSM by %s (last seen: %s)", id, deadline.Format(time.RFC3339), nodeState(node))
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

func nodeState(n *SSMNode) string {
	if n == nil {
		return "not a managed node"
	}
	return "a managed node with ping status " + strings.TrimSpace(n.PingStatus)
}

// Describe: the managed node and profiles are shown as recorded. The step
// opens the way for the collection steps and stores no evidence itself.
func (s SSMAccess) Describe() Description {
	d := RawState(s.Name())
	d.OnFailure = "Systems Manager could not run commands on the instance (see the error): no memory image and no " +
		"volatile data were collected. Memory is lost when the instance stops; if it still runs, fix access " +
		"(the forensic profile, the VPC endpoints) and respond again with the same case ID."
	d.NoEvidence = true
	return d
}
