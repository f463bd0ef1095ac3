package fakeaws

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Network ACLs, as the Amazon VPC User Guide describes them: every VPC has a
// default ACL that allows all traffic (rule 100) before the deny-all rule
// (32767, "*" in the console, which cannot be changed); every subnet is
// associated with exactly one ACL, the VPC's default one unless another is
// associated. Each ACL has numbered ingress and egress entries, evaluated
// lowest number first, the first match deciding. An ingress entry's CIDR is
// the source of traffic entering the subnet, an egress entry's the
// destination of traffic leaving it; traffic between two addresses of one
// subnet crosses no ACL.
//
// The quota is DefaultNACLEntryQuota entries per direction (Amazon VPC
// quotas, "Rules per network ACL": one-way, IPv4 and IPv6 entries together,
// the default deny entries included; adjustable up to 40), or
// Cloud.NACLEntryQuota.

// DefaultNACLEntryQuota is AWS's default quota of entries per network ACL
// and direction.
const DefaultNACLEntryQuota = 20

// The rule numbers of the entries every ACL ends with.
const (
	naclDefaultDenyIPv4 = 32767
	naclDefaultDenyIPv6 = 32768
	naclMaxRuleNumber   = 32766
)

type networkACL struct {
	ID        string
	VpcID     string
	IsDefault bool
	Entries   []naclEntry
	// Associations maps an associated subnet to the association's ID.
	Associations map[string]string
	Tags         []types.Tag
	Seq          int
}

type naclEntry struct {
	RuleNumber int32
	Egress     bool
	Protocol   string // "-1" for all
	Action     types.RuleAction
	CIDR       string `json:",omitempty"`
	IPv6CIDR   string `json:",omitempty"`
	FromPort   *int32 `json:",omitempty"`
	ToPort     *int32 `json:",omitempty"`
}

var kindNACL = idKind{"acl", "InvalidNetworkAclID.Malformed", "InvalidNetworkAclID.NotFound",
	"The network ACL ID '%s' does not exist", "The network ACL IDs '%s' do not exist"}

func (c *Cloud) hasNACL(id string) bool { _, ok := c.st.NACLs[id]; return ok }

// addDefaultNACLLocked gives a new VPC its default ACL. Its ID is made from
// the VPC's, so that adding ACLs changes no other ID the fake hands out.
func (c *Cloud) addDefaultNACLLocked(v *vpc) {
	a := &networkACL{
		ID: "acl-" + strings.TrimPrefix(v.ID, "vpc-"), VpcID: v.ID, IsDefault: true,
		Associations: map[string]string{}, Seq: v.Seq,
	}
	a.Entries = []naclEntry{
		{RuleNumber: 100, Egress: false, Protocol: "-1", Action: types.RuleActionAllow, CIDR: "0.0.0.0/0"},
		{RuleNumber: 100, Egress: true, Protocol: "-1", Action: types.RuleActionAllow, CIDR: "0.0.0.0/0"},
		{RuleNumber: naclDefaultDenyIPv4, Egress: false, Protocol: "-1", Action: types.RuleActionDeny, CIDR: "0.0.0.0/0"},
		{RuleNumber: naclDefaultDenyIPv4, Egress: true, Protocol: "-1", Action: types.RuleActionDeny, CIDR: "0.0.0.0/0"},
	}
	c.st.NACLs[a.ID] = a
}

// associateSubnetLocked moves a subnet to an ACL of its VPC.
func (c *Cloud) associateSubnetLocked(aclID, subnetID string) {
	for _, a := range c.st.NACLs {
		delete(a.Associations, subnetID)
	}
	c.st.NACLs[aclID].Associations[subnetID] = "aclassoc-" + strings.TrimPrefix(subnetID, "subnet-")
}

// subnetNACLLocked returns the ACL a subnet is associated with.
func (c *Cloud) subnetNACLLocked(subnetID string) *networkACL {
	for _, a := range c.st.NACLs {
		if _, ok := a.Associations[subnetID]; ok {
			return a
		}
	}
	return nil
}

