package fakeaws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// STS is the account's AWS STS service; it implements cloud.STS.
type STS struct{ c *Cloud }

// callerArnLocked is the identity calls are made as.
func (c *Cloud) callerArnLocked() string {
	if c.CallerArn != "" {
		return c.CallerArn
	}
	return fmt.Sprintf("arn:aws:iam::%s:user/responder-test", c.Account)
}

// GetCallerIdentity answers Account, Arn (CallerArn) and UserId
// (CallerUserID, or a stable AIDA... ID derived from the ARN).
func (s *STS) GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, _ ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	c := s.c
	out := &sts.GetCallerIdentityOutput{}
	err := c.call(ctx, serviceSTS, "GetCallerIdentity", false, &out.ResultMetadata, func() (func(), error) {
		arn := c.callerArnLocked()
		user := c.CallerUserID
		if user == "" {
			user = "AIDA" + profileID(arn)[4:]
		}
		return func() {
			out.Account = aws.String(c.Account)
			out.Arn = aws.String(arn)
			out.UserId = aws.String(user)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
