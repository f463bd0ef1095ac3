package fakeaws

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func filterOf(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func TestDescribeInstanceTypes(t *testing.T) {
	c := New()
	ctx := context.Background()
	tests := []struct {
		name string
		in   ec2.DescribeInstanceTypesInput
		want map[types.InstanceType]int64 // type -> MiB
		arch types.ArchitectureType       // of the first, when set
		code string
	}{
		{name: "one", in: ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"t3.micro"}},
			want: map[types.InstanceType]int64{"t3.micro": 1024}, arch: types.ArchitectureTypeX8664},
		{name: "several", in: ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.xlarge", "t3.large", "r5.large"}},
			want: map[types.InstanceType]int64{"m5.xlarge": 16384, "t3.large": 8192, "r5.large": 16384}},
		{name: "graviton", in: ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"c6g.large"}},
			want: map[types.InstanceType]int64{"c6g.large": 4096}, arch: types.ArchitectureTypeArm64},
		{name: "arch filter", in: ec2.DescribeInstanceTypesInput{Filters: []types.Filter{filterOf("processor-info.supported-architecture", "arm64")}},
			want: map[types.InstanceType]int64{"c6g.large": 4096, "m6g.large": 8192, "t4g.micro": 1024}},
		{name: "unknown type", in: ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"t3.micro", "x9.huge"}}, code: "InvalidInstanceType"},
		{name: "unknown filter", in: ec2.DescribeInstanceTypesInput{Filters: []types.Filter{filterOf("gpu", "1")}}, code: "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.EC2().DescribeInstanceTypes(ctx, &tt.in)
			wantCode(t, err, tt.code)
			if err != nil {
				return
			}
			got := map[types.InstanceType]int64{}
			for _, it := range out.InstanceTypes {
				got[it.InstanceType] = aws.ToInt64(it.MemoryInfo.SizeInMiB)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("types = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s memory = %d MiB, want %d", k, got[k], v)
				}
			}
			if tt.arch != "" && !slices.Contains(out.InstanceTypes[0].ProcessorInfo.SupportedArchitectures, tt.arch) {
				t.Errorf("architectures = %v, want %s", out.InstanceTypes[0].ProcessorInfo.SupportedArchitectures, tt.arch)
			}
		})
	}

	// Every instance AddInstance makes has a type the catalogue knows.
	for _, spec := range []InstanceSpec{{}, {Architecture: types.ArchitectureValuesArm64}, {InstanceType: "m5.large"}} {
		id := c.AddInstance(spec)
		it := c.Instance(id).InstanceType
		if _, err := c.EC2().DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{it}}); err != nil {
			t.Errorf("instance type %q of AddInstance(%+v): %v", it, spec, err)
		}
	}
}