// AddNetworkACL adds a custom network ACL to a VPC, as CreateNetworkAcl
// makes one (only the deny-all entries: it denies everything), and
// associates the subnets with it.
func (c *Cloud) AddNetworkACL(vpcID string, subnetIDs ...string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasVPC(vpcID) {
		panic(fmt.Sprintf("fakeaws: AddNetworkACL: no VPC %q", vpcID))
	}
	a := &networkACL{ID: c.hexIDLocked("acl"), VpcID: vpcID, Associations: map[string]string{}, Seq: c.nextSeqLocked()}
	a.Entries = []naclEntry{
		{RuleNumber: naclDefaultDenyIPv4, Egress: false, Protocol: "-1", Action: types.RuleActionDeny, CIDR: "0.0.0.0/0"},
		{RuleNumber: naclDefaultDenyIPv4, Egress: true, Protocol: "-1", Action: types.RuleActionDeny, CIDR: "0.0.0.0/0"},
	}
	c.st.NACLs[a.ID] = a
	for _, s := range subnetIDs {
		if sn, ok := c.st.Subnets[s]; !ok || sn.VpcID != vpcID {
			panic(fmt.Sprintf("fakeaws: AddNetworkACL: no subnet %q in %s", s, vpcID))
		}
		c.associateSubnetLocked(a.ID, s)
	}
	return a.ID
}

// NetworkACLOf returns the ID of the ACL a subnet is associated with.
func (c *Cloud) NetworkACLOf(subnetID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.subnetNACLLocked(subnetID); a != nil {
		return a.ID
	}
	return ""
}

// NACLEntry is an entry of a network ACL, for tests (AddNACLEntry,
// NACLEntries).
type NACLEntry struct {
	RuleNumber int32
	Egress     bool
	Protocol   string
	Action     string // allow or deny
	CIDR       string // IPv4 or IPv6
}

// AddNACLEntry adds an entry to an ACL as test setup, bypassing the quota.
func (c *Cloud) AddNACLEntry(aclID string, e NACLEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.st.NACLs[aclID]
	if !ok {
		panic(fmt.Sprintf("fakeaws: AddNACLEntry: no ACL %q", aclID))
	}
	ne := naclEntry{RuleNumber: e.RuleNumber, Egress: e.Egress, Protocol: e.Protocol, Action: types.RuleAction(e.Action)}
	if strings.Contains(e.CIDR, ":") {
		ne.IPv6CIDR = e.CIDR
	} else {
		ne.CIDR = e.CIDR
	}
	a.Entries = append(a.Entries, ne)
}

// NACLEntries returns the entries of an ACL, in the order AWS lists them
// (by rule number, ingress then egress).
func (c *Cloud) NACLEntries(aclID string) []NACLEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.st.NACLs[aclID]
	if !ok {
		panic(fmt.Sprintf("fakeaws: NACLEntries: no ACL %q", aclID))
	}
	var out []NACLEntry
	for _, e := range sortedEntries(a.Entries) {
		out = append(out, NACLEntry{RuleNumber: e.RuleNumber, Egress: e.Egress, Protocol: e.Protocol, Action: string(e.Action), CIDR: e.CIDR + e.IPv6CIDR})
	}
	return out
}

func sortedEntries(entries []naclEntry) []naclEntry {
	out := slices.Clone(entries)
	slices.SortStableFunc(out, func(a, b naclEntry) int {
		if a.Egress != b.Egress {
			if a.Egress {
				return 1
			}
			return -1
		}
		return int(a.RuleNumber) - int(b.RuleNumber)
	})
	return out
}

