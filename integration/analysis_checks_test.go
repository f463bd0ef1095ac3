package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// analysisNetworkProblems reads the deployed analysis network back through
// the EC2 API and returns what gives it a path out, or what it lacks.
func analysisNetworkProblems(ctx context.Context, c *ec2.Client, net deployedNetwork) []string {
	vpc := net.Physical["AnalysisVpc"]
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{vpc}})
	if err != nil || len(vpcs.Vpcs) != 1 {
		return []string{fmt.Sprintf("the stack's VPC %q does not exist: %v", vpc, err)}
	}
	inVpc := []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}
	var p problems
	p.gateways(ctx, c, vpc, inVpc)
	endpoints := p.endpoints(ctx, c, inVpc)
	p.routes(ctx, c, net, inVpc, endpoints)
	p.securityGroup(ctx, c, net.Physical["AnalysisSecurityGroup"])
	p.subnets(ctx, c, net, inVpc)
	p.flowLog(ctx, c, vpc, net.AccessLogBucket)
	return p
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// gateways: no internet gateway attached, no NAT gateway.
func (p *problems) gateways(ctx context.Context, c *ec2.Client, vpc string, inVpc []ec2types.Filter) {
	igws, err := c.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{
		Filters: []ec2types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{vpc}}}})
	if err != nil {
		p.add("internet gateways: %v", err)
	}
	for _, g := range igws.InternetGateways {
		p.add("internet gateway %s is attached to the VPC", aws.ToString(g.InternetGatewayId))
	}
	nats, err := c.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{Filter: inVpc})
	if err != nil {
		p.add("NAT gateways: %v", err)
		return
	}
	for _, g := range nats.NatGateways {
		if g.State != ec2types.NatGatewayStateDeleted {
			p.add("NAT gateway %s (%s) is in the VPC", aws.ToString(g.NatGatewayId), g.State)
		}
	}
}

// endpoints: the ssm, ssmmessages and ec2messages interface endpoints with
// private DNS, the S3 gateway endpoint, nothing else. It returns the
// endpoints by service name.
func (p *problems) endpoints(ctx context.Context, c *ec2.Client, inVpc []ec2types.Filter) map[string]ec2types.VpcEndpoint {
	out, err := c.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{Filters: inVpc})
	if err != nil {
		p.add("VPC endpoints: %v", err)
		return nil
	}
	byService := map[string]ec2types.VpcEndpoint{}
	for _, e := range out.VpcEndpoints {
		byService[aws.ToString(e.ServiceName)] = e
	}
	prefix := "com.amazonaws.us-east-1."
	want := map[string]ec2types.VpcEndpointType{"ssm": ec2types.VpcEndpointTypeInterface, "ssmmessages": ec2types.VpcEndpointTypeInterface,
		"ec2messages": ec2types.VpcEndpointTypeInterface, "s3": ec2types.VpcEndpointTypeGateway}
	for service, typ := range want {
		e, ok := byService[prefix+service]
		switch {
		case !ok:
			p.add("no %s endpoint for %s", typ, prefix+service)
		case e.VpcEndpointType != typ:
			p.add("endpoint %s for %s is of type %s, want %s", aws.ToString(e.VpcEndpointId), service, e.VpcEndpointType, typ)
		case typ == ec2types.VpcEndpointTypeInterface && !aws.ToBool(e.PrivateDnsEnabled):
			p.add("interface endpoint %s for %s has private DNS off: the SSM Agent would not find it", aws.ToString(e.VpcEndpointId), service)
		}
	}
	for name, e := range byService {
		if _, ok := want[strings.TrimPrefix(name, prefix)]; !ok || !strings.HasPrefix(name, prefix) {
			p.add("unexpected endpoint %s for %s", aws.ToString(e.VpcEndpointId), name)
		}
	}
	return byService
}