func TestVpcEndpoints(t *testing.T) {
	c := New()
	ctx := context.Background()
	vpc := c.AddVPC()
	sub1, sub2 := c.AddSubnet(vpc), c.AddSubnet(vpc)
	inst := c.AddInstance(InstanceSpec{VpcID: vpc, SubnetID: sub1})
	ssmEP := c.AddVpcEndpoint(vpc, "ssm")
	noDNS := c.AddVpcEndpoint(vpc, "ssmmessages", EndpointSpec{PrivateDNSDisabled: true, SubnetIDs: []string{sub2}})
	gw := c.AddVpcEndpoint(vpc, "s3", EndpointSpec{Gateway: true})
	other := c.AddVpcEndpoint(c.AddVPC(), "ssm")

	describe := func(in *ec2.DescribeVpcEndpointsInput) ([]types.VpcEndpoint, error) {
		out, err := c.EC2().DescribeVpcEndpoints(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.VpcEndpoints, nil
	}
	ids := func(eps []types.VpcEndpoint) []string {
		var out []string
		for _, ep := range eps {
			out = append(out, aws.ToString(ep.VpcEndpointId))
		}
		return out
	}
	tests := []struct {
		name string
		in   ec2.DescribeVpcEndpointsInput
		want []string
		code string
	}{
		{name: "by vpc", in: ec2.DescribeVpcEndpointsInput{Filters: []types.Filter{filterOf("vpc-id", vpc)}}, want: []string{ssmEP, noDNS, gw}},
		{name: "by service", in: ec2.DescribeVpcEndpointsInput{Filters: []types.Filter{filterOf("service-name", "com.amazonaws.us-east-1.ssm")}}, want: []string{ssmEP, other}},
		{name: "by type", in: ec2.DescribeVpcEndpointsInput{Filters: []types.Filter{filterOf("vpc-endpoint-type", "Gateway")}}, want: []string{gw}},
		{name: "by id", in: ec2.DescribeVpcEndpointsInput{VpcEndpointIds: []string{noDNS}}, want: []string{noDNS}},
		{name: "unknown id", in: ec2.DescribeVpcEndpointsInput{VpcEndpointIds: []string{"vpce-0123456789abcdef0"}}, code: "InvalidVpcEndpointId.NotFound"},
		{name: "malformed id", in: ec2.DescribeVpcEndpointsInput{VpcEndpointIds: []string{"vpc-1"}}, code: "InvalidVpcEndpointId.Malformed"},
		{name: "unknown filter", in: ec2.DescribeVpcEndpointsInput{Filters: []types.Filter{filterOf("owner", "x")}}, code: "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps, err := describe(&tt.in)
			wantCode(t, err, tt.code)
			if got := ids(eps); err == nil && !slices.Equal(got, tt.want) {
				t.Errorf("endpoints = %v, want %v", got, tt.want)
			}
		})
	}

	eps, _ := describe(&ec2.DescribeVpcEndpointsInput{VpcEndpointIds: []string{ssmEP, gw}})
	ep, g := eps[0], eps[1]
	if ep.VpcEndpointType != types.VpcEndpointTypeInterface || string(ep.State) != "available" || !aws.ToBool(ep.PrivateDnsEnabled) ||
		len(ep.NetworkInterfaceIds) != 2 || !slices.Equal(ep.SubnetIds, []string{sub1, sub2}) || len(ep.Groups) != 1 {
		t.Errorf("interface endpoint = %+v", ep)
	}
	if g.VpcEndpointType != types.VpcEndpointTypeGateway || len(g.RouteTableIds) != 1 || len(g.NetworkInterfaceIds) != 0 ||
		aws.ToString(g.ServiceName) != "com.amazonaws.us-east-1.s3" {
		t.Errorf("gateway endpoint = %+v", g)
	}

	// The endpoint's interfaces: one per subnet, private IPs of the subnet,
	// the endpoint's groups, attached to nothing.
	nis, err := c.EC2().DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ep.NetworkInterfaceIds})
	if err != nil {
		t.Fatal(err)
	}
	for i, ni := range nis.NetworkInterfaces {
		if ni.InterfaceType != types.NetworkInterfaceTypeVpcEndpoint || ni.Attachment != nil || !aws.ToBool(ni.RequesterManaged) ||
			aws.ToString(ni.SubnetId) != ep.SubnetIds[i] || aws.ToString(ni.Groups[0].GroupId) != aws.ToString(ep.Groups[0].GroupId) ||
			len(ni.PrivateIpAddresses) != 1 || !cidrContains(c.subnetCIDR(ep.SubnetIds[i]), aws.ToString(ni.PrivateIpAddress)) {
			t.Errorf("endpoint interface %d = %+v", i, ni)
		}
	}
	// The default endpoint group admits HTTPS from the VPC.
	sg := c.SecurityGroup(aws.ToString(ep.Groups[0].GroupId))
	if len(sg.IpPermissions) != 1 || aws.ToInt32(sg.IpPermissions[0].FromPort) != 443 || aws.ToString(sg.IpPermissions[0].IpRanges[0].CidrIp) != "10.0.0.0/16" {
		t.Errorf("endpoint group ingress = %+v", sg.IpPermissions)
	}
	// Endpoint interfaces are not the instance's.
	attached, err := c.EC2().DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filterOf("attachment.instance-id", inst)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(attached.NetworkInterfaces) != 1 || attached.NetworkInterfaces[0].InterfaceType != types.NetworkInterfaceTypeInterface ||
		aws.ToString(attached.NetworkInterfaces[0].Attachment.InstanceId) != inst {
		t.Errorf("instance interfaces = %+v", attached.NetworkInterfaces)
	}
	if v := c.Instance(inst); len(v.NetworkInterfaces) != 1 {
		t.Errorf("DescribeInstances shows %d interfaces, want 1", len(v.NetworkInterfaces))
	}
	_, err = c.EC2().ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: &ep.NetworkInterfaceIds[0], Groups: []string{c.SecurityGroupsByName(vpc, "default")[0]}})
	wantCode(t, err, "OperationNotPermitted")
}

