package cloudformation

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed CloudFormation template. Values are what YAML gives
// (map[string]any, []any, string, bool, int, float64, nil), with every
// short-form intrinsic function in its long form ({"Ref": "X"},
// {"Fn::Sub": "..."}, {"Fn::GetAtt": ["A", "B"]}).
type Template struct {
	Path       string
	Parameters map[string]map[string]any
	Conditions map[string]any // condition name -> its (long-form) expression
	Resources  map[string]Resource
	Outputs    map[string]any // output name -> its (long-form) definition
}

// Resource is one entry of the Resources section.
type Resource struct {
	ID         string // logical ID
	Type       string
	Properties map[string]any
	Metadata   map[string]any
	Condition  string   // the resource's Condition, "" when none
	DependsOn  []string // logical IDs
}

// Load reads and parses a template file.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// Parse parses a template written in YAML (JSON is YAML too).
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	v, err := value(&doc)
	if err != nil {
		return nil, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template is not a mapping")
	}
	t := &Template{Parameters: map[string]map[string]any{}, Conditions: map[string]any{}, Resources: map[string]Resource{}}
	if params, ok := root["Parameters"].(map[string]any); ok {
		for id, p := range params {
			if pm, ok := p.(map[string]any); ok {
				t.Parameters[id] = pm
			}
		}
	}
	if conds, ok := root["Conditions"].(map[string]any); ok {
		t.Conditions = conds
	}
	if outputs, ok := root["Outputs"].(map[string]any); ok {
		t.Outputs = outputs
	}
	resources, ok := root["Resources"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template has no Resources mapping")
	}
	for id, r := range resources {
		rm, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		typ, _ := rm["Type"].(string)
		if typ == "" {
			return nil, fmt.Errorf("resource %s has no Type", id)
		}
		props, _ := rm["Properties"].(map[string]any)
		meta, _ := rm["Metadata"].(map[string]any)
		cond, _ := rm["Condition"].(string)
		t.Resources[id] = Resource{ID: id, Type: typ, Properties: props, Metadata: meta,
			Condition: cond, DependsOn: Strings(rm["DependsOn"])}
	}
	return t, nil
}

// intrinsicTags are the short forms CloudFormation accepts in YAML, mapped to
// their long form key.
var intrinsicTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr", "!FindInMap": "Fn::FindInMap",
	"!GetAtt": "Fn::GetAtt", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue",
	"!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split", "!Sub": "Fn::Sub",
	"!Transform": "Transform", "!And": "Fn::And", "!Equals": "Fn::Equals", "!If": "Fn::If",
	"!Not": "Fn::Not", "!Or": "Fn::Or", "!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