func (c *Cloud) naclFields() fields[*networkACL] {
	return fields[*networkACL]{
		"network-acl-id":             func(a *networkACL) []string { return one(a.ID) },
		"vpc-id":                     func(a *networkACL) []string { return one(a.VpcID) },
		"default":                    func(a *networkACL) []string { return one(strconv.FormatBool(a.IsDefault)) },
		"owner-id":                   func(*networkACL) []string { return one(c.Account) },
		"association.subnet-id":      func(a *networkACL) []string { return sortedKeys(a.Associations) },
		"association.network-acl-id": func(a *networkACL) []string { return one(a.ID) },
		"association.association-id": func(a *networkACL) []string { return sortedValues(a.Associations) },
		"entry.rule-number": func(a *networkACL) []string {
			return entryValues(a, func(e naclEntry) string { return fmt.Sprint(e.RuleNumber) })
		},
		"entry.protocol": func(a *networkACL) []string { return entryValues(a, func(e naclEntry) string { return e.Protocol }) },
		"entry.rule-action": func(a *networkACL) []string {
			return entryValues(a, func(e naclEntry) string { return string(e.Action) })
		},
		"entry.egress": func(a *networkACL) []string {
			return entryValues(a, func(e naclEntry) string { return strconv.FormatBool(e.Egress) })
		},
		"entry.cidr":            func(a *networkACL) []string { return entryValues(a, func(e naclEntry) string { return e.CIDR }) },
		"entry.ipv6-cidr":       func(a *networkACL) []string { return entryValues(a, func(e naclEntry) string { return e.IPv6CIDR }) },
		"entry.port-range.from": func(*networkACL) []string { return nil },
		"entry.port-range.to":   func(*networkACL) []string { return nil },
		"entry.icmp.code":       func(*networkACL) []string { return nil },
		"entry.icmp.type":       func(*networkACL) []string { return nil },
	}
}

