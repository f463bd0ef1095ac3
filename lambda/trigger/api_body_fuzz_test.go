package trigger

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// apiErrorCodes are the error codes of the POST /cases body
// (lambda/README.md lists them).
var apiErrorCodes = []string{
	"malformed_json", "malformed_body", "empty_body", "wrong_type", "unknown_field", "duplicate_field",
	"missing_instance_id", "invalid_instance_id", "invalid_account_id", "invalid_region",
	"unknown_playbook", "unsupported_playbook", "invalid_case_id", "account_not_allowed",
}

// FuzzCaseRequest fuzzes the POST /cases body parser and the request's
// validation. Properties: no panic; every refusal is a documented 4xx with
// a short, valid UTF-8 message; a body that parses is one JSON object, whose
// request survives a round trip through JSON; a request that validates
// yields a valid target of the function's partition and allowed accounts.
func FuzzCaseRequest(f *testing.F) {
	for _, seed := range []string{
		`{"instance_id": "i-0123456789abcdef0"}`,
		`{"instance_id": "i-0123456789abcdef0", "account_id": "111122223333", "region": "eu-west-3", "playbook": "default", "case_id": "INC-4711"}`,
		`{"instance_id": "i-01234567", "region": "cn-north-1"}`,
		`{"instance_id": "i-0123456789abcdef0", "instance_id": "i-0fedcba9876543210"}`,
		`{"Instance_ID": "i-0123456789abcdef0"}`,
		`{"inſtance_id": "i-0123456789abcdef0", "playboo` + "\u212a" + `": "collect"}`,
		`{"instance\u005fid": "i-0123456789abcdef0", "case_id": "locks"}`,
		`{"instance_id": null, "account_id": 111122223333}`,
		`null`, `[]`, `"x"`, ``, `{}`, `{"instance_id": "i-0123456789abcdef0"} {}`,
		`{"instance_id": "` + strings.Repeat(`\u0001`, 100) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	h := &Handler{Config: Config{
		Region: "us-east-1", HomePartition: "aws", HomeAccount: "111122223333",
		AllowedAccounts: []string{"111122223333", "444455556666"},
	}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := decodeCaseRequest(body)
		if e != nil {
			checkAPIError(t, e)
			return
		}
		checkParsed(t, body, req)
		target, e := h.validate(req)
		if e != nil {
			checkAPIError(t, e)
			return
		}
		checkTarget(t, h, req, target)
	})
}

// checkAPIError checks a refusal: a documented code, a 4xx status, a short
// message of valid UTF-8 (it is shown to people and logged).
func checkAPIError(t *testing.T, e *apiError) {
	t.Helper()
	if !slices.Contains(apiErrorCodes, e.Code) {
		t.Fatalf("undocumented code %q (%s)", e.Code, e.Message)
	}
	if e.Status < 400 || e.Status > 499 {
		t.Fatalf("bad input answered %d (%s)", e.Status, e.Code)
	}
	if e.Message == "" || len(e.Message) > 300 || !utf8.ValidString(e.Message) {
		t.Fatalf("message of %d bytes, valid UTF-8 %t: %q", len(e.Message), utf8.ValidString(e.Message), e.Message)
	}
}

// checkParsed checks a body that parsed: a JSON object, and the request it
// gave comes back the same from its own encoding.
func checkParsed(t *testing.T, body []byte, req caseRequest) {
	t.Helper()
	var object map[string]any
	if err := json.Unmarshal(body, &object); err != nil || object == nil {
		t.Fatalf("accepted a body that is not a JSON object: %q", body)
	}
	encoded, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	again, e := decodeCaseRequest(encoded)
	if e != nil || !reflect.DeepEqual(again, req) {
		t.Fatalf("round trip: %+v -> %s -> %+v, %v", req, encoded, again, e)
	}
}

// checkTarget checks a request that validated.
func checkTarget(t *testing.T, h *Handler, req caseRequest, target Target) {
	t.Helper()
	if err := target.Validate(); err != nil {
		t.Fatalf("validated into an invalid target %+v: %v", target, err)
	}
	if err := ValidateRegionIn(target.Region, h.Config.HomePartition); err != nil {
		t.Fatalf("validated into a target of another partition %+v: %v", target, err)
	}
	if !h.Config.AccountAllowed(target.AccountID) {
		t.Fatalf("validated into a target of an account not allowed: %+v", target)
	}
	if req.CaseID != "" && validateCaseID(req.CaseID) != nil {
		t.Fatalf("validated with an invalid case ID %q", req.CaseID)
	}
	if target.InstanceID != req.InstanceID || (req.Region != "" && target.Region != req.Region) ||
		(req.AccountID != "" && target.AccountID != req.AccountID) {
		t.Fatalf("target %+v is not the request's %+v", target, req)
	}
}
