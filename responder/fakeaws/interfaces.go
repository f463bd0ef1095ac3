package fakeaws

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxGroupsPerInterface is AWS's default quota of security groups per
// network interface.
const maxGroupsPerInterface = 5

// netInterface is an elastic network interface: attached to an instance, or
// (EndpointID set) the requester-managed interface of an interface VPC
// endpoint, attached to nothing.
type netInterface struct {
	ID           string
	AttachmentID string // "" when not attached
	InstanceID   string // "" when not attached
	DeviceIndex  int32
	VpcID        string
	SubnetID     string
	PrivateIP    string
	MAC          string
	GroupIDs     []string
	AttachTime   time.Time
	Tags         []types.Tag
	// InterfaceType is "" for an instance's interface ("interface") and
	// "vpc_endpoint" for an endpoint's.
	InterfaceType    string `json:",omitempty"`
	EndpointID       string `json:",omitempty"`
	Description      string `json:",omitempty"`
	RequesterManaged bool   `json:",omitempty"`
	Seq              int
	// ConnTrack holds the connection tracking timeouts set on the interface
	// (nil: never set, the instance type's defaults apply).
	ConnTrack *types.ConnectionTrackingConfiguration `json:",omitempty"`
	// GroupHistory is every set of groups ModifyNetworkInterfaceAttribute
	// gave the interface, in order (InterfaceGroupHistory).
	GroupHistory [][]string `json:",omitempty"`
}

// InterfaceGroupHistory returns the sets of security groups
// ModifyNetworkInterfaceAttribute gave an interface, oldest first (nil for
// an unknown interface or one never changed): a test reads the order of
// moves from it, which the interface's current groups cannot show.
func (c *Cloud) InterfaceGroupHistory(id string) [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.st.Interfaces[id]
	if !ok {
		return nil
	}
	out := make([][]string, len(n.GroupHistory))
	for i, g := range n.GroupHistory {
		out[i] = slices.Clone(g)
	}
	return out
}

// interfaceType is the InterfaceType DescribeNetworkInterfaces shows.
func (n *netInterface) interfaceType() types.NetworkInterfaceType {
	if n.InterfaceType == "" {
		return types.NetworkInterfaceTypeInterface
	}
	return types.NetworkInterfaceType(n.InterfaceType)
}

func (c *Cloud) addInterfaceLocked(inst *instance, index int32, groups []string) {
	n := &netInterface{
		ID:           c.hexIDLocked("eni"),
		AttachmentID: c.hexIDLocked("eni-attach"),
		InstanceID:   inst.ID,
		DeviceIndex:  index,
		VpcID:        inst.VpcID,
		SubnetID:     inst.SubnetID,
		PrivateIP:    c.nextAddressLocked(c.st.Subnets[inst.SubnetID]),
		GroupIDs:     groups,
		AttachTime:   inst.LaunchTime,
		Seq:          c.nextSeqLocked(),
	}
	n.MAC = fmt.Sprintf("0e:%02x:%02x:%02x:%02x:%02x", c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256), c.rng.IntN(256))
	c.st.Interfaces[n.ID] = n
	inst.InterfaceIDs = append(inst.InterfaceIDs, n.ID)
}

// moveInterfaceLocked places the instance's i-th interface, just made, in
// another subnet of its VPC, with an address of that subnet.
func (c *Cloud) moveInterfaceLocked(inst *instance, i int, subnetID string) {
	sn, ok := c.st.Subnets[subnetID]
	if !ok || sn.VpcID != inst.VpcID {
		panic(fmt.Sprintf("fakeaws: AddInstance: no subnet %q in VPC %s", subnetID, inst.VpcID))
	}
	n := c.st.Interfaces[inst.InterfaceIDs[i]]
	n.SubnetID, n.PrivateIP = subnetID, c.nextAddressLocked(sn)
}

