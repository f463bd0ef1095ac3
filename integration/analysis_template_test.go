package integration

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/responder-ir/responder/cloudformation"
)

// analysisCondition is the condition of the forensics template under which
// the investigation environment exists.
const analysisCondition = "HasAnalysisEnvironment"

// analysisNetworkIDs are the resources of the analysis network the test
// expects: a template without one of them fails before any deployment.
var analysisNetworkIDs = []string{
	"AnalysisVpc", "AnalysisSubnetA", "AnalysisSubnetB", "AnalysisRouteTable",
	"AnalysisSubnetARoutes", "AnalysisSubnetBRoutes", "AnalysisSecurityGroup",
	"AnalysisEndpointSecurityGroup", "AnalysisSsmEndpoint", "AnalysisSsmMessagesEndpoint",
	"AnalysisEc2MessagesEndpoint", "AnalysisS3Endpoint", "AnalysisFlowLog",
}

// networkTemplate is the part of the forensics template that makes the
// analysis network, ready to deploy on its own.
type networkTemplate struct {
	Parameters map[string]map[string]any
	Conditions map[string]any
	Resources  map[string]map[string]any
	// StandIns are the parameters that stand in for what lies outside the
	// network (a bucket's ARN): name -> what it replaces.
	StandIns map[string]string
}

// analysisNetwork selects, from the forensics template, every AWS::EC2::*
// resource under the investigation environment's condition (so that an
// internet gateway, a route or an ingress rule added there is deployed
// too), plus the analysis resources they depend on (Ref, Fn::GetAtt,
// Fn::Sub, DependsOn), with the parameters and conditions they use. A
// reference to a resource outside that set becomes a parameter (StandIns):
// Ref X becomes parameter X, Fn::GetAtt X.Attr (also in Fn::Sub) parameter
// XAttr; a DependsOn on such a resource is dropped. Fn::Cidr, which moto's
// CloudFormation does not evaluate, is evaluated here as CloudFormation
// does, from the parameter values given.
func analysisNetwork(t *cloudformation.Template, values map[string]string) (*networkTemplate, error) {
	for _, id := range analysisNetworkIDs {
		r, ok := t.Resources[id]
		if !ok || r.Condition != analysisCondition {
			return nil, fmt.Errorf("%s: no resource %s under condition %s", t.Path, id, analysisCondition)
		}
	}
	selected := map[string]bool{}
	var queue []string
	for id, r := range t.Resources {
		if r.Condition == analysisCondition && strings.HasPrefix(r.Type, "AWS::EC2::") {
			queue = append(queue, id)
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if selected[id] {
			continue
		}
		selected[id] = true
		r := t.Resources[id]
		for _, dep := range append(resourceRefs(r.Properties), r.DependsOn...) {
			if d, ok := t.Resources[dep]; ok && d.Condition == analysisCondition && !selected[dep] {
				queue = append(queue, dep)
			}
		}
	}
	n := &networkTemplate{Parameters: map[string]map[string]any{}, Conditions: map[string]any{},
		Resources: map[string]map[string]any{}, StandIns: map[string]string{}}
	rw := rewriter{t: t, selected: selected, n: n, values: values}
	for id := range selected {
		r := t.Resources[id]
		props, err := rw.value(r.Properties)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		out := map[string]any{"Type": r.Type, "Properties": props}
		if r.Condition != "" {
			if err := rw.condition(r.Condition); err != nil {
				return nil, err
			}
			out["Condition"] = r.Condition
		}
		var deps []string
		for _, d := range r.DependsOn {
			if selected[d] {
				deps = append(deps, d)
			}
		}
		if len(deps) > 0 {
			out["DependsOn"] = deps
		}
		n.Resources[id] = out
	}
	return n, nil
}

// JSON is the template body.
func (n *networkTemplate) JSON() (string, error) {
	b, err := json.Marshal(map[string]any{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Description":              "the analysis network of cloudformation/forensics-account.yaml (integration test)",
		"Parameters":               n.Parameters,
		"Conditions":               n.Conditions,
		"Resources":                n.Resources,
	})
	return string(b), err
}

// ParameterNames returns the template's parameters, sorted.
func (n *networkTemplate) ParameterNames() []string {
	names := make([]string, 0, len(n.Parameters))
	for p := range n.Parameters {
		names = append(names, p)
	}
	sort.Strings(names)
	return names
}

// subVar matches a ${Name} or ${Name.Attr} of Fn::Sub (not ${!Literal}).
var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// resourceRefs returns the names v refers to through Ref, Fn::GetAtt and
// Fn::Sub (pseudo parameters excluded; parameters included, callers look
// them up).
func resourceRefs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok && len(x) == 1 {
			return []string{ref}
		}
		if att, ok := x["Fn::GetAtt"].([]any); ok && len(x) == 1 && len(att) == 2 {
			name, _ := att[0].(string)
			return []string{name}
		}
		if sub, ok := x["Fn::Sub"]; ok && len(x) == 1 {
			s, vars := subParts(sub)
			for _, m := range subVar.FindAllStringSubmatch(s, -1) {
				name, _, _ := strings.Cut(m[1], ".")
				if _, local := vars[name]; !local && !strings.HasPrefix(name, "AWS::") {
					out = append(out, name)
				}
			}
			return append(out, resourceRefs(vars)...)
		}
		for _, e := range x {
			out = append(out, resourceRefs(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, resourceRefs(e)...)
		}
	}
	return out
}

