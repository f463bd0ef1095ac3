package fakeaws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// SNS is the account's Amazon SNS service; it implements cloud.SNS.
type SNS struct{ c *Cloud }

type topic struct {
	Name string
	Arn  string
}

// PublishedMessage is one message accepted by Publish.
type PublishedMessage struct {
	TopicArn         string
	MessageID        string
	Subject          string
	Message          string
	MessageStructure string
	Attributes       map[string]snstypes.MessageAttributeValue
}

// SNS limits.
const (
	maxMessageBytes      = 256 * 1024
	maxSubjectChars      = 100
	maxMessageAttributes = 10
)

// AddTopic adds a standard topic and returns its ARN. Adding an existing
// name returns the existing topic, as CreateTopic does.
func (c *Cloud) AddTopic(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	arn := fmt.Sprintf("arn:aws:sns:%s:%s:%s", c.Region, c.Account, name)
	c.st.Topics[arn] = &topic{Name: name, Arn: arn}
	return arn
}

// Published returns the messages published so far, oldest first. They are
// copies.
func (c *Cloud) Published() []PublishedMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PublishedMessage, len(c.st.Messages))
	for i, m := range c.st.Messages {
		out[i] = m
		out[i].Attributes = copyAttributes(m.Attributes)
	}
	return out
}

func copyAttributes(in map[string]snstypes.MessageAttributeValue) map[string]snstypes.MessageAttributeValue {
	if in == nil {
		return nil
	}
	out := make(map[string]snstypes.MessageAttributeValue, len(in))
	for k, v := range in {
		out[k] = snstypes.MessageAttributeValue{
			DataType:    aws.String(aws.ToString(v.DataType)),
			StringValue: copyString(v.StringValue),
			BinaryValue: bytes.Clone(v.BinaryValue),
		}
	}
	return out
}

func copyString(s *string) *string {
	if s == nil {
		return nil
	}
	return aws.String(*s)
}

// Publish publishes a message to a topic (TopicArn or TargetArn; SMS is not
// modelled), with SNS's checks on the message, subject and attributes.
func (s *SNS) Publish(ctx context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if in == nil {
		in = &sns.PublishInput{}
	}
	c := s.c
	out := &sns.PublishOutput{}
	err := c.call(ctx, serviceSNS, "Publish", false, &out.ResultMetadata, func() (func(), error) {
		if in.PhoneNumber != nil {
			return nil, notModelled("Publish", "to a phone number")
		}
		arn := aws.ToString(in.TopicArn)
		if arn == "" {
			arn = aws.ToString(in.TargetArn)
		}
		if arn == "" {
			return nil, apiError("InvalidParameter", "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
		}
		if err := validateMessage(in); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(arn, "arn:aws:sns:") {
			return nil, apiError("InvalidParameter", "Invalid parameter: TopicArn")
		}
		if _, ok := c.st.Topics[arn]; !ok {
			return nil, apiError("NotFound", "Topic does not exist")
		}
		return func() {
			m := PublishedMessage{
				TopicArn:         arn,
				MessageID:        c.uuidLocked(),
				Subject:          aws.ToString(in.Subject),
				Message:          aws.ToString(in.Message),
				MessageStructure: aws.ToString(in.MessageStructure),
				Attributes:       copyAttributes(in.MessageAttributes),
			}
			c.st.Messages = append(c.st.Messages, m)
			out.MessageId = aws.String(m.MessageID)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func validateMessage(in *sns.PublishInput) error {
	msg := aws.ToString(in.Message)
	switch {
	case msg == "":
		return apiError("InvalidParameter", "Invalid parameter: Empty message")
	case len(msg) > maxMessageBytes:
		return apiError("InvalidParameter", "Invalid parameter: Message too long")
	}
	if in.MessageStructure != nil {
		if *in.MessageStructure != "json" {
			return apiError("InvalidParameter", "Invalid parameter: MessageStructure")
		}
		var byProtocol map[string]string
		if err := json.Unmarshal([]byte(msg), &byProtocol); err != nil {
			return apiError("InvalidParameter", "Invalid parameter: Message Structure - JSON message body failed to parse")
		}
		if _, ok := byProtocol["default"]; !ok {
			return apiError("InvalidParameter", "Invalid parameter: Message Structure - No default entry in JSON message body")
		}
	}
	if in.Subject != nil {
		subj := *in.Subject
		ok := subj != "" && len(subj) < maxSubjectChars
		for _, r := range subj {
			if r > unicode.MaxASCII || unicode.IsControl(r) {
				ok = false
			}
		}
		if !ok {
			return apiError("InvalidParameter", "Invalid parameter: Subject")
		}
	}
	if len(in.MessageAttributes) > maxMessageAttributes {
		return apiError("InvalidParameter", "Invalid parameter: MessageAttributes (at most %d)", maxMessageAttributes)
	}
	for name, v := range in.MessageAttributes {
		dt := aws.ToString(v.DataType)
		switch {
		case strings.HasPrefix(dt, "String"), strings.HasPrefix(dt, "Number"):
			if aws.ToString(v.StringValue) == "" {
				return apiError("ParameterValueInvalid", "The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, dt)
			}
		case strings.HasPrefix(dt, "Binary"):
			if len(v.BinaryValue) == 0 {
				return apiError("ParameterValueInvalid", "The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, dt)
			}
		default:
			return apiError("ParameterValueInvalid", "The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name)
		}
	}
	return nil
}
