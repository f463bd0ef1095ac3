package cloudformation

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

// What the forensics stack wires to the responder Lambda function
// (lambda/README.md): its configuration, its API, the events that invoke it,
// and what its role may reach.

// A deployment for the tests: parameter values besides the defaults, and the
// pseudo parameters.
var (
	testParameters = map[string]string{
		"AllowedAccounts":  "444455556666,777788889999",
		"ExternalId":       "responder-external-id-0001",
		"LambdaCodeBucket": "artifacts-111122223333",
		"LambdaCodeKey":    "responder/lambda-v1.zip",
	}
	testPseudo = map[string]string{
		"AWS::Partition": "aws", "AWS::Region": "eu-west-3", "AWS::AccountId": "111122223333",
		"AWS::StackName": "responder-forensics", "AWS::URLSuffix": "amazonaws.com",
	}
)

// resolver evaluates the intrinsic functions of a template for one
// deployment, to the values CloudFormation would give (resources get
// realistic stand-in physical IDs). It knows only what the tests need and
// fails on anything else.
type resolver struct {
	tmpl   *Template
	params map[string]string
}

func newResolver(t *testing.T, tmpl *Template, overrides map[string]string) *resolver {
	t.Helper()
	r := &resolver{tmpl: tmpl, params: map[string]string{}}
	for name, p := range tmpl.Parameters {
		if d, ok := p["Default"]; ok {
			r.params[name] = fmt.Sprint(d)
		}
	}
	for _, values := range []map[string]string{testParameters, overrides} {
		for name, v := range values {
			if _, ok := tmpl.Parameters[name]; !ok {
				t.Fatalf("no parameter %s in %s", name, tmpl.Path)
			}
			r.params[name] = v
		}
	}
	for name := range tmpl.Parameters {
		if _, ok := r.params[name]; !ok {
			t.Fatalf("parameter %s has no default and no test value", name)
		}
	}
	return r
}

func (r *resolver) resolve(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int, float64, bool:
		return fmt.Sprint(x), nil
	case map[string]any:
		if len(x) != 1 {
			break
		}
		if name, ok := x["Ref"].(string); ok {
			return r.ref(name)
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			return r.getAtt(fmt.Sprint(ga[0]), fmt.Sprint(ga[1]))
		}
		if sub, ok := x["Fn::Sub"].(string); ok {
			return r.sub(sub)
		}
	}
	return "", fmt.Errorf("cannot resolve %v", v)
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

func (r *resolver) sub(s string) (string, error) {
	var firstErr error
	out := subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		var v string
		var err error
		if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			v, err = r.getAtt(res, attr)
		} else {
			v, err = r.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	})
	return out, firstErr
}

