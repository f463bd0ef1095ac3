package cloudformation

import (
	"fmt"
	"slices"
)

// Permissions boundaries in the escalation checks. IAM grants a role the
// intersection of its identity policies and its permissions boundary, so a
// principal that may write a role's policies, but can neither change nor
// remove the role's boundary, gains through that role at most the
// boundary's grants. The analysis role is such a role: the responder writes
// the per-workspace evidence policy on it and passes it to EC2; its
// boundary (AnalysisBoundary) caps what any policy written there can grant.

// boundaryChangers are the actions that change or remove a role's boundary:
// on the role (a deleted role comes back, under the same name, without it),
// or on the boundary policy (a new default version).
var (
	roleBoundaryChangers   = []string{"iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary", "iam:DeleteRole"}
	policyBoundaryChangers = []string{"iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"}
	// chainActions, granted by a boundary, would let the role reach further
	// than the boundary: the check does not follow such chains, it reports
	// them.
	chainActions = append(append([]string{"iam:PassRole", "sts:AssumeRole", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"},
		policyWriteActions...), roleBoundaryChangers...)
)

// namedRole returns the role of the principal's template whose ARN the
// resource is, exactly (a role name is unique in an account, so such a
// resource names that role alone); false for anything broader.
func (p principalRole) namedRole(resource string, roles []principalRole) (principalRole, bool) {
	var found []principalRole
	for _, q := range roles {
		if q.t == p.t && slices.Contains(q.selfARNs(), resource) {
			found = append(found, q)
		}
	}
	if len(found) != 1 {
		return principalRole{}, false
	}
	return found[0], true
}

// writeOnRole judges a policy write (statement s, resource res) on one
// role of the template, q: no escalation when the principal cannot reach q
// (not itself, not assumable by it, not passed by it) or a Deny refuses the
// write; otherwise q's boundary must hold it.
func (p principalRole) writeOnRole(s Statement, res string, q principalRole) string {
	if !p.reaches(q) || p.deniesWrites(s, res) {
		return ""
	}
	boundary, ok := q.boundary()
	if !ok {
		return fmt.Sprintf("%s: writes or attaches policies on %s (statement %q), %s, which has no permissions boundary of the template",
			RulePolicyWriteOnAssumable, res, s.Sid, p.relation(q))
	}
	if changer := p.changesBoundary(q, boundary); changer != "" {
		return fmt.Sprintf("%s: writes or attaches policies on %s (statement %q), %s, and may change or remove its permissions boundary %s (statement %q)",
			RulePolicyWriteOnAssumable, res, s.Sid, p.relation(q), boundary, changer)
	}
	if gain := p.boundaryGain(q, boundary); gain != "" {
		return fmt.Sprintf("%s: writes or attaches policies on %s (statement %q), %s, whose permissions boundary %s %s",
			RulePolicyWriteOnAssumable, res, s.Sid, p.relation(q), boundary, gain)
	}
	return ""
}

// reaches reports whether the principal can act as role q: it is q, it
// may pass q, or it may assume q and q trusts an AWS principal (a role
// trusting only services cannot be assumed by a role).
func (p principalRole) reaches(q principalRole) bool {
	if q.id == p.id && q.t == p.t {
		return true
	}
	arns := q.selfARNs()
	overlaps := func(list []string) bool {
		return slices.ContainsFunc(list, func(a string) bool {
			return slices.ContainsFunc(arns, func(b string) bool { return overlap(a, b) })
		})
	}
	return overlaps(p.passable()) || (q.trustsAWSPrincipals() && overlaps(p.assumable()))
}

func (p principalRole) relation(q principalRole) string {
	if q.id == p.id && q.t == p.t {
		return "itself"
	}
	return "a role it can assume or pass (" + q.id + ")"
}

func (p principalRole) trustsAWSPrincipals() bool {
	for _, s := range p.trust {
		if s.Effect == "Allow" && get(s.Principal, "AWS") != nil {
			return true
		}
		if s.Effect == "Allow" && s.Principal == "*" {
			return true
		}
	}
	return false
}

// boundary is the logical ID of the role's permissions boundary: a managed
// policy of the template, set unconditionally (an Fn::If could leave a
// deployment without it).
func (p principalRole) boundary() (string, bool) {
	m, ok := p.t.Resources[p.id].Properties["PermissionsBoundary"].(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	id, ok := m["Ref"].(string)
	if !ok || p.t.Resources[id].Type != "AWS::IAM::ManagedPolicy" {
		return "", false
	}
	return id, true
}

// changesBoundary returns the Sid of a statement of the principal that may
// change or remove q's boundary ("" when none may): a boundary action on q,
// not refused by an unconditional Deny, or a new version of the boundary
// policy (whose ARN the checks cannot resolve: any policy resource counts).
func (p principalRole) changesBoundary(q principalRole, boundary string) string {
	for _, s := range p.granting(roleBoundaryChangers...) {
		for _, res := range p.resources(s) {
			for _, arn := range q.selfARNs() {
				if overlap(res, arn) && !p.deniesAll(s, roleBoundaryChangers, arn) {
					return s.Sid
				}
			}
		}
	}
	for _, s := range p.granting(policyBoundaryChangers...) {
		for _, res := range p.resources(s) {
			if overlap(res, "arn:{AWS::Partition}:iam::{AWS::AccountId}:policy/{ref:"+boundary+"}") {
				return s.Sid
			}
		}
	}
	return ""
}

// deniesAll reports whether the principal's unconditional Deny statements
// refuse, on the target, every one of the actions the Allow grants.
func (p principalRole) deniesAll(allow Statement, actions []string, target string) bool {
	for _, action := range actions {
		if !grantsAction(allow, action) {
			continue
		}
		if !slices.ContainsFunc(p.denies, func(d Statement) bool {
			return grantsAction(d, action) && slices.ContainsFunc(p.resources(d), func(res string) bool { return covers(res, target) })
		}) {
			return false
		}
	}
	return true
}

// boundaryGain checks the boundary's grants in the principal's hands: what
// it would hold if it wrote them all on q and acted as q. It returns why
// that is an escalation, or "".
func (p principalRole) boundaryGain(q principalRole, boundary string) string {
	var allows []Statement
	for _, d := range q.t.Documents() {
		if d.Resource == boundary {
			allows = append(allows, allowsOf(d.Statements)...)
		}
	}
	if len(allows) == 0 {
		return "grants nothing the checks can read"
	}
	bounded := principalRole{t: q.t, id: q.id, allows: allows}
	if chain := bounded.granting(chainActions...); len(chain) > 0 {
		return fmt.Sprintf("grants what reaches further (statement %q)", chain[0].Sid)
	}
	gained := principalRole{t: p.t, id: p.id, allows: append(slices.Clone(p.allows), allows...), denies: p.denies}
	for _, rule := range []func(principalRole) string{documentWriteAndRun, broadPassRoleAndLaunch, legalHoldLiftOrBypass} {
		if problem := rule(gained); problem != "" && rule(p) == "" {
			return "lets it gain: " + problem
		}
	}
	return ""
}