// subnetCIDR is a test helper.
func (c *Cloud) subnetCIDR(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Subnets[id].CIDR
}

func TestDescribeNetworkInterfaces(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	ep := c.AddVpcEndpoint(s.VpcID, "ec2messages")
	tests := []struct {
		name string
		in   ec2.DescribeNetworkInterfacesInput
		want int
		code string
	}{
		{name: "all", in: ec2.DescribeNetworkInterfacesInput{}, want: 3},
		{name: "by id", in: ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: s.InterfaceIDs}, want: 2},
		{name: "by instance", in: ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filterOf("attachment.instance-id", s.InstanceID)}}, want: 2},
		{name: "by vpc", in: ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filterOf("vpc-id", s.VpcID)}}, want: 3},
		{name: "endpoint interfaces", in: ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filterOf("interface-type", "vpc_endpoint")}}, want: 1},
		{name: "by id filter", in: ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filterOf("network-interface-id", s.InterfaceIDs[1])}}, want: 1},
		{name: "unknown id", in: ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-0123456789abcdef0"}}, code: "InvalidNetworkInterfaceID.NotFound"},
		{name: "malformed id", in: ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"i-1"}}, code: "InvalidNetworkInterfaceID.Malformed"},
		{name: "unknown filter", in: ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filterOf("foo", "x")}}, code: "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.EC2().DescribeNetworkInterfaces(ctx, &tt.in)
			wantCode(t, err, tt.code)
			if err == nil && len(out.NetworkInterfaces) != tt.want {
				t.Errorf("got %d interfaces, want %d", len(out.NetworkInterfaces), tt.want)
			}
		})
	}
	out, err := c.EC2().DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: s.InterfaceIDs[:1]})
	if err != nil {
		t.Fatal(err)
	}
	ni := out.NetworkInterfaces[0]
	want := c.Instance(s.InstanceID).NetworkInterfaces[0]
	if ni.InterfaceType != types.NetworkInterfaceTypeInterface || aws.ToString(ni.PrivateIpAddress) != aws.ToString(want.PrivateIpAddress) ||
		aws.ToString(ni.Groups[0].GroupId) != s.GroupID || aws.ToString(ni.Attachment.InstanceId) != s.InstanceID ||
		aws.ToInt32(ni.Attachment.DeviceIndex) != 0 || aws.ToString(ni.VpcId) != s.VpcID || aws.ToString(ni.SubnetId) != s.SubnetID {
		t.Errorf("instance interface = %+v", ni)
	}
	if _, err := c.EC2().CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ep}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Errorf("tagging an endpoint: %v", err)
	}
}

