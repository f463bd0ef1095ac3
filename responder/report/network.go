package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/evidence"
	steps "github.com/responder-ir/responder/responder/step"
)

// SecurityGroups is, per network interface, its security groups before
// and after containment, by name with their rules, and what changed.
// The groups of before and their rules come from the metadata artifact
// (read before any change); the groups after from the quarantine step's
// read-back; the rules of the case's own groups from their steps' records.
type SecurityGroups struct {
	// Source is the metadata artifact the rules of before come from.
	Source     *Source              `json:"source,omitempty"`
	Interfaces []InterfaceGroupDiff `json:"interfaces"`
	// Note says what could not be shown, and why.
	Note string `json:"note,omitempty"`
}

// Source is the artifact a section's facts were read from, checked against
// its recorded SHA-256 when the report was made.
type Source struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// Member is the file inside an archive, if any.
	Member string `json:"member,omitempty"`
}

// InterfaceGroupDiff is one interface's groups before and after.
type InterfaceGroupDiff struct {
	Interface string       `json:"network_interface_id"`
	VPC       string       `json:"vpc_id,omitempty"`
	Before    []GroupRules `json:"before"`
	After     []GroupRules `json:"after"`
	Changes   []RuleChange `json:"changes"`
	Note      string       `json:"note,omitempty"`
}

// GroupRules is a security group by ID and name, with its rules in words
// ("inbound 22/tcp from 0.0.0.0/0"). RulesKnown is false when the record
// does not hold them.
type GroupRules struct {
	ID         string   `json:"group_id"`
	Name       string   `json:"name,omitempty"`
	Rules      []string `json:"rules"`
	RulesKnown bool     `json:"rules_known"`
}

// RuleChange is one rule the move added or removed: "inbound 22/tcp from
// 0.0.0.0/0 removed".
type RuleChange struct {
	Rule   string `json:"rule"`
	Change string `json:"change"` // removed or added
}

func (c RuleChange) String() string { return c.Rule + " " + c.Change }

// ruleTexts says each rule of an EC2 permission list in words, one per
// peer.
func ruleTexts(inbound bool, perms []types.IpPermission) []string {
	dir, prep := "outbound", "to"
	if inbound {
		dir, prep = "inbound", "from"
	}
	var out []string
	for _, p := range perms {
		what := portText(aws.ToString(p.IpProtocol), p.FromPort, p.ToPort)
		var peers []string
		for _, r := range p.IpRanges {
			peers = append(peers, aws.ToString(r.CidrIp))
		}
		for _, r := range p.Ipv6Ranges {
			peers = append(peers, aws.ToString(r.CidrIpv6))
		}
		for _, r := range p.PrefixListIds {
			peers = append(peers, "prefix list "+aws.ToString(r.PrefixListId))
		}
		for _, r := range p.UserIdGroupPairs {
			peers = append(peers, "group "+aws.ToString(r.GroupId))
		}
		for _, peer := range peers {
			out = append(out, fmt.Sprintf("%s %s %s %s", dir, what, prep, peer))
		}
	}
	return out
}

// portText says a protocol and port range: "22/tcp", "1024-65535/udp",
// "all traffic", "icmp type 8".
func portText(proto string, from, to *int32) string {
	switch strings.ToLower(proto) {
	case "-1", "all":
		return "all traffic"
	case "6":
		proto = "tcp"
	case "17":
		proto = "udp"
	case "1":
		proto = "icmp"
	case "58":
		proto = "icmpv6"
	}
	f, t := aws.ToInt32(from), aws.ToInt32(to)
	switch {
	case proto == "icmp" || proto == "icmpv6":
		if f == -1 {
			return "all " + proto
		}
		return fmt.Sprintf("%s type %d", proto, f)
	case from == nil || (f == 0 && t == 65535) || f == -1:
		return "all ports/" + proto
	case f == t:
		return fmt.Sprintf("%d/%s", f, proto)
	}
	return fmt.Sprintf("%d-%d/%s", f, t, proto)
}

// groupRules describes an EC2 security group.
func groupRules(g types.SecurityGroup) GroupRules {
	rules := append(ruleTexts(true, g.IpPermissions), ruleTexts(false, g.IpPermissionsEgress)...)
	return GroupRules{ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName), Rules: nonNil(rules), RulesKnown: true}
}

