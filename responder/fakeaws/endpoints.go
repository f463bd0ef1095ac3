package fakeaws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// vpcEndpoint is a VPC endpoint. An interface endpoint has one
// requester-managed network interface per subnet (in st.Interfaces, attached
// to no instance); a gateway endpoint has route tables, and traffic to it is
// addressed with the service's AWS-managed prefix list.
type vpcEndpoint struct {
	ID            string
	Type          types.VpcEndpointType
	VpcID         string
	ServiceName   string // com.amazonaws.<region>.<service>
	PrivateDNS    bool
	SubnetIDs     []string
	InterfaceIDs  []string
	GroupIDs      []string
	RouteTableIDs []string
	State         string // available, pending, ...
	Created       time.Time
	Tags          []types.Tag
	Seq           int
}

// EndpointSpec describes a VPC endpoint for AddVpcEndpoint. The zero value is
// an available interface endpoint with private DNS, one network interface in
// every subnet of the VPC, and a security group that allows HTTPS from the
// VPC's CIDR (the usual endpoint setup).
type EndpointSpec struct {
	// Gateway makes a gateway endpoint (s3 and dynamodb only): no network
	// interface; its route tables send the service's prefix list to it.
	Gateway bool
	// PrivateDNSDisabled turns private DNS off: the agent then resolves the
	// public endpoint and does not use this one.
	PrivateDNSDisabled bool
	// SubnetIDs are the subnets of an interface endpoint; every subnet of
	// the VPC when empty (one is made if the VPC has none).
	SubnetIDs []string
	// SecurityGroupIDs are the groups of an interface endpoint's network
	// interfaces. When empty, a group "<service>-endpoint" that allows TCP 443
	// from the VPC's CIDR (made on first use). AWS itself would use the VPC's
	// default group: pass it to test that setup.
	SecurityGroupIDs []string
	// RouteTableIDs of a gateway endpoint; one made-up ID when empty (the fake
	// does not model route tables).
	RouteTableIDs []string
	// State is "available" when empty.
	State string
	Tags  map[string]string
}

// endpointServiceName returns com.amazonaws.<region>.<service> for a short
// service name, and a full name as it is.
func (c *Cloud) endpointServiceName(service string) string {
	if strings.Contains(service, ".") {
		return service
	}
	return "com.amazonaws." + c.Region + "." + service
}

