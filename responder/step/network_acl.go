package step

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

type networkACLAPI interface {
	DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
	CreateNetworkAclEntry(context.Context, *ec2.CreateNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.CreateNetworkAclEntryOutput, error)
	DeleteNetworkAclEntry(context.Context, *ec2.DeleteNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.DeleteNetworkAclEntryOutput, error)
}

// NACLEntryQuota is AWS's default quota of entries per network ACL and
// direction (Amazon VPC quotas, "Rules per network ACL": one-way, IPv4 and
// IPv6 together, the default deny entries included; adjustable up to 40).
// The step refuses, changing nothing, a plan that would pass it; an account
// with a raised quota gets NetworkAclEntryLimitExceeded from EC2 instead.
const NACLEntryQuota = 20

// NetworkACL is the network ACL path of containment (playbook setting
// containment.network_acl, off by default): in every network ACL that
// serves a subnet of the instance's VPCs, a deny-all entry pair (ingress
// and egress, every protocol) for each private address of the instance
// (IPv4 /32, IPv6 /128), numbered below every other entry of the ACL, so
// that it is evaluated first.
//
// ACLs are stateless: the deny cuts flows already established, ICMP and the
// flows a security group keeps tracking (through NAT gateways, load
// balancers, Network Firewall, transit gateway attachments), not only new
// ones. An ACL entry names the remote end of traffic crossing the subnet's
// boundary (the source of ingress, the destination of egress), so entries
// for the instance's addresses take effect at the boundaries of the other
// subnets: they cut the instance from every other subnet whose ACL carries
// them, not from addresses of its own subnet, and not from the internet
// through an internet gateway (only a deny on the whole subnet would).
// Changing an ACL changes it for every subnet it serves; that is why the
// path is off by default. The entries are recorded before they are made;
// a release deletes exactly those, after checking they are unchanged.
type NetworkACL struct{}

func (NetworkACL) Name() string    { return networkACLStep }
func (NetworkACL) Phase() Phase    { return Contain }
func (NetworkACL) Needs() []string { return []string{quarantineStep} }
func (NetworkACL) Isolates() bool  { return true }

// naclState is what the step found (before) and read back (after).
type naclState struct {
	// Addresses are the instance's private addresses, as ACL CIDRs.
	Addresses []string `json:"addresses"`
	// ACLs are the network ACLs of the VPCs that serve a subnet, with the
	// entries they had (before) or have (after).
	ACLs []naclFound `json:"network_acls"`
	// Deny is, in a before, the entries the step adds, recorded before it
	// makes them; in an after, those read back.
	Deny []naclDeny `json:"deny_entries"`
	// In an after: that the path was used, what it cuts, what it does not.
	Used   bool     `json:"network_acl_path,omitempty"`
	Cuts   []string `json:"cuts,omitempty"`
	NotCut []string `json:"not_cut_by_network_acl,omitempty"`
}

type naclFound struct {
	NetworkACLID string   `json:"network_acl_id"`
	VPC          string   `json:"vpc_id"`
	Subnets      []string `json:"subnets"`
	Entries      []string `json:"entries"`
}

// naclDeny is one deny-all entry for one address in one direction.
type naclDeny struct {
	NetworkACLID string `json:"network_acl_id"`
	RuleNumber   int32  `json:"rule_number"`
	Egress       bool   `json:"egress"`
	CIDR         string `json:"cidr"`
	// Found: the entry was there before this run (an earlier run of the
	// case, or someone else): the step does not make it, and a release
	// does not delete it.
	Found bool `json:"found,omitempty"`
}

func (d naclDeny) direction() string {
	if d.Egress {
		return "egress"
	}
	return "ingress"
}

func (d naclDeny) String() string {
	return fmt.Sprintf("%s %s rule %d deny all %s", d.NetworkACLID, d.direction(), d.RuleNumber, d.CIDR)
}

