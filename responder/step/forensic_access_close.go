package step

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/evidence"
)

type closeAPI interface {
	DescribeIamInstanceProfileAssociations(context.Context, *ec2.DescribeIamInstanceProfileAssociationsInput, ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	DisassociateIamInstanceProfile(context.Context, *ec2.DisassociateIamInstanceProfileInput, ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	interfaceReader
}

// ForensicAccessClose ends what the collection opened, whatever the
// collection steps did: it removes the forensic instance profile (only that
// profile, found by its ARN, so a run that resumes a case removes one an
// earlier run left), and moves every interface from the forensic access
// group to the closed quarantine group of its VPC. It is a containment step:
// if it fails, the instance is not fully contained.
type ForensicAccessClose struct{}

func (ForensicAccessClose) Name() string   { return "forensic-access-close" }
func (ForensicAccessClose) Phase() Phase   { return Contain }
func (ForensicAccessClose) Isolates() bool { return true }
func (ForensicAccessClose) Needs() []string {
	return []string{"ssm-access", "volatile-data", "memory-capture"}
}

type closeState struct {
	ForensicProfiles []ProfileAssociation `json:"forensic_profiles,omitempty"`
	Interfaces       []InterfaceGroups    `json:"interfaces,omitempty"`
}

// Run finds what the collection left open (open), then closes it (close).
func (s ForensicAccessClose) Run(ctx context.Context, env *Env) Result {
	var api closeAPI = env.Clients.EC2
	before, err := s.open(ctx, api, env)
	if err != nil {
		return Failed(err, nil)
	}
	if len(before.ForensicProfiles) == 0 && len(before.Interfaces) == 0 {
		return Skipped("no forensic access to close: no forensic profile associated, no interface in a forensic access group", before).Held(true)
	}
	if env.Target.DryRun {
		return Skipped(fmt.Sprintf("dry run: would remove %d forensic profile association(s) and close %d interface(s)", len(before.ForensicProfiles), len(before.Interfaces)), before).Unchecked()
	}
	res, moved := s.close(ctx, api, env, before)
	return s.readBack(ctx, api, env, res, moved)
}

// readBack looks again at what close changed: the forensic profile must be
// gone and every interface it moved in its quarantine group. The after
// becomes what was read (with what close could not change).
func (s ForensicAccessClose) readBack(ctx context.Context, api closeAPI, env *Env, res Result, moved []InterfaceGroups) Result {
	after, _ := res.After.(closeState)
	var problems []string
	if arn := env.Collection.ForensicProfileARN; arn != "" {
		all, err := associatedProfiles(ctx, api, env.Target.InstanceID())
		if err != nil {
			return failWith(res, fmt.Errorf("read back: %w", err)).Unchecked()
		}
		after.ForensicProfiles = nil
		for _, a := range all {
			if a.ProfileARN == arn {
				after.ForensicProfiles = append(after.ForensicProfiles, a)
				problems = append(problems, "forensic profile still associated ("+a.AssociationID+")")
			}
		}
	}
	if len(moved) > 0 {
		got, err := readInterfaceGroups(ctx, api, moved)
		if err != nil {
			return failWith(res, fmt.Errorf("read back: %w", err)).Unchecked()
		}
		problems = append(problems, groupMismatches(got, moved)...)
		read := map[string]InterfaceGroups{}
		for _, g := range got {
			read[g.NetworkInterfaceID] = g
		}
		for i, n := range after.Interfaces {
			if g, ok := read[n.NetworkInterfaceID]; ok {
				after.Interfaces[i] = g
			}
		}
	}
	res.After = after
	if len(problems) > 0 {
		return failWith(res, fmt.Errorf("read back: %s", strings.Join(problems, "; "))).Held(false)
	}
	return res.Held(res.Status != evidence.StatusFailed)
}

// open finds the forensic access still open: the associations of the
// forensic profile, and the interfaces in a forensic access group, put there
// by this run or found there at the start (an earlier run of the case).
func (ForensicAccessClose) open(ctx context.Context, api closeAPI, env *Env) (closeState, error) {
	var open closeState
	if arn := env.Collection.ForensicProfileARN; arn != "" {
		all, err := associatedProfiles(ctx, api, env.Target.InstanceID())
		if err != nil {
			return open, err
		}
		for _, a := range all {
			if a.ProfileARN == arn {
				open.ForensicProfiles = append(open.ForensicProfiles, a)
			}
		}
	}
	inForensic := env.forensicInterfaces()
	for _, n := range env.Target.Instance.NetworkInterfaces {
		vpc := interfaceVPC(env.Target.Instance, n)
		if g, ok := env.ForensicGroup(vpc); ok && slices.Contains(groupIDs(n.Groups), g) {
			if inForensic == nil {
				inForensic = map[string]string{}
			}
			inForensic[aws.ToString(n.NetworkInterfaceId)] = vpc
		}
	}
	for eni, vpc := range inForensic {
		g, _ := env.ForensicGroup(vpc)
		open.Interfaces = append(open.Interfaces, InterfaceGroups{NetworkInterfaceID: eni, VPC: vpc, Groups: []string{g}})
	}
	sort.Slice(open.Interfaces, func(i, j int) bool {
		return open.Interfaces[i].NetworkInterfaceID < open.Interfaces[j].NetworkInterfaceID
	})
	return open, nil
}

// close removes the forensic profile associations and moves the interfaces
// to the quarantine group of their VPC. after holds what is still open;
// moved lists the interfaces moved, with the group they were moved to.
func (s ForensicAccessClose) close(ctx context.Context, api closeAPI, env *Env, before closeState) (res Result, moved []InterfaceGroups) {
	var (
		errs  *multierror.Error
		done  []string
		after closeState
	)
	for _, a := range before.ForensicProfiles {
		if _, err := api.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(a.AssociationID)}); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("remove forensic profile %s (%s): %w", a.ProfileARN, a.AssociationID, err))
			after.ForensicProfiles = append(after.ForensicProfiles, a)
			continue
		}
		done = append(done, "removed forensic profile "+a.ProfileARN)
	}
	for _, n := range before.Interfaces {
		left, err := s.closeInterface(ctx, api, env, n)
		after.Interfaces = append(after.Interfaces, left)
		if err != nil {
			errs = multierror.Append(errs, err)
			continue
		}
		moved = append(moved, left)
		done = append(done, n.NetworkInterfaceID+" moved to "+left.Groups[0])
	}
	if err := errs.ErrorOrNil(); err != nil {
		return Result{Status: evidence.StatusFailed, Err: err, Before: before, After: after}, moved
	}
	return OK(strings.Join(done, "; "), before, after), moved
}

