package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/guardduty"
	gdtypes "github.com/aws/aws-sdk-go-v2/service/guardduty/types"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// Findings stores what GuardDuty and Security Hub say about the instance, in
// its account and Region, as findings.json: the GuardDuty findings whose
// resource is the instance (ListDetectors, ListFindings on
// resource.instanceDetails.instanceId, GetFindings 50 at a time) and the
// Security Hub findings whose resource is the instance's ARN (GetFindings,
// ResourceId EQUALS, paged), archived ones included. A Region without a
// GuardDuty detector, an account not subscribed to Security Hub
// (InvalidAccessException) or a denied call is recorded as that source
// skipped, with the reason: not a failure. Nothing isolating waits for it.
type Findings struct{}

func (Findings) Name() string    { return "findings" }
func (Findings) Phase() Phase    { return Acquire }
func (Findings) Needs() []string { return nil }

// What a findings source did.
const (
	sourceCollected = "collected"
	sourceSkipped   = "skipped"
	sourceFailed    = "failed"
)

// Page limits of the findings APIs (GuardDuty: 50 IDs a ListFindings page
// and a GetFindings call; Security Hub: 100 findings a page), and a bound on
// the pages one response reads.
const (
	guardDutyBatch      = 50
	securityHubPage     = 100
	maxFindingsPages    = 100
	guardDutyInstanceID = "resource.instanceDetails.instanceId"
)

// findingsDocument is findings.json.
type findingsDocument struct {
	CaseID      string                                     `json:"case_id"`
	AccountID   string                                     `json:"account_id"`
	Region      string                                     `json:"region"`
	InstanceID  string                                     `json:"instance_id"`
	InstanceARN string                                     `json:"instance_arn"`
	GuardDuty   findingsSource[gdtypes.Finding]            `json:"guardduty"`
	SecurityHub findingsSource[shtypes.AwsSecurityFinding] `json:"security_hub"`
}

// findingsSource is what one service said.
type findingsSource[T any] struct {
	Status      string   `json:"status"`
	Reason      string   `json:"reason,omitempty"`
	DetectorIDs []string `json:"detector_ids,omitempty"`
	Truncated   bool     `json:"truncated,omitempty"`
	Findings    []T      `json:"findings"`
}

// findingsSummary is the step's after.
type findingsSummary struct {
	Artifact    string        `json:"artifact,omitempty"`
	GuardDuty   sourceSummary `json:"guardduty"`
	SecurityHub sourceSummary `json:"security_hub"`
}

type sourceSummary struct {
	Status   string         `json:"status"`
	Reason   string         `json:"reason,omitempty"`
	Findings int            `json:"findings"`
	ByType   map[string]int `json:"by_type,omitempty"`
}

func (s Findings) Run(ctx context.Context, env *Env) Result {
	if env.Clients.GuardDuty == nil && env.Clients.SecurityHub == nil {
		return Skipped("no GuardDuty or Security Hub client in this run's configuration: no finding read", nil)
	}
	arn, err := suspectInstanceARN(env.Target)
	if err != nil {
		return Failed(err, nil)
	}
	doc := findingsDocument{CaseID: env.Target.CaseID, AccountID: env.Target.AccountID, Region: env.Target.Region,
		InstanceID: env.Target.InstanceID(), InstanceARN: arn}
	doc.GuardDuty = readGuardDuty(ctx, env.Clients.GuardDuty, doc.InstanceID)
	doc.SecurityHub = readSecurityHub(ctx, env.Clients.SecurityHub, arn)
	if env.Target.DryRun {
		return OK("dry run: would store findings.json ("+describeSources(doc)+")", nil, summarizeFindings(doc))
	}
	return s.store(ctx, env, doc)
}

// suspectInstanceARN is the instance's ARN, as Security Hub names the
// resource of a finding about it (AwsEc2Instance).
func suspectInstanceARN(t Target) (string, error) {
	partition, err := cloud.RegionPartition(t.Region)
	if err != nil {
		return "", fmt.Errorf("instance ARN: %w", err)
	}
	return fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", partition, t.Region, t.AccountID, t.InstanceID()), nil
}

// skippedOrFailed records why a source gave nothing: a denied call is a
// skip (the role lacks the permission), anything else a failure.
func skippedOrFailed[T any](what string, err error) findingsSource[T] {
	if cloud.IsErrorCode(err, accessDeniedCodes...) {
		return findingsSource[T]{Status: sourceSkipped, Reason: fmt.Sprintf("%s denied (%s): grant it to the member role", what, cloud.ErrorCode(err))}
	}
	return findingsSource[T]{Status: sourceFailed, Reason: fmt.Sprintf("%s: %v", what, err)}
}

