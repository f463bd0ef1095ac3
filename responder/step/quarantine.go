package step

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

type quarantineAPI interface {
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	interfaceReader
}

// Quarantine moves every network interface of the instance into the
// quarantine group of its VPC, in parallel, one ModifyNetworkInterfaceAttribute
// per interface (the per-interface call is the documented way for instances
// with several interfaces). New connections are refused at once. When the
// untracking-group step prepared the VPC's untracking group, each interface
// is moved into it first, then into the quarantine group (two calls), so
// that the TCP and UDP flows it tracked become untracked and are dropped by
// the empty group (see untracking_group.go); without it, connections already
// tracked by the security group go on until they are idle. The order of the
// groups each interface was given is recorded (group_order), and what no
// group change cuts (notCutByGroups).
type Quarantine struct{}

func (Quarantine) Name() string   { return quarantineStep }
func (Quarantine) Phase() Phase   { return Contain }
func (Quarantine) Isolates() bool { return true }
func (Quarantine) Needs() []string {
	return []string{"quarantine-group", "forensic-access-group", "untracking-group"}
}

// Awaits: the snapshots are requested before the move that isolates (the
// evidence is acquired before the instance is changed), while the move
// through the untracking group, which restricts nothing, goes out beside
// the request. Isolation waits for nothing else: the interfaces' groups of
// before come from the DescribeInstances the response started with, and
// the metadata step's reads are of things the quarantine does not change.
func (Quarantine) Awaits() []string { return []string{"snapshots"} }

type quarantineState struct {
	Interfaces []InterfaceGroups `json:"interfaces"`
	// GroupOrder is, in an after, the groups each interface was given, in
	// order: [untracking, quarantine] for the two-step move.
	GroupOrder []interfaceMoves `json:"group_order,omitempty"`
	// NotCut is, in an after, what no security group change cuts
	// (notCutByGroups).
	NotCut []string `json:"not_cut_by_groups,omitempty"`
	// NetworkACLPath is, in an after, whether the plan runs the network
	// ACL path (step network-acl), which cuts much of NotCut: its own
	// record says what.
	NetworkACLPath *bool `json:"network_acl_path,omitempty"`
}

// interfaceMoves is the sets of groups one interface was given, in order.
type interfaceMoves struct {
	NetworkInterfaceID string     `json:"network_interface_id"`
	Groups             [][]string `json:"groups"`
}

// notCutByGroups is what stays connected whatever the interface's security
// groups, per the EC2 User Guide ("Amazon EC2 security group connection
// tracking": automatically tracked connections; ../shared/REFERENCE.md
// section 3): the case record says it, so nobody reads the quarantine as more
// than it is. The network ACL path (network-acl) cuts what crosses into
// another subnet; a minimal connection tracking timeout
// (connection-tracking) shortens the rest.
var notCutByGroups = []string{
	"ICMP flows already tracked (ICMP is always tracked; echo replies of a tracked flow keep flowing)",
	"flows through a NAT gateway",
	"flows through a Network Load Balancer or Gateway Load Balancer",
	"flows through AWS Global Accelerator",
	"flows through AWS Network Firewall",
	"flows through a transit gateway attachment",
	"TCP/UDP flows already tracked, when the interface did not pass through the untracking group",
}