func TestDescribePrefixLists(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, region string
		in           ec2.DescribePrefixListsInput
		want         []string // names
		code         string
	}{
		{name: "all", region: "us-east-1", want: []string{"com.amazonaws.us-east-1.s3", "com.amazonaws.us-east-1.dynamodb"}},
		{name: "s3 by name", region: "eu-west-1", in: ec2.DescribePrefixListsInput{Filters: []types.Filter{filterOf("prefix-list-name", "com.amazonaws.eu-west-1.s3")}},
			want: []string{"com.amazonaws.eu-west-1.s3"}},
		{name: "by real id", region: "us-east-1", in: ec2.DescribePrefixListsInput{PrefixListIds: []string{"pl-63a5400a"}}, want: []string{"com.amazonaws.us-east-1.s3"}},
		{name: "other region's name", region: "us-east-1", in: ec2.DescribePrefixListsInput{Filters: []types.Filter{filterOf("prefix-list-name", "com.amazonaws.eu-west-1.s3")}}},
		{name: "unknown id", region: "us-east-1", in: ec2.DescribePrefixListsInput{PrefixListIds: []string{"pl-00000000"}}, code: "InvalidPrefixListID.NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(WithRegion(tt.region))
			out, err := c.EC2().DescribePrefixLists(ctx, &tt.in)
			wantCode(t, err, tt.code)
			if err != nil {
				return
			}
			var got []string
			for _, p := range out.PrefixLists {
				got = append(got, aws.ToString(p.PrefixListName))
				if len(p.Cidrs) < 2 || !kindPrefixList.wellFormed(aws.ToString(p.PrefixListId)) {
					t.Errorf("prefix list %+v", p)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("prefix lists = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuthorizeSecurityGroupEgress(t *testing.T) {
	ctx := context.Background()
	c := New()
	vpc := c.AddVPC()
	ep := c.AddSecurityGroup(vpc, "endpoints", nil, nil)
	foreign := c.AddSecurityGroup(c.AddVPC(), "elsewhere", nil, nil)
	https := func(p types.IpPermission) types.IpPermission {
		p.IpProtocol, p.FromPort, p.ToPort = aws.String("tcp"), aws.Int32(443), aws.Int32(443)
		return p
	}
	cidr := func(c string) types.IpPermission {
		return https(types.IpPermission{IpRanges: []types.IpRange{{CidrIp: aws.String(c), Description: aws.String("ssm endpoint")}}})
	}
	s3pl := https(types.IpPermission{PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String("pl-63a5400a")}}})
	toGroup := func(g string) types.IpPermission {
		return https(types.IpPermission{UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(g)}}})
	}
	tests := []struct {
		name  string
		group string
		perms []types.IpPermission
		code  string
		rules int // egress rules of the group afterwards
	}{
		{name: "cidr", perms: []types.IpPermission{cidr("10.0.0.5/32")}, rules: 1},
		{name: "two peers in one permission", perms: []types.IpPermission{https(types.IpPermission{IpRanges: []types.IpRange{
			{CidrIp: aws.String("10.0.1.5/32")}, {CidrIp: aws.String("10.0.2.5/32")}}})}, rules: 3},
		{name: "prefix list", perms: []types.IpPermission{s3pl}, rules: 4},
		{name: "group", perms: []types.IpPermission{toGroup(ep)}, rules: 5},
		{name: "duplicate", perms: []types.IpPermission{cidr("10.0.0.5/32")}, code: "InvalidPermission.Duplicate", rules: 5},
		{name: "duplicate in one call adds nothing", perms: []types.IpPermission{cidr("10.0.9.9/32"), cidr("10.0.9.9/32")}, code: "InvalidPermission.Duplicate", rules: 5},
		{name: "one bad rule adds nothing", perms: []types.IpPermission{cidr("10.0.8.8/32"), cidr("10.0.0.300/32")}, code: "InvalidParameterValue", rules: 5},
		{name: "unknown prefix list", perms: []types.IpPermission{https(types.IpPermission{PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String("pl-00000000")}}})},
			code: "InvalidPrefixListId.NotFound", rules: 5},
		{name: "group of another VPC", perms: []types.IpPermission{toGroup(foreign)}, code: "InvalidGroup.NotFound", rules: 5},
		{name: "unknown group", group: "sg-0123456789abcdef0", perms: []types.IpPermission{cidr("10.0.0.5/32")}, code: "InvalidGroup.NotFound"},
		{name: "bad ports", perms: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(444), ToPort: aws.Int32(443),
			IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}}}, code: "InvalidParameterValue", rules: 5},
		{name: "no permissions", code: "MissingParameter", rules: 5},
	}
	g := c.AddSecurityGroup(vpc, "forensic", nil, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := g
			if tt.group != "" {
				group = tt.group
			}
			out, err := c.EC2().AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(group), IpPermissions: tt.perms})
			wantCode(t, err, tt.code)
			if err == nil {
				if !aws.ToBool(out.Return) || len(out.SecurityGroupRules) == 0 {
					t.Errorf("answer = %+v", out)
				}
				for _, r := range out.SecurityGroupRules {
					if !aws.ToBool(r.IsEgress) || !kindRule.wellFormed(aws.ToString(r.SecurityGroupRuleId)) || aws.ToString(r.GroupId) != g {
						t.Errorf("rule = %+v", r)
					}
				}
			}
			if tt.group != "" {
				return
			}
			n := 0
			for _, p := range c.SecurityGroup(g).IpPermissionsEgress {
				n += len(p.IpRanges) + len(p.PrefixListIds) + len(p.UserIdGroupPairs)
			}
			if n != tt.rules {
				t.Errorf("group has %d egress rules, want %d", n, tt.rules)
			}
		})
	}

	// What was authorized shows in DescribeSecurityGroups and can be revoked.
	sg := c.SecurityGroup(g)
	if len(sg.IpPermissions) != 0 || len(sg.IpPermissionsEgress) != 1 {
		t.Fatalf("group = %+v", sg)
	}
	p := sg.IpPermissionsEgress[0]
	if len(p.IpRanges) != 3 || len(p.PrefixListIds) != 1 || len(p.UserIdGroupPairs) != 1 ||
		aws.ToString(p.IpRanges[0].Description) != "ssm endpoint" || aws.ToString(p.UserIdGroupPairs[0].UserId) != c.Account {
		t.Errorf("egress = %+v", p)
	}
	if _, err := c.EC2().RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(g),
		IpPermissions: []types.IpPermission{s3pl, toGroup(ep), cidr("10.0.0.5/32")}}); err != nil {
		t.Fatal(err)
	}
	if p := c.SecurityGroup(g).IpPermissionsEgress; len(p) != 1 || len(p[0].IpRanges) != 2 || len(p[0].PrefixListIds) != 0 {
		t.Errorf("after revoke: %+v", p)
	}
	// The rule quota.
	var many []types.IpPermission
	for i := range 59 {
		many = append(many, cidr(fmt.Sprintf("10.1.%d.0/24", i)))
	}
	_, err := c.EC2().AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(g), IpPermissions: many})
	wantCode(t, err, "RulesPerSecurityGroupLimitExceeded")
}

