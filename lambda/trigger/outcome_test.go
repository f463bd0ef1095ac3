package trigger_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// An event for an instance whose case execution died (failed, timed out,
// aborted) starts a new case; one whose case runs or succeeded joins it.
func TestEventAfterADeadCaseStartsANewOne(t *testing.T) {
	for _, tc := range []struct {
		ended   sfntypes.ExecutionStatus
		newCase bool
	}{
		{sfntypes.ExecutionStatusFailed, true},
		{sfntypes.ExecutionStatusTimedOut, true},
		{sfntypes.ExecutionStatusAborted, true},
		{sfntypes.ExecutionStatusSucceeded, false},
		{sfntypes.ExecutionStatusRunning, false},
	} {
		t.Run(string(tc.ended), func(t *testing.T) {
			e := newEnv(t)
			post := func() apiAnswer { return decodeAPI(t, e.mustHandle(e.event("apigw-v1-post-cases.json"))) }
			first := post()
			if tc.ended != sfntypes.ExecutionStatusRunning {
				if err := e.sfn.Finish(first.Body["execution_arn"].(string), tc.ended, "States.TaskFailed"); err != nil {
					t.Fatal(err)
				}
			}
			e.clock.Advance(time.Minute) // within the lock window

			second := post()
			if second.Status != http.StatusAccepted {
				t.Fatalf("second event: %d %s", second.Status, second.Raw)
			}
			started := second.Body["case_id"] != first.Body["case_id"] && second.Body["joined"] == nil
			if started != tc.newCase {
				t.Fatalf("after an execution %s: %v; want a new case: %t", tc.ended, second.Body, tc.newCase)
			}
			want := 1
			if tc.newCase {
				want = 2
			}
			if exs := e.sfn.Executions(); len(exs) != want {
				t.Fatalf("%d executions, want %d", len(exs), want)
			}
			if !tc.newCase {
				return
			}
			// A third event joins the new case, which runs.
			if third := post(); third.Body["case_id"] != second.Body["case_id"] || third.Body["joined"] != true {
				t.Errorf("third event: %v, want to join %v", third.Body, second.Body["case_id"])
			}
		})
	}
}

// POST /cases naming a case of another instance is refused before the
// instance's lock is taken: no lock, no execution for it.
func TestPostCasesRefusesACaseOfAnotherInstance(t *testing.T) {
	e := newEnv(t)
	other := e.cloud.AddInstance(fakeaws.InstanceSpec{})
	body := func(instance string) string { return fmt.Sprintf(`{"instance_id": %q, "case_id": "INC-9"}`, instance) }
	if a := decodeAPI(t, e.mustHandle(e.postV1(body(e.suspect.InstanceID)))); a.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", a.Status, a.Raw)
	}
	for _, when := range []string{"before the record exists", "once it exists"} {
		if when == "once it exists" {
			e.mustHandle(respondPayload(t, e.sfn.Executions()[0]))
		}
		a := decodeAPI(t, e.mustHandle(e.postV1(body(other))))
		if a.Status != http.StatusConflict || a.Body["code"] != "case_of_another_instance" || a.Body["case_id"] != "INC-9" {
			t.Errorf("%s: %d %s, want 409 case_of_another_instance", when, a.Status, a.Raw)
		}
		assertErrorBody(t, a)
		for _, l := range e.lockObjects() {
			if strings.Contains(l, "/"+other+"/") {
				t.Errorf("%s: lock taken for the other instance: %s", when, l)
			}
		}
		if exs := e.sfn.Executions(); len(exs) != 1 {
			t.Errorf("%s: %d executions, want 1", when, len(exs))
		}
	}
}

// The respond task notes the case's outcome, in the words of the case
// record, on the Security Hub findings that asked for it.
func TestRespondTaskNotesTheOutcomeOnTheFindings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(e *env)
		want    string
	}{
		{"contained", nil, evidence.CaseContained},
		{"quarantine refused", func(e *env) { e.cloud.Deny("ModifyNetworkInterfaceAttribute") }, evidence.CasePartiallyContained},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			findings := e.sampleFindings()
			e.addFindings(findings...)
			e.mustHandle(e.customActionEvent())
			if tc.prepare != nil {
				tc.prepare(e)
			}
			ex := e.sfn.Executions()[0]
			e.mustHandle(respondPayload(t, ex))

			m, err := evidence.LoadManifest(t.Context(), e.h.Store, executionInput(t, ex).CaseID)
			if err != nil || m.Status != tc.want {
				t.Fatalf("record: %v, status %v; want %s", err, m, tc.want)
			}
			gd, _ := e.hub.Finding(findings[0]["Id"].(string))
			if !strings.Contains(gd.Note, ": "+tc.want+": ") || !strings.Contains(gd.Note, m.CaseID) {
				t.Errorf("note %q, want the status %s of case %s", gd.Note, tc.want, m.CaseID)
			}
			if tc.want != evidence.CaseContained && !strings.Contains(gd.Note, "still open: quarantine (not-held)") {
				t.Errorf("note %q does not say what is still open", gd.Note)
			}
			// The finding that names no instance asked for no case.
			s3, _ := e.hub.Finding(findings[1]["Id"].(string))
			if strings.Contains(s3.Note, tc.want) {
				t.Errorf("the finding without an instance got the outcome: %q", s3.Note)
			}
		})
	}
}