var naclCuts = []string{
	"all traffic, ICMP included, between the instance's addresses and every other subnet whose network ACL carries the entries " +
		"(NAT gateways, load balancers, interface endpoints, Network Firewall endpoints, transit gateway attachments, other instances there)",
	"flows already established: network ACLs are stateless, so the deny applies to every packet, not only to new connections",
}

var notCutByNACL = []string{
	"traffic between the instance and other addresses of its own subnet (it crosses no network ACL)",
	"traffic between the instance and the internet through an internet gateway (a public or Elastic IP on the instance): " +
		"the ACL sees the internet address, not the instance's; only a deny on the whole subnet cuts it",
	"addresses given to the instance after the response",
}

func (s NetworkACL) Run(ctx context.Context, env *Env) Result {
	var api networkACLAPI = env.Clients.EC2
	addrs := instanceAddresses(env.Target.Instance)
	if len(addrs) == 0 {
		return Skipped("the instance has no private address", naclState{Addresses: []string{}}).Held(true)
	}
	vpcs := instanceVPCs(env.Target.Instance)
	acls, err := describeVPCACLs(ctx, api, vpcs)
	if err != nil {
		return Failed(err, nil).Unchecked()
	}
	before := naclState{Addresses: addrs, ACLs: foundACLs(acls), Deny: []naclDeny{}}
	if len(acls) == 0 {
		return Failed(fmt.Errorf("no network ACL serves a subnet of %s", strings.Join(vpcs, ", ")), before).Held(false)
	}
	var refusals []string
	for _, a := range acls {
		deny, err := planDeny(a, addrs)
		if err != nil {
			refusals = append(refusals, err.Error())
		}
		before.Deny = append(before.Deny, deny...)
	}
	if len(refusals) > 0 {
		return Failed(fmt.Errorf("refused, no entry made: %s", strings.Join(refusals, "; ")), before).Held(false)
	}
	var todo []naclDeny
	for _, d := range before.Deny {
		if !d.Found {
			todo = append(todo, d)
		}
	}
	if env.Target.DryRun {
		return s.dryRun(ctx, api, todo, before)
	}
	errs := s.create(ctx, api, todo)
	res := Result{Status: evidence.StatusOK, Before: before, Err: errs,
		Reason: fmt.Sprintf("%d deny entries made in %s for %s (network ACLs are stateless: established flows are cut too)",
			len(todo), strings.Join(aclIDs(acls), ", "), strings.Join(addrs, ", "))}
	if len(todo) == 0 {
		res.Reason = "every deny entry was there already"
	}
	if errs != nil {
		res.Status = evidence.StatusFailed
	}
	return s.readBack(ctx, api, res, before.Deny)
}

// instanceAddresses lists the private addresses of every interface, as ACL
// CIDRs (/32 and /128), sorted.
func instanceAddresses(inst types.Instance) []string {
	seen := map[string]bool{}
	var out []string
	add := func(cidr string) {
		if !seen[cidr] {
			seen[cidr] = true
			out = append(out, cidr)
		}
	}
	for _, n := range inst.NetworkInterfaces {
		if n.PrivateIpAddress != nil {
			add(*n.PrivateIpAddress + "/32")
		}
		for _, p := range n.PrivateIpAddresses {
			if p.PrivateIpAddress != nil {
				add(*p.PrivateIpAddress + "/32")
			}
		}
		for _, a := range n.Ipv6Addresses {
			if a.Ipv6Address != nil {
				add(*a.Ipv6Address + "/128")
			}
		}
	}
	sort.Strings(out)
	return out
}

// describeVPCACLs reads the network ACLs of the VPCs that serve a subnet
// (an ACL associated with none filters no traffic).
func describeVPCACLs(ctx context.Context, api networkACLAPI, vpcs []string) ([]types.NetworkAcl, error) {
	out, err := api.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: vpcs}}})
	if err != nil {
		return nil, fmt.Errorf("describe the network ACLs of %s: %w", strings.Join(vpcs, ", "), err)
	}
	var acls []types.NetworkAcl
	for _, a := range out.NetworkAcls {
		if len(a.Associations) > 0 {
			acls = append(acls, a)
		}
	}
	sort.Slice(acls, func(i, j int) bool { return aws.ToString(acls[i].NetworkAclId) < aws.ToString(acls[j].NetworkAclId) })
	return acls, nil
}

