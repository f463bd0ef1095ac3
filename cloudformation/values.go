package cloudformation

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// What a policy value (an ARN, most often) can be once deployed, for the
// escalation checks: every value is resolved to the strings it may take, for
// every deployment the template's parameters allow. The resolution
// over-approximates on purpose (a check may report a path that no sensible
// deployment has, never miss one):
//
//   - a parameter stands for its default, for each of its AllowedValues, for
//     "*" and "/" when its AllowedPattern (or the lack of one) admits them,
//     and for a placeholder {param:Name}: some other value it admits;
//   - pseudo parameters and resource attributes are placeholders,
//     {AWS::AccountId}, {getatt:ID.Attr}; a role of the template is its
//     RoleName, or <role:ID> when CloudFormation names it (a name no other
//     role has);
//   - both branches of an Fn::If count; an intrinsic function the resolver
//     does not know resolves to "*".
//
// A placeholder is one concrete value: it is no wildcard when the checks ask
// whether a value is broad, and matches anything when they ask whether two
// values may name the same thing.

// maxAlternatives bounds how many strings one value resolves to.
const maxAlternatives = 256

// probes are the values a parameter is tried with when its pattern admits
// them: a wildcard, and the root path.
var probes = []string{"*", "/"}

// valueResolver resolves the values of one template.
type valueResolver struct{ t *Template }

// strings returns the strings v may take (a list is flattened).
func (r valueResolver) strings(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, r.strings(e)...)
		}
		return capped(out)
	case map[string]any:
		return r.function(x)
	}
	return []string{fmt.Sprint(v)}
}

// function resolves an intrinsic function.
func (r valueResolver) function(m map[string]any) []string {
	if len(m) != 1 {
		return []string{"*"}
	}
	for name, arg := range m {
		switch name {
		case "Fn::If":
			var out []string
			for _, b := range branches(m) {
				out = append(out, r.strings(b)...)
			}
			return capped(out)
		case "Ref":
			return r.ref(str(arg))
		case "Fn::GetAtt":
			return r.getAtt(arg)
		case "Fn::Sub":
			return r.sub(arg)
		case "Fn::Join":
			return r.join(arg)
		case "Fn::Split":
			return r.split(arg)
		}
	}
	return []string{"*"}
}

// ref resolves a Ref: a parameter's values, a pseudo parameter's or a
// resource's placeholder.
func (r valueResolver) ref(name string) []string {
	if strings.HasPrefix(name, "AWS::") {
		return []string{"{" + name + "}"}
	}
	if p, ok := r.t.Parameters[name]; ok {
		return parameterValues(name, p)
	}
	if res, ok := r.t.Resources[name]; ok && res.Type == "AWS::IAM::Role" {
		return r.roleNames(name)
	}
	return []string{"{ref:" + name + "}"}
}