func (s Quarantine) Run(ctx context.Context, env *Env) Result {
	var before quarantineState
	for _, n := range env.Target.Instance.NetworkInterfaces {
		before.Interfaces = append(before.Interfaces, InterfaceGroups{
			NetworkInterfaceID: aws.ToString(n.NetworkInterfaceId),
			VPC:                interfaceVPC(env.Target.Instance, n),
			Groups:             groupIDs(n.Groups),
		})
	}
	sort.Slice(before.Interfaces, func(i, j int) bool {
		return before.Interfaces[i].NetworkInterfaceID < before.Interfaces[j].NetworkInterfaceID
	})
	if len(before.Interfaces) == 0 {
		return Skipped("the instance has no network interface", before).Held(true)
	}
	target := make([]InterfaceGroups, len(before.Interfaces))
	var missing []string
	forensic := map[string]string{} // interface -> forensic access group
	for i, n := range before.Interfaces {
		target[i] = InterfaceGroups{NetworkInterfaceID: n.NetworkInterfaceID, VPC: n.VPC}
		// While SSM collects from an isolated instance, its interfaces sit
		// in the forensic access group (HTTPS to the VPC's SSM and S3
		// endpoints only); forensic-access-close closes it afterwards.
		if g, ok := env.ForensicGroup(n.VPC); ok {
			target[i].Groups = []string{g}
			forensic[n.NetworkInterfaceID] = g
		} else if g, ok := env.QuarantineGroup(n.VPC); ok {
			target[i].Groups = []string{g}
		} else {
			missing = append(missing, n.VPC)
		}
	}
	if len(missing) > 0 && !env.Target.DryRun {
		return Failed(fmt.Errorf("no quarantine group is ready for VPC %s (see step quarantine-group)", strings.Join(missing, ", ")), before)
	}
	via := map[string]string{} // interface -> untracking group to pass through
	var uncut []string         // interfaces whose tracked flows will not be cut
	for _, n := range before.Interfaces {
		switch g, wanted := env.UntrackingGroup(n.VPC); {
		case g != "":
			via[n.NetworkInterfaceID] = g
		case wanted:
			uncut = append(uncut, n.NetworkInterfaceID)
		}
	}
	acquired := func(ctx context.Context) { _ = env.Await(ctx, "snapshots") }
	res := s.apply(ctx, env, before, target, via, "quarantine", acquired)
	switch {
	case env.Target.DryRun:
		return dryRunContainment(res)
	case res.Status == evidence.StatusSkipped:
		// DescribeInstances showed every interface in its target groups
		// at the start of this run.
		return res.Held(true)
	}
	claimed, _ := res.After.(quarantineState)
	res = s.readBack(ctx, env, res, target)
	if after, ok := res.After.(quarantineState); ok {
		after.GroupOrder, after.NotCut = claimed.GroupOrder, notCutByGroups
		after.NetworkACLPath = aws.Bool(env.Planned(networkACLStep))
		res.After = after
	}
	if len(uncut) > 0 && res.Containment == evidence.ContainmentHeld {
		// Isolated, but the claim includes the cut of tracked connections
		// the plan asked for (untracking-group): it does not hold.
		res.Reason += "; tracked connections of " + strings.Join(uncut, ", ") +
			" NOT cut: no untracking group was ready for their VPC (see step untracking-group), so they were moved in one step"
		res = res.Held(false)
	}
	if after, ok := res.After.(quarantineState); ok {
		var names []string
		for _, n := range after.Interfaces {
			if g, isForensic := forensic[n.NetworkInterfaceID]; isForensic && slices.Equal(n.Groups, []string{g}) {
				env.setForensicInterface(n.NetworkInterfaceID, n.VPC)
				names = append(names, n.NetworkInterfaceID)
			}
		}
		if len(names) > 0 {
			res.Reason += "; " + strings.Join(names, ", ") + " in the forensic access group until the collection ends"
		}
	}
	return res
}

// readBack reads the groups of every interface again: the quarantine holds
// only when each is in its target groups, so that an accepted call that
// changed nothing never passes for an isolation. The after becomes what was
// read.
func (s Quarantine) readBack(ctx context.Context, env *Env, res Result, target []InterfaceGroups) Result {
	var api quarantineAPI = env.Clients.EC2
	claimed, _ := res.After.(quarantineState)
	got, err := readInterfaceGroups(ctx, api, target)
	if err != nil {
		return failWith(res, fmt.Errorf("read back the interfaces' groups: %w", err)).Unchecked()
	}
	res.After = quarantineState{Interfaces: got}
	held := true
	var read, want []InterfaceGroups // the interfaces whose move EC2 accepted
	for i, t := range target {
		if !slices.Equal(got[i].Groups, t.Groups) {
			held = false
		}
		if i < len(claimed.Interfaces) && slices.Equal(claimed.Interfaces[i].Groups, t.Groups) {
			read, want = append(read, got[i]), append(want, t)
		}
	}
	if wrong := groupMismatches(read, want); len(wrong) > 0 {
		res = failWith(res, fmt.Errorf("accepted, but read back: %s", strings.Join(wrong, "; ")))
	}
	return res.Held(held && res.Status != evidence.StatusFailed)
}

