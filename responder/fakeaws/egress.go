package fakeaws

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxRulesPerDirection is AWS's default quota of inbound (and, separately,
// outbound) rules per security group.
const maxRulesPerDirection = 60

// AuthorizeSecurityGroupEgress adds outbound rules, given as IpPermissions
// with IpRanges (IPv4 CIDRs), Ipv6Ranges, PrefixListIds (the Region's
// AWS-managed lists, see DescribePrefixLists) or UserIdGroupPairs (a group of
// the same VPC). Like AWS it refuses a rule the group already has
// (InvalidPermission.Duplicate), an unknown group (InvalidGroup.NotFound) or
// prefix list (InvalidPrefixListId.NotFound), a malformed CIDR or port range
// (InvalidParameterValue), and more than 60 outbound rules
// (RulesPerSecurityGroupLimitExceeded); nothing is added unless every rule
// is valid. It answers the new rules with their IDs. The rules show in
// DescribeSecurityGroups (IpPermissionsEgress) and RevokeSecurityGroupEgress
// removes them. The top-level CidrIp/IpProtocol/port form and tags on rules
// are not modelled.
func (e *EC2) AuthorizeSecurityGroupEgress(ctx context.Context, in *ec2.AuthorizeSecurityGroupEgressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error) {
	if in == nil {
		in = &ec2.AuthorizeSecurityGroupEgressInput{}
	}
	c := e.c
	out := &ec2.AuthorizeSecurityGroupEgressOutput{}
	err := c.call(ctx, serviceEC2, "AuthorizeSecurityGroupEgress", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.CidrIp != nil || in.IpProtocol != nil || in.FromPort != nil || in.ToPort != nil ||
			in.SourceSecurityGroupName != nil || in.SourceSecurityGroupOwnerId != nil {
			return nil, notModelled("AuthorizeSecurityGroupEgress", "with top-level rule parameters (use IpPermissions)")
		}
		if len(in.TagSpecifications) > 0 {
			return nil, notModelled("AuthorizeSecurityGroupEgress", "with TagSpecifications")
		}
		if in.GroupId == nil {
			return nil, missingParameter("groupId")
		}
		commit, err := c.authorizeLocked(aws.ToString(in.GroupId), in.IpPermissions, true)
		if err != nil {
			return nil, err
		}
		return func() {
			out.SecurityGroupRules = commit()
			out.Return = aws.Bool(true)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AuthorizeSecurityGroupIngress adds inbound rules, like
// AuthorizeSecurityGroupEgress adds outbound ones (the same forms, checks and
// answers; 60 inbound rules at most). The rules show in
// DescribeSecurityGroups (IpPermissions) and RevokeSecurityGroupIngress
// removes them. A group named instead of given by ID (GroupName, the default
// VPC) is not modelled.
func (e *EC2) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	if in == nil {
		in = &ec2.AuthorizeSecurityGroupIngressInput{}
	}
	c := e.c
	out := &ec2.AuthorizeSecurityGroupIngressOutput{}
	err := c.call(ctx, serviceEC2, "AuthorizeSecurityGroupIngress", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.CidrIp != nil || in.IpProtocol != nil || in.FromPort != nil || in.ToPort != nil ||
			in.SourceSecurityGroupName != nil || in.SourceSecurityGroupOwnerId != nil {
			return nil, notModelled("AuthorizeSecurityGroupIngress", "with top-level rule parameters (use IpPermissions)")
		}
		if len(in.TagSpecifications) > 0 {
			return nil, notModelled("AuthorizeSecurityGroupIngress", "with TagSpecifications")
		}
		if in.GroupId == nil {
			if in.GroupName != nil {
				return nil, notModelled("AuthorizeSecurityGroupIngress", "with GroupName (use GroupId)")
			}
			return nil, missingParameter("groupId")
		}
		commit, err := c.authorizeLocked(aws.ToString(in.GroupId), in.IpPermissions, false)
		if err != nil {
			return nil, err
		}
		return func() {
			out.SecurityGroupRules = commit()
			out.Return = aws.Bool(true)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// authorizeLocked checks the rules an authorize call adds to one direction
// of a group and returns the function that adds them: nothing is added
// unless every rule is valid.
func (c *Cloud) authorizeLocked(groupID string, perms []types.IpPermission, egress bool) (func() []types.SecurityGroupRule, error) {
	if err := kindGroup.check([]string{groupID}, c.hasGroup); err != nil {
		return nil, err
	}
	g := c.st.Groups[groupID]
	if len(perms) == 0 {
		return nil, missingParameter("ipPermissions")
	}
	rules, err := expandPermissions(perms, egress)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, r := range g.Rules {
		if r.Egress == egress {
			n++
		}
	}
	for i, r := range rules {
		if err := c.checkRuleLocked(g, r); err != nil {
			return nil, err
		}
		for _, have := range g.Rules {
			if have.Egress == egress && sameRule(have, r) {
				return nil, duplicateRule(r)
			}
		}
		for _, prev := range rules[:i] {
			if sameRule(prev, r) {
				return nil, duplicateRule(r)
			}
		}
	}
	if n+len(rules) > maxRulesPerDirection {
		return nil, apiError("RulesPerSecurityGroupLimitExceeded", "The maximum number of rules per security group has been reached.")
	}
	return func() []types.SecurityGroupRule {
		added := []types.SecurityGroupRule{}
		for _, r := range rules {
			r.ID = c.hexIDLocked("sgr")
			g.Rules = append(g.Rules, r)
			added = append(added, c.renderRule(g, r))
		}
		return added
	}, nil
}

// checkRuleLocked validates one new rule of group g: its ports and its
// target.
func (c *Cloud) checkRuleLocked(g *securityGroup, r sgRule) error {
	switch r.Protocol {
	case "tcp", "udp":
		from, to := *r.FromPort, *r.ToPort
		if from < 0 || to > 65535 || from > to {
			return apiError("InvalidParameterValue", "Invalid TCP/UDP port range: from port %d, to port %d.", from, to)
		}
	case "icmp", "icmpv6":
		for _, p := range []*int32{r.FromPort, r.ToPort} {
			if p != nil && (*p < -1 || *p > 255) {
				return apiError("InvalidParameterValue", "ICMP type or code %d is out of range (-1 to 255).", *p)
			}
		}
	}
	switch {
	case r.CidrIPv4 != "":
		p, err := netip.ParsePrefix(r.CidrIPv4)
		if err != nil || !p.Addr().Is4() {
			return apiError("InvalidParameterValue", "CIDR block %s is malformed", r.CidrIPv4)
		}
	case r.CidrIPv6 != "":
		p, err := netip.ParsePrefix(r.CidrIPv6)
		if err != nil || !p.Addr().Is6() {
			return apiError("InvalidParameterValue", "CIDR block %s is malformed", r.CidrIPv6)
		}
	case r.PrefixListID != "":
		if !slices.ContainsFunc(c.prefixLists(), func(p prefixList) bool { return p.ID == r.PrefixListID }) {
			return apiError("InvalidPrefixListId.NotFound", "The prefix list ID '%s' does not exist", r.PrefixListID)
		}
	case r.GroupID != "":
		if err := kindGroup.check([]string{r.GroupID}, c.hasGroup); err != nil {
			return err
		}
		if c.st.Groups[r.GroupID].VpcID != g.VpcID {
			return apiError("InvalidGroup.NotFound", "You have specified two resources that belong to different networks.")
		}
		if r.UserID != "" && r.UserID != c.Account {
			return notModelled("AuthorizeSecurityGroupEgress", "with a group of another account")
		}
	}
	return nil
}

// duplicateRule is AWS's answer to a rule the group already has.
func duplicateRule(r sgRule) error {
	peer := r.CidrIPv4 + r.CidrIPv6 + r.PrefixListID + r.GroupID
	proto := strings.ToUpper(r.Protocol)
	if r.Protocol == "-1" {
		return apiError("InvalidPermission.Duplicate", "the specified rule \"peer: %s, ALL, ALLOW\" already exists", peer)
	}
	return apiError("InvalidPermission.Duplicate", "the specified rule \"peer: %s, %s, from port: %v, to port: %v, ALLOW\" already exists",
		peer, proto, derefPort(r.FromPort), derefPort(r.ToPort))
}

// renderRule shows a rule as the SecurityGroupRules of an authorize answer.
func (c *Cloud) renderRule(g *securityGroup, r sgRule) types.SecurityGroupRule {
	out := types.SecurityGroupRule{
		SecurityGroupRuleId:  aws.String(r.ID),
		SecurityGroupRuleArn: aws.String(fmt.Sprintf("arn:aws:ec2:%s:%s:security-group-rule/%s", c.Region, c.Account, r.ID)),
		GroupId:              aws.String(g.ID),
		GroupOwnerId:         aws.String(c.Account),
		IsEgress:             aws.Bool(r.Egress),
		IpProtocol:           aws.String(r.Protocol),
		FromPort:             portOrAll(r.FromPort),
		ToPort:               portOrAll(r.ToPort),
		CidrIpv4:             optional(r.CidrIPv4),
		CidrIpv6:             optional(r.CidrIPv6),
		PrefixListId:         optional(r.PrefixListID),
		Description:          optional(r.Description),
		Tags:                 []types.Tag{},
	}
	if r.GroupID != "" {
		user := r.UserID
		if user == "" {
			user = c.Account
		}
		out.ReferencedGroupInfo = &types.ReferencedSecurityGroup{GroupId: aws.String(r.GroupID), UserId: aws.String(user)}
	}
	return out
}
