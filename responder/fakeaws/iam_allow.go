package fakeaws

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// RoleAllows reports whether a session of the role may make one request
// (an action on a resource ARN) by the role's inline policies, as IAM
// decides it for them: an explicit Deny that applies wins, else an Allow
// that applies grants, else the implicit deny. A statement applies when
// its Action and Resource match (IAM wildcards) and every condition holds
// for the session; it evaluates the conditions on ec2:SourceInstanceARN
// and aws:TokenIssueTime that SessionDenied does, and s3:prefix (StringLike)
// and kms:ViaService (StringEquals) from the request context given. A
// condition it cannot evaluate on a statement that would apply is an
// error, so that a test never passes on a condition the fake ignored.
// Managed policies and boundaries are not modelled.
func (c *Cloud) RoleAllows(roleName string, s Session, action, resource string, context map[string]string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.st.Roles[roleName]
	if !ok {
		return false, fmt.Errorf("no role %q", roleName)
	}
	allowed := false
	for name, doc := range r.Policies {
		var p policyDocument
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			return false, fmt.Errorf("policy %s: %w", name, err)
		}
		for _, st := range p.Statement {
			if !matchesAny(st.Action, action, true) || !matchesAny(st.Resource, resource, false) {
				continue
			}
			holds, err := requestConditionsHold(st.Condition, s, context)
			if err != nil {
				return false, fmt.Errorf("policy %s: %w", name, err)
			}
			switch {
			case holds && st.Effect == "Deny":
				return false, nil
			case holds && st.Effect == "Allow":
				allowed = true
			}
		}
	}
	return allowed, nil
}

// matchesAny reports whether a statement's Action or Resource value (one
// string or a list) matches v under IAM's wildcards (* and ?); actions
// compare without case, resources with it.
func matchesAny(patterns any, v string, fold bool) bool {
	var list []string
	switch x := patterns.(type) {
	case string:
		list = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				list = append(list, s)
			}
		}
	}
	for _, p := range list {
		if fold {
			p, v = strings.ToLower(p), strings.ToLower(v)
		}
		if iamWildcard(p).MatchString(v) {
			return true
		}
	}
	return false
}

func iamWildcard(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func requestConditionsHold(cond map[string]map[string]any, s Session, context map[string]string) (bool, error) {
	for op, keys := range cond {
		for key, want := range keys {
			holds, err := requestConditionHolds(op, key, want, s, context)
			if err != nil || !holds {
				return false, err
			}
		}
	}
	return true, nil
}

func requestConditionHolds(op, key string, want any, s Session, context map[string]string) (bool, error) {
	value, isString := want.(string)
	switch {
	case isString && op == "StringLike" && strings.EqualFold(key, "s3:prefix"):
		got, ok := context["s3:prefix"]
		return ok && iamWildcard(value).MatchString(got), nil
	case isString && op == "StringEquals" && strings.EqualFold(key, "kms:ViaService"):
		return context["kms:ViaService"] == value, nil
	}
	return conditionHolds(op, key, want, s)
}