func aclIDs(acls []types.NetworkAcl) []string {
	ids := make([]string, len(acls))
	for i, a := range acls {
		ids[i] = aws.ToString(a.NetworkAclId)
	}
	return ids
}

func foundACLs(acls []types.NetworkAcl) []naclFound {
	out := []naclFound{}
	for _, a := range acls {
		f := naclFound{NetworkACLID: aws.ToString(a.NetworkAclId), VPC: aws.ToString(a.VpcId), Subnets: []string{}, Entries: []string{}}
		for _, as := range a.Associations {
			f.Subnets = append(f.Subnets, aws.ToString(as.SubnetId))
		}
		sort.Strings(f.Subnets)
		for _, e := range a.Entries {
			f.Entries = append(f.Entries, entryInWords(e))
		}
		out = append(out, f)
	}
	return out
}

func entryInWords(e types.NetworkAclEntry) string {
	dir := "ingress"
	if aws.ToBool(e.Egress) {
		dir = "egress"
	}
	s := fmt.Sprintf("%s %d %s %s %s%s", dir, aws.ToInt32(e.RuleNumber), e.RuleAction, aws.ToString(e.Protocol),
		aws.ToString(e.CidrBlock), aws.ToString(e.Ipv6CidrBlock))
	if p := e.PortRange; p != nil {
		s += fmt.Sprintf(" ports %d-%d", aws.ToInt32(p.From), aws.ToInt32(p.To))
	}
	return s
}

// entryCIDR is an entry's CIDR, IPv4 or IPv6.
func entryCIDR(e types.NetworkAclEntry) string {
	return aws.ToString(e.CidrBlock) + aws.ToString(e.Ipv6CidrBlock)
}

// isDenyAll reports whether an entry denies every protocol for a CIDR.
func isDenyAll(e types.NetworkAclEntry, cidr string) bool {
	return e.RuleAction == types.RuleActionDeny && aws.ToString(e.Protocol) == "-1" && entryCIDR(e) == cidr
}

// planDeny chooses, for one ACL and each direction, the entries that deny
// the addresses: an entry found that already denies one, below every other
// entry, is kept; the others get free numbers below every other entry, the
// highest first. It refuses when too few numbers are free below the lowest
// entry, or the entries would pass the quota.
func planDeny(a types.NetworkAcl, addrs []string) ([]naclDeny, error) {
	id := aws.ToString(a.NetworkAclId)
	var out []naclDeny
	var errs []string
	for _, egress := range []bool{false, true} {
		var entries []types.NetworkAclEntry
		for _, e := range a.Entries {
			if aws.ToBool(e.Egress) == egress {
				entries = append(entries, e)
			}
		}
		deny, err := planDirection(id, egress, entries, addrs)
		if err != nil {
			errs = append(errs, err.Error())
		}
		out = append(out, deny...)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s: %s", id, strings.Join(errs, "; "))
	}
	return out, nil
}

