package fakeaws

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// securityGroup is a VPC security group. Its rules are kept one per
// destination, as AWS keeps them (each with its sgr- ID), and grouped into
// IpPermissions when described.
type securityGroup struct {
	ID          string
	Name        string
	Description string
	VpcID       string
	Rules       []sgRule
	Tags        []types.Tag
	Seq         int
}

// sgRule is one security group rule: a protocol and port range, and one
// source (ingress) or destination (egress).
type sgRule struct {
	ID       string
	Egress   bool
	Protocol string // normalised: "-1", "tcp", "udp", "icmp", "icmpv6" or a number
	FromPort *int32 // nil for protocol -1
	ToPort   *int32
	target
	Description string
}

// target is the other end of a rule: exactly one field is set (UserID goes
// with GroupID).
type target struct {
	CidrIPv4     string
	CidrIPv6     string
	PrefixListID string
	GroupID      string
	UserID       string
}

// DefaultEgress returns the rule AWS gives every new security group: all
// traffic to 0.0.0.0/0.
func DefaultEgress() []types.IpPermission {
	return []types.IpPermission{{
		IpProtocol: aws.String("-1"),
		IpRanges:   []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
	}}
}

// AddSecurityGroup adds a security group to a VPC with exactly the given
// rules (pass DefaultEgress() for AWS's default outbound rule) and returns its
// ID.
func (c *Cloud) AddSecurityGroup(vpcID, name string, ingress, egress []types.IpPermission) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasVPC(vpcID) {
		panic(fmt.Sprintf("fakeaws: AddSecurityGroup: no VPC %q", vpcID))
	}
	if c.groupByNameLocked(vpcID, name) != nil {
		panic(fmt.Sprintf("fakeaws: AddSecurityGroup: VPC %s already has a group named %q", vpcID, name))
	}
	in, err := expandPermissions(ingress, false)
	if err != nil {
		panic(fmt.Sprintf("fakeaws: AddSecurityGroup %q ingress: %v", name, err))
	}
	out, err := expandPermissions(egress, true)
	if err != nil {
		panic(fmt.Sprintf("fakeaws: AddSecurityGroup %q egress: %v", name, err))
	}
	g := c.newGroupLocked(vpcID, name, name)
	for _, r := range append(in, out...) {
		r.ID = c.hexIDLocked("sgr")
		g.Rules = append(g.Rules, r)
	}
	return g.ID
}

// newGroupLocked adds a group without rules.
func (c *Cloud) newGroupLocked(vpcID, name, description string) *securityGroup {
	g := &securityGroup{
		ID:          c.hexIDLocked("sg"),
		Name:        name,
		Description: description,
		VpcID:       vpcID,
		Seq:         c.nextSeqLocked(),
	}
	c.st.Groups[g.ID] = g
	return g
}

func (c *Cloud) newRuleLocked(egress bool, protocol string, from, to *int32, t target) sgRule {
	return sgRule{ID: c.hexIDLocked("sgr"), Egress: egress, Protocol: protocol, FromPort: from, ToPort: to, target: t}
}

func (c *Cloud) groupByNameLocked(vpcID, name string) *securityGroup {
	for _, g := range c.st.Groups {
		if g.VpcID == vpcID && g.Name == name {
			return g
		}
	}
	return nil
}

// SecurityGroup returns the group as DescribeSecurityGroups shows it, or nil.
func (c *Cloud) SecurityGroup(id string) *types.SecurityGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.st.Groups[id]
	if !ok {
		return nil
	}
	out := c.renderGroupLocked(g)
	return &out
}

// SecurityGroupsByTag returns the groups tagged key=value, in creation order.
func (c *Cloud) SecurityGroupsByTag(key, value string) []types.SecurityGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []types.SecurityGroup
	for _, g := range sortedBySeq(c.st.Groups, func(g *securityGroup) int { return g.Seq }) {
		if hasTag(g.Tags, key, value) {
			out = append(out, c.renderGroupLocked(g))
		}
	}
	return out
}

// SecurityGroupsByName returns the IDs of the groups with that name in a VPC
// (at most one: names are unique per VPC).
func (c *Cloud) SecurityGroupsByName(vpcID, name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groupByNameLocked(vpcID, name); g != nil {
		return []string{g.ID}
	}
	return nil
}