// diffRules states what moving from one set of groups to another removed
// and added: removed first, each in the order of its groups.
func diffRules(before, after []GroupRules) []RuleChange {
	changes := []RuleChange{}
	has := func(gs []GroupRules, rule string) bool {
		for _, g := range gs {
			if slices.Contains(g.Rules, rule) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	for _, side := range []struct {
		from, to []GroupRules
		change   string
	}{{before, after, "removed"}, {after, before, "added"}} {
		for _, g := range side.from {
			for _, r := range g.Rules {
				if !has(side.to, r) && !seen[side.change+r] {
					seen[side.change+r] = true
					changes = append(changes, RuleChange{Rule: r, Change: side.change})
				}
			}
		}
	}
	return changes
}

// caseGroupRecord mirrors the records of the quarantine-group,
// forensic-access-group and untracking-group steps (one entry per VPC).
type caseGroupRecord struct {
	VPC     string   `json:"vpc_id"`
	GroupID string   `json:"group_id"`
	Rules   []string `json:"rules"`
}

// interfaceRecord mirrors the quarantine step's record.
type interfaceRecord struct {
	Interfaces []steps.InterfaceGroups `json:"interfaces"`
}

// knownGroups are the groups the report can describe, by ID.
type knownGroups map[string]GroupRules

// caseGroups adds the groups the case made or keeps (quarantine,
// forensic access, untracking), with the rules their steps leave them.
func (k knownGroups) addCaseGroups(m *evidence.Manifest) {
	for _, s := range m.Steps {
		var recs []caseGroupRecord
		if s.Status == evidence.StatusFailed || !present(s.After) || json.Unmarshal(s.After, &recs) != nil {
			continue
		}
		for _, r := range recs {
			if r.GroupID == "" {
				continue
			}
			switch s.Name {
			case "quarantine-group":
				k[r.GroupID] = GroupRules{ID: r.GroupID, Name: steps.QuarantineGroupName(r.VPC), Rules: []string{}, RulesKnown: true}
			case "untracking-group":
				k[r.GroupID] = GroupRules{ID: r.GroupID, Name: steps.UntrackingGroupName(r.VPC),
					Rules: []string{"inbound all traffic from 0.0.0.0/0", "inbound all traffic from ::/0",
						"outbound all traffic to 0.0.0.0/0", "outbound all traffic to ::/0"}, RulesKnown: true}
			case "forensic-access-group":
				g := GroupRules{ID: r.GroupID, Name: steps.ForensicAccessGroupName(r.VPC), Rules: []string{}, RulesKnown: true}
				for _, rule := range r.Rules {
					peer := strings.TrimPrefix(strings.TrimPrefix(rule, "cidr:"), "pl:")
					if strings.HasPrefix(rule, "pl:") {
						peer = "prefix list " + peer
					}
					g.Rules = append(g.Rules, "outbound 443/tcp to "+peer)
				}
				k[r.GroupID] = g
			}
		}
	}
}

func (k knownGroups) describe(ids []string) []GroupRules {
	out := []GroupRules{}
	for _, id := range ids {
		g, ok := k[id]
		if !ok {
			g = GroupRules{ID: id, Rules: []string{}}
		}
		out = append(out, g)
	}
	return out
}

// buildSecurityGroups compares each interface's groups before and after.
// meta is the metadata document (nil when the case has none to trust).
func buildSecurityGroups(m *evidence.Manifest, meta *steps.InstanceMetadata, src *Source) SecurityGroups {
	sg := SecurityGroups{Interfaces: []InterfaceGroupDiff{}, Source: src}
	known := knownGroups{}
	if meta != nil {
		for _, g := range meta.SecurityGroups {
			known[aws.ToString(g.GroupId)] = groupRules(g)
		}
	} else {
		sg.Note = "the rules of the groups of before are not shown: the case holds no verified metadata artifact (step metadata)"
	}
	known.addCaseGroups(m)
	recs := stepRecords(m, "quarantine")
	if len(recs) == 0 {
		if sg.Note == "" {
			sg.Note = "no quarantine step ran in this case: the groups were not changed"
		}
		return sg
	}
	var first, last *interfaceRecord
	for _, r := range recs {
		var v interfaceRecord
		if present(r.Before) && json.Unmarshal(r.Before, &v) == nil && first == nil {
			first = &v
		}
		var a interfaceRecord
		if present(r.After) && json.Unmarshal(r.After, &a) == nil && len(a.Interfaces) > 0 {
			last = &a
		}
	}
	if first == nil {
		return sg
	}
	after := map[string][]string{}
	if last != nil {
		for _, i := range last.Interfaces {
			after[i.NetworkInterfaceID] = i.Groups
		}
	}
	for _, i := range first.Interfaces {
		d := InterfaceGroupDiff{Interface: i.NetworkInterfaceID, VPC: i.VPC, Before: known.describe(i.Groups), After: []GroupRules{}, Changes: []RuleChange{}}
		a, ok := after[i.NetworkInterfaceID]
		if !ok {
			d.Note = "no run recorded this interface's groups after containment"
		} else {
			d.After = known.describe(a)
			d.Changes = diffRules(d.Before, d.After)
			if !allKnown(d.Before) || !allKnown(d.After) {
				d.Note = "some groups' rules are not in the record: the changes listed are those of the groups whose rules are"
			}
		}
		sg.Interfaces = append(sg.Interfaces, d)
	}
	return sg
}

func allKnown(gs []GroupRules) bool {
	for _, g := range gs {
		if !g.RulesKnown {
			return false
		}
	}
	return true
}

// stepRecords are the records of one step, in record order.
func stepRecords(m *evidence.Manifest, name string) []evidence.StepRecord {
	var out []evidence.StepRecord
	for _, s := range m.Steps {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Profile is the instance profile the instance had, its role and the
// role's policies, as far as the record holds them.
type Profile struct {
	Before  string `json:"instance_profile_before"`
	After   string `json:"instance_profile_after"`
	Role    string `json:"role,omitempty"`
	RoleARN string `json:"role_arn,omitempty"`
	// Policies are the names of the role's policies, inline and managed,
	// as read beside the revocation (the case's own revocation policy left
	// out); PoliciesKnown is false when the record does not hold them.
	Policies      []string `json:"policies"`
	PoliciesKnown bool     `json:"policies_known"`
	Note          string   `json:"note,omitempty"`
}

// profileRecord mirrors the instance-profile and credential-revocation
// records.
type profileRecord struct {
	Associations    []steps.ProfileAssociation `json:"associations"`
	Role            string                     `json:"role"`
	RoleARN         string                     `json:"role_arn"`
	InlinePolicies  []string                   `json:"role_inline_policies"`
	ManagedPolicies []string                   `json:"role_managed_policies"`
	PoliciesListed  bool                       `json:"role_policies_listed"`
	PoliciesError   string                     `json:"role_policies_error"`
}

// policyNames says a role's policies by name: "read-config (inline)",
// "AmazonS3ReadOnlyAccess (managed: arn:...)".
func (v profileRecord) policyNames() []string {
	out := []string{}
	for _, n := range v.InlinePolicies {
		out = append(out, n+" (inline)")
	}
	for _, arn := range v.ManagedPolicies {
		out = append(out, arn[strings.LastIndex(arn, "/")+1:]+" (managed: "+arn+")")
	}
	return out
}

func buildProfile(m *evidence.Manifest, meta *steps.InstanceMetadata) Profile {
	p := Profile{Before: "not recorded", After: "not recorded", Policies: []string{}}
	arns := func(as []steps.ProfileAssociation) string {
		var out []string
		for _, a := range as {
			out = append(out, a.ProfileARN)
		}
		return joinOr(out, "none")
	}
	for i, r := range stepRecords(m, "instance-profile") {
		var b, a profileRecord
		if i == 0 || p.Before == "not recorded" {
			if present(r.Before) && json.Unmarshal(r.Before, &b) == nil {
				p.Before = arns(b.Associations)
			}
		}
		if present(r.After) && json.Unmarshal(r.After, &a) == nil {
			p.After = arns(a.Associations)
		} else if r.Status == evidence.StatusSkipped && present(r.Before) && json.Unmarshal(r.Before, &a) == nil {
			p.After = arns(a.Associations)
		}
	}
	if p.Before == "not recorded" && meta != nil {
		var out []string
		for _, a := range meta.ProfileAssociations {
			if a.IamInstanceProfile != nil {
				out = append(out, aws.ToString(a.IamInstanceProfile.Arn))
			}
		}
		p.Before = joinOr(out, "none") + " (from the metadata artifact)"
	}
	for _, r := range stepRecords(m, "credential-revocation") {
		var v profileRecord
		if present(r.Before) && json.Unmarshal(r.Before, &v) == nil && v.Role != "" {
			p.Role, p.RoleARN = v.Role, v.RoleARN
			switch {
			case v.PoliciesListed:
				p.Policies, p.PoliciesKnown, p.Note = v.policyNames(), true, ""
			case v.PoliciesError != "" && !p.PoliciesKnown:
				p.Note = "the role's policies could not be listed: " + v.PoliciesError
			}
		}
	}
	switch {
	case p.Role == "" && p.Before != "none":
		p.Note = "the record does not name the profile's role (step credential-revocation did not record it)"
	case p.Role != "" && !p.PoliciesKnown && p.Note == "":
		p.Note = "the record does not hold the names of the role's policies: list them with " +
			"aws iam list-role-policies --role-name " + p.Role + " and aws iam list-attached-role-policies --role-name " + p.Role
	}
	return p
}

func joinOr(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}