func planDirection(id string, egress bool, entries []types.NetworkAclEntry, addrs []string) ([]naclDeny, error) {
	slices.SortFunc(entries, func(a, b types.NetworkAclEntry) int {
		return int(aws.ToInt32(a.RuleNumber)) - int(aws.ToInt32(b.RuleNumber))
	})
	found := map[string]int32{}
	used := map[int32]bool{}
	lowest := int32(32767) // the default deny entry's number
	for i, e := range entries {
		n := aws.ToInt32(e.RuleNumber)
		used[n] = true
		// A deny-all entry of an address counts as ours only while every
		// entry before it is one too: then nothing is evaluated before it.
		if i == len(found) && slices.ContainsFunc(addrs, func(c string) bool { return isDenyAll(e, c) }) {
			found[entryCIDR(e)] = n
			continue
		}
		lowest = min(lowest, n)
	}
	d := naclDeny{NetworkACLID: id, Egress: egress}
	var out []naclDeny
	var need []string
	for _, c := range addrs {
		if n, ok := found[c]; ok && n < lowest {
			d.RuleNumber, d.CIDR, d.Found = n, c, true
			out = append(out, d)
		} else {
			need = append(need, c)
		}
	}
	if len(entries)+len(need) > NACLEntryQuota {
		return out, fmt.Errorf("%s: %d entries plus %d would pass the quota of %d per direction (an adjustable quota: raise it, or free entries)",
			d.direction(), len(entries), len(need), NACLEntryQuota)
	}
	n := lowest - 1
	for _, c := range need {
		for n >= 1 && used[n] {
			n--
		}
		if n < 1 {
			return out, fmt.Errorf("%s: no free rule number below %d, the lowest entry, for %s (rules are evaluated lowest first: a deny after an allow would not hold)",
				d.direction(), lowest, c)
		}
		d.RuleNumber, d.CIDR, d.Found = n, c, false
		out = append(out, d)
		n--
	}
	return out, nil
}

