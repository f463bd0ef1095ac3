package cloudformation

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Escalation rules: combinations of grants that let one role of the toolkit
// gain more than it was given, or undo the evidence store's protections.
// CheckEscalations reports every role of the templates that holds one.
const (
	// RuleDocumentWriteAndRun: writing an SSM document and sending commands
	// is running any script, as root, on every managed instance.
	RuleDocumentWriteAndRun = "document-write-and-run"
	// RuleBroadPassRoleAndLaunch: passing any role (Resource "*", role/*,
	// a path wildcard) with an instance profile association or
	// RunInstances attaches an administrator's role to an instance the
	// principal controls.
	RuleBroadPassRoleAndLaunch = "broad-passrole-and-launch"
	// RulePolicyWriteOnAssumable: writing or attaching a policy to itself,
	// or to a role it can assume or pass, grants the principal anything. An
	// explicit, unconditional Deny of those writes on the role takes it out.
	// So does a permissions boundary on that role (a managed policy of the
	// template) that the principal can neither change nor remove: it then
	// reaches at most the boundary's grants, which are checked in its hands
	// (boundary.go).
	RulePolicyWriteOnAssumable = "policy-write-on-assumable-role"
	// RuleLegalHoldLiftOrBypass: lifting a legal hold, or bypassing
	// governance retention, belongs to the data custodian only.
	RuleLegalHoldLiftOrBypass = "legal-hold-lift-or-retention-bypass"
	// RuleRootTrustWithoutConditions: trusting an account's root without a
	// condition on who (aws:PrincipalArn, MFA...) trusts every principal the
	// account's administrators ever allow sts:AssumeRole.
	RuleRootTrustWithoutConditions = "root-trust-without-conditions"
)

// CustodianRoles are the roles (logical IDs) that may lift legal holds and
// bypass governance retention: the data custodian of "Forensic investigation
// environment strategies in the AWS Cloud". No other role may.
var CustodianRoles = []string{"DataCustodianRole"}

// Actions each rule looks for. A granted action with wildcards ("ssm:*",
// "iam:Put*") counts for every action it matches.
var (
	documentWriteActions = []string{"ssm:CreateDocument", "ssm:UpdateDocument", "ssm:UpdateDocumentDefaultVersion"}
	launchActions        = []string{"ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation", "ec2:RunInstances"}
	policyWriteActions   = []string{"iam:PutRolePolicy", "iam:PutUserPolicy", "iam:PutGroupPolicy",
		"iam:AttachRolePolicy", "iam:AttachUserPolicy", "iam:AttachGroupPolicy"}
	// narrowingKeys are the condition keys that say who, within a trusted
	// account, may assume a role.
	narrowingKeys = []string{"aws:PrincipalArn", "aws:MultiFactorAuthPresent", "aws:userid", "aws:PrincipalTag/"}
)

// principalRole is one role of a template with what the checks read of it.
type principalRole struct {
	t      *Template
	id     string
	allows []Statement // the Allow statements of its identity policies
	denies []Statement // the Deny statements of its identity policies
	trust  []Statement // its trust policy's statements
}

func (p principalRole) String() string { return p.t.Path + ": " + p.id }

// CheckEscalations runs every escalation rule over the roles of the
// templates, together: a role may assume a role of another template (the
// forensics account's responder assumes the member role). It returns one
// finding per rule and role, "<template>: <role>: <rule>: <why>", sorted.
func CheckEscalations(templates ...*Template) []string {
	roles, out := collectRoles(templates)
	for _, r := range roles {
		for _, problem := range []string{
			documentWriteAndRun(r),
			broadPassRoleAndLaunch(r),
			policyWriteOnAssumable(r, roles),
			legalHoldLiftOrBypass(r),
			rootTrustWithoutConditions(r),
		} {
			if problem != "" {
				out = append(out, r.String()+": "+problem)
			}
		}
	}
	sort.Strings(out)
	return out
}

// collectRoles reads every role of the templates; a role whose policies the
// template cannot show is reported.
func collectRoles(templates []*Template) ([]principalRole, []string) {
	var roles []principalRole
	var out []string
	for _, t := range templates {
		docs := t.Documents()
		for _, res := range t.ResourcesOfType("AWS::IAM::Role") {
			r := principalRole{t: t, id: res.ID}
			identity, unchecked, err := t.RoleDocuments(res.ID)
			if err != nil {
				out = append(out, err.Error())
			}
			for _, u := range unchecked {
				out = append(out, t.Path+": "+u+": its grants cannot be checked for escalation")
			}
			for _, d := range identity {
				r.allows = append(r.allows, allowsOf(d.Statements)...)
				r.denies = append(r.denies, deniesOf(d.Statements)...)
			}
			for _, d := range docs {
				if d.Resource == res.ID && d.Kind == TrustPolicy {
					r.trust = append(r.trust, d.Statements...)
				}
			}
			roles = append(roles, r)
		}
	}
	return roles, out
}