// AddVpcEndpoint adds a VPC endpoint for a service ("ssm", "ssmmessages",
// "ec2messages", "s3", or a full name com.amazonaws.<region>.<service>) and
// returns its ID. spec, at most one, describes it (see EndpointSpec). It
// panics on a spec that names unknown resources.
func (c *Cloud) AddVpcEndpoint(vpcID, service string, spec ...EndpointSpec) string {
	if len(spec) > 1 {
		panic("fakeaws: AddVpcEndpoint: at most one EndpointSpec")
	}
	var s EndpointSpec
	if len(spec) == 1 {
		s = spec[0]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.st.VPCs[vpcID]
	if !ok {
		panic(fmt.Sprintf("fakeaws: AddVpcEndpoint: no VPC %q", vpcID))
	}
	name := c.endpointServiceName(service)
	short := name[strings.LastIndex(name, ".")+1:]
	ep := &vpcEndpoint{
		ID:          c.hexIDLocked("vpce"),
		Type:        types.VpcEndpointTypeInterface,
		VpcID:       vpcID,
		ServiceName: name,
		PrivateDNS:  !s.PrivateDNSDisabled,
		State:       s.State,
		Created:     c.now().Truncate(time.Second),
		Tags:        tagsFromMap(s.Tags),
		Seq:         c.nextSeqLocked(),
	}
	if ep.State == "" {
		ep.State = "available"
	}
	if s.Gateway {
		if short != "s3" && short != "dynamodb" {
			panic(fmt.Sprintf("fakeaws: AddVpcEndpoint: %s has no gateway endpoint", name))
		}
		ep.Type, ep.PrivateDNS = types.VpcEndpointTypeGateway, false
		ep.RouteTableIDs = slices.Clone(s.RouteTableIDs)
		if len(ep.RouteTableIDs) == 0 {
			ep.RouteTableIDs = []string{c.hexIDLocked("rtb")}
		}
		c.st.Endpoints[ep.ID] = ep
		return ep.ID
	}

	ep.SubnetIDs = slices.Clone(s.SubnetIDs)
	if len(ep.SubnetIDs) == 0 {
		for _, sn := range sortedBySeq(c.st.Subnets, func(s *subnet) int { return s.Seq }) {
			if sn.VpcID == vpcID {
				ep.SubnetIDs = append(ep.SubnetIDs, sn.ID)
			}
		}
		if len(ep.SubnetIDs) == 0 {
			ep.SubnetIDs = []string{c.addSubnetLocked(vpcID)}
		}
	}
	for _, id := range ep.SubnetIDs {
		if sn, ok := c.st.Subnets[id]; !ok || sn.VpcID != vpcID {
			panic(fmt.Sprintf("fakeaws: AddVpcEndpoint: no subnet %q in VPC %s", id, vpcID))
		}
	}
	ep.GroupIDs = slices.Clone(s.SecurityGroupIDs)
	for _, g := range ep.GroupIDs {
		if sg, ok := c.st.Groups[g]; !ok || sg.VpcID != vpcID {
			panic(fmt.Sprintf("fakeaws: AddVpcEndpoint: no security group %q in VPC %s", g, vpcID))
		}
	}
	if len(ep.GroupIDs) == 0 {
		groupName := short + "-endpoint"
		g := c.groupByNameLocked(vpcID, groupName)
		if g == nil {
			g = c.newGroupLocked(vpcID, groupName, "HTTPS from the VPC to the "+short+" endpoint")
			g.Rules = append(g.Rules,
				c.newRuleLocked(false, "tcp", aws.Int32(443), aws.Int32(443), target{CidrIPv4: v.CIDR}),
				c.newRuleLocked(true, "-1", nil, nil, target{CidrIPv4: "0.0.0.0/0"}))
		}
		ep.GroupIDs = []string{g.ID}
	}
	for _, id := range ep.SubnetIDs {
		n := &netInterface{
			ID:               c.hexIDLocked("eni"),
			VpcID:            vpcID,
			SubnetID:         id,
			PrivateIP:        c.nextAddressLocked(c.st.Subnets[id]),
			GroupIDs:         slices.Clone(ep.GroupIDs),
			InterfaceType:    string(types.NetworkInterfaceTypeVpcEndpoint),
			EndpointID:       ep.ID,
			Description:      "VPC Endpoint Interface " + ep.ID,
			RequesterManaged: true,
			Seq:              c.nextSeqLocked(),
		}
		n.MAC = fmt.Sprintf("0e:%02x:%02x:%02x:%02x:%02x", c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256))
		c.st.Interfaces[n.ID] = n
		ep.InterfaceIDs = append(ep.InterfaceIDs, n.ID)
	}
	c.st.Endpoints[ep.ID] = ep
	return ep.ID
}

// fullAccessPolicy is the policy AWS gives an endpoint made without one.
const fullAccessPolicy = `{"Statement":[{"Action":"*","Effect":"Allow","Principal":"*","Resource":"*"}]}`