// Ingress rules are added like egress rules, to their own direction: an
// ingress rule equal to an egress rule is no duplicate, a second equal
// ingress rule is, and DescribeSecurityGroups shows them in IpPermissions.
func TestAuthorizeSecurityGroupIngress(t *testing.T) {
	ctx := context.Background()
	c := New()
	g := c.AddSecurityGroup(c.AddVPC(), "open", nil, DefaultEgress())
	all := []types.IpPermission{{IpProtocol: aws.String("-1"),
		IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}, Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}}
	out, err := c.EC2().AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(g), IpPermissions: all})
	if err != nil || len(out.SecurityGroupRules) != 2 || aws.ToBool(out.SecurityGroupRules[0].IsEgress) {
		t.Fatalf("authorize: %+v %v", out, err)
	}
	_, err = c.EC2().AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(g), IpPermissions: all})
	wantCode(t, err, "InvalidPermission.Duplicate")
	sg := c.SecurityGroup(g)
	if len(sg.IpPermissions) == 0 || len(sg.IpPermissionsEgress) == 0 {
		t.Fatalf("rules in %+v / %+v", sg.IpPermissions, sg.IpPermissionsEgress)
	}
	if _, err := c.EC2().RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(g), IpPermissions: all}); err != nil {
		t.Fatal(err)
	}
	if sg := c.SecurityGroup(g); len(sg.IpPermissions) != 0 || len(sg.IpPermissionsEgress) == 0 {
		t.Errorf("after revoke: ingress %+v, egress %+v", sg.IpPermissions, sg.IpPermissionsEgress)
	}
}
