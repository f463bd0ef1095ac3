package fakeaws

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Reachability of AWS services from an instance, judged from security
// groups and network ACLs. The fake assumes every subnet has a route to the
// internet through an internet gateway (traffic to the internet leaves the
// instance's subnet and crosses only its ACL, with a public address,
// publicServiceAddr, as the remote end); traffic to an endpoint's interface
// in another subnet crosses both subnets' ACLs, both ways (nacls.go). HTTPS to a service is possible from an
// interface of the instance when:
//
//   - the VPC has an available interface endpoint for the service with
//     private DNS (the agent's requests then resolve to its addresses): the
//     interface's groups allow egress TCP 443 to the private IP of one of
//     the endpoint's interfaces (by a CIDR that contains it, or by one of
//     the endpoint's groups) and the endpoint's groups allow ingress TCP 443
//     from the instance's interface (by CIDR or by one of its groups);
//   - otherwise (the public endpoint): the groups allow egress TCP 443 to
//     0.0.0.0/0.
//
// The agent reaches Systems Manager when it reaches ssm and one of
// ssmmessages or ec2messages. S3 (for presigned URLs, which name the public
// endpoint) is reachable with egress TCP 443 to 0.0.0.0/0, to the Region's
// S3 prefix list when the VPC has an S3 gateway endpoint, or to an S3
// interface endpoint as above.

// publicServiceAddr stands for a public endpoint of an AWS service.
const publicServiceAddr = "52.94.0.10"

// CanReach reports whether the instance can reach Systems Manager (the SSM
// Agent's ssm plus ssmmessages or ec2messages endpoints) and S3 over HTTPS,
// from its security groups and the VPC's endpoints (see reach.go). A
// stopped or terminated instance reaches nothing. It panics when there is
// no such instance.
func (c *Cloud) CanReach(instanceID string) (ssm, s3 bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, ok := c.st.Instances[instanceID]
	if !ok {
		panic(fmt.Sprintf("fakeaws: CanReach: no instance %q", instanceID))
	}
	return c.canReachSSMLocked(inst), c.canReachS3Locked(inst)
}

func (c *Cloud) canReachSSMLocked(inst *instance) bool {
	if inst.State != types.InstanceStateNameRunning {
		return false
	}
	return c.reachServiceLocked(inst, "ssm") &&
		(c.reachServiceLocked(inst, "ssmmessages") || c.reachServiceLocked(inst, "ec2messages"))
}

func (c *Cloud) canReachS3Locked(inst *instance) bool {
	if inst.State != types.InstanceStateNameRunning {
		return false
	}
	gateway := false
	for _, ep := range c.st.Endpoints {
		if ep.VpcID == inst.VpcID && ep.Type == types.VpcEndpointTypeGateway && ep.State == "available" &&
			ep.ServiceName == c.endpointServiceName("s3") {
			gateway = true
		}
	}
	pl := c.s3PrefixListID()
	for _, id := range inst.InterfaceIDs {
		n := c.st.Interfaces[id]
		if c.egressAllowsLocked(n.GroupIDs, func(t target) bool {
			return t.CidrIPv4 == "0.0.0.0/0" || (gateway && t.PrefixListID == pl)
		}) && c.naclPassesLocked(n, "", publicServiceAddr) {
			return true
		}
	}
	for _, ep := range c.interfaceEndpointsLocked(inst.VpcID, "s3", false) {
		if c.reachEndpointLocked(inst, ep) {
			return true
		}
	}
	return false
}

// reachServiceLocked reports whether the instance reaches a service over
// HTTPS: through its private-DNS interface endpoints when the VPC has any,
// through the internet otherwise.
func (c *Cloud) reachServiceLocked(inst *instance, service string) bool {
	eps := c.interfaceEndpointsLocked(inst.VpcID, service, true)
	if len(eps) > 0 {
		for _, ep := range eps {
			if c.reachEndpointLocked(inst, ep) {
				return true
			}
		}
		return false
	}
	for _, id := range inst.InterfaceIDs {
		n := c.st.Interfaces[id]
		if c.egressAllowsLocked(n.GroupIDs, func(t target) bool { return t.CidrIPv4 == "0.0.0.0/0" }) && c.naclPassesLocked(n, "", publicServiceAddr) {
			return true
		}
	}
	return false
}

// interfaceEndpointsLocked returns the available interface endpoints of a
// service in a VPC (only those with private DNS when privateDNS is set).
func (c *Cloud) interfaceEndpointsLocked(vpcID, service string, privateDNS bool) []*vpcEndpoint {
	var out []*vpcEndpoint
	name := c.endpointServiceName(service)
	for _, ep := range sortedBySeq(c.st.Endpoints, func(ep *vpcEndpoint) int { return ep.Seq }) {
		if ep.VpcID == vpcID && ep.Type == types.VpcEndpointTypeInterface && ep.State == "available" &&
			ep.ServiceName == name && (ep.PrivateDNS || !privateDNS) {
			out = append(out, ep)
		}
	}
	return out
}

// reachEndpointLocked reports whether some interface of the instance may
// open HTTPS to some interface of the endpoint, both ways through the groups.
func (c *Cloud) reachEndpointLocked(inst *instance, ep *vpcEndpoint) bool {
	for _, id := range inst.InterfaceIDs {
		n := c.st.Interfaces[id]
		for _, eid := range ep.InterfaceIDs {
			e := c.st.Interfaces[eid]
			out := c.egressAllowsLocked(n.GroupIDs, func(t target) bool { return c.targetMatchesLocked(t, e) })
			in := c.ingressAllowsLocked(e.GroupIDs, func(t target) bool { return c.targetMatchesLocked(t, n) })
			if out && in && c.naclPassesLocked(n, e.SubnetID, e.PrivateIP) {
				return true
			}
		}
	}
	return false
}

// targetMatchesLocked reports whether a rule's target covers an interface:
// a CIDR that contains its address, or one of its groups.
func (c *Cloud) targetMatchesLocked(t target, n *netInterface) bool {
	switch {
	case t.CidrIPv4 != "":
		return cidrContains(t.CidrIPv4, n.PrivateIP)
	case t.GroupID != "":
		return slices.Contains(n.GroupIDs, t.GroupID)
	}
	return false
}

func (c *Cloud) egressAllowsLocked(groups []string, to func(target) bool) bool {
	return c.groupsAllow443Locked(groups, true, to)
}

func (c *Cloud) ingressAllowsLocked(groups []string, from func(target) bool) bool {
	return c.groupsAllow443Locked(groups, false, from)
}

// groupsAllow443Locked reports whether a rule of the groups, in one
// direction, allows TCP 443 to or from a target the predicate accepts.
func (c *Cloud) groupsAllow443Locked(groups []string, egress bool, match func(target) bool) bool {
	for _, id := range groups {
		g, ok := c.st.Groups[id]
		if !ok {
			continue
		}
		for _, r := range g.Rules {
			if r.Egress == egress && allowsHTTPS(r) && match(r.target) {
				return true
			}
		}
	}
	return false
}

// allowsHTTPS reports whether a rule's protocol and ports admit TCP 443.
func allowsHTTPS(r sgRule) bool {
	switch r.Protocol {
	case "-1":
		return true
	case "tcp", "6":
		return r.FromPort != nil && r.ToPort != nil && *r.FromPort <= 443 && 443 <= *r.ToPort
	}
	return false
}

// cidrContains reports whether an IPv4 CIDR contains an address.
func cidrContains(cidr, ip string) bool {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && p.Contains(a)
}