func (c *Cloud) renderEndpointLocked(ep *vpcEndpoint) types.VpcEndpoint {
	out := types.VpcEndpoint{
		VpcEndpointId:       aws.String(ep.ID),
		VpcEndpointType:     ep.Type,
		VpcId:               aws.String(ep.VpcID),
		ServiceName:         aws.String(ep.ServiceName),
		State:               types.State(ep.State), // the API answers lower case, e.g. "available"
		PolicyDocument:      aws.String(fullAccessPolicy),
		RouteTableIds:       slices.Clone(ep.RouteTableIDs),
		SubnetIds:           slices.Clone(ep.SubnetIDs),
		NetworkInterfaceIds: slices.Clone(ep.InterfaceIDs),
		PrivateDnsEnabled:   aws.Bool(ep.PrivateDNS),
		RequesterManaged:    aws.Bool(false),
		CreationTimestamp:   aws.Time(ep.Created),
		OwnerId:             aws.String(c.Account),
		Tags:                copyTags(ep.Tags),
		Groups:              []types.SecurityGroupIdentifier{},
		DnsEntries:          []types.DnsEntry{},
	}
	if out.RouteTableIds == nil {
		out.RouteTableIds = []string{}
	}
	if out.SubnetIds == nil {
		out.SubnetIds = []string{}
	}
	if out.NetworkInterfaceIds == nil {
		out.NetworkInterfaceIds = []string{}
	}
	if ep.Type == types.VpcEndpointTypeInterface {
		out.IpAddressType = types.IpAddressTypeIpv4
		out.DnsOptions = &types.DnsOptions{DnsRecordIpType: types.DnsRecordIpTypeIpv4}
		for _, g := range ep.GroupIDs {
			out.Groups = append(out.Groups, types.SecurityGroupIdentifier{GroupId: aws.String(g), GroupName: aws.String(c.st.Groups[g].Name)})
		}
		short := ep.ServiceName[strings.LastIndex(ep.ServiceName, ".")+1:]
		region := strings.TrimSuffix(strings.TrimPrefix(ep.ServiceName, "com.amazonaws."), "."+short)
		out.DnsEntries = append(out.DnsEntries, types.DnsEntry{
			DnsName:      aws.String(fmt.Sprintf("%s-%s.%s.%s.vpce.amazonaws.com", ep.ID, strings.TrimPrefix(ep.ID, "vpce-")[:8], short, region)),
			HostedZoneId: aws.String("Z7HUB22UULQXV"),
		})
		if ep.PrivateDNS {
			out.DnsEntries = append(out.DnsEntries, types.DnsEntry{
				DnsName:      aws.String(short + "." + region + ".amazonaws.com"),
				HostedZoneId: aws.String("Z" + strings.ToUpper(hex.EncodeToString([]byte(ep.ID))[:20])),
			})
		}
	}
	return out
}

var endpointFields = fields[*vpcEndpoint]{
	"vpc-id":             func(ep *vpcEndpoint) []string { return one(ep.VpcID) },
	"service-name":       func(ep *vpcEndpoint) []string { return one(ep.ServiceName) },
	"vpc-endpoint-id":    func(ep *vpcEndpoint) []string { return one(ep.ID) },
	"vpc-endpoint-type":  func(ep *vpcEndpoint) []string { return one(string(ep.Type)) },
	"vpc-endpoint-state": func(ep *vpcEndpoint) []string { return one(ep.State) },
}