func (c *Cloud) renderInterfaceLocked(n *netInterface) types.InstanceNetworkInterface {
	groups := []types.GroupIdentifier{}
	for _, id := range n.GroupIDs {
		groups = append(groups, types.GroupIdentifier{GroupId: aws.String(id), GroupName: aws.String(c.st.Groups[id].Name)})
	}
	return types.InstanceNetworkInterface{
		NetworkInterfaceId: aws.String(n.ID),
		Attachment: &types.InstanceNetworkInterfaceAttachment{
			AttachmentId:        aws.String(n.AttachmentID),
			AttachTime:          aws.Time(n.AttachTime),
			DeleteOnTermination: aws.Bool(n.DeviceIndex == 0),
			DeviceIndex:         aws.Int32(n.DeviceIndex),
			NetworkCardIndex:    aws.Int32(0),
			Status:              types.AttachmentStatusAttached,
		},
		Groups:           groups,
		InterfaceType:    aws.String("interface"),
		MacAddress:       aws.String(n.MAC),
		OwnerId:          aws.String(c.Account),
		PrivateIpAddress: aws.String(n.PrivateIP),
		PrivateDnsName:   aws.String(privateDNSName(n.PrivateIP)),
		PrivateIpAddresses: []types.InstancePrivateIpAddress{{
			Primary:          aws.Bool(true),
			PrivateIpAddress: aws.String(n.PrivateIP),
			PrivateDnsName:   aws.String(privateDNSName(n.PrivateIP)),
		}},
		SourceDestCheck: aws.Bool(true),
		Status:          types.NetworkInterfaceStatusInUse,
		SubnetId:        aws.String(n.SubnetID),
		VpcId:           aws.String(n.VpcID),
		Description:     aws.String(""),
	}
}

// checkGroupsForInterfaceLocked checks the groups a call wants on an
// interface: each must exist (and, when just made by CreateSecurityGroup,
// have propagated) and be in the interface's VPC.
func (c *Cloud) checkGroupsForInterfaceLocked(n *netInterface, groups []string) error {
	if len(groups) > maxGroupsPerInterface {
		return apiError("SecurityGroupsPerInterfaceLimitExceeded", "You have exceeded the maximum number of security groups allowed per network interface.")
	}
	if err := kindGroup.check(groups, c.hasGroup); err != nil {
		return err
	}
	for _, id := range groups {
		if c.st.Groups[id].VpcID != n.VpcID {
			// The code AWS really answers for a group of another VPC.
			return apiError("InvalidGroup.NotFound", "You have specified two resources that belong to different networks.")
		}
	}
	return nil
}

