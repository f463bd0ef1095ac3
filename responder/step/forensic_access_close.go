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
}

// ForensicAccessClose ends what the collection opened, whatever the
// collection steps did: it removes the forensic instance profile (only that
// profile, found by its ARN, so a run that resumes a case removes one an
// earlier run left), and moves every interface from the forensic access
// group to the closed quarantine group of its VPC. It is a containment step:
// if it fails, the instance is not fully contained.
type ForensicAccessClose struct{}

func (ForensicAccessClose) Name() string { return "forensic-access-close" }
func (ForensicAccessClose) Phase() Phase { return Contain }
func (ForensicAccessClose) Needs() []string {
	return []string{"ssm-access", "volatile-data", "memory-capture"}
}

type closeState struct {
	ForensicProfiles []ProfileAssociation `json:"forensic_profiles,omitempty"`
	Interfaces       []InterfaceGroups    `json:"interfaces,omitempty"`
}

func (s ForensicAccessClose) Run(ctx context.Context, env *Env) Result {
	var api closeAPI = env.Clients.EC2
	id := env.Target.InstanceID()
	var before closeState
	if arn := env.Collection.ForensicProfileARN; arn != "" {
		all, err := associatedProfiles(ctx, api, id)
		if err != nil {
			return Failed(err, nil)
		}
		for _, a := range all {
			if a.ProfileARN == arn {
				before.ForensicProfiles = append(before.ForensicProfiles, a)
			}
		}
	}
	// Interfaces in a forensic access group: put there by this run, or
	// found there at the start (an earlier run of the case).
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
		before.Interfaces = append(before.Interfaces, InterfaceGroups{NetworkInterfaceID: eni, VPC: vpc, Groups: []string{g}})
	}
	sort.Slice(before.Interfaces, func(i, j int) bool {
		return before.Interfaces[i].NetworkInterfaceID < before.Interfaces[j].NetworkInterfaceID
	})
	if len(before.ForensicProfiles) == 0 && len(before.Interfaces) == 0 {
		return Skipped("no forensic access to close: no forensic profile associated, no interface in a forensic access group", before)
	}
	if env.Target.DryRun {
		return Skipped(fmt.Sprintf("dry run: would remove %d forensic profile association(s) and close %d interface(s)", len(before.ForensicProfiles), len(before.Interfaces)), before)
	}
	var (
		errs *multierror.Error
		done []string
	)
	after := closeState{}
	for _, a := range before.ForensicProfiles {
		if _, err := api.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(a.AssociationID)}); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("remove forensic profile %s (%s): %w", a.ProfileARN, a.AssociationID, err))
			after.ForensicProfiles = append(after.ForensicProfiles, a)
			continue
		}
		done = append(done, "removed forensic profile "+a.ProfileARN)
	}
	for _, n := range before.Interfaces {
		q, ok := env.QuarantineGroup(n.VPC)
		if !ok {
			errs = multierror.Append(errs, fmt.Errorf("%s stays in the forensic access group: no quarantine group is ready for VPC %s (see step quarantine-group)", n.NetworkInterfaceID, n.VPC))
			after.Interfaces = append(after.Interfaces, n)
			continue
		}
		err := retryEventual(ctx, func() error {
			_, err := api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(n.NetworkInterfaceID), Groups: []string{q},
			})
			return err
		}, "InvalidGroup.NotFound")
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("move %s to quarantine group %s: %w", n.NetworkInterfaceID, q, err))
			after.Interfaces = append(after.Interfaces, n)
			continue
		}
		after.Interfaces = append(after.Interfaces, InterfaceGroups{NetworkInterfaceID: n.NetworkInterfaceID, VPC: n.VPC, Groups: []string{q}})
		done = append(done, n.NetworkInterfaceID+" moved to "+q)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return Result{Status: evidence.StatusFailed, Err: err, Before: before, After: after}
	}
	return OK(strings.Join(done, "; "), before, after)
}
