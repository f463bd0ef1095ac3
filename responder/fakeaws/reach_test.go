package fakeaws

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// endpointIPs returns the private IPs of an endpoint's interfaces.
func endpointIPs(t *testing.T, c *Cloud, id string) []string {
	t.Helper()
	ctx := context.Background()
	eps, err := c.EC2().DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{VpcEndpointIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	nis, err := c.EC2().DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: eps.VpcEndpoints[0].NetworkInterfaceIds})
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ni := range nis.NetworkInterfaces {
		ips = append(ips, aws.ToString(ni.PrivateIpAddress))
	}
	return ips
}

func httpsTo(cidrs ...string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443)}
	for _, c := range cidrs {
		p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(c)})
	}
	return p
}

func hosts(ips []string) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip+"/32")
	}
	return out
}

func TestCanReach(t *testing.T) {
	// vpcSetup builds a VPC with endpoints and returns the egress rules of
	// the instance's only group, given the endpoints' IDs.
	type endpoints struct{ ssm, messages, ec2messages, s3If, s3Gw string }
	tests := []struct {
		name    string
		setup   func(c *Cloud, vpc string) endpoints
		egress  func(c *Cloud, vpc string, ep endpoints) []types.IpPermission
		stopped bool
		ssm, s3 bool
	}{
		{name: "default egress, no endpoints", egress: func(*Cloud, string, endpoints) []types.IpPermission { return DefaultEgress() }, ssm: true, s3: true},
		{name: "fully closed", egress: func(*Cloud, string, endpoints) []types.IpPermission { return nil }},
		{name: "https to anywhere", egress: func(*Cloud, string, endpoints) []types.IpPermission {
			return []types.IpPermission{httpsTo("0.0.0.0/0")}
		}, ssm: true, s3: true},
		{name: "only port 80 to anywhere", egress: func(*Cloud, string, endpoints) []types.IpPermission {
			return []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80),
				IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}
		}},
		{name: "forensic access group: endpoint IPs and the S3 prefix list",
			setup: func(c *Cloud, vpc string) endpoints {
				return endpoints{ssm: c.AddVpcEndpoint(vpc, "ssm"), messages: c.AddVpcEndpoint(vpc, "ssmmessages"),
					ec2messages: c.AddVpcEndpoint(vpc, "ec2messages"), s3Gw: c.AddVpcEndpoint(vpc, "s3", EndpointSpec{Gateway: true})}
			},
			egress: func(c *Cloud, vpc string, ep endpoints) []types.IpPermission {
				var ips []string
				for _, id := range []string{ep.ssm, ep.messages, ep.ec2messages} {
					ips = append(ips, endpointIPs(t, c, id)...)
				}
				p := httpsTo(hosts(ips)...)
				p.PrefixListIds = []types.PrefixListId{{PrefixListId: aws.String(c.s3PrefixListID())}}
				return []types.IpPermission{p}
			}, ssm: true, s3: true},
		{name: "ssm and ec2messages suffice",
			setup: func(c *Cloud, vpc string) endpoints {
				return endpoints{ssm: c.AddVpcEndpoint(vpc, "ssm"), ec2messages: c.AddVpcEndpoint(vpc, "ec2messages")}
			},
			egress: func(c *Cloud, vpc string, ep endpoints) []types.IpPermission {
				return []types.IpPermission{httpsTo(hosts(append(endpointIPs(t, c, ep.ssm), endpointIPs(t, c, ep.ec2messages)...))...)}
			}, ssm: true},
		{name: "ssm alone does not",
			setup: func(c *Cloud, vpc string) endpoints {
				return endpoints{ssm: c.AddVpcEndpoint(vpc, "ssm"), messages: c.AddVpcEndpoint(vpc, "ssmmessages")}
			},
			egress: func(c *Cloud, vpc string, ep endpoints) []types.IpPermission {
				return []types.IpPermission{httpsTo(hosts(endpointIPs(t, c, ep.ssm))...)}
			}},
		{name: "a CIDR that holds the endpoint IPs",
			setup: func(c *Cloud, vpc string) endpoints {
				return endpoints{ssm: c.AddVpcEndpoint(vpc, "ssm"), messages: c.AddVpcEndpoint(vpc, "ssmmessages")}
			},
			egress: func(*Cloud, string, endpoints) []types.IpPermission {
				return []types.IpPermission{httpsTo("10.0.0.0/16")}
			}, ssm: true},
		{name: "the endpoints' group",
			setup: func(c *Cloud, vpc string) endpoints {
				g := c.AddSecurityGroup(vpc, "endpoints", []types.IpPermission{httpsTo("10.0.0.0/16")}, nil)
				spec := EndpointSpec{SecurityGroupIDs: []string{g}}
				return endpoints{ssm: c.AddVpcEndpoint(vpc, "ssm", spec), messages: c.AddVpcEndpoint(vpc, "ssmmessages", spec)}
			},
			egress: func(c *Cloud, vpc string, ep endpoints) []types.IpPermission {
				return []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
					UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(c.SecurityGroupsByName(vpc, "endpoints")[0])}}}}
			}, ssm: true},
		{name: "endpoints in the VPC's default group refuse the instance",
			setup: func(c *Cloud, vpc string) endpoints {
				spec := EndpointSpec{SecurityGroupIDs: c.SecurityGroupsByName(vpc, "default")}
				return endpoints{ssm: c.AddVpcEndpoint(vpc, "ssm", spec), messages: c.AddVpcEndpoint(vpc, "ssmmessages", spec)}
			},
			egress: func(*Cloud, string, endpoints) []types.IpPermission { return DefaultEgress() }, s3: true},
		{name: "endpoints without private DNS are not used",
			setup: func(c *Cloud, vpc string) endpoints {
				spec := EndpointSpec{PrivateDNSDisabled: true}
				return endpoints{ssm: c.AddVpcEndpoint(vpc, "ssm", spec), messages: c.AddVpcEndpoint(vpc, "ssmmessages", spec)}
			},
			egress: func(c *Cloud, vpc string, ep endpoints) []types.IpPermission {
				return []types.IpPermission{httpsTo(hosts(append(endpointIPs(t, c, ep.ssm), endpointIPs(t, c, ep.messages)...))...)}
			}},
		{name: "prefix list without a gateway endpoint",
			egress: func(c *Cloud, _ string, _ endpoints) []types.IpPermission {
				return []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
					PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String(c.s3PrefixListID())}}}}
			}},
		{name: "S3 interface endpoint",
			setup: func(c *Cloud, vpc string) endpoints {
				return endpoints{s3If: c.AddVpcEndpoint(vpc, "s3", EndpointSpec{PrivateDNSDisabled: true})}
			},
			egress: func(c *Cloud, vpc string, ep endpoints) []types.IpPermission {
				return []types.IpPermission{httpsTo(hosts(endpointIPs(t, c, ep.s3If))...)}
			},
			s3: true},
		{name: "stopped", egress: func(*Cloud, string, endpoints) []types.IpPermission { return DefaultEgress() }, stopped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New()
			vpc := c.AddVPC()
			c.AddSubnet(vpc)
			var ep endpoints
			if tt.setup != nil {
				ep = tt.setup(c, vpc)
			}
			g := c.AddSecurityGroup(vpc, "instance", nil, tt.egress(c, vpc, ep))
			spec := InstanceSpec{VpcID: vpc, SecurityGroupIDs: []string{g}, NetworkInterfaces: 2}
			if tt.stopped {
				spec.State = types.InstanceStateNameStopped
			}
			id := c.AddInstance(spec)
			if ssm, s3 := c.CanReach(id); ssm != tt.ssm || s3 != tt.s3 {
				t.Errorf("CanReach = ssm %v, s3 %v; want ssm %v, s3 %v", ssm, s3, tt.ssm, tt.s3)
			}
		})
	}
}
