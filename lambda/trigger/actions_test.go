package trigger_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/responder-ir/responder/lambda/trigger"
)

// caseRouteV1 is a REST API (v1) request to /cases/{id}/<sub>.
func (e *env) caseRouteV1(method, caseID, sub, body string, edit ...func(*events.APIGatewayProxyRequest)) []byte {
	e.t.Helper()
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(e.event("apigw-v1-get-case.json"), &req); err != nil {
		e.t.Fatal(err)
	}
	req.HTTPMethod, req.Resource, req.Body = method, "/cases/{id}/"+sub, body
	req.PathParameters = map[string]string{"id": caseID}
	req.Path = "/cases/" + caseID + "/" + sub
	req.RequestContext.Path = "/v1/cases/" + caseID + "/" + sub
	req.RequestContext.ResourcePath, req.RequestContext.HTTPMethod = req.Resource, method
	for _, f := range edit {
		f(&req)
	}
	return marshal(e.t, req)
}

// caseRouteV2 is an HTTP API (v2) request to /cases/{id}/<sub>.
func (e *env) caseRouteV2(method, caseID, sub, body string) []byte {
	e.t.Helper()
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(e.event("apigw-v2-post-cases.json"), &req); err != nil {
		e.t.Fatal(err)
	}
	req.RouteKey, req.Body = method+" /cases/{id}/"+sub, body
	req.RawPath = "/cases/" + caseID + "/" + sub
	req.RequestContext.HTTP.Method, req.RequestContext.HTTP.Path = method, req.RawPath
	req.PathParameters = map[string]string{"id": caseID}
	return marshal(e.t, req)
}

// Bad input to the image and investigation routes is refused with a 400
// (or 403, 404, 405, 409 where the case says so) and starts nothing.
func TestActionRoutesRefuseBadInput(t *testing.T) {
	e := newEnv(t, func(c *trigger.Config) {})
	responded := e.respondedCase()
	starts := len(e.sfn.Executions())
	for _, tc := range []struct {
		name, method, caseID, sub, body string
		status                          int
		code                            string
	}{
		{"images: invalid case ID", http.MethodPost, "bad/../id", "images", ``, 400, "invalid_case_id"},
		{"images: not JSON", http.MethodPost, responded, "images", `{"snapshot_id":`, 400, "malformed_json"},
		{"images: unknown field", http.MethodPost, responded, "images", `{"snapshot": "snap-0123456789abcdef0"}`, 400, "unknown_field"},
		{"images: field in other case", http.MethodPost, responded, "images", `{"Snapshot_ID": "snap-0123456789abcdef0"}`, 400, "unknown_field"},
		{"images: twice", http.MethodPost, responded, "images", `{"compression": "none", "compression": "zstd"}`, 400, "duplicate_field"},
		{"images: wrong type", http.MethodPost, responded, "images", `{"snapshot_id": 7}`, 400, "wrong_type"},
		{"images: invalid snapshot ID", http.MethodPost, responded, "images", `{"snapshot_id": "vol-0123456789abcdef0"}`, 400, "invalid_snapshot_id"},
		{"images: invalid compression", http.MethodPost, responded, "images", `{"compression": "gzip"}`, 400, "invalid_compression"},
		{"images: unknown case", http.MethodPost, "no-such-case", "images", ``, 404, "case_not_found"},
		{"images: no completed copy", http.MethodPost, responded, "images", `{}`, 409, "no_snapshot_copy"},
		{"images: GET", http.MethodGet, responded, "images", ``, 405, "method_not_allowed"},
		{"investigation: invalid case ID", http.MethodPost, "locks", "investigation", `{}`, 400, "invalid_case_id"},
		{"investigation: no subnet", http.MethodPost, responded, "investigation", `{"ami_id": "ami-0123456789abcdef0"}`, 400, "missing_subnet_id"},
		{"investigation: no AMI", http.MethodPost, responded, "investigation", `{"subnet_id": "subnet-0123456789abcdef0"}`, 400, "missing_ami_id"},
		{"investigation: invalid AMI", http.MethodPost, responded, "investigation", `{"subnet_id": "subnet-0123456789abcdef0", "ami_id": "ami-XYZ"}`, 400, "invalid_parameter"},
		{"investigation: invalid type", http.MethodPost, responded, "investigation",
			`{"subnet_id": "subnet-0123456789abcdef0", "ami_id": "ami-0123456789abcdef0", "instance_type": "m7i.large; rm -rf /"}`, 400, "invalid_parameter"},
		{"investigation: invalid group", http.MethodPost, responded, "investigation",
			`{"subnet_id": "subnet-0123456789abcdef0", "ami_id": "ami-0123456789abcdef0", "security_group_ids": ["default"]}`, 400, "invalid_parameter"},
		{"investigation: unknown field", http.MethodPost, responded, "investigation", `{"subnet": "subnet-0123456789abcdef0"}`, 400, "unknown_field"},
		{"investigation: wrong type", http.MethodPost, responded, "investigation", `{"new": "yes"}`, 400, "wrong_type"},
		{"investigation: unknown case", http.MethodPost, "no-such-case", "investigation",
			`{"subnet_id": "subnet-0123456789abcdef0", "ami_id": "ami-0123456789abcdef0"}`, 404, "case_not_found"},
		{"investigation: no completed copy", http.MethodPost, responded, "investigation",
			`{"subnet_id": "subnet-0123456789abcdef0", "ami_id": "ami-0123456789abcdef0"}`, 409, "no_snapshot_copy"},
		{"teardown: invalid workspace", http.MethodDelete, responded, "investigation", `{"workspace_id": "i-0123"}`, 400, "invalid_workspace_id"},
		{"teardown: unknown field", http.MethodDelete, responded, "investigation", `{"workspace": "ws-001"}`, 400, "unknown_field"},
		{"teardown: no workspace", http.MethodDelete, responded, "investigation", ``, 409, "no_workspace"},
		{"teardown: unknown case", http.MethodDelete, "no-such-case", "investigation", ``, 404, "case_not_found"},
		{"investigation: PUT", http.MethodPut, responded, "investigation", ``, 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ev := range [][]byte{e.caseRouteV1(tc.method, tc.caseID, tc.sub, tc.body), e.caseRouteV2(tc.method, tc.caseID, tc.sub, tc.body)} {
				a := decodeAPI(t, e.mustHandle(ev))
				if a.Status != tc.status || a.Body["code"] != tc.code {
					t.Errorf("%d %v, want %d %s: %s", a.Status, a.Body["code"], tc.status, tc.code, a.Raw)
				}
			}
		})
	}
	// Unsigned: 403 before anything is read.
	unsigned := e.caseRouteV1(http.MethodPost, responded, "images", ``, func(r *events.APIGatewayProxyRequest) { r.RequestContext.Identity.UserArn = "" })
	if a := decodeAPI(t, e.mustHandle(unsigned)); a.Status != 403 || a.Body["code"] != "unauthenticated" {
		t.Errorf("unsigned: %d %s", a.Status, a.Raw)
	}
	if n := len(e.sfn.Executions()); n != starts {
		t.Errorf("%d executions started by refused requests", n-starts)
	}
}
