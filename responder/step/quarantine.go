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

	"github.com/responder-ir/responder/responder/evidence"
)

type quarantineAPI interface {
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	interfaceReader
}

// Quarantine moves every network interface of the instance into the
// quarantine group of its VPC, in parallel, one ModifyNetworkInterfaceAttribute
// per interface (the per-interface call is the documented way for instances
// with several interfaces). New connections are refused at once; connections
// already tracked by the security group can go on until they are idle.
type Quarantine struct{}

func (Quarantine) Name() string   { return quarantineStep }
func (Quarantine) Phase() Phase   { return Contain }
func (Quarantine) Isolates() bool { return true }
func (Quarantine) Needs() []string {
	return []string{"metadata:read", "snapshots", "quarantine-group", "forensic-access-group"}
}

type quarantineState struct {
	Interfaces []InterfaceGroups `json:"interfaces"`
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
	res := s.apply(ctx, env, before, target, "quarantine")
	switch {
	case env.Target.DryRun:
		return dryRunContainment(res)
	case res.Status == evidence.StatusSkipped:
		// DescribeInstances showed every interface in its target groups
		// at the start of this run.
		return res.Held(true)
	}
	res = s.readBack(ctx, env, res, target)
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

// apply sets every interface to its target groups, in parallel.
func (s Quarantine) apply(ctx context.Context, env *Env, before quarantineState, target []InterfaceGroups, verb string) Result {
	var api quarantineAPI = env.Clients.EC2
	var (
		mu      sync.Mutex
		errs    *multierror.Error
		changed []string
		wg      sync.WaitGroup
	)
	after := quarantineState{Interfaces: make([]InterfaceGroups, len(target))}
	for i, t := range target {
		after.Interfaces[i] = before.Interfaces[i]
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
			err := retryEventual(ctx, func() error {
				_, err := api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
					NetworkInterfaceId: aws.String(t.NetworkInterfaceID),
					Groups:             groups,
					DryRun:             aws.Bool(env.Target.DryRun),
				})
				return err
			}, "InvalidGroup.NotFound")
			mu.Lock()
			defer mu.Unlock()
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
	return OK(fmt.Sprintf("%s: %s moved", verb, strings.Join(changed, ", ")), before, after)
}

// Release puts every interface back in the groups it had before. It
// refuses, changing nothing, when an interface recorded is no longer
// attached to the instance: the instance changed since in a way the record
// cannot speak for (that interface keeps its quarantine groups).
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
	var detached []string
	for _, r := range recorded.Interfaces {
		groups, attached := current[r.NetworkInterfaceID]
		if !attached {
			detached = append(detached, r.NetworkInterfaceID)
			continue
		}
		now.Interfaces = append(now.Interfaces, InterfaceGroups{NetworkInterfaceID: r.NetworkInterfaceID, VPC: r.VPC, Groups: groups})
		target = append(target, r)
	}
	if len(detached) > 0 {
		r := Failed(fmt.Errorf("refused, nothing changed: %s recorded before the response no longer attached to %s; "+
			"restore the groups by hand (the record's before-state lists them)", strings.Join(detached, ", "), env.Target.InstanceID()), now)
		return r.Held(false)
	}
	res := s.apply(ctx, env, now, target, "release")
	switch {
	case env.Target.DryRun:
		return dryRunContainment(res)
	case res.Status == evidence.StatusSkipped:
		return res.Held(true)
	}
	return s.readBack(ctx, env, res, target)
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
	var out []SubjectState
	for _, i := range v.Interfaces {
		sub := i.NetworkInterfaceID
		if i.VPC != "" {
			sub += " (" + i.VPC + ")"
		}
		out = append(out, SubjectState{Subject: sub, Text: joinOr(i.Groups, "no security group")})
	}
	return out, nil
}
