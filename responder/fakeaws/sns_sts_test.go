package fakeaws

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestPublish(t *testing.T) {
	c := New()
	topic := c.AddTopic("responder-alerts")
	ctx := context.Background()
	attrs := map[string]snstypes.MessageAttributeValue{"case": {DataType: aws.String("String"), StringValue: aws.String("IR-1")}}
	tests := []struct {
		name string
		in   sns.PublishInput
		code string
	}{
		{"ok", sns.PublishInput{TopicArn: &topic, Subject: aws.String("Contained i-1"), Message: aws.String("details"), MessageAttributes: attrs}, ""},
		{"unknown topic", sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:111122223333:nope"), Message: aws.String("m")}, "NotFound"},
		{"no topic", sns.PublishInput{Message: aws.String("m")}, "InvalidParameter"},
		{"empty message", sns.PublishInput{TopicArn: &topic}, "InvalidParameter"},
		{"long subject", sns.PublishInput{TopicArn: &topic, Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 100))}, "InvalidParameter"},
		{"subject with newline", sns.PublishInput{TopicArn: &topic, Message: aws.String("m"), Subject: aws.String("a\nb")}, "InvalidParameter"},
		{"attribute without value", sns.PublishInput{TopicArn: &topic, Message: aws.String("m"),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{"x": {DataType: aws.String("String")}}}, "ParameterValueInvalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.SNS().Publish(ctx, &tt.in)
			wantCode(t, err, tt.code)
		})
	}
	got := c.Published()
	if len(got) != 1 || got[0].Subject != "Contained i-1" || got[0].Message != "details" || got[0].TopicArn != topic ||
		aws.ToString(got[0].Attributes["case"].StringValue) != "IR-1" || got[0].MessageID == "" {
		t.Errorf("published = %+v, want the one valid message", got)
	}
}

func TestGetCallerIdentity(t *testing.T) {
	c := New(WithAccount("444455556666"))
	out, err := c.STS().GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Account) != "444455556666" || aws.ToString(out.Arn) != "arn:aws:iam::444455556666:user/responder-test" ||
		!strings.HasPrefix(aws.ToString(out.UserId), "AIDA") {
		t.Errorf("identity = %s %s %s", aws.ToString(out.Account), aws.ToString(out.Arn), aws.ToString(out.UserId))
	}
	c.CallerArn, c.CallerUserID = "arn:aws:sts::444455556666:assumed-role/Responder/s", "AROAEXAMPLE:s"
	out, err = c.STS().GetCallerIdentity(context.Background(), nil)
	if err != nil || aws.ToString(out.Arn) != c.CallerArn || aws.ToString(out.UserId) != c.CallerUserID {
		t.Errorf("identity = %v %v, %v", aws.ToString(out.Arn), aws.ToString(out.UserId), err)
	}
}