func (r *resolver) ref(name string) (string, error) {
	if v, ok := testPseudo[name]; ok {
		return v, nil
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	res, ok := r.tmpl.Resources[name]
	if !ok {
		return "", fmt.Errorf("Ref %s: no such parameter or resource", name)
	}
	p := testPseudo
	switch res.Type {
	case "AWS::S3::Bucket":
		return strings.ToLower(p["AWS::StackName"] + "-" + name + "-1a2b3c4d5e6f"), nil
	case "AWS::SNS::Topic":
		return fmt.Sprintf("arn:aws:sns:%s:%s:%s-%s-A1B2C3D4E5F6", p["AWS::Region"], p["AWS::AccountId"], p["AWS::StackName"], name), nil
	case "AWS::StepFunctions::StateMachine":
		smName, err := r.resolve(res.Properties["StateMachineName"])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", p["AWS::Region"], p["AWS::AccountId"], smName), nil
	case "AWS::Logs::LogGroup":
		return r.resolve(res.Properties["LogGroupName"])
	}
	return "", fmt.Errorf("Ref %s: no stand-in value for a %s", name, res.Type)
}

func (r *resolver) getAtt(resource, attr string) (string, error) {
	res, ok := r.tmpl.Resources[resource]
	if !ok {
		return "", fmt.Errorf("GetAtt %s.%s: no such resource", resource, attr)
	}
	p := testPseudo
	switch {
	case res.Type == "AWS::KMS::Key" && attr == "Arn":
		return fmt.Sprintf("arn:aws:kms:%s:%s:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", p["AWS::Region"], p["AWS::AccountId"]), nil
	case res.Type == "AWS::Lambda::Function" && attr == "Arn":
		name, err := r.resolve(res.Properties["FunctionName"])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", p["AWS::Region"], p["AWS::AccountId"], name), nil
	}
	return "", fmt.Errorf("GetAtt %s.%s: no stand-in value for a %s", resource, attr, res.Type)
}

// functionEnvironment resolves the function's environment variables for a
// deployment.
func functionEnvironment(t *testing.T, tmpl *Template, overrides map[string]string) map[string]string {
	t.Helper()
	fn, ok := tmpl.Resources["ResponderFunction"]
	if !ok || fn.Type != "AWS::Lambda::Function" {
		t.Fatal("no AWS::Lambda::Function ResponderFunction")
	}
	vars, ok := get(fn.Properties, "Environment", "Variables").(map[string]any)
	if !ok {
		t.Fatal("ResponderFunction has no Environment.Variables")
	}
	r := newResolver(t, tmpl, overrides)
	env := map[string]string{}
	for name, v := range vars {
		s, err := r.resolve(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		env[name] = s
	}
	return env
}

// The function's environment is exactly what responder/trigger reads
// (AWS_REGION aside, which Lambda sets), and it loads without error into the
// configuration the stack means: the state machine ARN built with !Sub is the
// stack's state machine, GuardDuty is off unless the parameter turns it on.
func TestLambdaEnvironment(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	resolve := newResolver(t, tmpl, nil)
	stateMachineARN, err := resolve.ref("ResponseStateMachine")
	if err != nil {
		t.Fatal(err)
	}
	topicARN, _ := resolve.ref("NotificationTopic")
	bucket, _ := resolve.ref("EvidenceBucket")
	staging, _ := resolve.ref("StagingBucket")
	keyARN, _ := resolve.getAtt("EvidenceKey", "Arn")
	signingKeyARN, _ := resolve.getAtt("SigningKey", "Arn")

	cases := []struct {
		name      string
		overrides map[string]string
		check     func(t *testing.T, c trigger.Config)
	}{
		{"defaults", nil, func(t *testing.T, c trigger.Config) {
			want := trigger.Config{
				EvidenceBucket:       bucket,
				EvidenceKMSKey:       keyARN,
				TopicARN:             topicARN,
				StateMachineARN:      stateMachineARN,
				HomePartition:        "aws",
				HomeAccount:          testPseudo["AWS::AccountId"],
				AllowedAccounts:      []string{"444455556666", "777788889999"},
				MemberRoleName:       trigger.DefaultMemberRoleName,
				ExternalID:           testParameters["ExternalId"],
				GuardDutyEnabled:     false,
				GuardDutyMinSeverity: trigger.DefaultGuardDutyMinSeverity,
				LockWindow:           trigger.DefaultLockWindow,
				Region:               testPseudo["AWS::Region"],
				LogLevel:             c.LogLevel, // info: checked below
				ForensicsKMSKey:      keyARN,
				ProtectedTag:         responder.DefaultProtectedTag,
				BlastRadius:          evidence.DefaultBlastRadius,
				SigningKey:           signingKeyARN,
				Collection: trigger.CollectionConfig{
					ForensicProfile: "responder/" + trigger.DefaultMemberRoleName + "-forensic-ssm", StagingBucket: staging,
					ActionPlaybooks: map[string]string{"ResponderCapture": "collect"},
				},
				Fleet: trigger.FleetConfig{Concurrency: trigger.DefaultFleetConcurrency, DistributedFrom: trigger.DefaultFleetDistributedFrom},
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("configuration\n got %+v\nwant %+v", c, want)
			}
			if c.LogLevel.String() != "INFO" {
				t.Errorf("log level %v, want INFO", c.LogLevel)
			}
		}},
		{"GuardDuty on, any account", map[string]string{
			"GuardDutyFindings": "true", "GuardDutyMinSeverity": "4.5", "AllowedAccounts": "*",
			"LockWindow": "1h30m", "LogLevel": "debug", "MemberRoleName": "ir-member",
			"SourceKMSKeyAlias": "responder-evidence", "ProtectedTag": "team:keep", "BlastRadius": "50",
		}, func(t *testing.T, c trigger.Config) {
			if got := c.SourceKMSKeyARN("444455556666", "eu-west-1"); got != "arn:aws:kms:eu-west-1:444455556666:alias/responder-evidence" {
				t.Errorf("source key %s", got)
			}
			if !c.GuardDutyEnabled || c.GuardDutyMinSeverity != 4.5 {
				t.Errorf("GuardDuty enabled %v, threshold %v; want true, 4.5", c.GuardDutyEnabled, c.GuardDutyMinSeverity)
			}
			if !reflect.DeepEqual(c.AllowedAccounts, []string{trigger.AnyAccount}) || c.LockWindow.String() != "1h30m0s" ||
				c.LogLevel.String() != "DEBUG" || c.MemberRoleName != "ir-member" || c.ProtectedTag != "team:keep" || c.BlastRadius != 50 {
				t.Errorf("configuration %+v", c)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := functionEnvironment(t, tmpl, tc.overrides)
			read := map[string]bool{}
			getenv := func(name string) string {
				read[name] = true
				if name == trigger.EnvRegion {
					return testPseudo["AWS::Region"] // set by Lambda
				}
				return env[name]
			}
			cfg, err := trigger.LoadConfig(getenv)
			if err != nil {
				t.Fatalf("trigger.LoadConfig with the stack's environment: %v", err)
			}
			for name := range env {
				if !read[name] {
					t.Errorf("ResponderFunction sets %s, which responder/trigger does not read", name)
				}
			}
			var unset []string
			for name := range read {
				if _, ok := env[name]; !ok && name != trigger.EnvRegion {
					unset = append(unset, name)
				}
			}
			sort.Strings(unset)
			if len(unset) > 0 {
				t.Errorf("ResponderFunction does not set %v (responder/trigger reads them)", unset)
			}
			tc.check(t, cfg)
		})
	}
}

// apiRoutes returns the routes of a REST API of the template, "METHOD
// /path" -> the method resource, following each method's resource up to the
// API's root.
func apiRoutes(t *testing.T, tmpl *Template, apiID string) map[string]Resource {
	t.Helper()
	pathOf := func(resourceID any) string {
		var parts []string
		for range 10 {
			if ga, _ := get(resourceID, "Fn::GetAtt").([]any); reflect.DeepEqual(ga, []any{apiID, "RootResourceId"}) {
				return "/" + strings.Join(parts, "/")
			}
			id, _ := get(resourceID, "Ref").(string)
			res, ok := tmpl.Resources[id]
			if !ok || res.Type != "AWS::ApiGateway::Resource" || !refersTo(res.Properties["RestApiId"], apiID) {
				t.Fatalf("API resource %v is not an AWS::ApiGateway::Resource of %s", resourceID, apiID)
			}
			parts = append([]string{str(res.Properties["PathPart"])}, parts...)
			resourceID = res.Properties["ParentId"]
		}
		t.Fatalf("API resource %v: path deeper than 10", resourceID)
		return ""
	}
	routes := map[string]Resource{}
	for _, m := range tmpl.ResourcesOfType("AWS::ApiGateway::Method") {
		if refersTo(m.Properties["RestApiId"], apiID) {
			routes[str(m.Properties["HttpMethod"])+" "+pathOf(m.Properties["ResourceId"])] = m
		}
	}
	return routes
}

// The API serves exactly POST /cases, GET /cases/{id}, POST
// /cases/{id}/release and GET /fleets/{id}, each with AWS_IAM
// authorization and a Lambda proxy integration to the function, deployed,
// allowed to the responder role by the API's resource policy, and allowed to
// invoke the function for that route only.
func TestApiRoutes(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	routes := apiRoutes(t, tmpl, "ResponderApi")
	var got []string
	for r := range routes {
		got = append(got, r)
	}
	sort.Strings(got)
	if want := []string{"GET /cases/{id}", "GET /fleets/{id}", "POST /cases", "POST /cases/{id}/release"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("routes %v, want %v (lambda/README.md)", got, want)
	}

	var policy []Statement
	for _, d := range tmpl.Documents() {
		if d.Resource == "ResponderApi" {
			policy = append(policy, d.Statements...)
		}
	}
	var permissions []Resource
	for _, p := range tmpl.ResourcesOfType("AWS::Lambda::Permission") {
		if p.Properties["Principal"] == "apigateway.amazonaws.com" {
			permissions = append(permissions, p)
		}
	}
	var deployments []Resource
	for _, d := range tmpl.ResourcesOfType("AWS::ApiGateway::Deployment") {
		if refersTo(d.Properties["RestApiId"], "ResponderApi") {
			deployments = append(deployments, d)
		}
	}
	if len(deployments) != 1 {
		t.Fatalf("%d deployments of ResponderApi, want 1", len(deployments))
	}

	for route, m := range routes {
		method, path, _ := strings.Cut(route, " ")
		// The execute-api resource path of the route: {id} is any segment.
		arnPath := "/" + method + regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "*")
		if m.Properties["AuthorizationType"] != "AWS_IAM" {
			t.Errorf("%s: AuthorizationType %v, want AWS_IAM", route, m.Properties["AuthorizationType"])
		}
		in, _ := m.Properties["Integration"].(map[string]any)
		uri, _ := get(in, "Uri", "Fn::Sub").(string)
		if in["Type"] != "AWS_PROXY" || in["IntegrationHttpMethod"] != "POST" ||
			!strings.HasSuffix(uri, ":lambda:path/2015-03-31/functions/${ResponderFunction.Arn}/invocations") {
			t.Errorf("%s: integration %v is not a Lambda proxy integration of ResponderFunction", route, in)
		}
		if !contains(deployments[0].DependsOn, m.ID) {
			t.Errorf("%s: deployment %s does not depend on %s (it could deploy without the route)", route, deployments[0].ID, m.ID)
		}
		allowed := false
		for _, s := range policy {
			if s.Effect == "Allow" && contains(Strings(s.Resources), "execute-api:/*"+arnPath) &&
				reflect.DeepEqual(get(s.Principal, "AWS", "Fn::GetAtt"), []any{"ResponderRole", "Arn"}) {
				allowed = true
			}
		}
		if !allowed {
			t.Errorf("%s: the API's resource policy does not allow the responder role execute-api:/*%s", route, arnPath)
		}
		permitted := false
		for _, p := range permissions {
			src, _ := get(p.Properties, "SourceArn", "Fn::Sub").(string)
			if src == "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${ResponderApi}/*"+arnPath &&
				reflect.DeepEqual(get(p.Properties, "FunctionName", "Fn::GetAtt"), []any{"ResponderFunction", "Arn"}) &&
				p.Properties["Action"] == "lambda:InvokeFunction" {
				permitted = true
			}
		}
		if !permitted {
			t.Errorf("%s: no AWS::Lambda::Permission lets API Gateway invoke ResponderFunction for .../*%s", route, arnPath)
		}
	}
	for _, s := range policy {
		if s.Effect == "Allow" {
			for _, r := range Strings(s.Resources) {
				if !strings.HasPrefix(r, "execute-api:/*/POST/cases") && !strings.HasPrefix(r, "execute-api:/*/GET/cases/") && r != "execute-api:/*/GET/fleets/*" {
					t.Errorf("the API's resource policy allows %s, which is no route", r)
				}
			}
		}
	}
}

// The Security Hub custom action and (when enabled) GuardDuty findings
// invoke the function with the whole event, each through a rule that has a
// Lambda permission for events.amazonaws.com scoped to that rule; the
// GuardDuty rule exists only when its parameter, off by default, is "true".
func TestEventRulesInvokeFunction(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	rules := map[string]struct {
		source, detailType string
		condition          string
	}{
		"RespondActionRule":    {"aws.securityhub", "Security Hub Findings - Custom Action", ""},
		"GuardDutyFindingRule": {"aws.guardduty", "GuardDuty Finding", "RespondToGuardDuty"},
	}
	for id, want := range rules {
		t.Run(id, func(t *testing.T) {
			rule, ok := tmpl.Resources[id]
			if !ok || rule.Type != "AWS::Events::Rule" {
				t.Fatalf("no AWS::Events::Rule %s", id)
			}
			if rule.Condition != want.condition {
				t.Errorf("Condition %q, want %q", rule.Condition, want.condition)
			}
			pattern, _ := rule.Properties["EventPattern"].(map[string]any)
			if !reflect.DeepEqual(Strings(pattern["source"]), []string{want.source}) ||
				!reflect.DeepEqual(Strings(pattern["detail-type"]), []string{want.detailType}) {
				t.Errorf("EventPattern %v does not match %s / %s", pattern, want.source, want.detailType)
			}
			targets, _ := rule.Properties["Targets"].([]any)
			if len(targets) != 1 {
				t.Fatalf("%d targets, want 1 (the function)", len(targets))
			}
			target, _ := targets[0].(map[string]any)
			if !reflect.DeepEqual(get(target, "Arn", "Fn::GetAtt"), []any{"ResponderFunction", "Arn"}) {
				t.Errorf("target %v is not ResponderFunction", target["Arn"])
			}
			for _, k := range []string{"Input", "InputPath", "InputTransformer", "RoleArn"} {
				if target[k] != nil {
					t.Errorf("target has %s: the function needs the whole event, invoked through its resource policy", k)
				}
			}
			var perms []string
			for _, p := range tmpl.ResourcesOfType("AWS::Lambda::Permission") {
				if reflect.DeepEqual(get(p.Properties, "SourceArn", "Fn::GetAtt"), []any{id, "Arn"}) &&
					p.Properties["Principal"] == "events.amazonaws.com" && p.Properties["Action"] == "lambda:InvokeFunction" &&
					reflect.DeepEqual(get(p.Properties, "FunctionName", "Fn::GetAtt"), []any{"ResponderFunction", "Arn"}) {
					perms = append(perms, p.ID)
					if p.Condition != rule.Condition {
						t.Errorf("%s has Condition %q, the rule %q", p.ID, p.Condition, rule.Condition)
					}
				}
			}
			if len(perms) != 1 {
				t.Errorf("%d Lambda permissions for events.amazonaws.com with SourceArn !GetAtt %s.Arn, want 1", len(perms), id)
			}
		})
	}
	if got := get(tmpl.Resources["RespondActionRule"].Properties, "EventPattern", "resources"); !reflect.DeepEqual(got,
		[]any{map[string]any{"Fn::GetAtt": []any{"RespondActionTarget", "ActionTargetArn"}}, map[string]any{"Fn::GetAtt": []any{"CaptureActionTarget", "ActionTargetArn"}}}) {
		t.Errorf("RespondActionRule matches resources %v, want the custom actions' ARNs only", got)
	}
	cond := tmpl.Conditions["RespondToGuardDuty"]
	if want := map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "GuardDutyFindings"}, "true"}}; !reflect.DeepEqual(cond, want) {
		t.Errorf("condition RespondToGuardDuty is %v, want %v", cond, want)
	}
	if d := tmpl.Parameters["GuardDutyFindings"]["Default"]; d != "false" {
		t.Errorf("GuardDutyFindings defaults to %v, want \"false\"", d)
	}
	// Nothing else starts executions: the function does, after its lock.
	for _, rule := range tmpl.ResourcesOfType("AWS::Events::Rule") {
		targets, _ := rule.Properties["Targets"].([]any)
		for _, target := range targets {
			if refersTo(get(target, "Arn"), "ResponseStateMachine") {
				t.Errorf("%s targets the state machine; only the function may start executions", rule.ID)
			}
		}
	}
}

