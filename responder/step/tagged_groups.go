package step

import (
	"context"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/responder-ir/responder/responder/cloud"
)

type groupDescriber interface {
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
}

// ReadTaggedGroups reads, in every VPC of the region, the security groups
// the toolkit keeps (tagged TagQuarantine: the quarantine, untracking and
// forensic access groups), with their rules. A response reads them beside
// its first DescribeInstances, before it knows the instance's VPCs, so that
// the group steps find them without a call of their own and the quarantine
// moves the interfaces one round trip earlier (Target.TaggedGroups).
func ReadTaggedGroups(ctx context.Context, api groupDescriber) ([]types.SecurityGroup, error) {
	in := &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("tag-key"), Values: []string{TagQuarantine}},
	}}
	var groups []types.SecurityGroup
	for {
		out, err := api.DescribeSecurityGroups(ctx, in, cloud.Urgent)
		if err != nil {
			return nil, err
		}
		groups = append(groups, out.SecurityGroups...)
		if aws.ToString(out.NextToken) == "" {
			return groups, nil
		}
		in.NextToken = out.NextToken
	}
}

// findCaseGroup returns the group of the VPC whose TagQuarantine tag has the
// value (the lowest ID when there are several), or nil: from the groups the
// response read at its start when it did, else from EC2.
func (e *Env) findCaseGroup(ctx context.Context, api quarantineGroupAPI, vpc, value string) (*types.SecurityGroup, error) {
	if e.Target.TaggedGroups == nil {
		return findTaggedGroup(ctx, api, vpc, value)
	}
	var found []types.SecurityGroup
	for _, g := range *e.Target.TaggedGroups {
		if aws.ToString(g.VpcId) == vpc && hasTagValue(g.Tags, TagQuarantine, value) {
			found = append(found, g)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	sort.Slice(found, func(i, j int) bool { return aws.ToString(found[i].GroupId) < aws.ToString(found[j].GroupId) })
	return &found[0], nil
}

func hasTagValue(tags []types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}
