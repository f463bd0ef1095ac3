package fakeaws

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestInstanceProfileAssociations(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	e := c.EC2()

	out, err := e.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{s.InstanceID}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.IamInstanceProfileAssociations) != 1 {
		t.Fatalf("associations = %+v, want one", out.IamInstanceProfileAssociations)
	}
	a := out.IamInstanceProfileAssociations[0]
	if aws.ToString(a.AssociationId) != s.AssociationID || a.State != types.IamInstanceProfileAssociationStateAssociated ||
		aws.ToString(a.IamInstanceProfile.Arn) != s.ProfileArn {
		t.Errorf("association = %+v", a)
	}

	_, err = e.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: &s.InstanceID,
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("forensics")}})
	wantCode(t, err, "IncorrectState")

	dis, err := e.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: &s.AssociationID})
	if err != nil {
		t.Fatal(err)
	}
	if dis.IamInstanceProfileAssociation.State != types.IamInstanceProfileAssociationStateDisassociating {
		t.Errorf("disassociate answered state %s", dis.IamInstanceProfileAssociation.State)
	}
	if v := c.Instance(s.InstanceID); v.IamInstanceProfile != nil || v.ProfileAssociation != nil {
		t.Errorf("instance still has a profile: %+v", v.IamInstanceProfile)
	}
	_, err = e.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: &s.AssociationID})
	wantCode(t, err, "InvalidAssociationID.NotFound")
	_, err = e.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{AssociationIds: []string{s.AssociationID}})
	wantCode(t, err, "InvalidAssociationID.NotFound")

	as, err := e.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: &s.InstanceID,
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("forensics")}})
	if err != nil {
		t.Fatal(err)
	}
	want := "arn:aws:iam::111122223333:instance-profile/forensics"
	if got := c.Instance(s.InstanceID).IamInstanceProfile; got == nil || aws.ToString(got.Arn) != want ||
		aws.ToString(as.IamInstanceProfileAssociation.IamInstanceProfile.Arn) != want {
		t.Errorf("after associate: profile %+v, want %s", got, want)
	}

	tests := []struct {
		name string
		in   ec2.AssociateIamInstanceProfileInput
		code string
	}{
		{"no profile", ec2.AssociateIamInstanceProfileInput{InstanceId: &s.InstanceID}, "MissingParameter"},
		{"bad arn", ec2.AssociateIamInstanceProfileInput{InstanceId: &s.InstanceID,
			IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::1:role/x")}}, "InvalidParameterValue"},
		{"unknown instance", ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String("i-0123456789abcdef0"),
			IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("x")}}, "InvalidInstanceID.NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.AssociateIamInstanceProfile(ctx, &tt.in)
			wantCode(t, err, tt.code)
		})
	}
}
