package fakeaws

import (
	"context"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxTags is EC2's limit of tags per resource.
const maxTags = 50

// CreateTags adds or overwrites tags on instances, volumes, snapshots,
// security groups, network interfaces, VPCs, subnets and VPC endpoints.
// Every resource is checked before any is tagged.
func (e *EC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	if in == nil {
		in = &ec2.CreateTagsInput{}
	}
	c := e.c
	out := &ec2.CreateTagsOutput{}
	err := c.call(ctx, serviceEC2, "CreateTags", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if len(in.Resources) == 0 {
			return nil, missingParameter("resourceIdSet")
		}
		if len(in.Tags) == 0 {
			return nil, missingParameter("tagSet")
		}
		if err := validateTags(in.Tags); err != nil {
			return nil, err
		}
		var targets []*[]types.Tag
		for _, id := range in.Resources {
			tags, err := c.taggableLocked(id)
			if err != nil {
				return nil, err
			}
			if len(mergeTags(*tags, in.Tags)) > maxTags {
				return nil, apiError("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
			}
			targets = append(targets, tags)
		}
		return func() {
			for _, t := range targets {
				*t = mergeTags(*t, in.Tags)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// taggableLocked returns the tag list of a resource, or the error CreateTags
// answers for it.
func (c *Cloud) taggableLocked(id string) (*[]types.Tag, error) {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "i":
		inst, err := c.instanceLocked(id)
		if err != nil {
			return nil, err
		}
		if inst.State == types.InstanceStateNameTerminated {
			return nil, incorrectInstanceState(id, inst.State)
		}
		return &inst.Tags, nil
	case "vol":
		if err := kindVolume.check([]string{id}, c.hasVolume); err != nil {
			return nil, err
		}
		return &c.st.Volumes[id].Tags, nil
	case "snap":
		if err := kindSnapshot.check([]string{id}, c.hasSnapshot); err != nil {
			return nil, err
		}
		return &c.st.Snapshots[id].Tags, nil
	case "sg":
		if err := kindGroup.check([]string{id}, c.hasGroup); err != nil {
			return nil, err
		}
		return &c.st.Groups[id].Tags, nil
	case "eni":
		if err := kindInterface.check([]string{id}, c.hasInterface); err != nil {
			return nil, err
		}
		return &c.st.Interfaces[id].Tags, nil
	case "vpc":
		if err := kindVPC.check([]string{id}, c.hasVPC); err != nil {
			return nil, err
		}
		return &c.st.VPCs[id].Tags, nil
	case "subnet":
		if err := kindSubnet.check([]string{id}, c.hasSubnet); err != nil {
			return nil, err
		}
		return &c.st.Subnets[id].Tags, nil
	case "vpce":
		if err := kindEndpoint.check([]string{id}, func(id string) bool { _, ok := c.st.Endpoints[id]; return ok }); err != nil {
			return nil, err
		}
		return &c.st.Endpoints[id].Tags, nil
	}
	return nil, apiError("InvalidID", "The ID '%s' is not valid", id)
}

// validateTags checks tag keys and values against EC2's rules.
func validateTags(tags []types.Tag) error {
	for _, t := range tags {
		key := aws.ToString(t.Key)
		switch {
		case key == "":
			return apiError("InvalidParameterValue", "Tag key must not be empty")
		case len(key) > 128:
			return apiError("InvalidParameterValue", "Tag key exceeds the maximum length of 128 characters")
		case strings.HasPrefix(strings.ToLower(key), "aws:"):
			return apiError("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		case len(aws.ToString(t.Value)) > 256:
			return apiError("InvalidParameterValue", "Tag value exceeds the maximum length of 256 characters")
		}
	}
	return nil
}

// tagsFor returns the tags of TagSpecifications for a resource type, or
// InvalidParameterValue when a specification names another type.
func tagsFor(specs []types.TagSpecification, want types.ResourceType) ([]types.Tag, error) {
	var tags []types.Tag
	for _, s := range specs {
		if s.ResourceType != want {
			return nil, apiError("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", s.ResourceType)
		}
		if err := validateTags(s.Tags); err != nil {
			return nil, err
		}
		tags = mergeTags(tags, s.Tags)
	}
	if len(tags) > maxTags {
		return nil, apiError("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
	}
	return tags, nil
}

// mergeTags returns a new list: old overwritten and extended by add, sorted by
// key (AWS does not promise an order; a fixed one keeps the fake stable).
func mergeTags(old, add []types.Tag) []types.Tag {
	m := map[string]string{}
	for _, t := range old {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for _, t := range add {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tagsFromMap(m)
}

func tagsFromMap(m map[string]string) []types.Tag {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]types.Tag, len(keys))
	for i, k := range keys {
		tags[i] = types.Tag{Key: aws.String(k), Value: aws.String(m[k])}
	}
	return tags
}

// copyTags returns a deep copy, so that callers cannot change the state.
func copyTags(tags []types.Tag) []types.Tag {
	if tags == nil {
		return nil
	}
	out := make([]types.Tag, len(tags))
	for i, t := range tags {
		out[i] = types.Tag{Key: aws.String(aws.ToString(t.Key)), Value: aws.String(aws.ToString(t.Value))}
	}
	return out
}

func hasTag(tags []types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}