// subParts splits an Fn::Sub argument into its string and its variables.
func subParts(sub any) (string, map[string]any) {
	if s, ok := sub.(string); ok {
		return s, nil
	}
	if l, ok := sub.([]any); ok && len(l) == 2 {
		s, _ := l[0].(string)
		vars, _ := l[1].(map[string]any)
		return s, vars
	}
	return "", nil
}

// rewriter copies the selected resources' properties, turning references
// to resources outside the selection into stand-in parameters.
type rewriter struct {
	t        *cloudformation.Template
	selected map[string]bool
	n        *networkTemplate
	values   map[string]string
}

func (rw rewriter) value(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if out, done, err := rw.intrinsic(x); done {
				return out, err
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := rw.value(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := rw.value(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}

// intrinsic rewrites Ref, Fn::GetAtt, Fn::Sub, Fn::If and Fn::Cidr; done is
// false for any other mapping.
func (rw rewriter) intrinsic(x map[string]any) (out any, done bool, err error) {
	if ref, ok := x["Ref"].(string); ok {
		return map[string]any{"Ref": rw.name(ref, "")}, true, nil
	}
	if att, ok := x["Fn::GetAtt"].([]any); ok && len(att) == 2 {
		res, _ := att[0].(string)
		attr, _ := att[1].(string)
		if rw.selected[res] {
			return x, true, nil
		}
		return map[string]any{"Ref": rw.name(res, attr)}, true, nil
	}
	if sub, ok := x["Fn::Sub"]; ok {
		s, vars := subParts(sub)
		s = subVar.ReplaceAllStringFunc(s, func(m string) string {
			name, attr, _ := strings.Cut(m[2:len(m)-1], ".")
			if _, local := vars[name]; local || strings.HasPrefix(name, "AWS::") || (rw.selected[name] && attr != "") {
				return m
			}
			return "${" + rw.name(name, attr) + "}"
		})
		if vars == nil {
			return map[string]any{"Fn::Sub": s}, true, nil
		}
		v, err := rw.value(vars)
		return map[string]any{"Fn::Sub": []any{s, v}}, true, err
	}
	if cond, ok := x["Fn::If"].([]any); ok && len(cond) == 3 {
		name, _ := cond[0].(string)
		if err := rw.condition(name); err != nil {
			return nil, true, err
		}
	}
	if args, ok := x["Fn::Cidr"].([]any); ok {
		list, err := rw.cidr(args)
		return list, true, err
	}
	return nil, false, nil
}

// name returns the name a reference has in the network template: a selected
// resource or a pseudo parameter keeps its name, a parameter of the
// template is copied, anything else becomes a stand-in parameter.
func (rw rewriter) name(ref, attr string) string {
	switch {
	case strings.HasPrefix(ref, "AWS::"), rw.selected[ref] && attr == "":
		return ref
	}
	if p, ok := rw.t.Parameters[ref]; ok && attr == "" {
		rw.n.Parameters[ref] = p
		return ref
	}
	name := ref + strings.ReplaceAll(attr, ".", "")
	what := ref
	if attr != "" {
		what += "." + attr
	}
	rw.n.StandIns[name] = what
	rw.n.Parameters[name] = map[string]any{"Type": "String", "Description": "stand-in for " + what}
	return name
}

// condition copies a condition and the parameters it uses.
func (rw rewriter) condition(name string) error {
	expr, ok := rw.t.Conditions[name]
	if !ok {
		return fmt.Errorf("no condition %s", name)
	}
	for _, ref := range resourceRefs(expr) {
		if p, ok := rw.t.Parameters[ref]; ok {
			rw.n.Parameters[ref] = p
		}
	}
	rw.n.Conditions[name] = expr
	return nil
}

// cidr evaluates Fn::Cidr [ipBlock, count, cidrBits]: count blocks of
// 2^cidrBits addresses each, in order from the start of ipBlock.
func (rw rewriter) cidr(args []any) ([]any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("Fn::Cidr %v: want [ipBlock, count, cidrBits]", args)
	}
	block, ok := args[0].(string)
	if ref, isRef := args[0].(map[string]any); isRef {
		name, _ := ref["Ref"].(string)
		rw.name(name, "")
		block, ok = rw.values[name]
		if !ok {
			if def, hasDefault := rw.t.Parameters[name]["Default"].(string); hasDefault {
				block, ok = def, true
			}
		}
	}
	count, okCount := number(args[1])
	bits, okBits := number(args[2])
	prefix, err := netip.ParsePrefix(block)
	if !ok || !okCount || !okBits || err != nil || !prefix.Addr().Is4() || bits < 1 || bits > 32-prefix.Bits() {
		return nil, fmt.Errorf("Fn::Cidr %v: cannot evaluate (block %q)", args, block)
	}
	size := uint32(1) << bits
	start := prefix.Masked().Addr().As4()
	base := uint32(start[0])<<24 | uint32(start[1])<<16 | uint32(start[2])<<8 | uint32(start[3])
	var out []any
	for i := 0; i < count; i++ {
		a := base + uint32(i)*size
		addr := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		p := netip.PrefixFrom(addr, 32-bits)
		if !prefix.Contains(addr) {
			return nil, fmt.Errorf("Fn::Cidr %v: %d blocks of /%d do not fit in %s", args, count, 32-bits, prefix)
		}
		out = append(out, p.String())
	}
	return out, nil
}

// number reads an int or a numeric string (CloudFormation takes both).
func number(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case string:
		var n int
		_, err := fmt.Sscanf(x, "%d", &n)
		return n, err == nil
	}
	return 0, false
}

// TestAnalysisNetworkExtraction checks the extraction without moto: the
// subnets' Fn::Cidr evaluated as CloudFormation does, references outside
// the network turned into stand-in parameters, no DependsOn left on a
// resource that is not deployed.
func TestAnalysisNetworkExtraction(t *testing.T) {
	tmpl, err := cloudformation.Load("../cloudformation/forensics-account.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n, err := analysisNetwork(tmpl, map[string]string{"AnalysisVpcCidr": "10.7.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"AnalysisSubnetA": "10.7.0.0/20", "AnalysisSubnetB": "10.7.16.0/20"} {
		sel, _ := n.Resources[id]["Properties"].(map[string]any)["CidrBlock"].(map[string]any)["Fn::Select"].([]any)
		if len(sel) != 2 || !reflect.DeepEqual(sel[1], []any{"10.7.0.0/20", "10.7.16.0/20"}) {
			t.Errorf("%s: CidrBlock %v, want a selection from [10.7.0.0/20 10.7.16.0/20] (%s)", id, n.Resources[id]["Properties"], want)
		}
	}
	if want := map[string]string{"EvidenceBucketArn": "EvidenceBucket.Arn", "AccessLogBucketArn": "AccessLogBucket.Arn"}; !reflect.DeepEqual(n.StandIns, want) {
		t.Errorf("stand-ins %v, want %v", n.StandIns, want)
	}
	resources, err := json.Marshal(n.Resources)
	if err != nil {
		t.Fatal(err)
	}
	body := string(resources)
	for _, outside := range []string{"EvidenceBucket.Arn", "AccessLogBucket.Arn", "AccessLogBucketPolicy", "AnalysisRole", "Fn::Cidr"} {
		if strings.Contains(body, outside) {
			t.Errorf("the network's resources still name %s", outside)
		}
	}
	for _, p := range []string{"AnalysisEnvironment", "AnalysisVpcCidr", "EvidenceBucketArn", "AccessLogBucketArn"} {
		if _, ok := n.Parameters[p]; !ok {
			t.Errorf("the network template has no parameter %s (has %v)", p, n.ParameterNames())
		}
	}
	if _, err := (rewriter{t: tmpl, n: n}).cidr([]any{"10.7.0.0/16", 17, 12}); err == nil {
		t.Error("Fn::Cidr of 17 /20 blocks in a /16: no error")
	}
}
