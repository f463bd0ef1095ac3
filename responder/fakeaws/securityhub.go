package fakeaws

import (
	"context"
	"reflect"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"
)

const serviceSecurityHub = "SecurityHub"

// SecurityHub is the account's AWS Security Hub in the Region, as the
// workload account reads it; it implements cloud.SecurityHubFindings. Until
// EnableSecurityHub, GetFindings answers InvalidAccessException (the
// account is not subscribed), as AWS does. GetFindings takes 1 to 100
// results a page (default 100) and filters on ResourceId and RecordState
// with EQUALS and NOT_EQUALS; any other filter is an InvalidInputException,
// so that a filter the fake does not model cannot pass silently.
type SecurityHub struct{ c *Cloud }

type securityHubState struct {
	enabled  bool
	findings []shtypes.AwsSecurityFinding
}

const maxSecurityHubResults = 100

// SecurityHub returns the account's Security Hub service.
func (c *Cloud) SecurityHub() *SecurityHub { return &SecurityHub{c} }

// EnableSecurityHub subscribes the account to Security Hub in the Region.
func (c *Cloud) EnableSecurityHub() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.securityHub.enabled = true
}

// AddSecurityHubFinding adds a finding (EnableSecurityHub first); it needs
// an Id and at least one resource.
func (c *Cloud) AddSecurityHubFinding(f shtypes.AwsSecurityFinding) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.securityHub.enabled || f.Id == nil || len(f.Resources) == 0 {
		panic("fakeaws: AddSecurityHubFinding: enable Security Hub first, and give the finding an Id and a resource")
	}
	c.securityHub.findings = append(c.securityHub.findings, f)
}

// GetFindings serves securityhub:GetFindings.
func (s *SecurityHub) GetFindings(ctx context.Context, in *securityhub.GetFindingsInput, _ ...func(*securityhub.Options)) (*securityhub.GetFindingsOutput, error) {
	out := &securityhub.GetFindingsOutput{Findings: []shtypes.AwsSecurityFinding{}}
	c := s.c
	err := c.call(ctx, serviceSecurityHub, "GetFindings", false, &out.ResultMetadata, func() (func(), error) {
		if !c.securityHub.enabled {
			return nil, apiError("InvalidAccessException", "Account %s is not subscribed to AWS Security Hub", c.Account)
		}
		limit := maxSecurityHubResults
		if in.MaxResults != nil {
			if *in.MaxResults < 1 || *in.MaxResults > maxSecurityHubResults {
				return nil, apiError("InvalidInputException", "MaxResults must be a number between 1 and 100")
			}
			limit = int(*in.MaxResults)
		}
		if err := checkModelledFilters(in.Filters); err != nil {
			return nil, err
		}
		var matched []shtypes.AwsSecurityFinding
		for _, f := range c.securityHub.findings {
			if securityHubMatches(f, in.Filters) {
				matched = append(matched, f)
			}
		}
		start := 0
		if in.NextToken != nil {
			n, err := strconv.Atoi(*in.NextToken)
			if err != nil || n < 0 || n > len(matched) {
				return nil, apiError("InvalidInputException", "Invalid NextToken")
			}
			start = n
		}
		end := min(start+limit, len(matched))
		return func() {
			out.Findings = append(out.Findings, matched[start:end]...)
			if end < len(matched) {
				out.NextToken = aws.String(strconv.Itoa(end))
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkModelledFilters refuses a filter the fake does not apply.
func checkModelledFilters(f *shtypes.AwsSecurityFindingFilters) error {
	if f == nil {
		return nil
	}
	v := reflect.ValueOf(*f)
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if !v.Type().Field(i).IsExported() || name == "ResourceId" || name == "RecordState" {
			continue
		}
		if fv := v.Field(i); fv.Kind() == reflect.Slice && fv.Len() > 0 {
			return apiError("InvalidInputException", "fakeaws: filter %s is not modelled", name)
		}
	}
	for _, sf := range append(append([]shtypes.StringFilter(nil), f.ResourceId...), f.RecordState...) {
		if sf.Comparison != shtypes.StringFilterComparisonEquals && sf.Comparison != shtypes.StringFilterComparisonNotEquals {
			return apiError("InvalidInputException", "fakeaws: comparison %s is not modelled", sf.Comparison)
		}
	}
	return nil
}

func securityHubMatches(f shtypes.AwsSecurityFinding, filters *shtypes.AwsSecurityFindingFilters) bool {
	if filters == nil {
		return true
	}
	var ids []string
	for _, r := range f.Resources {
		ids = append(ids, aws.ToString(r.Id))
	}
	return stringFiltersMatch(filters.ResourceId, ids) && stringFiltersMatch(filters.RecordState, []string{string(f.RecordState)})
}

// stringFiltersMatch applies Security Hub's rule: EQUALS filters of a field
// are ORed, NOT_EQUALS filters are ANDed.
func stringFiltersMatch(filters []shtypes.StringFilter, values []string) bool {
	anyEquals, equalsMet := false, false
	for _, sf := range filters {
		v := aws.ToString(sf.Value)
		switch sf.Comparison {
		case shtypes.StringFilterComparisonEquals:
			anyEquals = true
			equalsMet = equalsMet || contains(values, v)
		case shtypes.StringFilterComparisonNotEquals:
			if contains(values, v) {
				return false
			}
		}
	}
	return !anyEquals || equalsMet
}