// routes: in every route table of the VPC, only the local route and the S3
// gateway endpoint's prefix-list route; both subnets use the analysis route
// table, which holds the S3 route.
func (p *problems) routes(ctx context.Context, c *ec2.Client, net deployedNetwork, inVpc []ec2types.Filter, endpoints map[string]ec2types.VpcEndpoint) {
	s3Endpoint := aws.ToString(endpoints["com.amazonaws.us-east-1.s3"].VpcEndpointId)
	lists, err := c.DescribeManagedPrefixLists(ctx, &ec2.DescribeManagedPrefixListsInput{
		Filters: []ec2types.Filter{{Name: aws.String("prefix-list-name"), Values: []string{"com.amazonaws.us-east-1.s3"}}}})
	if err != nil || len(lists.PrefixLists) != 1 {
		p.add("the S3 prefix list: %v", err)
		return
	}
	s3List := aws.ToString(lists.PrefixLists[0].PrefixListId)
	tables, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: inVpc})
	if err != nil {
		p.add("route tables: %v", err)
		return
	}
	analysisTable := net.Physical["AnalysisRouteTable"]
	s3Route := false
	for _, rt := range tables.RouteTables {
		id := aws.ToString(rt.RouteTableId)
		for _, r := range rt.Routes {
			switch {
			case aws.ToString(r.DestinationCidrBlock) == net.CIDR && aws.ToString(r.GatewayId) == "local":
			case aws.ToString(r.DestinationPrefixListId) == s3List && s3Endpoint != "" && aws.ToString(r.GatewayId) == s3Endpoint:
				s3Route = s3Route || id == analysisTable
			default:
				p.add("route table %s: route %s to %s", id, routeDestination(r), routeTarget(r))
			}
		}
		if id != analysisTable {
			continue
		}
		var subnets []string
		for _, a := range rt.Associations {
			subnets = append(subnets, aws.ToString(a.SubnetId))
		}
		for _, s := range []string{"AnalysisSubnetA", "AnalysisSubnetB"} {
			if !slices.Contains(subnets, net.Physical[s]) {
				p.add("%s (%s) is not associated with the analysis route table %s", s, net.Physical[s], id)
			}
		}
	}
	if !s3Route {
		p.add("the analysis route table %s has no route to the S3 gateway endpoint %q (prefix list %s)", analysisTable, s3Endpoint, s3List)
	}
}

func routeDestination(r ec2types.Route) string {
	for _, d := range []*string{r.DestinationCidrBlock, r.DestinationIpv6CidrBlock, r.DestinationPrefixListId} {
		if aws.ToString(d) != "" {
			return aws.ToString(d)
		}
	}
	return "(no destination)"
}

func routeTarget(r ec2types.Route) string {
	for _, t := range []*string{r.GatewayId, r.NatGatewayId, r.EgressOnlyInternetGatewayId, r.TransitGatewayId,
		r.VpcPeeringConnectionId, r.NetworkInterfaceId, r.InstanceId, r.CarrierGatewayId, r.LocalGatewayId} {
		if aws.ToString(t) != "" {
			return aws.ToString(t)
		}
	}
	return "(no target)"
}

// securityGroup: the analysis instances' group has no ingress rule.
func (p *problems) securityGroup(ctx context.Context, c *ec2.Client, group string) {
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{group}})
	if err != nil || len(out.SecurityGroups) != 1 {
		p.add("the analysis security group %q: %v", group, err)
		return
	}
	for _, r := range out.SecurityGroups[0].IpPermissions {
		p.add("the analysis security group %s has an ingress rule: %s %d-%d from %s", group, aws.ToString(r.IpProtocol),
			aws.ToInt32(r.FromPort), aws.ToInt32(r.ToPort), ruleSources(r))
	}
}

func ruleSources(r ec2types.IpPermission) string {
	var s []string
	for _, ip := range r.IpRanges {
		s = append(s, aws.ToString(ip.CidrIp))
	}
	for _, ip := range r.Ipv6Ranges {
		s = append(s, aws.ToString(ip.CidrIpv6))
	}
	for _, g := range r.UserIdGroupPairs {
		s = append(s, aws.ToString(g.GroupId))
	}
	for _, l := range r.PrefixListIds {
		s = append(s, aws.ToString(l.PrefixListId))
	}
	return strings.Join(s, ", ")
}

// subnets: the two analysis subnets exist and none of the VPC's subnets
// maps public IPs.
func (p *problems) subnets(ctx context.Context, c *ec2.Client, net deployedNetwork, inVpc []ec2types.Filter) {
	out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: inVpc})
	if err != nil {
		p.add("subnets: %v", err)
		return
	}
	found := map[string]bool{}
	for _, s := range out.Subnets {
		found[aws.ToString(s.SubnetId)] = true
		if aws.ToBool(s.MapPublicIpOnLaunch) {
			p.add("subnet %s maps public IPs on launch", aws.ToString(s.SubnetId))
		}
	}
	for _, s := range []string{"AnalysisSubnetA", "AnalysisSubnetB"} {
		if !found[net.Physical[s]] {
			p.add("%s (%q) is not a subnet of the VPC", s, net.Physical[s])
		}
	}
}

// flowLog: a flow log of all the VPC's traffic, to the access-log bucket.
func (p *problems) flowLog(ctx context.Context, c *ec2.Client, vpc, bucketARN string) {
	out, err := c.DescribeFlowLogs(ctx, &ec2.DescribeFlowLogsInput{
		Filter: []ec2types.Filter{{Name: aws.String("resource-id"), Values: []string{vpc}}}})
	if err != nil {
		p.add("flow logs: %v", err)
		return
	}
	for _, l := range out.FlowLogs {
		if l.TrafficType == ec2types.TrafficTypeAll && l.LogDestinationType == ec2types.LogDestinationTypeS3 &&
			strings.HasPrefix(aws.ToString(l.LogDestination), bucketARN) {
			return
		}
	}
	p.add("no flow log of all the VPC's traffic to %s (%d flow logs)", bucketARN, len(out.FlowLogs))
}
