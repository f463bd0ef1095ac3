package fakeaws

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestCreateSecurityGroup(t *testing.T) {
	c := New()
	vpc := c.AddVPC()
	ctx := context.Background()
	create := func(name, vpcID string, specs ...types.TagSpecification) (*ec2.CreateSecurityGroupOutput, error) {
		var v *string
		if vpcID != "" {
			v = aws.String(vpcID)
		}
		return c.EC2().CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(name), Description: aws.String("isolation"), VpcId: v, TagSpecifications: specs})
	}
	tagged := types.TagSpecification{ResourceType: types.ResourceTypeSecurityGroup,
		Tags: []types.Tag{{Key: aws.String("responder:case"), Value: aws.String("IR-1")}}}

	out, err := create("isolation", vpc, tagged)
	if err != nil {
		t.Fatal(err)
	}
	g := c.SecurityGroup(aws.ToString(out.GroupId))
	if g == nil {
		t.Fatal("created group not found")
	}
	if len(g.IpPermissions) != 0 {
		t.Errorf("new group ingress = %+v, want none", g.IpPermissions)
	}
	if len(g.IpPermissionsEgress) != 1 || aws.ToString(g.IpPermissionsEgress[0].IpProtocol) != "-1" ||
		aws.ToString(g.IpPermissionsEgress[0].IpRanges[0].CidrIp) != "0.0.0.0/0" {
		t.Errorf("new group egress = %+v, want the default all-traffic rule", g.IpPermissionsEgress)
	}
	if got := c.SecurityGroupsByTag("responder:case", "IR-1"); len(got) != 1 || aws.ToString(got[0].GroupId) != aws.ToString(out.GroupId) {
		t.Errorf("SecurityGroupsByTag = %+v", got)
	}

	tests := []struct {
		name, group, vpc string
		specs            []types.TagSpecification
		code             string
	}{
		{"duplicate", "isolation", vpc, nil, "InvalidGroup.Duplicate"},
		{"default name is taken", "default", vpc, nil, "InvalidGroup.Duplicate"},
		{"same name other VPC", "isolation", c.AddVPC(), nil, ""},
		{"unknown VPC", "x", "vpc-0123456789abcdef0", nil, "InvalidVpcID.NotFound"},
		{"no VPC", "x", "", nil, "VPCIdNotSpecified"},
		{"sg- name", "sg-1", vpc, nil, "InvalidParameterValue"},
		{"wrong tag resource type", "y", vpc, []types.TagSpecification{{ResourceType: types.ResourceTypeInstance}}, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := create(tt.group, tt.vpc, tt.specs...)
			wantCode(t, err, tt.code)
		})
	}
}

func TestDescribeSecurityGroups(t *testing.T) {
	c, s := NewSuspect()
	other := c.AddVPC()
	ctx := context.Background()
	tests := []struct {
		name string
		in   ec2.DescribeSecurityGroupsInput
		want int
		code string
	}{
		{name: "by id", in: ec2.DescribeSecurityGroupsInput{GroupIds: []string{s.GroupID}}, want: 1},
		{name: "vpc filter", in: ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{s.VpcID}}}}, want: 2},
		{name: "name filter", in: ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{other}}, {Name: aws.String("group-name"), Values: []string{"default"}}}}, want: 1},
		{name: "unknown id", in: ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}}, code: "InvalidGroup.NotFound"},
		{name: "malformed id", in: ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-1"}}, code: "InvalidGroupId.Malformed"},
		{name: "names need a default VPC", in: ec2.DescribeSecurityGroupsInput{GroupNames: []string{"web"}}, code: "VPCIdNotSpecified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.EC2().DescribeSecurityGroups(ctx, &tt.in)
			wantCode(t, err, tt.code)
			if err == nil && len(out.SecurityGroups) != tt.want {
				t.Errorf("got %d groups, want %d", len(out.SecurityGroups), tt.want)
			}
		})
	}
}

