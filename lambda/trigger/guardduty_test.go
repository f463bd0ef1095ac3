package trigger_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/responder-ir/responder/lambda/trigger"
)

func TestGuardDutyFinding(t *testing.T) {
	for _, tc := range []struct {
		name     string
		enabled  bool
		edit     func(detail map[string]any)
		started  bool
		whyNotIn string
	}{
		{name: "off by default", enabled: false, whyNotIn: "off"},
		{name: "high severity", enabled: true, started: true},
		{name: "critical severity", enabled: true, edit: func(d map[string]any) { d["severity"] = 9.5 }, started: true},
		{name: "medium severity", enabled: true, edit: func(d map[string]any) { d["severity"] = 5.3 }, whyNotIn: "below the threshold 7.0"},
		{name: "sample finding", enabled: true, edit: func(d map[string]any) {
			d["service"].(map[string]any)["additionalInfo"] = map[string]any{"sample": true}
		}, whyNotIn: "sample"},
		{name: "not an instance", enabled: true, edit: func(d map[string]any) {
			d["resource"] = map[string]any{"resourceType": "AccessKey", "accessKeyDetails": map[string]any{"userName": "bob"}}
		}, whyNotIn: "AccessKey"},
		{name: "account not allowed", enabled: true, edit: func(d map[string]any) { d["accountId"] = otherAccount }, whyNotIn: "not one this responder may act in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *trigger.Config) { c.GuardDutyEnabled = tc.enabled })
			var ev map[string]any
			if err := json.Unmarshal(e.event("guardduty-finding.json"), &ev); err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(ev["detail"].(map[string]any))
			}
			var ans struct {
				Ignored string `json:"ignored"`
				Case    *struct {
					CaseID string `json:"case_id"`
				} `json:"case"`
			}
			if err := json.Unmarshal(e.mustHandle(marshal(t, ev)), &ans); err != nil {
				t.Fatal(err)
			}
			exs := e.sfn.Executions()
			if !tc.started {
				if len(exs) != 0 || ans.Case != nil || !strings.Contains(ans.Ignored, tc.whyNotIn) {
					t.Fatalf("answer %+v with %d executions, want ignored (%s)", ans, len(exs), tc.whyNotIn)
				}
				return
			}
			if len(exs) != 1 || ans.Case == nil || exs[0].Name != ans.Case.CaseID {
				t.Fatalf("answer %+v, executions %+v: want one case", ans, exs)
			}
			in := executionInput(t, exs[0])
			if in.Source != "guardduty" || !strings.HasPrefix(in.Actor, "guardduty:arn:aws:guardduty:us-east-1:111122223333:detector/") ||
				in.InstanceID != e.suspect.InstanceID {
				t.Errorf("execution input %+v", in)
			}
		})
	}
}