// value converts a YAML node into a plain Go value, turning intrinsic tags
// into their long form.
func value(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return value(n.Content[0])
	case yaml.AliasNode:
		return value(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		key, ok := intrinsicTags[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		var inner any
		if n.Kind == yaml.ScalarNode {
			inner = n.Value
			if key == "Fn::GetAtt" {
				// !GetAtt Resource.Attribute (the attribute may contain dots).
				res, attr, found := strings.Cut(n.Value, ".")
				if !found {
					return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, n.Value)
				}
				inner = []any{res, attr}
			}
		} else {
			// Decode the content without the tag.
			plain := *n
			plain.Tag = ""
			v, err := value(&plain)
			if err != nil {
				return nil, err
			}
			inner = v
		}
		return map[string]any{key: inner}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping key is not a scalar", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			v, err := value(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := value(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}

// ResourcesOfType returns the resources of one type, sorted by logical ID.
func (t *Template) ResourcesOfType(typ string) []Resource {
	var out []Resource
	for _, r := range t.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DocumentKind tells what a policy document governs.
type DocumentKind string

const (
	// IdentityPolicy is attached to a role (inline or managed).
	IdentityPolicy DocumentKind = "identity"
	// TrustPolicy is a role's AssumeRolePolicyDocument.
	TrustPolicy DocumentKind = "trust"
	// KeyPolicy is a KMS key policy, where Resource "*" means the key itself.
	KeyPolicy DocumentKind = "key"
	// ResourcePolicy is any other resource-based policy (bucket, topic, API).
	ResourcePolicy DocumentKind = "resource"
)

// Document is one IAM policy document found in the template.
type Document struct {
	Resource   string // logical ID of the resource that holds it
	Path       string // where in its properties, for messages
	Kind       DocumentKind
	Statements []Statement
}

// Statement is one policy statement. Values behind Fn::If appear once per
// branch: a statement is checked for every deployment the conditions allow.
type Statement struct {
	Sid          string
	Effect       string
	Actions      []string
	NotActions   []string
	Resources    []any // strings, or intrinsic functions that build ARNs
	NotResources bool  // the statement uses NotResource
	// Excluded are the NotResource entries, as Resources.
	Excluded  []any
	Principal any
	Condition any
}

// String names the statement in messages.
func (d Document) String() string { return d.Resource + "." + d.Path }

// Documents returns every policy document in the template: any mapping with
// a Statement key, found anywhere in any resource's properties.
func (t *Template) Documents() []Document {
	var docs []Document
	ids := make([]string, 0, len(t.Resources))
	for id := range t.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := t.Resources[id]
		walk(r.Properties, "Properties", func(path string, m map[string]any) {
			docs = append(docs, Document{
				Resource:   id,
				Path:       path,
				Kind:       kindOf(r.Type, path),
				Statements: statements(m["Statement"]),
			})
		})
	}
	return docs
}

func kindOf(resourceType, path string) DocumentKind {
	switch {
	case resourceType == "AWS::IAM::Role" && strings.HasPrefix(path, "Properties.AssumeRolePolicyDocument"):
		return TrustPolicy
	case resourceType == "AWS::IAM::Role", resourceType == "AWS::IAM::ManagedPolicy",
		resourceType == "AWS::IAM::Policy", resourceType == "AWS::IAM::RolePolicy":
		return IdentityPolicy
	case resourceType == "AWS::KMS::Key":
		return KeyPolicy
	default:
		return ResourcePolicy
	}
}

// walk calls fn for every mapping under v that has a Statement key.
func walk(v any, path string, fn func(path string, m map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["Statement"]; ok {
			fn(path, x)
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walk(x[k], path+"."+k, fn)
		}
	case []any:
		for i, e := range x {
			walk(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// statements expands a Statement value: a single statement or a list, with
// Fn::If branches (at list or statement level) expanded.
func statements(v any) []Statement {
	var out []Statement
	for _, s := range branches(v) {
		switch x := s.(type) {
		case []any:
			for _, e := range x {
				out = append(out, statements(e)...)
			}
		case map[string]any:
			if isIf(x) {
				continue // a malformed Fn::If (branches expands the others)
			}
			st := Statement{
				Sid:        str(x["Sid"]),
				Effect:     str(x["Effect"]),
				Actions:    Strings(x["Action"]),
				NotActions: Strings(x["NotAction"]),
				Principal:  x["Principal"],
				Condition:  x["Condition"],
			}
			_, st.NotResources = x["NotResource"]
			st.Resources = resourceList(x["Resource"])
			st.Excluded = resourceList(x["NotResource"])
			out = append(out, st)
		}
	}
	return out
}

// resourceList expands a Resource or NotResource value: one entry or a
// list, with Fn::If branches expanded.
func resourceList(v any) []any {
	var out []any
	for _, r := range branches(v) {
		if list, ok := r.([]any); ok {
			for _, e := range list {
				out = append(out, branches(e)...)
			}
		} else if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// branches returns the possible values of v: both branches of an Fn::If
// (recursively), nothing for AWS::NoValue, v itself otherwise.
func branches(v any) []any {
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil
		}
		return []any{v}
	}
	if ref, ok := m["Ref"].(string); ok && ref == "AWS::NoValue" && len(m) == 1 {
		return nil
	}
	if isIf(m) {
		args, _ := m["Fn::If"].([]any)
		if len(args) != 3 {
			return []any{v}
		}
		return append(branches(args[1]), branches(args[2])...)
	}
	return []any{v}
}

func isIf(m map[string]any) bool {
	_, ok := m["Fn::If"]
	return ok && len(m) == 1
}

// Strings returns the literal strings of a value that is a string or a list of
// strings, with Fn::If branches expanded. A value built by another intrinsic
// function is returned as "<intrinsic>", so that checks never mistake it for
// a safe literal.
func Strings(v any) []string {
	var out []string
	for _, b := range branches(v) {
		switch x := b.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, e := range x {
				out = append(out, Strings(e)...)
			}
		default:
			out = append(out, "<intrinsic>")
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// get walks nested mappings by key: get(props, "A", "B") is props.A.B.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// refersTo reports whether v is {"Ref": id}.
func refersTo(v any, id string) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 1 && m["Ref"] == id
}

// RoleDocuments returns the identity policies in effect for a role of the
// template: its inline policies, the template's managed policies it lists in
// ManagedPolicyArns, and the AWS::IAM::ManagedPolicy, AWS::IAM::Policy and
// AWS::IAM::RolePolicy resources that name it. A managed policy that is not
// defined in the template (an AWS managed policy, an imported ARN) cannot be
// checked and is reported in unchecked.
func (t *Template) RoleDocuments(roleID string) (docs []Document, unchecked []string, err error) {
	role, ok := t.Resources[roleID]
	if !ok || role.Type != "AWS::IAM::Role" {
		return nil, nil, fmt.Errorf("%s: no AWS::IAM::Role %s", t.Path, roleID)
	}
	all := t.Documents()
	byResource := func(id, pathPrefix string) {
		for _, d := range all {
			if d.Resource == id && strings.HasPrefix(d.Path, pathPrefix) {
				docs = append(docs, d)
			}
		}
	}
	byResource(roleID, "Properties.Policies")
	for _, arn := range branchesList(role.Properties["ManagedPolicyArns"]) {
		if m, ok := arn.(map[string]any); ok {
			if id, ok := m["Ref"].(string); ok && t.Resources[id].Type == "AWS::IAM::ManagedPolicy" {
				byResource(id, "Properties.PolicyDocument")
				continue
			}
		}
		unchecked = append(unchecked, fmt.Sprintf("%s lists managed policy %v, which is not defined in the template", roleID, arn))
	}
	for _, typ := range []string{"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"} {
		for _, r := range t.ResourcesOfType(typ) {
			for _, ref := range branchesList(r.Properties["Roles"]) {
				if refersTo(ref, roleID) {
					byResource(r.ID, "Properties.PolicyDocument")
				}
			}
		}
	}
	for _, r := range t.ResourcesOfType("AWS::IAM::RolePolicy") {
		if refersTo(r.Properties["RoleName"], roleID) {
			byResource(r.ID, "Properties.PolicyDocument")
		}
	}
	return docs, unchecked, nil
}

// branchesList flattens a list value whose items (or itself) may be Fn::If.
func branchesList(v any) []any {
	var out []any
	for _, b := range branches(v) {
		if list, ok := b.([]any); ok {
			for _, e := range list {
				out = append(out, branches(e)...)
			}
		} else {
			out = append(out, b)
		}
	}
	return out
}

// AllowedActions returns the actions the role's identity policies allow, as
// written (case preserved), sorted and without duplicates.
func (t *Template) AllowedActions(roleID string) ([]string, error) {
	docs, unchecked, err := t.RoleDocuments(roleID)
	if err != nil {
		return nil, err
	}
	if len(unchecked) > 0 {
		return nil, fmt.Errorf("%s: %s", t.Path, strings.Join(unchecked, "; "))
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range docs {
		for _, s := range d.Statements {
			if s.Effect != "Allow" {
				continue
			}
			for _, a := range s.Actions {
				if !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