// The Lambda role may start executions of the stack's state machine only,
// read only its executions, and assume only the member role; its
// RESPONDER_STATE_MACHINE_ARN is the same ARN.
func TestLambdaRoleScopes(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	smName, _ := get(tmpl.Resources["ResponseStateMachine"].Properties, "StateMachineName", "Fn::Sub").(string)
	if smName == "" {
		t.Fatal("ResponseStateMachine has no StateMachineName built with !Sub")
	}
	stateMachine := "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + smName
	want := map[string]string{
		"states:StartExecution":           stateMachine,
		"states:DescribeExecution":        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:" + smName + ":*",
		"sts:AssumeRole":                  "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}",
		"securityhub:BatchUpdateFindings": "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:hub/default",
	}
	docs, _, err := tmpl.RoleDocuments("ResponderLambdaRole")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, d := range docs {
		for _, s := range d.Statements {
			for _, a := range s.Actions {
				w, ok := want[a]
				if !ok || s.Effect != "Allow" {
					continue
				}
				found[a] = true
				var got []string
				for _, r := range s.Resources {
					sub, _ := get(r, "Fn::Sub").(string)
					got = append(got, sub)
				}
				if !reflect.DeepEqual(got, []string{w}) {
					t.Errorf("%s: %s is granted on %v, want only %s", d, a, s.Resources, w)
				}
			}
		}
	}
	for a := range want {
		if !found[a] {
			t.Errorf("ResponderLambdaRole is not granted %s", a)
		}
	}
	env, _ := get(tmpl.Resources["ResponderFunction"].Properties, "Environment", "Variables", trigger.EnvStateMachineARN, "Fn::Sub").(string)
	if env != stateMachine {
		t.Errorf("%s is %q, want %q (the state machine the role may start)", trigger.EnvStateMachineARN, env, stateMachine)
	}
	if !refersTo(tmpl.Resources["ResponderLambdaRole"].Properties["RoleName"], "LambdaRoleName") {
		t.Error("ResponderLambdaRole's RoleName is not !Ref LambdaRoleName (the name the member role trusts)")
	}
}
