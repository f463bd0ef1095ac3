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
)

// QuarantineGroup finds, for every VPC the instance has an interface in, the
// quarantine security group (tagged responder:quarantine=true) and makes sure
// it has no ingress and no egress rule; it creates the group when the VPC has
// none. It changes nothing on the instance, so it runs while evidence is
// acquired, and the quarantine step needs only to swap groups.
type QuarantineGroup struct{}

func (QuarantineGroup) Name() string    { return "quarantine-group" }
func (QuarantineGroup) Phase() Phase    { return Contain }
func (QuarantineGroup) Needs() []string { return nil }

// QuarantineGroupName is the name of the quarantine group of a VPC.
func QuarantineGroupName(vpcID string) string { return "responder-quarantine-" + vpcID }

// quarantineGroup is the quarantine group of a VPC: no rule at all.
var quarantineGroup = caseGroup{kind: "quarantine group", tagValue: "true", name: QuarantineGroupName,
	description: "responder quarantine: no ingress, no egress. Do not add rules."}

type groupState struct {
	VPC       string   `json:"vpc_id"`
	GroupID   string   `json:"group_id,omitempty"`
	Created   bool     `json:"created,omitempty"`
	RulesSeen []string `json:"rules_found,omitempty"`
}

func (s QuarantineGroup) Run(ctx context.Context, env *Env) Result {
	var api quarantineGroupAPI = env.Clients.EC2
	vpcs := instanceVPCs(env.Target.Instance)
	if len(vpcs) == 0 {
		return Skipped("the instance is in no VPC", nil)
	}
	var (
		before, after []groupState
		done          []string
		errs          *multierror.Error
	)
	for _, vpc := range vpcs {
		b, a, what, err := s.ensure(ctx, api, env, vpc)
		before, after = append(before, b), append(after, a)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("VPC %s: %w", vpc, err))
			continue
		}
		done = append(done, what)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return Failed(err, before)
	}
	return OK(strings.Join(done, "; "), before, after)
}

// ensure prepares the quarantine group of one VPC and says what it did.
func (s QuarantineGroup) ensure(ctx context.Context, api quarantineGroupAPI, env *Env, vpc string) (before, after groupState, what string, err error) {
	before = groupState{VPC: vpc}
	g, err := env.findCaseGroup(ctx, api, vpc, "true")
	if err != nil {
		return before, before, "", fmt.Errorf("find quarantine group: %w", err)
	}
	if g == nil {
		if env.Target.DryRun {
			_, err := api.CreateSecurityGroup(ctx, quarantineGroup.createInput(env, vpc, QuarantineGroupName(vpc), true))
			r := dryRun(err, "create quarantine group "+QuarantineGroupName(vpc), nil)
			if r.Err != nil {
				return before, before, "", r.Err
			}
			return before, before, r.Reason, nil
		}
		id, created, err := quarantineGroup.create(ctx, api, env, vpc)
		if err != nil {
			return before, before, "", err
		}
		// Describe the new group: revoke whatever rule AWS added by default
		// (the all-traffic egress rule, for IPv4 and, in a dual-stack VPC, IPv6),
		// or, for a group another response just made, whatever it has not
		// revoked yet.
		if g, err = describeNewGroup(ctx, api, id); err != nil {
			return before, before, "", err
		}
		if err := revokeAll(ctx, api, *g, false); err != nil {
			return before, groupState{VPC: vpc, GroupID: id, Created: created}, "", err
		}
		env.SetQuarantineGroup(vpc, id)
		return before, groupState{VPC: vpc, GroupID: id, Created: created},
			fmt.Sprintf("created %s in %s without rules", id, vpc), nil
	}
	id := aws.ToString(g.GroupId)
	before.GroupID = id
	before.RulesSeen = describeRules(*g)
	env.SetQuarantineGroup(vpc, id)
	if len(before.RulesSeen) == 0 {
		return before, before, fmt.Sprintf("reusing %s in %s (no rules)", id, vpc), nil
	}
	// Someone added rules to the quarantine group: a quarantine group must
	// have none.
	if err := revokeAll(ctx, api, *g, env.Target.DryRun); err != nil {
		return before, before, "", err
	}
	if env.Target.DryRun {
		return before, before, fmt.Sprintf("dry run: would revoke %d rule(s) from %s", len(before.RulesSeen), id), nil
	}
	return before, groupState{VPC: vpc, GroupID: id}, fmt.Sprintf("reusing %s in %s; revoked %d rule(s) found on it", id, vpc, len(before.RulesSeen)), nil
}

// revokeAll removes every ingress and egress rule of a group.
func revokeAll(ctx context.Context, api quarantineGroupAPI, g types.SecurityGroup, dryRun bool) error {
	var errs *multierror.Error
	if len(g.IpPermissionsEgress) > 0 {
		_, err := api.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: g.IpPermissionsEgress, DryRun: aws.Bool(dryRun)})
		if err != nil && !ignorableRevokeError(err, dryRun) {
			errs = multierror.Append(errs, fmt.Errorf("revoke egress rules of %s: %w", aws.ToString(g.GroupId), err))
		}
	}
	if len(g.IpPermissions) > 0 {
		_, err := api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: g.IpPermissions, DryRun: aws.Bool(dryRun)})
		if err != nil && !ignorableRevokeError(err, dryRun) {
			errs = multierror.Append(errs, fmt.Errorf("revoke ingress rules of %s: %w", aws.ToString(g.GroupId), err))
		}
	}
	return errs.ErrorOrNil()
}

// Describe: the quarantine group of each VPC and the rules it had.
func (QuarantineGroup) Describe() Description {
	return Description{
		Aspect: "Quarantine security group of the VPC",
		View:   viewQuarantineGroups,
		Order:  20,
		OnFailure: "No quarantine security group was ready, so the interfaces were not moved into one: " +
			"the instance may still be reachable and may still reach out.",
	}
}

// viewQuarantineGroups reads the groupState of each VPC.
func viewQuarantineGroups(raw json.RawMessage, _ string) ([]SubjectState, error) {
	var v []groupState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []SubjectState
	for _, g := range v {
		out = append(out, SubjectState{Subject: g.VPC, Text: g.inWords()})
	}
	return out, nil
}

// inWords says what the group of one VPC was.
func (g groupState) inWords() string {
	switch {
	case g.GroupID == "":
		return "none"
	case len(g.RulesSeen) > 0:
		return g.GroupID + " with rules: " + strings.Join(g.RulesSeen, "; ")
	case g.Created:
		return g.GroupID + ", no rules (created for this case)"
	}
	return g.GroupID + ", no rules"
}