// readGuardDuty reads the findings about the instance from every detector
// of the Region (there is at most one).
func readGuardDuty(ctx context.Context, api cloud.GuardDuty, instanceID string) findingsSource[gdtypes.Finding] {
	if api == nil {
		return findingsSource[gdtypes.Finding]{Status: sourceSkipped, Reason: "no GuardDuty client in this run's configuration"}
	}
	var detectors []string
	var token *string
	for {
		var out *guardduty.ListDetectorsOutput
		err := retryThrottled(ctx, func() (err error) {
			out, err = api.ListDetectors(ctx, &guardduty.ListDetectorsInput{NextToken: token})
			return err
		})
		if err != nil {
			return skippedOrFailed[gdtypes.Finding]("guardduty:ListDetectors", err)
		}
		detectors = append(detectors, out.DetectorIds...)
		if token = out.NextToken; aws.ToString(token) == "" {
			break
		}
	}
	if len(detectors) == 0 {
		return findingsSource[gdtypes.Finding]{Status: sourceSkipped, Reason: "no detector in this account and Region: GuardDuty is not enabled"}
	}
	src := findingsSource[gdtypes.Finding]{Status: sourceCollected, DetectorIDs: detectors, Findings: []gdtypes.Finding{}}
	for _, d := range detectors {
		found, truncated, err := detectorFindings(ctx, api, d, instanceID)
		if err != nil {
			failed := skippedOrFailed[gdtypes.Finding]("detector "+d, err)
			src.Status, src.Reason = failed.Status, failed.Reason
			return src
		}
		src.Findings = append(src.Findings, found...)
		src.Truncated = src.Truncated || truncated
	}
	return src
}

// detectorFindings lists one detector's finding IDs about the instance and
// reads them, 50 at a time.
func detectorFindings(ctx context.Context, api cloud.GuardDuty, detector, instanceID string) ([]gdtypes.Finding, bool, error) {
	criteria := &gdtypes.FindingCriteria{Criterion: map[string]gdtypes.Condition{guardDutyInstanceID: {Equals: []string{instanceID}}}}
	var ids []string
	var token *string
	truncated := false
	for pages := 0; ; pages++ {
		if pages == maxFindingsPages {
			truncated = true
			break
		}
		var out *guardduty.ListFindingsOutput
		err := retryThrottled(ctx, func() (err error) {
			out, err = api.ListFindings(ctx, &guardduty.ListFindingsInput{DetectorId: aws.String(detector),
				FindingCriteria: criteria, MaxResults: aws.Int32(guardDutyBatch), NextToken: token})
			return err
		})
		if err != nil {
			return nil, false, fmt.Errorf("guardduty:ListFindings: %w", err)
		}
		ids = append(ids, out.FindingIds...)
		if token = out.NextToken; aws.ToString(token) == "" {
			break
		}
	}
	var found []gdtypes.Finding
	for i := 0; i < len(ids); i += guardDutyBatch {
		batch := ids[i:min(i+guardDutyBatch, len(ids))]
		var out *guardduty.GetFindingsOutput
		err := retryThrottled(ctx, func() (err error) {
			out, err = api.GetFindings(ctx, &guardduty.GetFindingsInput{DetectorId: aws.String(detector), FindingIds: batch})
			return err
		})
		if err != nil {
			return nil, false, fmt.Errorf("guardduty:GetFindings: %w", err)
		}
		found = append(found, out.Findings...)
	}
	return found, truncated, nil
}

