package trigger_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

const (
	idA = "i-0123456789abcdef0"
	idB = "i-0123456789abcdef1"
)

// Bad fleet input is refused with 400 (403 for an account not allowed) and
// the exact message below, before any AWS call: no execution, no lock, no
// call to the fake at all.
func TestPostFleetRejectsBadInput(t *testing.T) {
	tooMany := make([]string, trigger.MaxFleetInstances+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf(`"i-%017x"`, i)
	}
	for _, tc := range []struct {
		name, body string
		blast      int
		status     int
		code, msg  string
	}{
		{"malformed ID", `{"instance_ids": ["` + idA + `", "i-123"]}`, 0, 400, "invalid_instance_id",
			`instance_ids[1]: invalid instance ID "i-123": want i- followed by 8 or 17 lowercase hex digits`},
		{"empty ID", `{"instance_ids": [""]}`, 0, 400, "invalid_instance_id", `instance_ids[0] is empty`},
		{"duplicate", `{"instance_ids": ["` + idA + `", "` + idB + `", "` + idA + `"]}`, 0, 400, "duplicate_instance_id",
			`instance_ids[2]: ` + idA + ` is given twice (also instance_ids[0])`},
		{"duplicate by ID and ARN", `{"instance_ids": ["` + idA + `", "arn:aws:ec2:us-east-1:111122223333:instance/` + idA + `"]}`, 0, 400, "duplicate_instance_id",
			`instance_ids[1]: ` + idA + ` is given twice (also instance_ids[0])`},
		{"too many", `{"instance_ids": [` + strings.Join(tooMany, ",") + `]}`, 0, 400, "too_many_instances",
			`instance_ids has 1001 instances; at most 1000 a request`},
		{"no instances", `{"instance_ids": []}`, 0, 400, "missing_targets", `instance_ids is empty`},
		{"IDs a string", `{"instance_ids": "` + idA + `"}`, 0, 400, "wrong_type", `field "instance_ids" must be a []string, not string`},
		{"ARN of another partition", `{"instance_ids": ["arn:aws-cn:ec2:cn-north-1:111122223333:instance/` + idA + `"]}`, 0, 400, "invalid_instance_id",
			`instance_ids[0]: "arn:aws-cn:ec2:cn-north-1:111122223333:instance/` + idA + `" is an ARN of partition aws-cn, not aws`},
		{"unknown filter", `{"filters": [{"Name": "colour", "Values": ["red"]}]}`, 0, 400, "unknown_filter",
			`filters[0]: "colour" is not a DescribeInstances filter name (such as tag:<key>, image-id, vpc-id, instance-type)`},
		{"empty tag key", `{"filters": [{"Name": "tag:", "Values": ["x"]}]}`, 0, 400, "unknown_filter",
			`filters[0]: "tag:" is not a DescribeInstances filter name (such as tag:<key>, image-id, vpc-id, instance-type)`},
		{"filter without values", `{"filters": [{"Name": "tag:app", "Values": []}]}`, 0, 400, "invalid_filter",
			`filters[0] (tag:app): give 1 to 200 Values`},
		{"filter twice", `{"filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}, {"Name": "vpc-id", "Values": ["vpc-2"]}]}`, 0, 400, "duplicate_filter",
			`filters[1]: vpc-id is given twice (also filters[0]); give its values in one filter`},
		{"no filters", `{"filters": []}`, 0, 400, "missing_targets", `filters is empty`},
		{"IDs and filters", `{"instance_ids": ["` + idA + `"], "filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]}`, 0, 400, "conflicting_fields",
			`give instance_ids or filters, not both`},
		{"instance_id too", `{"instance_id": "` + idA + `", "instance_ids": ["` + idB + `"]}`, 0, 400, "conflicting_fields",
			`instance_id names one instance: for a fleet give instance_ids (or filters), not both`},
		{"case_id", `{"instance_ids": ["` + idA + `"], "case_id": "INC-1"}`, 0, 400, "conflicting_fields",
			`case_id names one case: the cases of a fleet are named <fleet_id>-<instance_id>; give fleet_id to continue a fleet`},
		{"accounts with IDs", `{"instance_ids": ["` + idA + `"], "accounts": ["111122223333"]}`, 0, 400, "conflicting_fields",
			`accounts and regions go with filters; for instances in several accounts or Regions give their ARNs in instance_ids`},
		{"fleet_id alone", `{"fleet_id": "fleet-1"}`, 0, 400, "missing_targets", `a fleet needs instance_ids or filters`},
		{"bad account", `{"filters": [{"Name": "tag:app", "Values": ["web"]}], "accounts": ["12"]}`, 0, 400, "invalid_account_id",
			`accounts[0]: invalid account ID "12": want 12 digits`},
		{"account twice", `{"filters": [{"Name": "tag:app", "Values": ["web"]}], "accounts": ["111122223333", "111122223333"]}`, 0, 400, "duplicate_account",
			`accounts[1]: "111122223333" is given twice (also accounts[0])`},
		{"region of another partition", `{"filters": [{"Name": "tag:app", "Values": ["web"]}], "regions": ["cn-north-1"]}`, 0, 400, "invalid_region",
			`regions[0]: region "cn-north-1" is in the aws-cn partition, not in this function's (aws): a response acts only in its own partition`},
		{"account not allowed", `{"filters": [{"Name": "tag:app", "Values": ["web"]}], "accounts": ["` + otherAccount + `"]}`, 0, 403, "account_not_allowed",
			`account ` + otherAccount + ` is not one this responder may act in`},
		{"bad fleet ID", `{"instance_ids": ["` + idA + `"], "fleet_id": "../x"}`, 0, 400, "invalid_fleet_id",
			`invalid fleet ID "../x": use 1-40 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"past the blast radius", `{"instance_ids": ["` + idA + `", "` + idB + `"]}`, 1, 400, "blast_radius_exceeded",
			`the fleet has 2 instances in account 111122223333; at most 1 instances are contained per account in any 60 minutes (RESPONDER_BLAST_RADIUS): split the fleet or raise the limit`},
		{"unknown playbook", `{"instance_ids": ["` + idA + `"], "playbook": "nuke"}`, 0, 400, "unknown_playbook", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *trigger.Config) { c.BlastRadius = tc.blast })
			calls := e.cloud.TotalCalls()
			a := decodeAPI(t, e.mustHandle(e.postV1(tc.body)))
			if a.Status != tc.status || a.Body["code"] != tc.code {
				t.Fatalf("answer %d %v, want %d %s", a.Status, a.Body, tc.status, tc.code)
			}
			if tc.msg != "" && a.Body["error"] != tc.msg {
				t.Errorf("message\n got %q\nwant %q", a.Body["error"], tc.msg)
			}
			assertErrorBody(t, a)
			if n := e.cloud.TotalCalls() - calls; n != 0 {
				t.Errorf("bad input made %d AWS call(s)", n)
			}
			if exs := e.sfn.Executions(); len(exs) != 0 {
				t.Errorf("bad input started %d execution(s)", len(exs))
			}
		})
	}
}

// A list of instances starts one execution, named after the fleet, whose
// input plans one case per instance named <fleet-id>-<instance-id>; the
// answer lists them. The same fleet_id again (a rerun) plans the same cases.
func TestPostFleetStartsOneExecution(t *testing.T) {
	e := newEnv(t)
	second := e.cloud.AddInstance(fakeaws.InstanceSpec{VpcID: e.suspect.VpcID})
	body := `{"instance_ids": ["` + e.suspect.InstanceID + `", "arn:aws:ec2:` + e.cloud.Region + `:` + e.cloud.Account + `:instance/` + second + `"], "fleet_id": "fleet-inc-42"}`
	a := decodeAPI(t, e.mustHandle(e.postV2(body)))
	if a.Status != 202 || a.Body["fleet_id"] != "fleet-inc-42" || a.Body["instances"] != 2.0 {
		t.Fatalf("answer %d %v", a.Status, a.Body)
	}
	if !strings.HasSuffix(a.Headers["Location"], "/fleets/fleet-inc-42") {
		t.Errorf("Location %q", a.Headers["Location"])
	}
	exs := e.sfn.Executions()
	if len(exs) != 1 || exs[0].Name != "fleet-inc-42" || a.Body["execution_arn"] != exs[0].ARN {
		t.Fatalf("executions %+v, answer %v", exs, a.Body)
	}
	var in trigger.FleetInput
	if err := json.Unmarshal([]byte(exs[0].Input), &in); err != nil {
		t.Fatal(err)
	}
	cases := a.Body["cases"].([]any)
	for i, id := range []string{e.suspect.InstanceID, second} {
		want := evidence.FleetCaseID("fleet-inc-42", id)
		if in.Targets[i].CaseID != want || in.Targets[i].InstanceID != id || cases[i].(map[string]any)["case_id"] != want {
			t.Errorf("target %d: %+v, answer %v; want case %s", i, in.Targets[i], cases[i], want)
		}
	}
	if in.Source != trigger.SourceAPI || in.Actor == "" || in.Playbook != trigger.DefaultPlaybook {
		t.Errorf("fleet input %+v", in)
	}
	// A rerun later: a second execution, the same cases.
	e.clock.Advance(time.Hour)
	again := decodeAPI(t, e.mustHandle(e.postV2(body)))
	if again.Status != 202 || fmt.Sprint(again.Body["cases"]) != fmt.Sprint(a.Body["cases"]) || again.Body["execution_arn"] == a.Body["execution_arn"] {
		t.Errorf("rerun: %v", again.Body)
	}
}

// Filters are looked up in the account and Region with DescribeInstances:
// the instances they match are the fleet; a filter that matches nothing is
// refused and starts nothing.
func TestPostFleetFilters(t *testing.T) {
	e := newEnv(t)
	a := decodeAPI(t, e.mustHandle(e.postV1(`{"filters": [{"Name": "tag:Name", "Values": ["web-*"]}, {"Name": "instance-state-name", "Values": ["running"]}]}`)))
	if a.Status != 202 {
		t.Fatalf("answer %d %v", a.Status, a.Body)
	}
	cases := a.Body["cases"].([]any)
	if len(cases) != 1 || cases[0].(map[string]any)["instance_id"] != e.suspect.InstanceID {
		t.Errorf("cases %v, want the suspect", cases)
	}
	none := decodeAPI(t, e.mustHandle(e.postV1(`{"filters": [{"Name": "tag:Name", "Values": ["db-*"]}]}`)))
	if none.Status != 400 || none.Body["code"] != "no_matching_instances" {
		t.Errorf("no match: %d %v", none.Status, none.Body)
	}
	if n := len(e.sfn.Executions()); n != 1 {
		t.Errorf("%d executions, want 1", n)
	}
}

// GET /fleets/{id}: 404 for an unknown fleet, 400 for a bad ID, pending
// before the fleet's first state wrote its record.
func TestGetFleetBeforeItsRecord(t *testing.T) {
	e := newEnv(t)
	get := func(id string) apiAnswer {
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(e.event("apigw-v1-get-case.json"), &req); err != nil {
			t.Fatal(err)
		}
		req.Resource, req.Path, req.PathParameters = "/fleets/{id}", "/fleets/"+id, map[string]string{"id": id}
		req.RequestContext.Path = "/v1/fleets/" + id
		return decodeAPI(t, e.mustHandle(marshal(t, req)))
	}
	if a := get("fleet-nope"); a.Status != 404 || a.Body["code"] != "fleet_not_found" {
		t.Errorf("unknown fleet: %d %v", a.Status, a.Body)
	}
	if a := get("..%2Fx"); a.Status != 400 || a.Body["code"] != "invalid_fleet_id" {
		t.Errorf("bad ID: %d %v", a.Status, a.Body)
	}
	e.mustHandle(e.postV1(`{"instance_ids": ["` + e.suspect.InstanceID + `"], "fleet_id": "fleet-7"}`))
	if a := get("fleet-7"); a.Status != 200 || a.Body["status"] != "pending" {
		t.Errorf("started fleet: %d %v", a.Status, a.Body)
	}
}

// The execution input of the largest fleet, with the longest IDs, and the
// plan fleet-open answers both stay under Step Functions' 256 KiB.
func TestFleetInputFitsTheExecutionInputLimit(t *testing.T) {
	fleetID := strings.Repeat("f", evidence.MaxFleetIDLength)
	in := trigger.FleetInput{FleetID: fleetID, Actor: "arn:aws:sts::111122223333:assumed-role/" + strings.Repeat("r", 64) + "/" + strings.Repeat("s", 64),
		Source: trigger.SourceAPI, Playbook: trigger.DefaultPlaybook, RequestedAt: "2026-12-05T01:40:00Z"}
	for i := range trigger.MaxFleetInstances {
		id := fmt.Sprintf("i-%017x", i)
		in.Targets = append(in.Targets, trigger.FleetTarget{CaseID: evidence.FleetCaseID(fleetID, id), InstanceID: id,
			AccountID: "111122223333", Region: "ap-southeast-1", Findings: []trigger.FindingRef{}})
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) >= 256<<10 {
		t.Errorf("the input of %d targets is %d bytes, over 256 KiB", len(in.Targets), len(b))
	}
	e := newEnv(t, func(c *trigger.Config) { c.AllowedAccounts = []string{trigger.AnyAccount} })
	payload, _ := json.Marshal(map[string]any{"task": trigger.TaskFleetOpen, "fleet_id": in.FleetID, "actor": in.Actor, "source": in.Source,
		"playbook": in.Playbook, "requested_at": in.RequestedAt, "force": false, "targets": in.Targets})
	out := e.mustHandle(payload)
	if len(out) >= 256<<10 {
		t.Errorf("the plan of %d targets is %d bytes, over 256 KiB", len(in.Targets), len(out))
	}
	var plan struct {
		Mode  string `json:"mode"`
		Lanes []struct {
			Lane  string            `json:"lane"`
			Cases []json.RawMessage `json:"cases"`
		} `json:"lanes"`
	}
	if err := json.Unmarshal(out, &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Mode != trigger.FleetDistributed || len(plan.Lanes) != trigger.DefaultFleetConcurrency || len(plan.Lanes[0].Cases) != 100 {
		t.Errorf("plan: mode %s, %d lanes of %d cases; want distributed, %d lanes of 100", plan.Mode, len(plan.Lanes), len(plan.Lanes[0].Cases), trigger.DefaultFleetConcurrency)
	}
}