// create makes the entries, in parallel; every failure is reported.
func (NetworkACL) create(ctx context.Context, api networkACLAPI, todo []naclDeny) error {
	var (
		mu   sync.Mutex
		errs *multierror.Error
		wg   sync.WaitGroup
	)
	for _, d := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := api.CreateNetworkAclEntry(ctx, createDenyInput(d, false)); err != nil {
				mu.Lock()
				errs = multierror.Append(errs, fmt.Errorf("create %s: %w", d, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs.ErrorOrNil()
}

func createDenyInput(d naclDeny, dryRun bool) *ec2.CreateNetworkAclEntryInput {
	in := &ec2.CreateNetworkAclEntryInput{
		NetworkAclId: aws.String(d.NetworkACLID), RuleNumber: aws.Int32(d.RuleNumber), Egress: aws.Bool(d.Egress),
		Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny, DryRun: aws.Bool(dryRun),
	}
	if strings.Contains(d.CIDR, ":") {
		in.Ipv6CidrBlock = aws.String(d.CIDR)
	} else {
		in.CidrBlock = aws.String(d.CIDR)
	}
	return in
}

// dryRun checks with EC2's DryRun that each entry could be made.
func (NetworkACL) dryRun(ctx context.Context, api networkACLAPI, todo []naclDeny, before naclState) Result {
	if len(todo) == 0 {
		return dryRunContainment(Skipped("every deny entry is there already", before))
	}
	var errs *multierror.Error
	for _, d := range todo {
		_, err := api.CreateNetworkAclEntry(ctx, createDenyInput(d, true))
		if r := dryRun(err, "", nil); r.Err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", d, r.Err))
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return dryRunContainment(Failed(err, before))
	}
	return dryRunContainment(OK(fmt.Sprintf("dry run: permitted; would make %d deny entries", len(todo)), before, nil))
}

// readBack reads the ACLs again: the path holds when every entry is there,
// denies all for its address, and is still below every other entry of its
// direction. The after is what was read.
func (NetworkACL) readBack(ctx context.Context, api networkACLAPI, res Result, want []naclDeny) Result {
	acls, err := describeACLs(ctx, api, want)
	if err != nil {
		return failWith(res, fmt.Errorf("read back: %w", err)).Unchecked()
	}
	after := naclState{Addresses: res.Before.(naclState).Addresses, ACLs: foundACLs(acls), Deny: []naclDeny{},
		Used: true, Cuts: naclCuts, NotCut: notCutByNACL}
	var missing []string
	for _, d := range want {
		if e, ok := entryAt(acls, d); ok && isDenyAll(e, d.CIDR) && firstBut(acls, d, want) {
			got := d
			got.Found = false
			after.Deny = append(after.Deny, got)
			continue
		}
		missing = append(missing, d.String())
	}
	res.After = after
	if len(missing) > 0 {
		return failWith(res, fmt.Errorf("read back: not in place (missing, changed, or below another entry): %s", strings.Join(missing, "; "))).Held(false)
	}
	return res.Held(res.Status != evidence.StatusFailed)
}

// describeACLs reads the ACLs the entries are in.
func describeACLs(ctx context.Context, api networkACLAPI, entries []naclDeny) ([]types.NetworkAcl, error) {
	var ids []string
	for _, d := range entries {
		if !slices.Contains(ids, d.NetworkACLID) {
			ids = append(ids, d.NetworkACLID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := api.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{NetworkAclIds: ids})
	if err != nil {
		return nil, fmt.Errorf("describe network ACLs %s: %w", strings.Join(ids, ", "), err)
	}
	return out.NetworkAcls, nil
}

// entryAt finds the entry of a rule number and direction in an ACL.
func entryAt(acls []types.NetworkAcl, d naclDeny) (types.NetworkAclEntry, bool) {
	for _, a := range acls {
		if aws.ToString(a.NetworkAclId) != d.NetworkACLID {
			continue
		}
		for _, e := range a.Entries {
			if aws.ToInt32(e.RuleNumber) == d.RuleNumber && aws.ToBool(e.Egress) == d.Egress {
				return e, true
			}
		}
	}
	return types.NetworkAclEntry{}, false
}

// firstBut reports whether no entry of d's ACL and direction, other than
// the deny entries wanted, comes before d.
func firstBut(acls []types.NetworkAcl, d naclDeny, want []naclDeny) bool {
	for _, a := range acls {
		if aws.ToString(a.NetworkAclId) != d.NetworkACLID {
			continue
		}
		for _, e := range a.Entries {
			n := aws.ToInt32(e.RuleNumber)
			if aws.ToBool(e.Egress) != d.Egress || n >= d.RuleNumber {
				continue
			}
			ours := slices.ContainsFunc(want, func(w naclDeny) bool {
				return w.NetworkACLID == d.NetworkACLID && w.Egress == d.Egress && w.RuleNumber == n && isDenyAll(e, w.CIDR)
			})
			if !ours {
				return false
			}
		}
	}
	return true
}

// Release deletes the entries the step recorded as made (never one it found
// there), each only while it is still the deny entry recorded: an entry
// changed since is left, and the release says so.
func (s NetworkACL) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var api networkACLAPI = env.Clients.EC2
	var before naclState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	var made []naclDeny
	for _, d := range before.Deny {
		if !d.Found {
			made = append(made, d)
		}
	}
	if len(made) == 0 {
		return Skipped("the response made no network ACL entry", before)
	}
	acls, err := describeACLs(ctx, api, made)
	if err != nil && !cloud.IsErrorCode(err, "InvalidNetworkAclID.NotFound") {
		return Failed(err, before).Unchecked()
	}
	var del []naclDeny
	var refused []string
	for _, d := range made {
		switch e, ok := entryAt(acls, d); {
		case !ok:
			// Gone already (deleted by hand, or its ACL deleted).
		case isDenyAll(e, d.CIDR):
			del = append(del, d)
		default:
			refused = append(refused, fmt.Sprintf("%s is now %q, not the deny entry recorded: left as it is", d, entryInWords(e)))
		}
	}
	if env.Target.DryRun {
		return s.dryRunDelete(ctx, api, del, refused, before)
	}
	errs := s.delete(ctx, api, del)
	res := OK(fmt.Sprintf("%d deny entries deleted", len(del)), before, nil)
	if len(del) == 0 {
		res = Skipped("no deny entry the response made is left", before)
	}
	if errs != nil {
		res = failWith(res, errs)
	}
	return s.readBackRelease(ctx, api, res, made, refused)
}

func (NetworkACL) delete(ctx context.Context, api networkACLAPI, del []naclDeny) error {
	var errs *multierror.Error
	for _, d := range del {
		_, err := api.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{
			NetworkAclId: aws.String(d.NetworkACLID), RuleNumber: aws.Int32(d.RuleNumber), Egress: aws.Bool(d.Egress),
		})
		if err != nil && !cloud.IsErrorCode(err, "InvalidNetworkAclEntry.NotFound") {
			errs = multierror.Append(errs, fmt.Errorf("delete %s: %w", d, err))
		}
	}
	return errs.ErrorOrNil()
}

func (NetworkACL) dryRunDelete(ctx context.Context, api networkACLAPI, del []naclDeny, refused []string, before naclState) Result {
	var errs *multierror.Error
	for _, d := range del {
		_, err := api.DeleteNetworkAclEntry(ctx, &ec2.DeleteNetworkAclEntryInput{
			NetworkAclId: aws.String(d.NetworkACLID), RuleNumber: aws.Int32(d.RuleNumber), Egress: aws.Bool(d.Egress), DryRun: aws.Bool(true),
		})
		if r := dryRun(err, "", nil); r.Err != nil {
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", d, r.Err))
		}
	}
	if len(refused) > 0 {
		errs = multierror.Append(errs, fmt.Errorf("refused: %s", strings.Join(refused, "; ")))
	}
	if err := errs.ErrorOrNil(); err != nil {
		return dryRunContainment(Failed(err, before))
	}
	return dryRunContainment(OK(fmt.Sprintf("dry run: permitted; would delete %d deny entries", len(del)), before, nil))
}

// readBackRelease reads the ACLs again: the release holds when none of the
// entries made is left as recorded, and none was refused.
func (NetworkACL) readBackRelease(ctx context.Context, api networkACLAPI, res Result, made []naclDeny, refused []string) Result {
	acls, err := describeACLs(ctx, api, made)
	if err != nil && !cloud.IsErrorCode(err, "InvalidNetworkAclID.NotFound") {
		return failWith(res, fmt.Errorf("read back: %w", err)).Unchecked()
	}
	after := naclState{Addresses: res.Before.(naclState).Addresses, ACLs: foundACLs(acls), Deny: []naclDeny{}}
	var left []string
	for _, d := range made {
		if e, ok := entryAt(acls, d); ok && isDenyAll(e, d.CIDR) {
			after.Deny = append(after.Deny, d)
			left = append(left, d.String())
		}
	}
	res.After = after
	if len(left) > 0 {
		res = failWith(res, fmt.Errorf("read back: still in place: %s", strings.Join(left, "; ")))
	}
	if len(refused) > 0 {
		res = failWith(res, fmt.Errorf("refused: %s", strings.Join(refused, "; ")))
	}
	return res.Held(res.Status != evidence.StatusFailed)
}

// Describe: the deny entries for the instance's addresses.
func (NetworkACL) Describe() Description {
	return Description{
		Aspect: "Network ACL deny entries for the instance's addresses",
		View:   viewNetworkACL,
		Order:  16,
		OnFailure: "The network ACL path did not hold: flows a security group change cannot cut (ICMP, flows through NAT " +
			"gateways, load balancers, Network Firewall, transit gateway attachments) may still run. The step says which " +
			"entries are missing; add them by hand, or deny the whole subnet.",
	}
}

// viewNetworkACL reads a naclState: the deny entries per ACL, and what the
// path cuts and does not.
func viewNetworkACL(raw json.RawMessage, _ string) ([]SubjectState, error) {
	if err := requireField(raw, "deny_entries"); err != nil {
		return nil, err
	}
	var v naclState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	byACL := map[string][]string{}
	for _, a := range v.ACLs {
		byACL[a.NetworkACLID] = nil
	}
	for _, d := range v.Deny {
		byACL[d.NetworkACLID] = append(byACL[d.NetworkACLID], fmt.Sprintf("%s %d deny %s", d.direction(), d.RuleNumber, d.CIDR))
	}
	var out []SubjectState
	for _, id := range slices.Sorted(maps.Keys(byACL)) {
		out = append(out, SubjectState{Subject: id, Text: joinOr(byACL[id], "no deny entry for the instance")})
	}
	if len(v.NotCut) > 0 {
		out = append(out, SubjectState{Subject: "not cut by the network ACL path", Text: strings.Join(v.NotCut, "; ")})
	}
	return out, nil
}