// CreateSecurityGroup creates a group in a VPC with AWS's default outbound
// rule and no inbound rule.
func (e *EC2) CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, _ ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	if in == nil {
		in = &ec2.CreateSecurityGroupInput{}
	}
	c := e.c
	out := &ec2.CreateSecurityGroupOutput{}
	err := c.call(ctx, serviceEC2, "CreateSecurityGroup", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		name, desc := aws.ToString(in.GroupName), aws.ToString(in.Description)
		switch {
		case name == "":
			return nil, missingParameter("groupName")
		case desc == "":
			return nil, missingParameter("GroupDescription")
		case len(name) > 255 || len(desc) > 255:
			return nil, apiError("InvalidParameterValue", "Group name and description are limited to 255 characters")
		case strings.HasPrefix(name, "sg-"):
			return nil, apiError("InvalidParameterValue", "Group names may not be in the format sg-*.")
		case in.VpcId == nil:
			return nil, apiError("VPCIdNotSpecified", "No default VPC for this user")
		}
		vpcID := aws.ToString(in.VpcId)
		if err := kindVPC.check([]string{vpcID}, c.hasVPC); err != nil {
			return nil, err
		}
		if c.groupByNameLocked(vpcID, name) != nil {
			return nil, apiError("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpcID)
		}
		tags, err := tagsFor(in.TagSpecifications, types.ResourceTypeSecurityGroup)
		if err != nil {
			return nil, err
		}
		return func() {
			g := c.newGroupLocked(vpcID, name, desc)
			g.Rules = append(g.Rules, c.newRuleLocked(true, "-1", nil, nil, target{CidrIPv4: "0.0.0.0/0"}))
			g.Tags = tags
			if c.GroupPropagationCalls > 0 {
				c.groupPending[g.ID] = c.GroupPropagationCalls
			}
			out.GroupId = aws.String(g.ID)
			out.SecurityGroupArn = aws.String(c.groupArn(g.ID))
			out.Tags = copyTags(tags)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Cloud) groupFields() fields[*securityGroup] {
	return fields[*securityGroup]{
		"group-id":    func(g *securityGroup) []string { return one(g.ID) },
		"group-name":  func(g *securityGroup) []string { return one(g.Name) },
		"vpc-id":      func(g *securityGroup) []string { return one(g.VpcID) },
		"description": func(g *securityGroup) []string { return one(g.Description) },
		"owner-id":    func(*securityGroup) []string { return one(c.Account) },
	}
}

// DescribeSecurityGroups describes groups by ID and filters (vpc-id,
// group-name, group-id, description, owner-id, tag:<key>, tag-key,
// tag-value). GroupNames needs a default VPC, which the fake account lacks.
func (e *EC2) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	if in == nil {
		in = &ec2.DescribeSecurityGroupsInput{}
	}
	c := e.c
	out := &ec2.DescribeSecurityGroupsOutput{}
	err := c.call(ctx, serviceEC2, "DescribeSecurityGroups", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if len(in.GroupNames) > 0 {
			return nil, apiError("VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
		}
		if err := kindGroup.check(in.GroupIds, c.hasGroup); err != nil {
			return nil, err
		}
		f := c.groupFields()
		if err := checkFilters(in.Filters, f); err != nil {
			return nil, err
		}
		groups := sortedBySeq(c.st.Groups, func(g *securityGroup) int { return g.Seq })
		if len(in.GroupIds) > 0 {
			groups = nil
			for _, id := range dedupe(in.GroupIds) {
				groups = append(groups, c.st.Groups[id])
			}
		}
		groups = filter(groups, in.Filters, f, func(g *securityGroup) []types.Tag { return g.Tags })
		var result []types.SecurityGroup
		for _, g := range groups {
			result = append(result, c.renderGroupLocked(g))
		}
		return func() { out.SecurityGroups = result }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeSecurityGroupEgress removes outbound rules, given as IpPermissions
// that match existing rules exactly or as rule IDs. In a VPC that is not a
// default VPC (the fake has no other kind), a rule that does not exist
// answers InvalidPermission.NotFound and nothing is revoked.
func (e *EC2) RevokeSecurityGroupEgress(ctx context.Context, in *ec2.RevokeSecurityGroupEgressInput, _ ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error) {
	if in == nil {
		in = &ec2.RevokeSecurityGroupEgressInput{}
	}
	c := e.c
	out := &ec2.RevokeSecurityGroupEgressOutput{}
	err := c.call(ctx, serviceEC2, "RevokeSecurityGroupEgress", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.CidrIp != nil || in.IpProtocol != nil || in.FromPort != nil || in.ToPort != nil ||
			in.SourceSecurityGroupName != nil || in.SourceSecurityGroupOwnerId != nil {
			return nil, notModelled("RevokeSecurityGroupEgress", "with top-level rule parameters (use IpPermissions)")
		}
		if in.GroupId == nil {
			return nil, missingParameter("groupId")
		}
		commit, err := c.revokeLocked(aws.ToString(in.GroupId), in.IpPermissions, in.SecurityGroupRuleIds, true)
		if err != nil {
			return nil, err
		}
		return func() {
			out.RevokedSecurityGroupRules = commit()
			out.Return = aws.Bool(true)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeSecurityGroupIngress removes inbound rules; see
// RevokeSecurityGroupEgress.
func (e *EC2) RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, _ ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	if in == nil {
		in = &ec2.RevokeSecurityGroupIngressInput{}
	}
	c := e.c
	out := &ec2.RevokeSecurityGroupIngressOutput{}
	err := c.call(ctx, serviceEC2, "RevokeSecurityGroupIngress", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.CidrIp != nil || in.IpProtocol != nil || in.FromPort != nil || in.ToPort != nil ||
			in.SourceSecurityGroupName != nil || in.SourceSecurityGroupOwnerId != nil {
			return nil, notModelled("RevokeSecurityGroupIngress", "with top-level rule parameters (use IpPermissions)")
		}
		if in.GroupId == nil {
			if in.GroupName != nil {
				return nil, apiError("VPCIdNotSpecified", "No default VPC for this user")
			}
			return nil, missingParameter("groupId")
		}
		commit, err := c.revokeLocked(aws.ToString(in.GroupId), in.IpPermissions, in.SecurityGroupRuleIds, false)
		if err != nil {
			return nil, err
		}
		return func() {
			out.RevokedSecurityGroupRules = commit()
			out.Return = aws.Bool(true)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// revokeLocked finds the rules a revoke names and returns the function that
// removes them.
func (c *Cloud) revokeLocked(groupID string, perms []types.IpPermission, ruleIDs []string, egress bool) (func() []types.RevokedSecurityGroupRule, error) {
	if err := kindGroup.check([]string{groupID}, c.hasGroup); err != nil {
		return nil, err
	}
	g := c.st.Groups[groupID]
	switch {
	case len(perms) > 0 && len(ruleIDs) > 0:
		return nil, apiError("InvalidParameterCombination", "Specify either IpPermissions or SecurityGroupRuleIds, not both")
	case len(perms) == 0 && len(ruleIDs) == 0:
		return nil, missingParameter("ipPermissions")
	}

	remove := map[string]bool{}
	if len(ruleIDs) > 0 {
		err := kindRule.check(ruleIDs, func(id string) bool {
			for _, r := range g.Rules {
				if r.ID == id && r.Egress == egress {
					return true
				}
			}
			return false
		})
		if err != nil {
			return nil, err
		}
		for _, id := range ruleIDs {
			remove[id] = true
		}
	} else {
		wanted, err := expandPermissions(perms, egress)
		if err != nil {
			return nil, err
		}
		for _, w := range wanted {
			found := false
			for _, r := range g.Rules {
				if r.Egress == egress && sameRule(r, w) {
					remove[r.ID], found = true, true
					break
				}
			}
			if !found {
				return nil, apiError("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
			}
		}
	}

	return func() []types.RevokedSecurityGroupRule {
		var revoked []types.RevokedSecurityGroupRule
		kept := g.Rules[:0:0]
		for _, r := range g.Rules {
			if !remove[r.ID] {
				kept = append(kept, r)
				continue
			}
			rr := types.RevokedSecurityGroupRule{
				SecurityGroupRuleId: aws.String(r.ID),
				GroupId:             aws.String(g.ID),
				IsEgress:            aws.Bool(r.Egress),
				IpProtocol:          aws.String(r.Protocol),
				FromPort:            portOrAll(r.FromPort),
				ToPort:              portOrAll(r.ToPort),
				CidrIpv4:            optional(r.CidrIPv4),
				CidrIpv6:            optional(r.CidrIPv6),
				PrefixListId:        optional(r.PrefixListID),
				ReferencedGroupId:   optional(r.GroupID),
				Description:         optional(r.Description),
			}
			revoked = append(revoked, rr)
		}
		g.Rules = kept
		return revoked
	}, nil
}

// portOrAll is how rule APIs show a port: -1 when the rule has none.
func portOrAll(p *int32) *int32 {
	if p == nil {
		return aws.Int32(-1)
	}
	return aws.Int32(*p)
}

// sameRule reports whether two rules match as AWS matches a revoke: same
// protocol, ports (ignored for all protocols) and target; descriptions and
// the owner of a referenced group do not matter.
func sameRule(a, b sgRule) bool {
	ta, tb := a.target, b.target
	ta.UserID, tb.UserID = "", ""
	if a.Protocol != b.Protocol || ta != tb {
		return false
	}
	if a.Protocol == "-1" {
		return true
	}
	return eqPort(a.FromPort, b.FromPort) && eqPort(a.ToPort, b.ToPort)
}

func eqPort(a, b *int32) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// expandPermissions splits IpPermissions into one rule per target, without
// IDs.
func expandPermissions(perms []types.IpPermission, egress bool) ([]sgRule, error) {
	var rules []sgRule
	for _, p := range perms {
		proto, err := normaliseProtocol(aws.ToString(p.IpProtocol))
		if err != nil {
			return nil, err
		}
		from, to := p.FromPort, p.ToPort
		switch proto {
		case "-1":
			from, to = nil, nil
		case "tcp", "udp":
			if from == nil || to == nil {
				return nil, apiError("InvalidParameterValue", "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.")
			}
		}
		base := sgRule{Egress: egress, Protocol: proto, FromPort: copyPort(from), ToPort: copyPort(to)}
		var targets []sgRule
		for _, r := range p.IpRanges {
			t := base
			t.CidrIPv4, t.Description = aws.ToString(r.CidrIp), aws.ToString(r.Description)
			targets = append(targets, t)
		}
		for _, r := range p.Ipv6Ranges {
			t := base
			t.CidrIPv6, t.Description = aws.ToString(r.CidrIpv6), aws.ToString(r.Description)
			targets = append(targets, t)
		}
		for _, r := range p.PrefixListIds {
			t := base
			t.PrefixListID, t.Description = aws.ToString(r.PrefixListId), aws.ToString(r.Description)
			targets = append(targets, t)
		}
		for _, r := range p.UserIdGroupPairs {
			if r.GroupId == nil {
				return nil, apiError("InvalidParameterValue", "A group pair needs a GroupId outside a default VPC")
			}
			t := base
			t.GroupID, t.UserID, t.Description = aws.ToString(r.GroupId), aws.ToString(r.UserId), aws.ToString(r.Description)
			targets = append(targets, t)
		}
		if len(targets) == 0 {
			return nil, missingParameter("ipPermissions.ipRanges (a rule needs a CIDR, prefix list or group)")
		}
		rules = append(rules, targets...)
	}
	return rules, nil
}

func normaliseProtocol(p string) (string, error) {
	switch strings.ToLower(p) {
	case "":
		return "", missingParameter("ipPermissions.ipProtocol")
	case "-1", "all":
		return "-1", nil
	case "tcp", "6":
		return "tcp", nil
	case "udp", "17":
		return "udp", nil
	case "icmp", "1":
		return "icmp", nil
	case "icmpv6", "58":
		return "icmpv6", nil
	}
	var n int
	if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 0 || n > 255 {
		return "", apiError("InvalidParameterValue", "Invalid value '%s' for IP protocol. Unknown protocol.", p)
	}
	return p, nil
}

func copyPort(p *int32) *int32 {
	if p == nil {
		return nil
	}
	return aws.Int32(*p)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func (c *Cloud) groupArn(id string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", c.Region, c.Account, id)
}

// renderGroupLocked shows a group as DescribeSecurityGroups does: rules
// grouped into IpPermissions by protocol and port range, in the order they
// were added.
func (c *Cloud) renderGroupLocked(g *securityGroup) types.SecurityGroup {
	sg := types.SecurityGroup{
		GroupId:          aws.String(g.ID),
		GroupName:        aws.String(g.Name),
		Description:      aws.String(g.Description),
		VpcId:            aws.String(g.VpcID),
		OwnerId:          aws.String(c.Account),
		SecurityGroupArn: aws.String(c.groupArn(g.ID)),
		Tags:             copyTags(g.Tags),
	}
	sg.IpPermissions = renderPermissions(g.Rules, false, c.Account)
	sg.IpPermissionsEgress = renderPermissions(g.Rules, true, c.Account)
	return sg
}

func renderPermissions(rules []sgRule, egress bool, account string) []types.IpPermission {
	out := []types.IpPermission{} // AWS answers an empty list, not none
	index := map[string]int{}
	for _, r := range rules {
		if r.Egress != egress {
			continue
		}
		key := fmt.Sprintf("%s/%v/%v", r.Protocol, derefPort(r.FromPort), derefPort(r.ToPort))
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, types.IpPermission{
				IpProtocol: aws.String(r.Protocol),
				FromPort:   copyPort(r.FromPort),
				ToPort:     copyPort(r.ToPort),
			})
		}
		p := &out[i]
		desc := optional(r.Description)
		switch {
		case r.CidrIPv4 != "":
			p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(r.CidrIPv4), Description: desc})
		case r.CidrIPv6 != "":
			p.Ipv6Ranges = append(p.Ipv6Ranges, types.Ipv6Range{CidrIpv6: aws.String(r.CidrIPv6), Description: desc})
		case r.PrefixListID != "":
			p.PrefixListIds = append(p.PrefixListIds, types.PrefixListId{PrefixListId: aws.String(r.PrefixListID), Description: desc})
		case r.GroupID != "":
			user := r.UserID
			if user == "" {
				user = account
			}
			p.UserIdGroupPairs = append(p.UserIdGroupPairs, types.UserIdGroupPair{GroupId: aws.String(r.GroupID), UserId: aws.String(user), Description: desc})
		}
	}
	return out
}

func derefPort(p *int32) any {
	if p == nil {
		return "none"
	}
	return *p
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