func TestRevokeSecurityGroupRules(t *testing.T) {
	ssh := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}
	tests := []struct {
		name        string
		egress      bool
		perms       []types.IpPermission
		ruleIDs     func(c *Cloud, groupID string) []string
		code        string
		wantIngress int // rules left
		wantEgress  int
	}{
		{name: "default egress", egress: true, perms: DefaultEgress(), wantIngress: 2, wantEgress: 0},
		{name: "egress protocol by number", egress: true, perms: []types.IpPermission{{IpProtocol: aws.String("all"),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}, wantIngress: 2, wantEgress: 0},
		{name: "ssh ingress, description ignored", perms: []types.IpPermission{{IpProtocol: aws.String("6"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0"), Description: aws.String("whatever")}}}}, wantIngress: 1, wantEgress: 1},
		{name: "wrong port", perms: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(23), ToPort: aws.Int32(23),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}, code: "InvalidPermission.NotFound", wantIngress: 2, wantEgress: 1},
		{name: "ingress rule revoked as egress", egress: true, perms: []types.IpPermission{ssh}, code: "InvalidPermission.NotFound", wantIngress: 2, wantEgress: 1},
		{name: "one of two missing revokes nothing", perms: []types.IpPermission{ssh, {IpProtocol: aws.String("udp"), FromPort: aws.Int32(53), ToPort: aws.Int32(53),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}, code: "InvalidPermission.NotFound", wantIngress: 2, wantEgress: 1},
		{name: "by rule IDs", ruleIDs: ingressRuleIDs, wantIngress: 0, wantEgress: 1},
		{name: "unknown rule ID", ruleIDs: func(*Cloud, string) []string { return []string{"sgr-0123456789abcdef0"} },
			code: "InvalidSecurityGroupRuleId.NotFound", wantIngress: 2, wantEgress: 1},
		{name: "nothing named", code: "MissingParameter", wantIngress: 2, wantEgress: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := NewSuspect()
			ctx := context.Background()
			var ids []string
			if tt.ruleIDs != nil {
				ids = tt.ruleIDs(c, s.GroupID)
			}
			var err error
			var ret *bool
			if tt.egress {
				var out *ec2.RevokeSecurityGroupEgressOutput
				out, err = c.EC2().RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: &s.GroupID, IpPermissions: tt.perms, SecurityGroupRuleIds: ids})
				if out != nil {
					ret = out.Return
				}
			} else {
				var out *ec2.RevokeSecurityGroupIngressOutput
				out, err = c.EC2().RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: &s.GroupID, IpPermissions: tt.perms, SecurityGroupRuleIds: ids})
				if out != nil {
					ret = out.Return
				}
			}
			wantCode(t, err, tt.code)
			if err == nil && !aws.ToBool(ret) {
				t.Error("Return is not true")
			}
			g := c.SecurityGroup(s.GroupID)
			if n := countRules(g.IpPermissions); n != tt.wantIngress {
				t.Errorf("ingress rules left = %d, want %d", n, tt.wantIngress)
			}
			if n := countRules(g.IpPermissionsEgress); n != tt.wantEgress {
				t.Errorf("egress rules left = %d, want %d", n, tt.wantEgress)
			}
		})
	}
}

// ingressRuleIDs returns the IDs of a group's inbound rules (the registry has
// no DescribeSecurityGroupRules, so the test reads them from the state).
func ingressRuleIDs(c *Cloud, groupID string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for _, r := range c.st.Groups[groupID].Rules {
		if !r.Egress {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

func countRules(perms []types.IpPermission) int {
	n := 0
	for _, p := range perms {
		n += len(p.IpRanges) + len(p.Ipv6Ranges) + len(p.PrefixListIds) + len(p.UserIdGroupPairs)
	}
	return n
}

func TestModifyNetworkInterfaceGroups(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	quarantine := c.AddSecurityGroup(s.VpcID, "quarantine", nil, nil)
	foreign := c.AddSecurityGroup(c.AddVPC(), "foreign", nil, nil)

	tests := []struct {
		name   string
		eni    string
		groups []string
		code   string
	}{
		{"unknown interface", "eni-0123456789abcdef0", []string{quarantine}, "InvalidNetworkInterfaceID.NotFound"},
		{"malformed interface", "eni-zz", []string{quarantine}, "InvalidNetworkInterfaceID.Malformed"},
		{"unknown group", s.InterfaceIDs[0], []string{"sg-0123456789abcdef0"}, "InvalidGroup.NotFound"},
		{"group of another VPC", s.InterfaceIDs[0], []string{foreign}, "InvalidGroup.NotFound"},
		{"too many groups", s.InterfaceIDs[0], []string{quarantine, quarantine + "0", quarantine + "1", quarantine + "2", quarantine + "3", quarantine + "4"}, "SecurityGroupsPerInterfaceLimitExceeded"},
		{"no groups", s.InterfaceIDs[0], nil, "InvalidParameterCombination"},
		{"secondary", s.InterfaceIDs[1], []string{quarantine}, ""},
		{"primary", s.InterfaceIDs[0], []string{quarantine}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.EC2().ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(tt.eni), Groups: tt.groups})
			wantCode(t, err, tt.code)
		})
	}

	out, err := c.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{s.InstanceID}})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Reservations[0].Instances[0]
	for _, n := range inst.NetworkInterfaces {
		if len(n.Groups) != 1 || aws.ToString(n.Groups[0].GroupId) != quarantine || aws.ToString(n.Groups[0].GroupName) != "quarantine" {
			t.Errorf("interface %s groups = %+v, want quarantine", aws.ToString(n.NetworkInterfaceId), n.Groups)
		}
	}
	if len(inst.SecurityGroups) != 1 || aws.ToString(inst.SecurityGroups[0].GroupId) != quarantine {
		t.Errorf("instance SecurityGroups = %+v, want the primary interface's (quarantine)", inst.SecurityGroups)
	}
}

func TestGroupPropagation(t *testing.T) {
	c, s := NewSuspect()
	c.GroupPropagationCalls = 2
	ctx := context.Background()
	out, err := c.EC2().CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("isolation"), Description: aws.String("d"), VpcId: &s.VpcID})
	if err != nil {
		t.Fatal(err)
	}
	modify := func() error {
		_, err := c.EC2().ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: &s.InterfaceIDs[0], Groups: []string{aws.ToString(out.GroupId)}})
		return err
	}
	wantCode(t, modify(), "InvalidGroup.NotFound")
	wantCode(t, modify(), "InvalidGroup.NotFound")
	wantCode(t, modify(), "")
	// Groups made by the builder are known at once.
	g := c.AddSecurityGroup(s.VpcID, "seen", nil, nil)
	if _, err := c.EC2().ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: &s.InterfaceIDs[0], Groups: []string{g}}); err != nil {
		t.Fatal(err)
	}
}
