package cloudformation

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// The state machine's role holds exactly what its definition needs, each
// on the resource it needs it on: lambda:InvokeFunction for the lambda:invoke
// tasks (on the stack's function); for a distributed Map (a fleet's lanes),
// states:StartExecution on the state machine itself and
// states:DescribeExecution, states:StopExecution on its Map Runs' child
// executions (the Step Functions guide, "IAM policies for using Distributed
// Map states"); s3:GetObject for an ItemReader (none: the lanes come from
// the state's data).
func TestStateMachineRoleCoverage(t *testing.T) {
	def := loadDefinition(t)
	tmpl := load(t, forensicsTemplate)
	granted := stateMachineGrants(t, tmpl)
	if p := roleProblems(stateMachineNeeds(def), granted); len(p) > 0 {
		t.Errorf("StateMachineRole: %s", strings.Join(p, "; "))
	}
}

// The check fails both ways: without the distributed Map the role holds
// grants nothing needs; with a grant taken away, the Map lacks it.
func TestStateMachineRoleCoverageFailsBothWays(t *testing.T) {
	def := loadDefinition(t)
	granted := stateMachineGrants(t, load(t, forensicsTemplate))
	states := def["States"].(map[string]any)
	inline := cloneJSON(def)
	dm := inline["States"].(map[string]any)["FleetLanesDistributed"].(map[string]any)
	dm["ItemProcessor"].(map[string]any)["ProcessorConfig"] = map[string]any{"Mode": "INLINE"}
	if p := roleProblems(stateMachineNeeds(inline), granted); !containsText(p, "states:StartExecution, which the definition does not need") {
		t.Errorf("a surplus grant is not found: %v", p)
	}
	less := map[string][]string{}
	for a, r := range granted {
		if a != "states:StopExecution" {
			less[a] = r
		}
	}
	if p := roleProblems(stateMachineNeeds(def), less); !containsText(p, "lacks states:StopExecution") {
		t.Errorf("a missing grant is not found: %v", p)
	}
	if _, ok := states["FleetLanesDistributed"]; !ok {
		t.Fatal("no FleetLanesDistributed state: the test no longer tests")
	}
}

const stateMachineARNSub = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-response"

// stateMachineNeeds lists the actions a definition needs, with the
// resources (as !Sub strings, !GetAtt as "Fn::GetAtt:R.A"), sorted.
func stateMachineNeeds(def map[string]any) map[string][]string {
	need := map[string][]string{}
	add := func(action string, resources ...string) {
		for _, r := range resources {
			if !contains(need[action], r) {
				need[action] = append(need[action], r)
			}
		}
		sort.Strings(need[action])
	}
	var walk func(states map[string]any)
	walk = func(states map[string]any) {
		for _, v := range states {
			st := v.(map[string]any)
			if st["Resource"] == "arn:aws:states:::lambda:invoke" {
				add("lambda:InvokeFunction", "Fn::GetAtt:ResponderFunction.Arn", "${ResponderFunction.Arn}:*")
			}
			proc, _ := st["ItemProcessor"].(map[string]any)
			if proc == nil {
				continue
			}
			if cfg, _ := proc["ProcessorConfig"].(map[string]any); cfg["Mode"] == "DISTRIBUTED" {
				add("states:StartExecution", stateMachineARNSub)
				executions := strings.Replace(stateMachineARNSub, ":stateMachine:", ":execution:", 1) + "/*"
				add("states:DescribeExecution", executions)
				add("states:StopExecution", executions)
			}
			if st["ItemReader"] != nil {
				add("s3:GetObject", "ItemReader")
			}
			walk(proc["States"].(map[string]any))
		}
	}
	walk(def["States"].(map[string]any))
	return need
}

// stateMachineGrants reads the role's allowed actions and their resources.
func stateMachineGrants(t *testing.T, tmpl *Template) map[string][]string {
	t.Helper()
	docs, _, err := tmpl.RoleDocuments("StateMachineRole")
	if err != nil {
		t.Fatal(err)
	}
	granted := map[string][]string{}
	for _, d := range docs {
		for _, s := range d.Statements {
			if s.Effect != "Allow" {
				continue
			}
			for _, a := range s.Actions {
				for _, r := range s.Resources {
					granted[a] = append(granted[a], resourceString(r))
				}
				sort.Strings(granted[a])
			}
		}
	}
	return granted
}

func resourceString(r any) string {
	if s, ok := r.(string); ok {
		return s
	}
	if sub, ok := get(r, "Fn::Sub").(string); ok {
		return sub
	}
	if ga, ok := get(r, "Fn::GetAtt").([]any); ok && len(ga) == 2 {
		return fmt.Sprintf("Fn::GetAtt:%v.%v", ga[0], ga[1])
	}
	return fmt.Sprint(r)
}

func roleProblems(need, granted map[string][]string) []string {
	var p []string
	for a, rs := range need {
		switch g, ok := granted[a]; {
		case !ok:
			p = append(p, "lacks "+a)
		case !reflect.DeepEqual(g, rs):
			p = append(p, fmt.Sprintf("holds %s on %v, want %v", a, g, rs))
		}
	}
	for a := range granted {
		if _, ok := need[a]; !ok {
			p = append(p, "holds "+a+", which the definition does not need")
		}
	}
	sort.Strings(p)
	return p
}

func loadDefinition(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(stateMachineFile)
	if err != nil {
		t.Fatal(err)
	}
	var def map[string]any
	if err := json.Unmarshal(b, &def); err != nil {
		t.Fatal(err)
	}
	return def
}

func cloneJSON(v map[string]any) map[string]any {
	b, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func containsText(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
