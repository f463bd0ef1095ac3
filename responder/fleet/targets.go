// Package fleet responds to many instances at once: it turns the targets of
// a fleet response (instance IDs, EC2 filters, Security Hub findings, across
// accounts and Regions) into one group per account and Region, resolves
// each group with batched DescribeInstances calls, and runs every
// instance's response (one case per instance) concurrently through the one
// engine of its account and Region, keeping a fleet record beside the cases.
package fleet

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
)

// Spec is what the caller asked to respond to. Instance IDs and filters are
// looked for in every account of Accounts (or the caller's own when none)
// and every Region of Regions (or the default one when none); a finding's
// instance only in its own account and Region.
type Spec struct {
	InstanceIDs []string
	// Filters are EC2 filters as Name=Value[,Value...]; all of them must
	// match (one DescribeInstances call).
	Filters  []string
	Findings []FindingTarget
	Regions  []string
	Accounts []string
	// RoleARN is the role to assume in each account; {account} in it is
	// replaced by the account ID. Empty: the caller's own credentials.
	RoleARN string
}

// Scope is where a group of targets lives: an account, reached through a
// role (or the caller's own credentials), and a Region.
type Scope struct {
	// AccountID is empty when the caller's own credentials are used and no
	// account was named: the account is then the one they belong to.
	AccountID string
	RoleARN   string
	// Region is empty for the default Region of the configuration.
	Region string
}

func (s Scope) String() string {
	acct, region := s.AccountID, s.Region
	if acct == "" {
		acct = "(your account)"
	}
	if region == "" {
		region = "(default region)"
	}
	return acct + " " + region
}

// Group is what one scope is asked for: instance IDs and, when the spec has
// filters, the filters.
type Group struct {
	Scope
	InstanceIDs []string
	Filters     []types.Filter
	// Exact: the IDs were named for this scope (a finding), not looked for
	// in every scope.
	exact map[string]string
}

