package trigger_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/lambda/trigger/triggertest"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// respondPayload is the respond task's payload for an execution, as the
// state machine builds it from the execution input.
func respondPayload(t *testing.T, ex triggertest.Execution) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ex.Input), &m); err != nil {
		t.Fatal(err)
	}
	m["task"] = trigger.TaskRespond
	return marshal(t, m)
}

func snapshotPayload(t *testing.T, in trigger.CaseInput, polls int) []byte {
	t.Helper()
	return marshal(t, map[string]any{
		"task": trigger.TaskSnapshotStatus, "case_id": in.CaseID, "instance_id": in.InstanceID,
		"account_id": in.AccountID, "region": in.Region, "polls": polls,
	})
}

// startCase posts a case for the suspect and returns its execution.
func (e *env) startCase() triggertest.Execution {
	e.t.Helper()
	a := decodeAPI(e.t, e.mustHandle(e.event("apigw-v1-post-cases.json")))
	if a.Status != 202 {
		e.t.Fatalf("POST /cases: %d %s", a.Status, a.Raw)
	}
	return e.sfn.Executions()[0]
}

func TestRespondTaskContainsAndRecords(t *testing.T) {
	e := newEnv(t)
	ex := e.startCase()
	in := executionInput(t, ex)

	var res struct {
		CaseID      string   `json:"case_id"`
		Status      string   `json:"status"`
		Location    string   `json:"location"`
		SnapshotIDs []string `json:"snapshot_ids"`
		StepsFailed []string `json:"steps_failed"`
	}
	if err := json.Unmarshal(e.mustHandle(respondPayload(t, ex)), &res); err != nil {
		t.Fatal(err)
	}
	if res.CaseID != in.CaseID || res.Status != evidence.CaseContained || len(res.StepsFailed) != 0 ||
		len(res.SnapshotIDs) != len(e.suspect.VolumeIDs) {
		t.Fatalf("respond task answered %+v", res)
	}

	// The resulting state: the instance is isolated, its volumes are
	// snapshotted, the record names the API caller as the actor.
	for _, n := range e.cloud.Instance(e.suspect.InstanceID).NetworkInterfaces {
		for _, g := range n.Groups {
			if aws.ToString(g.GroupId) == e.suspect.GroupID {
				t.Errorf("interface %s still in the web group", aws.ToString(n.NetworkInterfaceId))
			}
		}
	}
	if got := len(e.cloud.Snapshots()); got != len(e.suspect.VolumeIDs) {
		t.Errorf("%d snapshots, want %d", got, len(e.suspect.VolumeIDs))
	}
	m, err := evidence.LoadManifest(t.Context(), e.h.Store, in.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Actor != actorV1 || m.InstanceID != e.suspect.InstanceID || m.Status != evidence.CaseContained {
		t.Errorf("case record: actor %q instance %q status %q", m.Actor, m.InstanceID, m.Status)
	}
	var ran []string
	for _, s := range m.Steps {
		ran = append(ran, s.Name)
	}
	if len(m.Runs) != 1 || m.Runs[0].Playbook != "default" || !slices.Equal(ran, step.DefaultPlan) {
		t.Errorf("case record: runs %+v, steps %v; want the default playbook's", m.Runs, ran)
	}
	if len(e.cloud.Published()) != 1 {
		t.Errorf("%d notifications, want 1", len(e.cloud.Published()))
	}

	// Step Functions may run a task twice: the second run finds the work
	// done and takes no second snapshot set.
	e.mustHandle(respondPayload(t, ex))
	if got := len(e.cloud.Snapshots()); got != len(e.suspect.VolumeIDs) {
		t.Errorf("after a second run: %d snapshots, want %d", got, len(e.suspect.VolumeIDs))
	}
}

// A respond task for a playbook that collects OS-level evidence is refused
// before anything is done when the function is not configured for it.
func TestRespondTaskRefusesCollectionPlaybooks(t *testing.T) {
	e := newEnv(t)
	ex := e.startCase()
	var m map[string]any
	_ = json.Unmarshal(respondPayload(t, ex), &m)
	m["playbook"] = "collect-before-isolate"
	_, err := e.handle(marshal(t, m))
	var f *trigger.Failure
	if !errors.As(err, &f) || f.Type != trigger.ErrorInput ||
		!strings.Contains(err.Error(), "not configured for (RESPONDER_STAGING_BUCKET and RESPONDER_MEMORY_TOOLS); run it from the CLI (responder respond --playbook collect-before-isolate)") {
		t.Fatalf("error %v, want an input failure saying to run it from the CLI", err)
	}
	if got := len(e.cloud.Snapshots()); got != 0 {
		t.Errorf("a refused task took %d snapshots", got)
	}
}

func TestSnapshotStatusTask(t *testing.T) {
	e := newEnv(t)
	e.cloud.SnapshotCompletesAfter = 2
	ex := e.startCase()
	in := executionInput(t, ex)
	e.mustHandle(respondPayload(t, ex))

	type status struct {
		Complete, Failed          bool
		Percent, Total, Completed int
		Polls                     int
	}
	poll := func(polls int) status {
		t.Helper()
		var s status
		if err := json.Unmarshal(e.mustHandle(snapshotPayload(t, in, polls)), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := poll(0); s.Complete || s.Failed || s.Total != 2 || s.Completed != 0 || s.Polls != 1 {
		t.Errorf("first poll %+v, want 2 pending", s)
	}
	poll(1)
	if s := poll(2); !s.Complete || s.Failed || s.Percent != 100 || s.Completed != 2 || s.Polls != 3 {
		t.Errorf("third poll %+v, want complete", s)
	}
}

func TestTaskErrors(t *testing.T) {
	e := newEnv(t)
	ex := e.startCase()
	in := executionInput(t, ex)
	payload := func(edit func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(respondPayload(t, ex), &m)
		edit(m)
		return marshal(t, m)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		typ     string
	}{
		{"unknown task", []byte(`{"task": "reboot", "case_id": "x"}`), trigger.ErrorInput},
		{"task not a string", []byte(`{"task": 7}`), trigger.ErrorInput},
		{"unknown field", payload(func(m map[string]any) { m["steps"] = "all" }), trigger.ErrorInput},
		{"wrong type", payload(func(m map[string]any) { m["case_id_given"] = "yes" }), trigger.ErrorInput},
		{"bad instance ID", payload(func(m map[string]any) { m["instance_id"] = "i-1; reboot" }), trigger.ErrorInput},
		{"bad case ID", payload(func(m map[string]any) { m["case_id"] = "../../x" }), trigger.ErrorInput},
		{"reserved case ID", payload(func(m map[string]any) { m["case_id"] = "LOCKS" }), trigger.ErrorInput},
		{"account not allowed", payload(func(m map[string]any) { m["account_id"] = otherAccount }), trigger.ErrorInput},
		{"unknown playbook", payload(func(m map[string]any) { m["playbook"] = "nuke" }), trigger.ErrorInput},
		{"collection playbook", payload(func(m map[string]any) { m["playbook"] = "collect" }), trigger.ErrorInput},
		{"instance gone", payload(func(m map[string]any) { m["instance_id"] = "i-0fffffffffffffff0" }), trigger.ErrorInstanceNotFound},
		{"no record yet", snapshotPayload(t, in, 0), trigger.ErrorInternal},
		{"not an object", []byte(`"respond"`), trigger.ErrorInput},
		{"unsupported event", []byte(`{"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}`), trigger.ErrorUnsupported},
		{"unknown shape", []byte(`{"hello": "world"}`), trigger.ErrorUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.handle(tc.payload)
			var f *trigger.Failure
			if !errors.As(err, &f) || f.Type != tc.typ {
				t.Fatalf("error %v (%T), want a %s failure", err, err, tc.typ)
			}
		})
	}
	if got := len(e.cloud.Snapshots()); got != 0 {
		t.Errorf("rejected tasks took %d snapshots", got)
	}
}

// Every log line written while a case is handled carries its case_id: the
// handler's lines and the engine's.
func TestEveryCaseLogLineHasTheCaseID(t *testing.T) {
	e := newEnv(t)
	ex := e.startCase()
	in := executionInput(t, ex)
	e.mustHandle(respondPayload(t, ex))
	e.mustHandle(snapshotPayload(t, in, 0))
	e.mustHandle(e.getV1(in.CaseID))

	lines := e.logs.Lines(t)
	if len(lines) < 10 {
		t.Fatalf("only %d log lines", len(lines))
	}
	for _, l := range lines {
		if l["case_id"] != in.CaseID {
			t.Errorf("log line without case_id %s: %v", in.CaseID, l)
		}
	}
}

func TestTaskFieldsAreThePayloads(t *testing.T) {
	respond, ok := trigger.TaskFields(trigger.TaskRespond)
	if !ok {
		t.Fatal("no respond task")
	}
	want := []string{"account_id", "actor", "case_id", "case_id_given", "findings", "force", "instance_id", "playbook", "region", "requested_at", "source", "task"}
	if !slices.Equal(respond, want) {
		t.Errorf("respond fields %v, want %v", respond, want)
	}
	if _, ok := trigger.TaskFields("nope"); ok {
		t.Error("TaskFields knows an unknown task")
	}
	if got := strings.Join(trigger.Tasks(), ","); got != "collect,fleet-case,fleet-case-status,fleet-close,fleet-open,preserve,respond,snapshot-status" {
		t.Errorf("Tasks() = %s", got)
	}
}

// A respond task whose save stopped before manifest.json (the invocation
// timed out during the save): the next attempt continues the case from the
// history copy, as run 2, instead of failing on run 1's history for ever.
func TestRespondTaskContinuesAnInterruptedSave(t *testing.T) {
	e := newEnv(t)
	ex := e.startCase()
	in := executionInput(t, ex)
	e.mustHandle(respondPayload(t, ex))

	// Take manifest.json away, as if the save had stopped before it.
	key := evidence.Prefix + in.CaseID + "/" + evidence.ManifestName
	for _, v := range e.cloud.ObjectVersions(bucketName, key) {
		if _, err := e.cloud.S3().DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucketName), Key: aws.String(key),
			VersionId: aws.String(v.VersionID), BypassGovernanceRetention: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}

	e.clock.Advance(time.Minute)
	e.mustHandle(respondPayload(t, ex))
	m, err := evidence.LoadManifest(t.Context(), e.h.Store, in.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Runs) != 2 || m.Runs[0].Number != 1 || m.Runs[1].Number != 2 || len(m.Snapshots) != len(e.suspect.VolumeIDs) {
		t.Fatalf("runs %+v, %d snapshots; want runs 1 and 2 and the first run's snapshots", m.Runs, len(m.Snapshots))
	}
}

// A respond task that finds another run of its case running (an earlier
// attempt still at work) does nothing and fails as transient: Step
// Functions tries again later, when that run has recorded its end.
func TestRespondTaskWhileTheCaseIsHeld(t *testing.T) {
	e := newEnv(t)
	ex := e.startCase()
	in := executionInput(t, ex)
	if _, _, err := evidence.ClaimRun(t.Context(), e.h.Store, &evidence.Record{Run: 1}, in.CaseID, "an earlier attempt", e.clock.Now); err != nil {
		t.Fatal(err)
	}
	_, err := e.handle(respondPayload(t, ex))
	var f *trigger.Failure
	if !errors.As(err, &f) || f.Type != trigger.ErrorTransient {
		t.Fatalf("respond task on a held case: %v, want a %s failure", err, trigger.ErrorTransient)
	}
	if n := len(e.cloud.Snapshots()); n != 0 {
		t.Errorf("%d snapshots taken by a refused task", n)
	}
}