// readSecurityHub reads the Security Hub findings whose resource is the
// instance.
func readSecurityHub(ctx context.Context, api cloud.SecurityHubFindings, arn string) findingsSource[shtypes.AwsSecurityFinding] {
	if api == nil {
		return findingsSource[shtypes.AwsSecurityFinding]{Status: sourceSkipped, Reason: "no Security Hub client in this run's configuration"}
	}
	src := findingsSource[shtypes.AwsSecurityFinding]{Status: sourceCollected, Findings: []shtypes.AwsSecurityFinding{}}
	filters := &shtypes.AwsSecurityFindingFilters{ResourceId: []shtypes.StringFilter{{Value: aws.String(arn), Comparison: shtypes.StringFilterComparisonEquals}}}
	var token *string
	for pages := 0; ; pages++ {
		if pages == maxFindingsPages {
			src.Truncated = true
			return src
		}
		var out *securityhub.GetFindingsOutput
		err := retryThrottled(ctx, func() (err error) {
			out, err = api.GetFindings(ctx, &securityhub.GetFindingsInput{Filters: filters, MaxResults: aws.Int32(securityHubPage), NextToken: token})
			return err
		})
		switch {
		case cloud.IsErrorCode(err, "InvalidAccessException"):
			return findingsSource[shtypes.AwsSecurityFinding]{Status: sourceSkipped,
				Reason: "GetFindings answered InvalidAccessException: Security Hub is not enabled for this account and Region, or the account may not use it"}
		case err != nil:
			return skippedOrFailed[shtypes.AwsSecurityFinding]("securityhub:GetFindings", err)
		}
		src.Findings = append(src.Findings, out.Findings...)
		if token = out.NextToken; aws.ToString(token) == "" {
			return src
		}
	}
}

// store writes findings.json once and says what each source gave.
func (s Findings) store(ctx context.Context, env *Env, doc findingsDocument) Result {
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return Failed(fmt.Errorf("encode findings: %w", err), nil)
	}
	a, err := env.SaveArtifact(ctx, s.Name(), "findings.json", body, "application/json", "guardduty:GetFindings, securityhub:GetFindings")
	sum := summarizeFindings(doc)
	sum.Artifact = a.Path
	reason := "stored " + a.Path + ": " + describeSources(doc)
	var failed []string
	for _, f := range []struct{ name, status, reason string }{
		{"GuardDuty", doc.GuardDuty.Status, doc.GuardDuty.Reason}, {"Security Hub", doc.SecurityHub.Status, doc.SecurityHub.Reason},
	} {
		if f.status == sourceFailed {
			failed = append(failed, f.name+": "+f.reason)
		}
	}
	switch {
	case errors.Is(err, ErrAlreadyCollected):
		return Skipped("findings already collected in this case ("+a.Path+")", nil)
	case err != nil:
		return Failed(err, nil)
	case len(failed) > 0:
		return Result{Status: evidence.StatusFailed, Reason: reason, Err: errors.New(strings.Join(failed, "; ")), After: sum}
	case doc.GuardDuty.Status == sourceSkipped && doc.SecurityHub.Status == sourceSkipped:
		r := Skipped(reason, nil)
		r.After = sum
		return r
	}
	return OK(reason, nil, sum)
}

func describeSources(doc findingsDocument) string {
	say := func(name, status, reason string, n int) string {
		if status == sourceCollected {
			return fmt.Sprintf("%s %d finding(s)", name, n)
		}
		return fmt.Sprintf("%s %s: %s", name, status, reason)
	}
	return say("GuardDuty", doc.GuardDuty.Status, doc.GuardDuty.Reason, len(doc.GuardDuty.Findings)) + "; " +
		say("Security Hub", doc.SecurityHub.Status, doc.SecurityHub.Reason, len(doc.SecurityHub.Findings))
}

func summarizeFindings(doc findingsDocument) findingsSummary {
	gd := sourceSummary{Status: doc.GuardDuty.Status, Reason: doc.GuardDuty.Reason, Findings: len(doc.GuardDuty.Findings)}
	for _, f := range doc.GuardDuty.Findings {
		gd.ByType = countType(gd.ByType, aws.ToString(f.Type))
	}
	sh := sourceSummary{Status: doc.SecurityHub.Status, Reason: doc.SecurityHub.Reason, Findings: len(doc.SecurityHub.Findings)}
	for _, f := range doc.SecurityHub.Findings {
		types := f.Types
		if len(types) == 0 {
			types = []string{aws.ToString(f.Title)}
		}
		for _, t := range types {
			sh.ByType = countType(sh.ByType, t)
		}
	}
	return findingsSummary{GuardDuty: gd, SecurityHub: sh}
}

func countType(m map[string]int, t string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[t]++
	return m
}

// Describe: the after summarises the stored findings, not a state.
func (Findings) Describe() Description {
	return Description{
		NoState: true,
		OnFailure: "What GuardDuty or Security Hub said about the instance at the time of the response is not " +
			"(fully) stored: see which source failed. Findings are updated and archived later; read them again soon.",
		OnSkip: "No GuardDuty or Security Hub findings were stored for this case: neither service is enabled " +
			"for the account and Region, or the member role may not read them (see the reason).",
	}
}