// Targets are the groups of a spec, sorted by account and Region.
type Targets struct {
	Groups []*Group
	// Named are the instance IDs named by --instance-id (looked for in
	// every scope): one not found in any is not found.
	Named []string
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	rolePattern    = regexp.MustCompile(`^arn:aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// AccountPlaceholder is what a role ARN template says where the account
// goes.
const AccountPlaceholder = "{account}"

// Resolve validates the spec and groups its targets by scope, without any
// AWS call. Every error is bad input (*responder.InputError), all of them
// in one message.
func (s Spec) Resolve() (*Targets, error) {
	var errs *multierror.Error
	add := func(err error) { errs = multierror.Append(errs, err) }
	ids := dedupe(s.InstanceIDs)
	for _, id := range ids {
		if err := responder.ValidateInstanceID(id); err != nil {
			add(fmt.Errorf("--instance-id: %w", err))
		}
	}
	filters, err := ParseFilters(s.Filters)
	if err != nil {
		add(err)
	}
	regions := dedupe(s.Regions)
	for _, r := range regions {
		if !regionPattern.MatchString(r) {
			add(fmt.Errorf("--region %q: not a Region name (e.g. us-east-1)", r))
		}
	}
	accounts := dedupe(s.Accounts)
	for _, a := range accounts {
		if !accountPattern.MatchString(a) {
			add(fmt.Errorf("--accounts: %q is not an account ID (12 digits)", a))
		}
	}
	if err := s.checkRole(accounts); err != nil {
		add(err)
	}
	if err := s.checkFindings(accounts); err != nil {
		add(err)
	}
	if len(ids) == 0 && len(filters) == 0 && len(s.Findings) == 0 {
		add(errors.New("no target: give --instance-id, --filter or --findings"))
	}
	if err := errlist.OneLine(errs); err != nil {
		return nil, &responder.InputError{Err: err}
	}
	return s.group(ids, filters, accounts, regions), nil
}

// checkRole: a role for several accounts must say where the account goes,
// and a role ARN must be one once the account is in it.
func (s Spec) checkRole(accounts []string) error {
	if s.RoleARN == "" {
		if len(accounts) > 1 {
			return fmt.Errorf("--accounts names %d accounts: give --role-arn 'arn:aws:iam::%s:role/NAME' to reach them", len(accounts), AccountPlaceholder)
		}
		return nil
	}
	templated := strings.Contains(s.RoleARN, AccountPlaceholder)
	if !templated && len(accounts) > 1 {
		return fmt.Errorf("--role-arn %s has no %s, so it reaches one account, but --accounts names %d: write the role as arn:aws:iam::%s:role/NAME",
			s.RoleARN, AccountPlaceholder, len(accounts), AccountPlaceholder)
	}
	if templated && len(accounts) == 0 && len(findingAccounts(s.Findings)) == 0 {
		return fmt.Errorf("--role-arn %s has %s: give --accounts (or findings) to fill it", s.RoleARN, AccountPlaceholder)
	}
	probe := strings.ReplaceAll(s.RoleARN, AccountPlaceholder, "123456789012")
	if !rolePattern.MatchString(probe) {
		return fmt.Errorf("--role-arn %q: want arn:aws:iam::%s:role/NAME (or an account ID in place of %s)", s.RoleARN, AccountPlaceholder, AccountPlaceholder)
	}
	return nil
}

// checkFindings refuses findings whose account the run may not reach: one
// outside --accounts, or several accounts without a role template.
func (s Spec) checkFindings(accounts []string) error {
	var errs *multierror.Error
	for _, f := range s.Findings {
		if len(accounts) > 0 && !slices.Contains(accounts, f.AccountID) {
			errs = multierror.Append(errs, fmt.Errorf("finding %s: instance %s is in account %s, which --accounts does not allow (%s)",
				f.FindingID, f.InstanceID, f.AccountID, strings.Join(accounts, ",")))
		}
	}
	if fa := findingAccounts(s.Findings); len(accounts) == 0 && len(fa) > 1 && !strings.Contains(s.RoleARN, AccountPlaceholder) {
		errs = multierror.Append(errs, fmt.Errorf("the findings are in %d accounts (%s): give --role-arn 'arn:aws:iam::%s:role/NAME' to reach them",
			len(fa), strings.Join(fa, ", "), AccountPlaceholder))
	}
	return errs.ErrorOrNil()
}

func findingAccounts(fs []FindingTarget) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.AccountID)
	}
	return dedupe(out)
}

// role is the role of an account: the template filled in.
func (s Spec) role(account string) string {
	if account == "" {
		return strings.ReplaceAll(s.RoleARN, AccountPlaceholder, "")
	}
	return strings.ReplaceAll(s.RoleARN, AccountPlaceholder, account)
}

// group makes one group per scope: every account and Region for the named
// IDs and the filters, and each finding's own.
func (s Spec) group(ids []string, filters []types.Filter, accounts, regions []string) *Targets {
	byScope := map[Scope]*Group{}
	get := func(sc Scope) *Group {
		g, ok := byScope[sc]
		if !ok {
			g = &Group{Scope: sc, exact: map[string]string{}}
			byScope[sc] = g
		}
		return g
	}
	if len(ids) > 0 || len(filters) > 0 {
		if len(accounts) == 0 {
			accounts = []string{""}
		}
		if len(regions) == 0 {
			regions = []string{""}
		}
		for _, a := range accounts {
			for _, r := range regions {
				g := get(Scope{AccountID: a, RoleARN: s.role(a), Region: r})
				g.InstanceIDs = append(g.InstanceIDs, ids...)
				g.Filters = filters
			}
		}
	}
	for _, f := range s.Findings {
		account := f.AccountID
		if len(s.Accounts) == 0 && !strings.Contains(s.RoleARN, AccountPlaceholder) {
			// The caller's own credentials (or the one role): the account
			// is checked against the instance's owner when described.
			account = ""
		}
		g := get(Scope{AccountID: account, RoleARN: s.role(account), Region: f.Region})
		g.InstanceIDs = append(g.InstanceIDs, f.InstanceID)
		g.exact[f.InstanceID] = f.AccountID
	}
	t := &Targets{Named: ids}
	for _, g := range byScope {
		g.InstanceIDs = dedupe(g.InstanceIDs)
		t.Groups = append(t.Groups, g)
	}
	sort.Slice(t.Groups, func(i, j int) bool {
		a, b := t.Groups[i].Scope, t.Groups[j].Scope
		if a.AccountID != b.AccountID {
			return a.AccountID < b.AccountID
		}
		return a.Region < b.Region
	})
	return t
}

// Single reports whether the targets are one named instance in one scope,
// without filters or findings: a plain respond, which keeps its own output.
func (t *Targets) Single() bool {
	return len(t.Groups) == 1 && len(t.Named) == 1 && len(t.Groups[0].Filters) == 0 && len(t.Groups[0].exact) == 0
}

// ParseFilters parses EC2 filters written Name=Value[,Value...] (as the AWS
// CLI's shorthand Name=tag:app,Values=web is long, this is the short form:
// tag:app=web, image-id=ami-1,ami-2). A name DescribeInstances does not
// know is refused. Two filters of the same name are one filter with both
// sets of values.
func ParseFilters(raw []string) ([]types.Filter, error) {
	var errs *multierror.Error
	var out []types.Filter
	index := map[string]int{}
	for _, r := range raw {
		name, values, ok := strings.Cut(r, "=")
		name = strings.TrimSpace(name)
		vals := splitList(values)
		switch {
		case !ok || name == "" || len(vals) == 0:
			errs = multierror.Append(errs, fmt.Errorf("--filter %q: want Name=Value[,Value...], e.g. tag:app=web or vpc-id=vpc-0abc", r))
			continue
		case !knownFilter(name):
			errs = multierror.Append(errs, fmt.Errorf("--filter %q: DescribeInstances has no filter %q%s", r, name, suggestFilter(name)))
			continue
		case len(vals) > 200:
			errs = multierror.Append(errs, fmt.Errorf("--filter %q: %d values; EC2 takes at most 200 values per filter", r, len(vals)))
			continue
		}
		if i, seen := index[name]; seen {
			out[i].Values = dedupe(append(out[i].Values, vals...))
			continue
		}
		index[name] = len(out)
		out = append(out, types.Filter{Name: aws.String(name), Values: vals})
	}
	return out, errs.ErrorOrNil()
}

func knownFilter(name string) bool {
	if key, ok := strings.CutPrefix(name, "tag:"); ok {
		return key != ""
	}
	return describeInstancesFilters[name]
}

// suggestFilter names a known filter close to an unknown one.
func suggestFilter(name string) string {
	best, bestD := "", 4
	for known := range describeInstancesFilters {
		if d := distance(name, known); d < bestD || (d == bestD && known < best) {
			best, bestD = known, d
		}
	}
	if best == "" {
		return " (see the Filters of DescribeInstances in the EC2 API reference)"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// SplitIDs splits repeated, comma-separated values into one list, each
// value once.
func SplitIDs(values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, splitList(v)...)
	}
	return dedupe(out)
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// dedupe keeps the first of each value, in order.
func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
