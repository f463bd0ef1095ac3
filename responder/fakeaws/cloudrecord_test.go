package fakeaws_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/guardduty"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// LookupEvents answers as CloudTrail documents it: newest first, pages of
// MaxResults, a NextToken only for the same request, one attribute at most,
// a start after the end refused.
func TestLookupEventsSemantics(t *testing.T) {
	ctx := context.Background()
	c := fakeaws.New()
	fakeaws.FastLookups(c)
	now := time.Now()
	for i := range 5 {
		c.AddTrailEvents(cttypes.Event{EventId: aws.String(fmt.Sprint("ev-", i)), EventTime: aws.Time(now.Add(-time.Duration(i) * time.Minute)),
			Resources: []cttypes.Resource{{ResourceName: aws.String("i-1")}}})
	}
	attr := []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: aws.String("i-1")}}
	in := &cloudtrail.LookupEventsInput{LookupAttributes: attr, MaxResults: aws.Int32(2)}
	var ids []string
	for {
		out, err := c.CloudTrail().LookupEvents(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events {
			ids = append(ids, *e.EventId)
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	if fmt.Sprint(ids) != "[ev-0 ev-1 ev-2 ev-3 ev-4]" {
		t.Errorf("events %v, want newest first over three pages", ids)
	}
	first, _ := c.CloudTrail().LookupEvents(ctx, &cloudtrail.LookupEventsInput{LookupAttributes: attr, MaxResults: aws.Int32(2)})
	for name, bad := range map[string]*cloudtrail.LookupEventsInput{
		"InvalidNextTokenException":        {NextToken: first.NextToken, MaxResults: aws.Int32(3), LookupAttributes: attr},
		"InvalidLookupAttributesException": {LookupAttributes: append(attr, attr...)},
		"InvalidTimeRangeException":        {StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Hour))},
		"InvalidMaxResultsException":       {MaxResults: aws.Int32(51)},
	} {
		if _, err := c.CloudTrail().LookupEvents(ctx, bad); cloud.ErrorCode(err) != name {
			t.Errorf("want %s, got %v", name, err)
		}
	}
}

// GuardDuty refuses a detector of another account and a criterion the fake
// does not model; Security Hub refuses a filter it does not model and
// answers InvalidAccessException until enabled.
func TestFindingsServicesRefuse(t *testing.T) {
	ctx := context.Background()
	c := fakeaws.New()
	if _, err := c.SecurityHub().GetFindings(ctx, &securityhub.GetFindingsInput{}); cloud.ErrorCode(err) != "InvalidAccessException" {
		t.Errorf("Security Hub not enabled: %v", err)
	}
	c.EnableSecurityHub()
	_, err := c.SecurityHub().GetFindings(ctx, &securityhub.GetFindingsInput{Filters: &shtypes.AwsSecurityFindingFilters{
		ProductName: []shtypes.StringFilter{{Value: aws.String("GuardDuty"), Comparison: shtypes.StringFilterComparisonEquals}}}})
	if cloud.ErrorCode(err) != "InvalidInputException" {
		t.Errorf("unmodelled filter: %v", err)
	}
	d := c.EnableGuardDuty()
	if _, err := c.GuardDuty().ListFindings(ctx, &guardduty.ListFindingsInput{DetectorId: aws.String("0123")}); cloud.ErrorCode(err) != "BadRequestException" {
		t.Errorf("unknown detector: %v", err)
	}
	if _, err := c.GuardDuty().GetFindings(ctx, &guardduty.GetFindingsInput{DetectorId: &d, FindingIds: make([]string, 51)}); cloud.ErrorCode(err) != "BadRequestException" {
		t.Errorf("51 finding IDs: %v", err)
	}
}