func allowsOf(statements []Statement) []Statement {
	var out []Statement
	for _, s := range statements {
		if s.Effect == "Allow" {
			out = append(out, s)
		}
	}
	return out
}

// deniesOf are the Deny statements that always apply: without a condition,
// on Action and Resource (a NotAction or NotResource deny is not read).
func deniesOf(statements []Statement) []Statement {
	var out []Statement
	for _, s := range statements {
		if s.Effect == "Deny" && s.Condition == nil && len(s.NotActions) == 0 && !s.NotResources {
			out = append(out, s)
		}
	}
	return out
}

// granting returns the statements that allow any of the actions.
func (p principalRole) granting(actions ...string) []Statement {
	var out []Statement
	for _, s := range p.allows {
		if slices.ContainsFunc(actions, func(a string) bool { return grantsAction(s, a) }) {
			out = append(out, s)
		}
	}
	return out
}

// grantsAction reports whether a statement's Action list covers an action,
// wildcards and case aside.
func grantsAction(s Statement, action string) bool {
	for _, granted := range s.Actions {
		if matchRegexp(strings.ToLower(granted)).MatchString(strings.ToLower(action)) {
			return true
		}
	}
	return false
}

// resources returns what a statement's resources may be once deployed;
// NotResource counts as "*".
func (p principalRole) resources(s Statement) []string {
	if s.NotResources {
		return []string{"*"}
	}
	return valueResolver{p.t}.strings(s.Resources)
}

func documentWriteAndRun(r principalRole) string {
	write, run := r.granting(documentWriteActions...), r.granting("ssm:SendCommand")
	if len(write) == 0 || len(run) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: writes SSM documents (statement %q) and sends commands (statement %q): it can run any script, as root, on every managed instance",
		RuleDocumentWriteAndRun, write[0].Sid, run[0].Sid)
}

func broadPassRoleAndLaunch(r principalRole) string {
	launch := r.granting(launchActions...)
	if len(launch) == 0 {
		return ""
	}
	for _, s := range r.granting("iam:PassRole") {
		for _, res := range r.resources(s) {
			if passesAnyRole(res) {
				return fmt.Sprintf("%s: passes roles on %s (statement %q) and associates profiles or launches instances (statement %q): it can give any role to an instance",
					RuleBroadPassRoleAndLaunch, res, s.Sid, launch[0].Sid)
			}
		}
	}
	return ""
}

// passesAnyRole reports whether a PassRole resource covers more roles than
// the one it names (see coversMany).
func passesAnyRole(resource string) bool { return coversMany(resource, "role") }

// coversMany reports whether an IAM resource covers more than the one role
// or policy (kind) it names: "*", a wildcard before "<kind>/", or one in the
// path or name. A placeholder for a name (a parameter that admits no
// wildcard, a role of the template) is one name; a value the checks cannot
// resolve is not.
func coversMany(resource, kind string) bool {
	_, name, ok := strings.Cut(resource, ":"+kind+"/")
	if !ok {
		return matchRegexp(resource).MatchString("arn:aws:iam::111111111111:" + kind + "/sample")
	}
	return strings.ContainsAny(name, "*?") || strings.Contains(name, "{getatt:") || strings.Contains(name, "{ref:")
}

func policyWriteOnAssumable(r principalRole, roles []principalRole) string {
	targets := append(append(r.selfARNs(), r.assumable()...), r.passable()...)
	for _, s := range r.granting(policyWriteActions...) {
		for _, res := range r.resources(s) {
			if q, ok := r.namedRole(res, roles); ok {
				if problem := r.writeOnRole(s, res, q); problem != "" {
					return problem
				}
				continue
			}
			for _, target := range targets {
				if overlap(res, target) && !r.deniesWrites(s, target) {
					return fmt.Sprintf("%s: writes or attaches policies on %s (statement %q), which covers itself or a role it can assume or pass (%s)",
						RulePolicyWriteOnAssumable, res, s.Sid, target)
				}
			}
		}
	}
	for _, s := range r.granting("iam:CreatePolicyVersion") {
		for _, res := range r.resources(s) {
			if coversMany(res, "policy") {
				return fmt.Sprintf("%s: creates versions of the policies %s (statement %q), its own among them",
					RulePolicyWriteOnAssumable, res, s.Sid)
			}
		}
	}
	return ""
}