// ModifyNetworkInterfaceAttribute replaces the security groups of a network
// interface. The change shows in DescribeInstances for that interface and,
// for the primary interface, in the instance's SecurityGroups. Other
// attributes are not modelled.
func (e *EC2) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	if in == nil {
		in = &ec2.ModifyNetworkInterfaceAttributeInput{}
	}
	c := e.c
	out := &ec2.ModifyNetworkInterfaceAttributeOutput{}
	err := c.call(ctx, serviceEC2, "ModifyNetworkInterfaceAttribute", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.NetworkInterfaceId == nil {
			return nil, missingParameter("networkInterfaceId")
		}
		others := in.AssociatePublicIpAddress != nil || len(in.AssociatedSubnetIds) > 0 || in.Attachment != nil ||
			in.Description != nil || in.EnaSrdSpecification != nil ||
			in.EnablePrimaryIpv6 != nil || in.SourceDestCheck != nil
		conntrack := in.ConnectionTrackingSpecification != nil
		switch {
		case (others || conntrack) && len(in.Groups) > 0, others && conntrack:
			return nil, apiError("InvalidParameterCombination", "Fields for multiple attribute types specified")
		case others:
			return nil, notModelled("ModifyNetworkInterfaceAttribute", "attributes other than Groups and ConnectionTrackingSpecification")
		case conntrack:
			return c.connTrackLocked(aws.ToString(in.NetworkInterfaceId), in.ConnectionTrackingSpecification)
		case len(in.Groups) == 0:
			return nil, apiError("InvalidParameterCombination", "No attributes specified.")
		}
		id := aws.ToString(in.NetworkInterfaceId)
		if err := kindInterface.check([]string{id}, c.hasInterface); err != nil {
			return nil, err
		}
		// Eventual consistency: a new group stays unknown to this call for
		// GroupPropagationCalls calls that name it.
		var unseen []string
		for _, g := range dedupe(in.Groups) {
			if c.groupPending[g] > 0 {
				c.groupPending[g]--
				if c.groupPending[g] == 0 {
					delete(c.groupPending, g)
				}
				unseen = append(unseen, g)
			}
		}
		if len(unseen) > 0 {
			return nil, kindGroup.notFoundError(unseen)
		}
		n := c.st.Interfaces[id]
		if n.RequesterManaged {
			return nil, apiError("OperationNotPermitted", "The network interface %s is managed by VPC endpoint %s; change its groups with ModifyVpcEndpoint.", n.ID, n.EndpointID)
		}
		if err := c.checkGroupsForInterfaceLocked(n, in.Groups); err != nil {
			return nil, err
		}
		groups := dedupe(in.Groups)
		return func() {
			n.GroupIDs = groups
			n.GroupHistory = append(n.GroupHistory, slices.Clone(groups))
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// groupIdentifiersLocked renders a list of group IDs with their names.
func (c *Cloud) groupIdentifiersLocked(ids []string) []types.GroupIdentifier {
	groups := []types.GroupIdentifier{}
	for _, id := range ids {
		groups = append(groups, types.GroupIdentifier{GroupId: aws.String(id), GroupName: aws.String(c.st.Groups[id].Name)})
	}
	return groups
}

// renderNetworkInterfaceLocked shows an interface as DescribeNetworkInterfaces
// does.
func (c *Cloud) renderNetworkInterfaceLocked(n *netInterface) types.NetworkInterface {
	out := types.NetworkInterface{
		NetworkInterfaceId: aws.String(n.ID),
		InterfaceType:      n.interfaceType(),
		Description:        aws.String(n.Description),
		Groups:             c.groupIdentifiersLocked(n.GroupIDs),
		VpcId:              aws.String(n.VpcID),
		SubnetId:           aws.String(n.SubnetID),
		AvailabilityZone:   aws.String(c.st.Subnets[n.SubnetID].AZ),
		MacAddress:         aws.String(n.MAC),
		OwnerId:            aws.String(c.Account),
		PrivateIpAddress:   aws.String(n.PrivateIP),
		PrivateDnsName:     aws.String(privateDNSName(n.PrivateIP)),
		PrivateIpAddresses: []types.NetworkInterfacePrivateIpAddress{{
			Primary:          aws.Bool(true),
			PrivateIpAddress: aws.String(n.PrivateIP),
			PrivateDnsName:   aws.String(privateDNSName(n.PrivateIP)),
		}},
		RequesterManaged: aws.Bool(n.RequesterManaged),
		SourceDestCheck:  aws.Bool(true),
		Status:           types.NetworkInterfaceStatusAvailable,
		TagSet:           copyTags(n.Tags),
	}
	if n.ConnTrack != nil {
		ct := *n.ConnTrack
		out.ConnectionTrackingConfiguration = &ct
	}
	if n.RequesterManaged {
		out.Status = types.NetworkInterfaceStatusInUse
	}
	if n.InstanceID != "" {
		out.Status = types.NetworkInterfaceStatusInUse
		out.Attachment = &types.NetworkInterfaceAttachment{
			AttachmentId:        aws.String(n.AttachmentID),
			AttachTime:          aws.Time(n.AttachTime),
			DeleteOnTermination: aws.Bool(n.DeviceIndex == 0),
			DeviceIndex:         aws.Int32(n.DeviceIndex),
			NetworkCardIndex:    aws.Int32(0),
			InstanceId:          aws.String(n.InstanceID),
			InstanceOwnerId:     aws.String(c.Account),
			Status:              types.AttachmentStatusAttached,
		}
	}
	return out
}

var networkInterfaceFields = fields[*netInterface]{
	"network-interface-id":         func(n *netInterface) []string { return one(n.ID) },
	"vpc-id":                       func(n *netInterface) []string { return one(n.VpcID) },
	"subnet-id":                    func(n *netInterface) []string { return one(n.SubnetID) },
	"attachment.instance-id":       func(n *netInterface) []string { return one(n.InstanceID) },
	"attachment.attachment-id":     func(n *netInterface) []string { return one(n.AttachmentID) },
	"interface-type":               func(n *netInterface) []string { return one(string(n.interfaceType())) },
	"group-id":                     func(n *netInterface) []string { return n.GroupIDs },
	"private-ip-address":           func(n *netInterface) []string { return one(n.PrivateIP) },
	"addresses.private-ip-address": func(n *netInterface) []string { return one(n.PrivateIP) },
	"requester-managed":            func(n *netInterface) []string { return one(fmt.Sprint(n.RequesterManaged)) },
	"description":                  func(n *netInterface) []string { return one(n.Description) },
	"mac-address":                  func(n *netInterface) []string { return one(n.MAC) },
	"attachment.device-index": func(n *netInterface) []string {
		if n.InstanceID == "" {
			return nil
		}
		return one(fmt.Sprint(n.DeviceIndex))
	},
}

// DescribeNetworkInterfaces describes network interfaces by ID and filters
// (network-interface-id, vpc-id, subnet-id, attachment.instance-id,
// attachment.attachment-id, attachment.device-index, interface-type,
// group-id, private-ip-address, addresses.private-ip-address,
// requester-managed, description, mac-address, tag:<key>, tag-key,
// tag-value). Instance interfaces are InterfaceType "interface" with an
// Attachment; the interfaces of interface VPC endpoints are "vpc_endpoint",
// requester-managed, and attached to nothing.
func (e *EC2) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	if in == nil {
		in = &ec2.DescribeNetworkInterfacesInput{}
	}
	c := e.c
	out := &ec2.DescribeNetworkInterfacesOutput{}
	err := c.call(ctx, serviceEC2, "DescribeNetworkInterfaces", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := kindInterface.check(in.NetworkInterfaceIds, c.hasInterface); err != nil {
			return nil, err
		}
		if err := checkFilters(in.Filters, networkInterfaceFields); err != nil {
			return nil, err
		}
		list := sortedBySeq(c.st.Interfaces, func(n *netInterface) int { return n.Seq })
		if len(in.NetworkInterfaceIds) > 0 {
			list = nil
			for _, id := range dedupe(in.NetworkInterfaceIds) {
				list = append(list, c.st.Interfaces[id])
			}
		}
		list = filter(list, in.Filters, networkInterfaceFields, func(n *netInterface) []types.Tag { return n.Tags })
		result := []types.NetworkInterface{}
		for _, n := range list {
			result = append(result, c.renderNetworkInterfaceLocked(n))
		}
		return func() { out.NetworkInterfaces = result }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// connTrackLimits are the documented bounds of the connection tracking
// timeouts (API reference, ConnectionTrackingSpecificationRequest).
var connTrackLimits = []struct {
	name     string
	min, max int32
	get      func(*types.ConnectionTrackingSpecificationRequest) *int32
}{
	{"TcpEstablishedTimeout", 60, 432000, func(r *types.ConnectionTrackingSpecificationRequest) *int32 { return r.TcpEstablishedTimeout }},
	{"UdpStreamTimeout", 60, 180, func(r *types.ConnectionTrackingSpecificationRequest) *int32 { return r.UdpStreamTimeout }},
	{"UdpTimeout", 30, 60, func(r *types.ConnectionTrackingSpecificationRequest) *int32 { return r.UdpTimeout }},
}

// connTrackLocked checks a ConnectionTrackingSpecification change and
// returns what applies it: only on an instance's interface of a Nitro
// instance type, each timeout within its documented bounds; a timeout left
// out keeps its value. The timeouts then show in DescribeNetworkInterfaces.
func (c *Cloud) connTrackLocked(id string, spec *types.ConnectionTrackingSpecificationRequest) (func(), error) {
	if err := kindInterface.check([]string{id}, c.hasInterface); err != nil {
		return nil, err
	}
	n := c.st.Interfaces[id]
	if inst, ok := c.st.Instances[n.InstanceID]; ok {
		if t, known := lookupInstanceType(inst.Type); known && t.Xen {
			return nil, apiError("UnsupportedOperation", "Connection tracking configuration is not supported for instance type %s.", inst.Type)
		}
	}
	for _, l := range connTrackLimits {
		if v := l.get(spec); v != nil && (*v < l.min || *v > l.max) {
			return nil, apiError("InvalidParameterValue", "%s must be between %d and %d seconds.", l.name, l.min, l.max)
		}
	}
	return func() {
		ct := types.ConnectionTrackingConfiguration{}
		if n.ConnTrack != nil {
			ct = *n.ConnTrack
		}
		if spec.TcpEstablishedTimeout != nil {
			ct.TcpEstablishedTimeout = aws.Int32(*spec.TcpEstablishedTimeout)
		}
		if spec.UdpStreamTimeout != nil {
			ct.UdpStreamTimeout = aws.Int32(*spec.UdpStreamTimeout)
		}
		if spec.UdpTimeout != nil {
			ct.UdpTimeout = aws.Int32(*spec.UdpTimeout)
		}
		n.ConnTrack = &ct
	}, nil
}