// DescribeVpcEndpoints describes VPC endpoints by ID and filters (vpc-id,
// service-name, vpc-endpoint-id, vpc-endpoint-type, vpc-endpoint-state,
// tag:<key>, tag-key, tag-value).
func (e *EC2) DescribeVpcEndpoints(ctx context.Context, in *ec2.DescribeVpcEndpointsInput, _ ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error) {
	if in == nil {
		in = &ec2.DescribeVpcEndpointsInput{}
	}
	c := e.c
	out := &ec2.DescribeVpcEndpointsOutput{}
	err := c.call(ctx, serviceEC2, "DescribeVpcEndpoints", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := kindEndpoint.check(in.VpcEndpointIds, func(id string) bool { _, ok := c.st.Endpoints[id]; return ok }); err != nil {
			return nil, err
		}
		if err := checkFilters(in.Filters, endpointFields); err != nil {
			return nil, err
		}
		list := sortedBySeq(c.st.Endpoints, func(ep *vpcEndpoint) int { return ep.Seq })
		if len(in.VpcEndpointIds) > 0 {
			list = nil
			for _, id := range dedupe(in.VpcEndpointIds) {
				list = append(list, c.st.Endpoints[id])
			}
		}
		list = filter(list, in.Filters, endpointFields, func(ep *vpcEndpoint) []types.Tag { return ep.Tags })
		result := []types.VpcEndpoint{}
		for _, ep := range list {
			result = append(result, c.renderEndpointLocked(ep))
		}
		return func() { out.VpcEndpoints = result }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prefixList is an AWS-managed prefix list, the address ranges of a service
// in a Region that a gateway endpoint routes.
type prefixList struct {
	ID, Name string
	CIDRs    []string
}

// knownPrefixListIDs are the real IDs of the us-east-1 lists; other Regions
// get IDs derived from their name.
var knownPrefixListIDs = map[string]string{
	"com.amazonaws.us-east-1.s3":       "pl-63a5400a",
	"com.amazonaws.us-east-1.dynamodb": "pl-02cd2c6b",
}

// prefixLists returns the AWS-managed prefix lists of the Region: S3 and
// DynamoDB, as every Region has.
func (c *Cloud) prefixLists() []prefixList {
	var out []prefixList
	for _, svc := range []struct {
		name  string
		cidrs []string
	}{
		{"s3", []string{"16.182.0.0/16", "3.5.0.0/19", "52.216.0.0/15", "54.231.0.0/16"}},
		{"dynamodb", []string{"3.218.180.0/22", "52.94.0.0/22"}},
	} {
		name := "com.amazonaws." + c.Region + "." + svc.name
		id, ok := knownPrefixListIDs[name]
		if !ok {
			sum := sha256.Sum256([]byte(name))
			id = "pl-" + hex.EncodeToString(sum[:4])
		}
		out = append(out, prefixList{ID: id, Name: name, CIDRs: svc.cidrs})
	}
	return out
}

// s3PrefixListID is the ID of the Region's S3 prefix list.
func (c *Cloud) s3PrefixListID() string { return c.prefixLists()[0].ID }

var prefixListFields = fields[prefixList]{
	"prefix-list-id":   func(p prefixList) []string { return one(p.ID) },
	"prefix-list-name": func(p prefixList) []string { return one(p.Name) },
}

// DescribePrefixLists describes the Region's AWS-managed prefix lists
// (com.amazonaws.<region>.s3 and .dynamodb), by ID and filters
// (prefix-list-id, prefix-list-name). Customer-managed prefix lists are not
// modelled.
func (e *EC2) DescribePrefixLists(ctx context.Context, in *ec2.DescribePrefixListsInput, _ ...func(*ec2.Options)) (*ec2.DescribePrefixListsOutput, error) {
	if in == nil {
		in = &ec2.DescribePrefixListsInput{}
	}
	c := e.c
	out := &ec2.DescribePrefixListsOutput{}
	err := c.call(ctx, serviceEC2, "DescribePrefixLists", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		lists := c.prefixLists()
		byID := func(id string) bool {
			return slices.ContainsFunc(lists, func(p prefixList) bool { return p.ID == id })
		}
		if err := kindPrefixList.check(in.PrefixListIds, byID); err != nil {
			return nil, err
		}
		if err := checkFilters(in.Filters, prefixListFields); err != nil {
			return nil, err
		}
		if tagFilter(in.Filters) {
			return nil, apiError("InvalidParameterValue", "AWS-managed prefix lists have no tags to filter on")
		}
		if len(in.PrefixListIds) > 0 {
			lists = slices.DeleteFunc(lists, func(p prefixList) bool { return !slices.Contains(in.PrefixListIds, p.ID) })
		}
		lists = filter(lists, in.Filters, prefixListFields, nil)
		result := []types.PrefixList{}
		for _, p := range lists {
			result = append(result, types.PrefixList{
				PrefixListId:   aws.String(p.ID),
				PrefixListName: aws.String(p.Name),
				Cidrs:          slices.Clone(p.CIDRs),
			})
		}
		return func() { out.PrefixLists = result }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
