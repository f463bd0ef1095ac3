package fakeaws

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// vpc is a VPC. Like every VPC on AWS it has a security group named
// "default".
type vpc struct {
	ID             string
	Num            int // second octet of the VPC's 10.<n>.0.0/16 block
	CIDR           string
	DefaultGroupID string
	Tags           []types.Tag
	Seq            int
}

// subnet is a subnet of a VPC, in the Region's first Availability Zone.
type subnet struct {
	ID       string
	VpcID    string
	Prefix   string // the first three octets: 10.<vpc>.<subnet>
	CIDR     string
	AZ       string
	NextHost int // last octet of the next private address handed out
	Tags     []types.Tag
	Seq      int
}

// AddVPC adds a VPC (10.<n>.0.0/16) with its default security group, which
// allows all traffic from its own members and all outbound traffic, as on AWS.
func (c *Cloud) AddVPC() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addVPCLocked()
}

func (c *Cloud) addVPCLocked() string {
	n := len(c.st.VPCs) % 256
	v := &vpc{
		ID:   c.hexIDLocked("vpc"),
		Num:  n,
		CIDR: fmt.Sprintf("10.%d.0.0/16", n),
		Seq:  c.nextSeqLocked(),
	}
	c.st.VPCs[v.ID] = v
	g := c.newGroupLocked(v.ID, "default", "default VPC security group")
	g.Rules = append(g.Rules,
		c.newRuleLocked(false, "-1", nil, nil, target{GroupID: g.ID, UserID: c.Account}),
		c.newRuleLocked(true, "-1", nil, nil, target{CidrIPv4: "0.0.0.0/0"}))
	v.DefaultGroupID = g.ID
	c.addDefaultNACLLocked(v)
	return v.ID
}

// AddSubnet adds a /24 subnet to a VPC and returns its ID.
func (c *Cloud) AddSubnet(vpcID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addSubnetLocked(vpcID)
}

func (c *Cloud) addSubnetLocked(vpcID string) string {
	v, ok := c.st.VPCs[vpcID]
	if !ok {
		panic(fmt.Sprintf("fakeaws: AddSubnet: no VPC %q", vpcID))
	}
	n := 0
	for _, s := range c.st.Subnets {
		if s.VpcID == vpcID {
			n++
		}
	}
	prefix := fmt.Sprintf("10.%d.%d", v.Num, n%256)
	s := &subnet{
		ID:       c.hexIDLocked("subnet"),
		VpcID:    vpcID,
		Prefix:   prefix,
		CIDR:     prefix + ".0/24",
		AZ:       c.Region + "a",
		NextHost: 10,
		Seq:      c.nextSeqLocked(),
	}
	c.st.Subnets[s.ID] = s
	for _, a := range c.st.NACLs {
		if a.VpcID == vpcID && a.IsDefault {
			c.associateSubnetLocked(a.ID, s.ID)
		}
	}
	return s.ID
}

// nextAddressLocked hands out the subnet's next private IPv4 address.
func (c *Cloud) nextAddressLocked(s *subnet) string {
	addr := fmt.Sprintf("%s.%d", s.Prefix, s.NextHost)
	s.NextHost++
	return addr
}

func (c *Cloud) hasVPC(id string) bool       { _, ok := c.st.VPCs[id]; return ok }
func (c *Cloud) hasSubnet(id string) bool    { _, ok := c.st.Subnets[id]; return ok }
func (c *Cloud) hasGroup(id string) bool     { _, ok := c.st.Groups[id]; return ok }
func (c *Cloud) hasVolume(id string) bool    { _, ok := c.st.Volumes[id]; return ok }
func (c *Cloud) hasSnapshot(id string) bool  { _, ok := c.st.Snapshots[id]; return ok }
func (c *Cloud) hasInterface(id string) bool { _, ok := c.st.Interfaces[id]; return ok }
func (c *Cloud) hasInstance(id string) bool  { _, ok := c.st.Instances[id]; return ok }
