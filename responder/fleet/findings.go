package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
)

// FindingTarget is an EC2 instance a Security Hub finding names.
type FindingTarget struct {
	FindingID  string
	InstanceID string
	AccountID  string
	Region     string
}

// asffFinding is the part of an AWS Security Finding Format finding a fleet
// reads.
type asffFinding struct {
	ID           string         `json:"Id"`
	AwsAccountID string         `json:"AwsAccountId"`
	Region       string         `json:"Region"`
	Resources    []asffResource `json:"Resources"`
}

type asffResource struct {
	Type   string `json:"Type"`
	ID     string `json:"Id"`
	Region string `json:"Region"`
}

// ParseFindings reads Security Hub findings in ASFF, as `aws securityhub
// get-findings` prints them ({"Findings": [...]}) or as a bare list, and
// returns the EC2 instances of their AwsEc2Instance resources: the
// instance ID, account and Region from the resource's ARN
// (arn:aws:ec2:REGION:ACCOUNT:instance/i-...), the finding's AwsAccountId
// and Region where the ARN has none. A finding with no such resource is
// left out; a file with none at all, or a resource whose ARN is not an
// instance's, is bad input.
func ParseFindings(name string, body []byte) ([]FindingTarget, error) {
	findings, err := decodeFindings(body)
	if err != nil {
		return nil, &responder.InputError{Err: fmt.Errorf("--findings %s: %w", name, err)}
	}
	var errs *multierror.Error
	var out []FindingTarget
	for i, f := range findings {
		for _, r := range f.Resources {
			if r.Type != "AwsEc2Instance" {
				continue
			}
			t, err := findingTarget(f, r)
			if err != nil {
				errs = multierror.Append(errs, fmt.Errorf("finding %d (%s): %w", i+1, f.ID, err))
				continue
			}
			out = append(out, t)
		}
	}
	if err := errlist.OneLine(errs); err != nil {
		return nil, &responder.InputError{Err: fmt.Errorf("--findings %s: %w", name, err)}
	}
	if len(out) == 0 {
		return nil, &responder.InputError{Err: fmt.Errorf("--findings %s: %d findings, none with an AwsEc2Instance resource", name, len(findings))}
	}
	return out, nil
}

func decodeFindings(body []byte) ([]asffFinding, error) {
	body = bytes.TrimSpace(body)
	var findings []asffFinding
	switch {
	case len(body) == 0:
		return nil, errors.New("empty file; want Security Hub findings (ASFF JSON)")
	case body[0] == '[':
		if err := json.Unmarshal(body, &findings); err != nil {
			return nil, fmt.Errorf("not a list of ASFF findings: %w", err)
		}
	default:
		var doc struct {
			Findings *[]asffFinding `json:"Findings"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, fmt.Errorf("not ASFF JSON ({\"Findings\": [...]} or a list): %w", err)
		}
		if doc.Findings == nil {
			return nil, errors.New(`no "Findings" list: want the output of aws securityhub get-findings, or a list of findings`)
		}
		findings = *doc.Findings
	}
	return findings, nil
}

// findingTarget reads the instance of an AwsEc2Instance resource.
func findingTarget(f asffFinding, r asffResource) (FindingTarget, error) {
	parts := strings.SplitN(r.ID, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ec2" || !strings.HasPrefix(parts[5], "instance/") {
		return FindingTarget{}, fmt.Errorf("resource %q is not an instance ARN (arn:aws:ec2:REGION:ACCOUNT:instance/i-...)", r.ID)
	}
	t := FindingTarget{
		FindingID: f.ID, InstanceID: strings.TrimPrefix(parts[5], "instance/"),
		Region: firstOf(parts[3], r.Region, f.Region), AccountID: firstOf(parts[4], f.AwsAccountID),
	}
	if err := responder.ValidateInstanceID(t.InstanceID); err != nil {
		return FindingTarget{}, fmt.Errorf("resource %s: %w", r.ID, err)
	}
	if !accountPattern.MatchString(t.AccountID) {
		return FindingTarget{}, fmt.Errorf("resource %s: no account ID (12 digits) in the ARN or the finding", r.ID)
	}
	if !regionPattern.MatchString(t.Region) {
		return FindingTarget{}, fmt.Errorf("resource %s: no Region in the ARN or the finding", r.ID)
	}
	return t, nil
}

func firstOf(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}