// apply sets every interface to its target groups, in parallel. The move
// into the target groups waits for gate, when given (the untracking move
// does not).
//
// An interface with a group in via is first moved into it (the untracking
// group), then into its target groups. If the first move fails, the second
// is still made (isolation first) and the step fails: the flows of that
// interface were not cut. If the second fails after the first succeeded,
// the interface is put back in its groups of before, so that the all-open
// untracking group never stays on an interface.
func (s Quarantine) apply(ctx context.Context, env *Env, before quarantineState, target []InterfaceGroups, via map[string]string, verb string, gate func(context.Context)) Result {
	var api quarantineAPI = env.Clients.EC2
	var (
		mu      sync.Mutex
		errs    *multierror.Error
		changed []string
		wg      sync.WaitGroup
	)
	after := quarantineState{Interfaces: make([]InterfaceGroups, len(target)), GroupOrder: make([]interfaceMoves, len(target))}
	setGroups := func(id string, groups []string) error {
		return retryEventual(ctx, func() error {
			_, err := api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(id),
				Groups:             groups,
				DryRun:             aws.Bool(env.Target.DryRun),
			}, cloud.Urgent)
			return err
		}, "InvalidGroup.NotFound")
	}
	for i, t := range target {
		after.Interfaces[i] = before.Interfaces[i]
		after.GroupOrder[i] = interfaceMoves{NetworkInterfaceID: t.NetworkInterfaceID, Groups: [][]string{}}
		if slices.Equal(before.Interfaces[i].Groups, t.Groups) {
			continue
		}
		groups := t.Groups
		if env.Target.DryRun && len(groups) == 0 {
			// The quarantine group does not exist yet: check the permission
			// with the interface's current groups.
			groups = before.Interfaces[i].Groups
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var order [][]string
			var untrackErr error
			untracking, twoStep := via[t.NetworkInterfaceID]
			if twoStep && !env.Target.DryRun {
				if untrackErr = setGroups(t.NetworkInterfaceID, []string{untracking}); untrackErr == nil {
					order = append(order, []string{untracking})
				}
			}
			if gate != nil {
				gate(ctx)
			}
			err := setGroups(t.NetworkInterfaceID, groups)
			if err == nil {
				order = append(order, groups)
			} else if len(order) > 0 {
				// Left in the all-open untracking group: put it back.
				if rerr := setGroups(t.NetworkInterfaceID, before.Interfaces[i].Groups); rerr != nil {
					err = fmt.Errorf("%w; and it could not be put back from the untracking group %s into %s: %v (remove %s from it by hand)",
						err, untracking, strings.Join(before.Interfaces[i].Groups, ","), rerr, untracking)
				} else {
					order = append(order, before.Interfaces[i].Groups)
					err = fmt.Errorf("%w (put back from the untracking group into its groups)", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			after.GroupOrder[i].Groups = append(after.GroupOrder[i].Groups, order...)
			if env.Target.DryRun {
				if r := dryRun(err, "", nil); r.Err != nil {
					errs = multierror.Append(errs, fmt.Errorf("%s: %w", t.NetworkInterfaceID, r.Err))
				} else {
					changed = append(changed, t.NetworkInterfaceID)
				}
				return
			}
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("set groups of %s to %s: %w", t.NetworkInterfaceID, strings.Join(t.Groups, ","), err))
				return
			}
			after.Interfaces[i] = t
			changed = append(changed, t.NetworkInterfaceID)
			if untrackErr != nil {
				errs = multierror.Append(errs, fmt.Errorf("%s is in %s, but its tracked connections were not cut: move into the untracking group %s: %w",
					t.NetworkInterfaceID, strings.Join(t.Groups, ","), untracking, untrackErr))
			}
		}()
	}
	wg.Wait()
	sort.Strings(changed)
	switch {
	case errs.ErrorOrNil() != nil:
		return Result{Status: evidence.StatusFailed, Err: errs.ErrorOrNil(), Before: before, After: after}
	case len(changed) == 0:
		return Skipped(fmt.Sprintf("every interface is already in %s state", verb), before)
	case env.Target.DryRun:
		return OK(fmt.Sprintf("dry run: permitted; would %s %s", verb, strings.Join(changed, ", ")), before, nil)
	}
	if len(via) > 0 {
		return OK(fmt.Sprintf("%s: %s moved through the untracking group", verb, strings.Join(changed, ", ")), before, after)
	}
	return OK(fmt.Sprintf("%s: %s moved", verb, strings.Join(changed, ", ")), before, after)
}

