package step

import (
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
)

// dryRun turns the answer to a call made with DryRun into a result:
// DryRunOperation means the call would have succeeded.
func dryRun(err error, would string, before any) Result {
	switch {
	case cloud.IsErrorCode(err, "DryRunOperation"):
		return OK("dry run: permitted; would "+would, before, nil)
	case err == nil:
		// An endpoint that ignores DryRun made the change: say so loudly.
		return Failed(fmt.Errorf("dry run: the endpoint did not honour DryRun and may have acted (%s)", would), before)
	default:
		return Failed(fmt.Errorf("dry run: %s: %w", would, err), before)
	}
}

// attachedVolumes lists the EBS volumes attached to the instance, sorted.
func attachedVolumes(inst types.Instance) []string {
	var ids []string
	for _, m := range inst.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.VolumeId != nil {
			ids = append(ids, *m.Ebs.VolumeId)
		}
	}
	sort.Strings(ids)
	return ids
}

// groupIDs returns the IDs of security group identifiers.
func groupIDs(groups []types.GroupIdentifier) []string {
	ids := make([]string, 0, len(groups))
	for _, g := range groups {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	sort.Strings(ids)
	return ids
}

// instanceGroupIDs is every security group on any interface of the instance.
func instanceGroupIDs(inst types.Instance) []string {
	seen := map[string]bool{}
	var ids []string
	add := func(gs []types.GroupIdentifier) {
		for _, id := range groupIDs(gs) {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	add(inst.SecurityGroups)
	for _, n := range inst.NetworkInterfaces {
		add(n.Groups)
	}
	sort.Strings(ids)
	return ids
}

// interfaceVPC is the VPC of an interface, falling back to the instance's.
func interfaceVPC(inst types.Instance, n types.InstanceNetworkInterface) string {
	if n.VpcId != nil {
		return *n.VpcId
	}
	return aws.ToString(inst.VpcId)
}

// instanceVPCs lists the VPCs of the instance's interfaces (an instance may
// have interfaces in more than one VPC).
func instanceVPCs(inst types.Instance) []string {
	seen := map[string]bool{}
	var vpcs []string
	for _, n := range inst.NetworkInterfaces {
		if v := interfaceVPC(inst, n); v != "" && !seen[v] {
			seen[v] = true
			vpcs = append(vpcs, v)
		}
	}
	if len(vpcs) == 0 && inst.VpcId != nil {
		vpcs = append(vpcs, *inst.VpcId)
	}
	sort.Strings(vpcs)
	return vpcs
}

func instanceFilter(id string) []types.Filter {
	return []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}
}