// deniesWrites reports whether the role's Deny statements refuse, on the
// target role, every policy write the Allow statement grants.
func (p principalRole) deniesWrites(allow Statement, target string) bool {
	for _, action := range policyWriteActions {
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

// covers reports whether a Deny resource surely names the target: the
// same value, or a pattern whose IAM wildcards match it. A placeholder in
// the pattern is one value, unknown here: it covers only the same
// placeholder, never anything.
func covers(pattern, target string) bool {
	if pattern == target {
		return true
	}
	var b strings.Builder
	b.WriteString("^")
	for _, c := range pattern {
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String()).MatchString(target)
}

// passable are the roles the role's identity policies let it pass.
func (p principalRole) passable() []string {
	var out []string
	for _, s := range p.granting("iam:PassRole") {
		out = append(out, p.resources(s)...)
	}
	return out
}

// selfARNs are the ARNs the role may have.
func (p principalRole) selfARNs() []string { return valueResolver{p.t}.roleARNs(p.id) }

// assumable are the roles the role's identity policies let it assume.
func (p principalRole) assumable() []string {
	var out []string
	for _, s := range p.granting("sts:AssumeRole") {
		out = append(out, p.resources(s)...)
	}
	return out
}

func legalHoldLiftOrBypass(r principalRole) string {
	if slices.Contains(CustodianRoles, r.id) {
		return ""
	}
	if bypass := r.granting("s3:BypassGovernanceRetention"); len(bypass) > 0 {
		return fmt.Sprintf("%s: may bypass governance retention (statement %q): only the data custodian may", RuleLegalHoldLiftOrBypass, bypass[0].Sid)
	}
	for _, s := range r.granting("s3:PutObjectLegalHold") {
		if !placesHoldsOnly(s.Condition) {
			return fmt.Sprintf("%s: may set legal holds without the condition s3:object-lock-legal-hold = ON (statement %q): it could lift them; only the data custodian may",
				RuleLegalHoldLiftOrBypass, s.Sid)
		}
	}
	return ""
}

// placesHoldsOnly reports whether a condition limits s3:PutObjectLegalHold
// to placing holds: StringEquals s3:object-lock-legal-hold ON, in every
// branch (S3 User Guide, "Object Lock": the key's values are ON and OFF).
func placesHoldsOnly(condition any) bool {
	variants := branches(condition)
	if len(variants) == 0 {
		return false
	}
	for _, c := range variants {
		if !slices.Equal(Strings(get(c, "StringEquals", "s3:object-lock-legal-hold")), []string{"ON"}) {
			return false
		}
	}
	return true
}

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

func rootTrustWithoutConditions(r principalRole) string {
	for _, s := range r.trust {
		if s.Effect != "Allow" || !trustsRoot(r.t, s.Principal) {
			continue
		}
		variants := branches(s.Condition)
		if len(variants) == 0 {
			return fmt.Sprintf("%s: trust statement %q trusts an account root without conditions", RuleRootTrustWithoutConditions, s.Sid)
		}
		for _, c := range variants {
			if !narrowsPrincipal(c) {
				return fmt.Sprintf("%s: trust statement %q trusts an account root with no condition on who (one of %v)",
					RuleRootTrustWithoutConditions, s.Sid, narrowingKeys)
			}
		}
	}
	return ""
}

// trustsRoot reports whether a principal names an account as a whole: its
// root ARN, or a bare account ID.
func trustsRoot(t *Template, principal any) bool {
	for _, p := range (valueResolver{t}).strings(get(principal, "AWS")) {
		if strings.HasSuffix(p, ":root") || accountID.MatchString(p) || p == "{AWS::AccountId}" {
			return true
		}
	}
	return false
}

// narrowsPrincipal reports whether a condition names who may assume the
// role, under any operator.
func narrowsPrincipal(condition any) bool {
	ops, ok := condition.(map[string]any)
	if !ok {
		return false
	}
	for _, keys := range ops {
		m, ok := keys.(map[string]any)
		if !ok {
			continue
		}
		for key := range m {
			for _, k := range narrowingKeys {
				if strings.EqualFold(key, k) || (strings.HasSuffix(k, "/") && strings.HasPrefix(strings.ToLower(key), strings.ToLower(k))) {
					return true
				}
			}
		}
	}
	return false
}
