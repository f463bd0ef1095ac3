package fakeaws

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// profileAssociation associates an IAM instance profile with an instance.
// Disassociating removes it.
type profileAssociation struct {
	ID         string
	InstanceID string
	ProfileArn string
	ProfileID  string
	Time       time.Time
	Seq        int
}

var profileArnPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:instance-profile/[\w+=,.@/-]+$`)

// profileID derives the unique ID IAM gives an instance profile (AIPA...) from
// its ARN, so that the same profile always has the same ID.
func profileID(arn string) string {
	sum := sha256.Sum256([]byte(arn))
	return "AIPA" + base32.StdEncoding.EncodeToString(sum[:])[:17]
}

func (c *Cloud) associateLocked(inst *instance, arn string) *profileAssociation {
	a := &profileAssociation{
		ID:         c.hexIDLocked("iip-assoc"),
		InstanceID: inst.ID,
		ProfileArn: arn,
		ProfileID:  profileID(arn),
		Time:       c.now().Truncate(time.Second),
		Seq:        c.nextSeqLocked(),
	}
	c.st.Associations[a.ID] = a
	inst.AssociationID = a.ID
	return a
}

func (c *Cloud) renderAssociation(a *profileAssociation, state types.IamInstanceProfileAssociationState) types.IamInstanceProfileAssociation {
	return types.IamInstanceProfileAssociation{
		AssociationId:      aws.String(a.ID),
		InstanceId:         aws.String(a.InstanceID),
		IamInstanceProfile: &types.IamInstanceProfile{Arn: aws.String(a.ProfileArn), Id: aws.String(a.ProfileID)},
		State:              state,
		Timestamp:          aws.Time(a.Time),
	}
}

var associationFields = fields[*profileAssociation]{
	"instance-id": func(a *profileAssociation) []string { return one(a.InstanceID) },
	"state": func(*profileAssociation) []string {
		return one(string(types.IamInstanceProfileAssociationStateAssociated))
	},
}

// DescribeIamInstanceProfileAssociations describes associations by ID and
// filters (instance-id, state). The operation has no DryRun parameter.
func (e *EC2) DescribeIamInstanceProfileAssociations(ctx context.Context, in *ec2.DescribeIamInstanceProfileAssociationsInput, _ ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error) {
	if in == nil {
		in = &ec2.DescribeIamInstanceProfileAssociationsInput{}
	}
	c := e.c
	out := &ec2.DescribeIamInstanceProfileAssociationsOutput{}
	err := c.call(ctx, serviceEC2, "DescribeIamInstanceProfileAssociations", false, &out.ResultMetadata, func() (func(), error) {
		if err := kindAssociation.check(in.AssociationIds, func(id string) bool { _, ok := c.st.Associations[id]; return ok }); err != nil {
			return nil, err
		}
		if err := checkFilters(in.Filters, associationFields); err != nil {
			return nil, err
		}
		if tagFilter(in.Filters) {
			return nil, apiError("InvalidParameterValue", "Associations have no tags to filter on")
		}
		list := sortedBySeq(c.st.Associations, func(a *profileAssociation) int { return a.Seq })
		if len(in.AssociationIds) > 0 {
			list = nil
			for _, id := range dedupe(in.AssociationIds) {
				list = append(list, c.st.Associations[id])
			}
		}
		list = filter(list, in.Filters, associationFields, nil)
		result := []types.IamInstanceProfileAssociation{}
		for _, a := range list {
			result = append(result, c.renderAssociation(a, types.IamInstanceProfileAssociationStateAssociated))
		}
		return func() { out.IamInstanceProfileAssociations = result }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func tagFilter(filters []types.Filter) bool {
	for _, f := range filters {
		name := aws.ToString(f.Name)
		if strings.HasPrefix(name, "tag:") || name == "tag-key" || name == "tag-value" {
			return true
		}
	}
	return false
}

// DisassociateIamInstanceProfile removes an association. The answer shows it
// "disassociating"; afterwards it is gone and the instance has no profile
// (an SSM Agent that needs one loses its connection: see Agent).
func (e *EC2) DisassociateIamInstanceProfile(ctx context.Context, in *ec2.DisassociateIamInstanceProfileInput, _ ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error) {
	if in == nil {
		in = &ec2.DisassociateIamInstanceProfileInput{}
	}
	c := e.c
	out := &ec2.DisassociateIamInstanceProfileOutput{}
	err := c.call(ctx, serviceEC2, "DisassociateIamInstanceProfile", false, &out.ResultMetadata, func() (func(), error) {
		if in.AssociationId == nil {
			return nil, missingParameter("associationId")
		}
		id := aws.ToString(in.AssociationId)
		a, ok := c.st.Associations[id]
		if !ok {
			return nil, kindAssociation.notFoundError([]string{id})
		}
		return func() {
			r := c.renderAssociation(a, types.IamInstanceProfileAssociationStateDisassociating)
			out.IamInstanceProfileAssociation = &r
			delete(c.st.Associations, id)
			c.st.Instances[a.InstanceID].AssociationID = ""
			c.profileRemovedLocked(a.InstanceID)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AssociateIamInstanceProfile associates a profile, given by ARN or name,
// with an instance that has none. The fake does not model IAM: any
// well-formed ARN names a profile. An SSM Agent that needs a profile comes
// online after its warm-up (see Agent.OnlineAfterCalls).
func (e *EC2) AssociateIamInstanceProfile(ctx context.Context, in *ec2.AssociateIamInstanceProfileInput, _ ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error) {
	if in == nil {
		in = &ec2.AssociateIamInstanceProfileInput{}
	}
	c := e.c
	out := &ec2.AssociateIamInstanceProfileOutput{}
	err := c.call(ctx, serviceEC2, "AssociateIamInstanceProfile", false, &out.ResultMetadata, func() (func(), error) {
		switch {
		case in.InstanceId == nil:
			return nil, missingParameter("instanceId")
		case in.IamInstanceProfile == nil || (in.IamInstanceProfile.Arn == nil && in.IamInstanceProfile.Name == nil):
			return nil, missingParameter("iamInstanceProfile")
		}
		arn := aws.ToString(in.IamInstanceProfile.Arn)
		if arn == "" {
			arn = fmt.Sprintf("arn:aws:iam::%s:instance-profile/%s", c.Account, aws.ToString(in.IamInstanceProfile.Name))
		}
		if !profileArnPattern.MatchString(arn) {
			return nil, apiError("InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.arn is invalid.", arn)
		}
		inst, err := c.liveInstanceLocked(aws.ToString(in.InstanceId))
		if err != nil {
			return nil, err
		}
		if inst.AssociationID != "" {
			return nil, apiError("IncorrectState", "There is an existing association for instance %s", inst.ID)
		}
		return func() {
			a := c.associateLocked(inst, arn)
			r := c.renderAssociation(a, types.IamInstanceProfileAssociationStateAssociating)
			out.IamInstanceProfileAssociation = &r
			c.profileAssociatedLocked(inst)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