// roleNames are the names a role of the template may have: its RoleName's
// values, or, for a name CloudFormation generates, <role:ID>, a name no
// other role has (a literal, not a placeholder).
func (r valueResolver) roleNames(id string) []string {
	n, ok := r.t.Resources[id].Properties["RoleName"]
	if !ok {
		return []string{"<role:" + id + ">"}
	}
	// A role exists only under a name IAM accepts ([\w+=,.@-]): a probe
	// such as "*" cannot be the name of a role the stack created.
	var out []string
	for _, name := range r.strings(n) {
		if !strings.ContainsAny(name, "*?/") {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return []string{"<role:" + id + ">"}
	}
	return out
}

// roleARNs are the ARNs a role of the template may have.
func (r valueResolver) roleARNs(id string) []string {
	path := "/"
	if p, ok := r.t.Resources[id].Properties["Path"].(string); ok {
		path = p
	}
	var out []string
	for _, n := range r.roleNames(id) {
		out = append(out, "arn:{AWS::Partition}:iam::{AWS::AccountId}:role"+path+n)
	}
	return out
}

// getAtt resolves an Fn::GetAtt: a role's ARN is an ARN of its name.
func (r valueResolver) getAtt(arg any) []string {
	var res, attr string
	switch x := arg.(type) {
	case []any:
		if len(x) == 2 {
			res, attr = str(x[0]), str(x[1])
		}
	case string:
		res, attr, _ = strings.Cut(x, ".")
	}
	if r.t.Resources[res].Type == "AWS::IAM::Role" && attr == "Arn" {
		return r.roleARNs(res)
	}
	return []string{"{getatt:" + res + "." + attr + "}"}
}

var subReference = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// sub resolves an Fn::Sub, in either form.
func (r valueResolver) sub(arg any) []string {
	text, vars := "", map[string]any{}
	switch x := arg.(type) {
	case string:
		text = x
	case []any:
		if len(x) != 2 {
			return []string{"*"}
		}
		text = str(x[0])
		if m, ok := x[1].(map[string]any); ok {
			vars = m
		}
	}
	out, pos := []string{""}, 0
	for _, loc := range subReference.FindAllStringSubmatchIndex(text, -1) {
		out = product(out, []string{text[pos:loc[0]]})
		out = product(out, r.variable(text[loc[2]:loc[3]], vars))
		pos = loc[1]
	}
	return product(out, []string{text[pos:]})
}

// variable resolves one ${Name} of an Fn::Sub.
func (r valueResolver) variable(name string, vars map[string]any) []string {
	if v, ok := vars[name]; ok {
		return r.strings(v)
	}
	if res, attr, ok := strings.Cut(name, "."); ok {
		return r.getAtt([]any{res, attr})
	}
	return r.ref(name)
}

// join resolves an Fn::Join: its list's items joined, each combination of
// their values.
func (r valueResolver) join(arg any) []string {
	x, ok := arg.([]any)
	if !ok || len(x) != 2 {
		return []string{"*"}
	}
	delim := str(x[0])
	var items [][]string
	for _, b := range branches(x[1]) {
		switch list := b.(type) {
		case []any:
			for _, e := range list {
				items = append(items, r.strings(e))
			}
		default:
			// A list-valued function (a CommaDelimitedList parameter, an
			// Fn::Split): each value it may take is one item.
			items = append(items, r.strings(b))
		}
	}
	out := []string{""}
	for i, alts := range items {
		if i > 0 {
			out = product(out, []string{delim})
		}
		out = product(out, alts)
	}
	return out
}

// split resolves an Fn::Split: the pieces of every value the source takes.
func (r valueResolver) split(arg any) []string {
	x, ok := arg.([]any)
	if !ok || len(x) != 2 {
		return []string{"*"}
	}
	delim := str(x[0])
	var out []string
	for _, s := range r.strings(x[1]) {
		out = append(out, strings.Split(s, delim)...)
	}
	return capped(out)
}

// parameterValues are the values a parameter is tried with (see the top of
// this file). A CommaDelimitedList parameter's are its items'.
func parameterValues(name string, p map[string]any) []string {
	list := str(p["Type"]) == "CommaDelimitedList"
	var out []string
	if def, ok := p["Default"]; ok {
		d := fmt.Sprint(def)
		if list {
			out = append(out, strings.Split(d, ",")...)
		} else {
			out = append(out, d)
		}
	}
	if allowed := Strings(p["AllowedValues"]); len(allowed) > 0 {
		return unique(append(out, allowed...))
	}
	pattern := str(p["AllowedPattern"])
	for _, probe := range probes {
		if admits(pattern, probe) {
			out = append(out, probe)
		}
	}
	return unique(append(out, "{param:"+name+"}"))
}

// admits reports whether an AllowedPattern admits a value (no pattern
// admits everything; CloudFormation anchors the pattern at both ends).
func admits(pattern, value string) bool {
	if pattern == "" {
		return true
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return true // a pattern the checks cannot read proves nothing
	}
	return re.MatchString(value)
}

// product appends every suffix to every prefix, within maxAlternatives.
func product(prefixes, suffixes []string) []string {
	out := make([]string, 0, len(prefixes)*len(suffixes))
	for _, p := range prefixes {
		for _, s := range suffixes {
			out = append(out, p+s)
		}
	}
	return capped(out)
}

// capped keeps at most maxAlternatives strings; past that, the value may be
// anything.
func capped(s []string) []string {
	if len(s) > maxAlternatives {
		return []string{"*"}
	}
	return s
}

func unique(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// placeholder matches a placeholder such as {AWS::AccountId} or {role:X}.
var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// matchRegexp turns a resolved value into a regular expression: "*" and
// "?" are IAM's wildcards, a placeholder is any value.
func matchRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	rest := pattern
	for rest != "" {
		if loc := placeholder.FindStringIndex(rest); loc != nil && loc[0] == 0 {
			b.WriteString(".*")
			rest = rest[loc[1]:]
			continue
		}
		c := rest[0]
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
		rest = rest[1:]
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// overlap reports whether two resolved values may name the same thing. ARNs
// are compared part by part (partition, service, Region, account,
// resource); two parts overlap when one matches the other, or, with
// wildcards on both sides, when their literal beginnings and endings agree.
// This over-approximates, which is what the checks want.
func overlap(a, b string) bool {
	// A placeholder ({AWS::AccountId}) is one part: its colons are no
	// separators.
	a, b = colonFree(a), colonFree(b)
	pa, pb := strings.SplitN(a, ":", 6), strings.SplitN(b, ":", 6)
	if len(pa) != len(pb) {
		return partOverlap(a, b)
	}
	for i := range pa {
		if !partOverlap(pa[i], pb[i]) {
			return false
		}
	}
	return true
}

// colonFree writes the colons of a value's placeholders as underscores.
func colonFree(s string) string {
	return placeholder.ReplaceAllStringFunc(s, func(p string) string { return strings.ReplaceAll(p, ":", "_") })
}

func partOverlap(a, b string) bool {
	wa, wb := hasWildcard(a), hasWildcard(b)
	switch {
	case !wa && !wb:
		return a == b
	case !wb:
		return matchRegexp(a).MatchString(b)
	case !wa:
		return matchRegexp(b).MatchString(a)
	}
	la, lb := literalEnds(a), literalEnds(b)
	prefixOK := strings.HasPrefix(la[0], lb[0]) || strings.HasPrefix(lb[0], la[0])
	suffixOK := strings.HasSuffix(la[1], lb[1]) || strings.HasSuffix(lb[1], la[1])
	return prefixOK && suffixOK
}

// hasWildcard reports whether a value holds a wildcard or a placeholder.
func hasWildcard(s string) bool {
	return strings.ContainsAny(s, "*?") || placeholder.MatchString(s)
}

// literalEnds returns the literal text before the first wildcard or
// placeholder, and after the last one.
func literalEnds(s string) [2]string {
	marked := placeholder.ReplaceAllString(s, "*")
	first := strings.IndexAny(marked, "*?")
	last := strings.LastIndexAny(marked, "*?")
	if first < 0 {
		return [2]string{marked, marked}
	}
	return [2]string{marked[:first], marked[last+1:]}
}