// Release puts every interface back in the groups it had before, never in
// the untracking group. It refuses, changing nothing, when an interface
// recorded is no longer attached to the instance: the instance changed since
// in a way the record cannot speak for (that interface keeps its quarantine
// groups). A before recorded while an interrupted run had left an interface
// between its two moves names the untracking group: it is left out (an
// interface whose recorded groups were only that one stays where it is, and
// the release fails for it).
func (s Quarantine) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var recorded quarantineState
	if err := json.Unmarshal(raw, &recorded); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	current := map[string][]string{}
	for _, n := range env.Target.Instance.NetworkInterfaces {
		current[aws.ToString(n.NetworkInterfaceId)] = groupIDs(n.Groups)
	}
	var now quarantineState
	var target []InterfaceGroups
	var detached, refused []string
	untracking := map[string]string{} // VPC -> its untracking group, "" for none
	for _, r := range recorded.Interfaces {
		groups, attached := current[r.NetworkInterfaceID]
		if !attached {
			detached = append(detached, r.NetworkInterfaceID)
			continue
		}
		u, known := untracking[r.VPC]
		if !known {
			g, err := findTaggedGroup(ctx, env.Clients.EC2, r.VPC, UntrackingTagValue)
			if err != nil {
				return Failed(fmt.Errorf("find the untracking group of %s: %w", r.VPC, err), nil)
			}
			if g != nil {
				u = aws.ToString(g.GroupId)
			}
			untracking[r.VPC] = u
		}
		if u != "" && slices.Contains(r.Groups, u) {
			r.Groups = slices.DeleteFunc(slices.Clone(r.Groups), func(g string) bool { return g == u })
			if len(r.Groups) == 0 {
				refused = append(refused, fmt.Sprintf("%s: its recorded groups are only the untracking group %s (an earlier run was interrupted between its two moves); choose its groups by hand", r.NetworkInterfaceID, u))
				continue
			}
		}
		now.Interfaces = append(now.Interfaces, InterfaceGroups{NetworkInterfaceID: r.NetworkInterfaceID, VPC: r.VPC, Groups: groups})
		target = append(target, r)
	}
	if len(detached) > 0 {
		r := Failed(fmt.Errorf("refused, nothing changed: %s recorded before the response no longer attached to %s; "+
			"restore the groups by hand (the record's before-state lists them)", strings.Join(detached, ", "), env.Target.InstanceID()), now)
		return r.Held(false)
	}
	res := s.apply(ctx, env, now, target, nil, "release", nil)
	switch {
	case env.Target.DryRun:
		return dryRunContainment(res)
	case res.Status != evidence.StatusSkipped:
		res = s.readBack(ctx, env, res, target)
	default:
		res = res.Held(true)
	}
	if len(refused) > 0 {
		res = failWith(res, fmt.Errorf("not restored: %s", strings.Join(refused, "; "))).Held(false)
	}
	return res
}

// Describe: the security groups of each interface, before and after.
func (Quarantine) Describe() Description {
	return Description{
		Aspect: "Security groups of the interface",
		View:   viewInterfaceGroups,
		Order:  10,
		OnFailure: "The instance may still be reachable, and may still reach out (command and control, " +
			"exfiltration): its interfaces may keep their old security groups. Isolate it another way now " +
			"(a network ACL on its subnet, or stop it after the evidence is safe) and check its groups.",
	}
}

// viewInterfaceGroups reads a quarantineState: the groups of each interface,
// named with its VPC.
func viewInterfaceGroups(raw json.RawMessage, _ string) ([]SubjectState, error) {
	var v quarantineState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	order := map[string][][]string{}
	for _, m := range v.GroupOrder {
		order[m.NetworkInterfaceID] = m.Groups
	}
	var out []SubjectState
	for _, i := range v.Interfaces {
		sub := i.NetworkInterfaceID
		if i.VPC != "" {
			sub += " (" + i.VPC + ")"
		}
		text := joinOr(i.Groups, "no security group")
		if moves := order[i.NetworkInterfaceID]; len(moves) > 1 {
			steps := make([]string, len(moves))
			for k, m := range moves {
				steps[k] = joinOr(m, "no security group")
			}
			text += " (moved " + strings.Join(steps, " → ") + ")"
		}
		out = append(out, SubjectState{Subject: sub, Text: text})
	}
	if len(v.NotCut) > 0 {
		text := strings.Join(v.NotCut, "; ")
		if v.NetworkACLPath != nil && *v.NetworkACLPath {
			text += " (the network ACL path, step network-acl, cuts what crosses into another subnet)"
		}
		out = append(out, SubjectState{Subject: "not cut by any security group change", Text: text})
	}
	return out, nil
}
