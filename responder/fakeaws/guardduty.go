package fakeaws

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/guardduty"
	gdtypes "github.com/aws/aws-sdk-go-v2/service/guardduty/types"
)

const serviceGuardDuty = "GuardDuty"

// GuardDuty is the account's Amazon GuardDuty in the Region; it implements
// cloud.GuardDuty. An account has no detector until EnableGuardDuty (one per
// Region, as on AWS). ListFindings takes 1 to 50 results a page and filters
// on the criteria keys resource.instanceDetails.instanceId,
// resource.resourceType, type and service.archived with Equals and
// NotEquals (Eq and Neq are deprecated); another key is a BadRequestException, so that a criterion
// the fake does not model cannot pass silently. GetFindings reads at most 50
// IDs a call.
type GuardDuty struct{ c *Cloud }

// guardDutyState holds the detector and its findings.
type guardDutyState struct {
	detector string
	findings []gdtypes.Finding
}

const maxGuardDutyIDs = 50

// GuardDuty returns the account's GuardDuty service.
func (c *Cloud) GuardDuty() *GuardDuty { return &GuardDuty{c} }

// EnableGuardDuty creates the Region's detector (once) and returns its ID.
func (c *Cloud) EnableGuardDuty() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.guardDuty.detector == "" {
		c.guardDuty.detector = c.alnumLocked(32, "0123456789abcdef")
	}
	return c.guardDuty.detector
}

// AddGuardDutyFinding adds a finding to the detector (EnableGuardDuty
// first). Id and Type are required; an instance finding names the instance
// in Resource.InstanceDetails.InstanceId.
func (c *Cloud) AddGuardDutyFinding(f gdtypes.Finding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.guardDuty.detector == "" || f.Id == nil || f.Type == nil {
		panic("fakeaws: AddGuardDutyFinding: enable GuardDuty first, and give the finding an Id and a Type")
	}
	if f.AccountId == nil {
		f.AccountId = aws.String(c.Account)
	}
	if f.Region == nil {
		f.Region = aws.String(c.Region)
	}
	c.guardDuty.findings = append(c.guardDuty.findings, f)
}

// ListDetectors serves guardduty:ListDetectors.
func (g *GuardDuty) ListDetectors(ctx context.Context, _ *guardduty.ListDetectorsInput, _ ...func(*guardduty.Options)) (*guardduty.ListDetectorsOutput, error) {
	out := &guardduty.ListDetectorsOutput{DetectorIds: []string{}}
	err := g.c.call(ctx, serviceGuardDuty, "ListDetectors", false, &out.ResultMetadata, func() (func(), error) {
		return func() {
			if d := g.c.guardDuty.detector; d != "" {
				out.DetectorIds = []string{d}
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Cloud) checkDetectorLocked(id *string) error {
	if aws.ToString(id) == "" || aws.ToString(id) != c.guardDuty.detector {
		return apiError("BadRequestException", "The request is rejected because the input detectorId is not owned by the current account.")
	}
	return nil
}

// ListFindings serves guardduty:ListFindings.
func (g *GuardDuty) ListFindings(ctx context.Context, in *guardduty.ListFindingsInput, _ ...func(*guardduty.Options)) (*guardduty.ListFindingsOutput, error) {
	out := &guardduty.ListFindingsOutput{FindingIds: []string{}}
	c := g.c
	err := c.call(ctx, serviceGuardDuty, "ListFindings", false, &out.ResultMetadata, func() (func(), error) {
		if err := c.checkDetectorLocked(in.DetectorId); err != nil {
			return nil, err
		}
		limit := maxGuardDutyIDs
		if in.MaxResults != nil {
			if *in.MaxResults < 1 || *in.MaxResults > maxGuardDutyIDs {
				return nil, apiError("BadRequestException", "The request is rejected because the maxResults value is out of range (1-50).")
			}
			limit = int(*in.MaxResults)
		}
		var ids []string
		for _, f := range c.guardDuty.findings {
			ok, err := guardDutyMatches(f, in.FindingCriteria)
			if err != nil {
				return nil, err
			}
			if ok {
				ids = append(ids, *f.Id)
			}
		}
		sort.Strings(ids)
		start := 0
		if in.NextToken != nil {
			n, err := strconv.Atoi(*in.NextToken)
			if err != nil || n < 0 || n > len(ids) {
				return nil, apiError("BadRequestException", "The request is rejected because the nextToken is invalid.")
			}
			start = n
		}
		end := min(start+limit, len(ids))
		return func() {
			out.FindingIds = append(out.FindingIds, ids[start:end]...)
			if end < len(ids) {
				out.NextToken = aws.String(strconv.Itoa(end))
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// guardDutyMatches applies the criteria the fake models to a finding.
func guardDutyMatches(f gdtypes.Finding, fc *gdtypes.FindingCriteria) (bool, error) {
	if fc == nil {
		return true, nil
	}
	for key, cond := range fc.Criterion {
		var v string
		switch key {
		case "resource.instanceDetails.instanceId":
			if f.Resource != nil && f.Resource.InstanceDetails != nil {
				v = aws.ToString(f.Resource.InstanceDetails.InstanceId)
			}
		case "resource.resourceType":
			if f.Resource != nil {
				v = aws.ToString(f.Resource.ResourceType)
			}
		case "type":
			v = aws.ToString(f.Type)
		case "service.archived":
			v = strconv.FormatBool(f.Service != nil && aws.ToBool(f.Service.Archived))
		default:
			return false, apiError("BadRequestException", "fakeaws: criterion key %q is not modelled", key)
		}
		if len(cond.Equals) > 0 && !contains(cond.Equals, v) || len(cond.NotEquals) > 0 && contains(cond.NotEquals, v) {
			return false, nil
		}
	}
	return true, nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// GetFindings serves guardduty:GetFindings.
func (g *GuardDuty) GetFindings(ctx context.Context, in *guardduty.GetFindingsInput, _ ...func(*guardduty.Options)) (*guardduty.GetFindingsOutput, error) {
	out := &guardduty.GetFindingsOutput{Findings: []gdtypes.Finding{}}
	c := g.c
	err := c.call(ctx, serviceGuardDuty, "GetFindings", false, &out.ResultMetadata, func() (func(), error) {
		if err := c.checkDetectorLocked(in.DetectorId); err != nil {
			return nil, err
		}
		if len(in.FindingIds) == 0 || len(in.FindingIds) > maxGuardDutyIDs {
			return nil, apiError("BadRequestException", "%s", fmt.Sprintf("The request is rejected because findingIds holds %d IDs (1-50).", len(in.FindingIds)))
		}
		return func() {
			for _, f := range c.guardDuty.findings {
				if contains(in.FindingIds, *f.Id) {
					out.Findings = append(out.Findings, f)
				}
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