func entryValues(a *networkACL, v func(naclEntry) string) []string {
	var out []string
	for _, e := range a.Entries {
		if s := v(e); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func (c *Cloud) renderNACLLocked(a *networkACL) types.NetworkAcl {
	out := types.NetworkAcl{
		NetworkAclId: aws.String(a.ID), VpcId: aws.String(a.VpcID), IsDefault: aws.Bool(a.IsDefault),
		OwnerId: aws.String(c.Account), Tags: slices.Clone(a.Tags),
		Associations: []types.NetworkAclAssociation{}, Entries: []types.NetworkAclEntry{},
	}
	for _, s := range sortedKeys(a.Associations) {
		out.Associations = append(out.Associations, types.NetworkAclAssociation{
			NetworkAclAssociationId: aws.String(a.Associations[s]), NetworkAclId: aws.String(a.ID), SubnetId: aws.String(s),
		})
	}
	for _, e := range sortedEntries(a.Entries) {
		re := types.NetworkAclEntry{RuleNumber: aws.Int32(e.RuleNumber), Egress: aws.Bool(e.Egress),
			Protocol: aws.String(e.Protocol), RuleAction: e.Action}
		if e.CIDR != "" {
			re.CidrBlock = aws.String(e.CIDR)
		}
		if e.IPv6CIDR != "" {
			re.Ipv6CidrBlock = aws.String(e.IPv6CIDR)
		}
		if e.FromPort != nil {
			re.PortRange = &types.PortRange{From: e.FromPort, To: e.ToPort}
		}
		out.Entries = append(out.Entries, re)
	}
	return out
}

// DescribeNetworkAcls lists ACLs, by ID and filters (vpc-id, default,
// association.subnet-id, entry.*, tags...). Unknown IDs answer
// InvalidNetworkAclID.NotFound.
func (e *EC2) DescribeNetworkAcls(ctx context.Context, in *ec2.DescribeNetworkAclsInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error) {
	if in == nil {
		in = &ec2.DescribeNetworkAclsInput{}
	}
	c := e.c
	out := &ec2.DescribeNetworkAclsOutput{}
	err := c.call(ctx, serviceEC2, "DescribeNetworkAcls", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := kindNACL.check(in.NetworkAclIds, c.hasNACL); err != nil {
			return nil, err
		}
		f := c.naclFields()
		if err := checkFilters(in.Filters, f); err != nil {
			return nil, err
		}
		acls := sortedBySeq(c.st.NACLs, func(a *networkACL) int { return a.Seq })
		if len(in.NetworkAclIds) > 0 {
			acls = nil
			for _, id := range dedupe(in.NetworkAclIds) {
				acls = append(acls, c.st.NACLs[id])
			}
		}
		acls = filter(acls, in.Filters, f, func(a *networkACL) []types.Tag { return a.Tags })
		var result []types.NetworkAcl
		for _, a := range acls {
			result = append(result, c.renderNACLLocked(a))
		}
		return func() { out.NetworkAcls = result }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateNetworkAclEntry adds an entry, with EC2's checks: a rule number of
// 1 to 32766 (InvalidParameterValue), one CIDR, IPv4 or IPv6
// (InvalidParameterCombination / MissingParameter), no other entry of that
// number and direction (NetworkAclEntryAlreadyExists), and the quota of
// entries per direction (NetworkAclEntryLimitExceeded).
func (e *EC2) CreateNetworkAclEntry(ctx context.Context, in *ec2.CreateNetworkAclEntryInput, _ ...func(*ec2.Options)) (*ec2.CreateNetworkAclEntryOutput, error) {
	if in == nil {
		in = &ec2.CreateNetworkAclEntryInput{}
	}
	c := e.c
	out := &ec2.CreateNetworkAclEntryOutput{}
	err := c.call(ctx, serviceEC2, "CreateNetworkAclEntry", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		a, entry, err := c.checkNewEntryLocked(in)
		if err != nil {
			return nil, err
		}
		return func() { a.Entries = append(a.Entries, entry) }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Cloud) checkNewEntryLocked(in *ec2.CreateNetworkAclEntryInput) (*networkACL, naclEntry, error) {
	switch {
	case in.NetworkAclId == nil:
		return nil, naclEntry{}, missingParameter("networkAclId")
	case in.RuleNumber == nil:
		return nil, naclEntry{}, missingParameter("ruleNumber")
	case in.Protocol == nil:
		return nil, naclEntry{}, missingParameter("protocol")
	case in.Egress == nil:
		return nil, naclEntry{}, missingParameter("egress")
	case in.RuleAction == "":
		return nil, naclEntry{}, missingParameter("ruleAction")
	}
	id := aws.ToString(in.NetworkAclId)
	if err := kindNACL.check([]string{id}, c.hasNACL); err != nil {
		return nil, naclEntry{}, err
	}
	a := c.st.NACLs[id]
	n := aws.ToInt32(in.RuleNumber)
	if n < 1 || n > naclMaxRuleNumber {
		return nil, naclEntry{}, apiError("InvalidParameterValue", "Invalid value '%d' for ruleNumber. Valid values are 1-%d.", n, naclMaxRuleNumber)
	}
	entry := naclEntry{RuleNumber: n, Egress: aws.ToBool(in.Egress), Protocol: aws.ToString(in.Protocol), Action: in.RuleAction}
	switch v4, v6 := aws.ToString(in.CidrBlock), aws.ToString(in.Ipv6CidrBlock); {
	case v4 != "" && v6 != "":
		return nil, naclEntry{}, apiError("InvalidParameterCombination", "Cannot specify both IPv4 and IPv6 CIDR blocks")
	case v4 == "" && v6 == "":
		return nil, naclEntry{}, missingParameter("cidrBlock or ipv6CidrBlock")
	default:
		canon, err := canonicalCIDR(v4 + v6)
		if err != nil {
			return nil, naclEntry{}, err
		}
		if v4 != "" {
			entry.CIDR = canon
		} else {
			entry.IPv6CIDR = canon
		}
	}
	if entry.Protocol != "-1" && in.PortRange != nil {
		entry.FromPort, entry.ToPort = in.PortRange.From, in.PortRange.To
	}
	count := 0
	for _, x := range a.Entries {
		if x.Egress != entry.Egress {
			continue
		}
		count++
		if x.RuleNumber == n {
			return nil, naclEntry{}, apiError("NetworkAclEntryAlreadyExists", "The network acl entry identified by %d already exists.", n)
		}
	}
	if count >= c.naclQuotaLocked() {
		return nil, naclEntry{}, apiError("NetworkAclEntryLimitExceeded", "The maximum number of network acl entries has been reached.")
	}
	return a, entry, nil
}

func (c *Cloud) naclQuotaLocked() int {
	if c.NACLEntryQuota > 0 {
		return c.NACLEntryQuota
	}
	return DefaultNACLEntryQuota
}

// canonicalCIDR is the CIDR as EC2 stores it (100.68.0.18/18 becomes
// 100.68.0.0/18).
func canonicalCIDR(s string) (string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", apiError("InvalidParameterValue", "Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", s)
	}
	return p.Masked().String(), nil
}

// DeleteNetworkAclEntry removes the entry of a rule number and direction;
// none answers InvalidNetworkAclEntry.NotFound. The default deny entries
// cannot be deleted (their numbers are out of range).
func (e *EC2) DeleteNetworkAclEntry(ctx context.Context, in *ec2.DeleteNetworkAclEntryInput, _ ...func(*ec2.Options)) (*ec2.DeleteNetworkAclEntryOutput, error) {
	if in == nil {
		in = &ec2.DeleteNetworkAclEntryInput{}
	}
	c := e.c
	out := &ec2.DeleteNetworkAclEntryOutput{}
	err := c.call(ctx, serviceEC2, "DeleteNetworkAclEntry", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		switch {
		case in.NetworkAclId == nil:
			return nil, missingParameter("networkAclId")
		case in.RuleNumber == nil:
			return nil, missingParameter("ruleNumber")
		case in.Egress == nil:
			return nil, missingParameter("egress")
		}
		id := aws.ToString(in.NetworkAclId)
		if err := kindNACL.check([]string{id}, c.hasNACL); err != nil {
			return nil, err
		}
		a := c.st.NACLs[id]
		n, egress := aws.ToInt32(in.RuleNumber), aws.ToBool(in.Egress)
		if n < 1 || n > naclMaxRuleNumber {
			return nil, apiError("InvalidParameterValue", "Invalid value '%d' for ruleNumber. Valid values are 1-%d.", n, naclMaxRuleNumber)
		}
		i := slices.IndexFunc(a.Entries, func(x naclEntry) bool { return x.RuleNumber == n && x.Egress == egress })
		if i < 0 {
			dir := "ingress"
			if egress {
				dir = "egress"
			}
			return nil, apiError("InvalidNetworkAclEntry.NotFound", "The network acl entry identified by %d (%s) does not exist in %s.", n, dir, id)
		}
		return func() { a.Entries = slices.Delete(a.Entries, i, i+1) }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// naclAllowsLocked evaluates a subnet's ACL for TCP to port 443 (the
// traffic the reachability model judges) in one direction: remote is the
// source of ingress traffic or the destination of egress traffic. The
// lowest-numbered matching entry decides.
func (c *Cloud) naclAllowsLocked(subnetID string, egress bool, remote string) bool {
	a := c.subnetNACLLocked(subnetID)
	if a == nil {
		return true // a subnet made before ACLs were modelled
	}
	addr, err := netip.ParseAddr(remote)
	if err != nil {
		return false
	}
	for _, e := range sortedEntries(a.Entries) {
		if e.Egress != egress || !entryMatches(e, addr) {
			continue
		}
		return e.Action == types.RuleActionAllow
	}
	return false
}

func entryMatches(e naclEntry, addr netip.Addr) bool {
	p, err := netip.ParsePrefix(e.CIDR + e.IPv6CIDR)
	if err != nil || !p.Contains(addr) {
		return false
	}
	switch e.Protocol {
	case "-1":
		return true
	case "6", "tcp":
		// HTTPS to 443 one way, the ephemeral port the other: a port range
		// entry matches when it covers either.
		return e.FromPort == nil || (*e.FromPort <= 443 && 443 <= *e.ToPort) || (*e.ToPort >= 1024)
	}
	return false
}

// naclPassesLocked reports whether TCP 443 from interface n to address to
// in subnet toSubnet ("" for outside the VPC), and its answers, pass the
// ACLs they cross: none within one subnet; leaving n's subnet and entering
// the other's, both ways.
func (c *Cloud) naclPassesLocked(n *netInterface, toSubnet, to string) bool {
	if toSubnet == n.SubnetID {
		return true
	}
	ok := c.naclAllowsLocked(n.SubnetID, true, to) && c.naclAllowsLocked(n.SubnetID, false, to)
	if toSubnet != "" {
		ok = ok && c.naclAllowsLocked(toSubnet, false, n.PrivateIP) && c.naclAllowsLocked(toSubnet, true, n.PrivateIP)
	}
	return ok
}