// closeInterface moves one interface from the forensic access group to
// the quarantine group of its VPC, and returns it as it was left.
func (ForensicAccessClose) closeInterface(ctx context.Context, api closeAPI, env *Env, n InterfaceGroups) (InterfaceGroups, error) {
	q, ok := env.QuarantineGroup(n.VPC)
	if !ok {
		return n, fmt.Errorf("%s stays in the forensic access group: no quarantine group is ready for VPC %s (see step quarantine-group)", n.NetworkInterfaceID, n.VPC)
	}
	err := retryEventual(ctx, func() error {
		_, err := api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(n.NetworkInterfaceID), Groups: []string{q},
		})
		return err
	}, "InvalidGroup.NotFound")
	if err != nil {
		return n, fmt.Errorf("move %s to quarantine group %s: %w", n.NetworkInterfaceID, q, err)
	}
	return InterfaceGroups{NetworkInterfaceID: n.NetworkInterfaceID, VPC: n.VPC, Groups: []string{q}}, nil
}

// Describe: the forensic profiles and interfaces are shown as recorded.
func (s ForensicAccessClose) Describe() Description {
	d := RawState(s.Name())
	d.OnFailure = "The forensic access may still be open: the forensic instance profile may still be " +
		"associated, or interfaces may still allow HTTPS to the VPC's SSM and S3 endpoints. Check the " +
		"instance's profile and security groups now."
	return d
}
