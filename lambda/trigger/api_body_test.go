package trigger_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/responder-ir/responder/lambda/trigger"
)

// encoding/json keeps the last of two equal keys and matches keys to fields
// ignoring case (and folding "ſ" to "s", the Kelvin sign "K" to "k"): the API refuses both,
// as it refuses unknown fields, before any AWS call.
func TestPostCasesRefusesKeysJSONWouldBend(t *testing.T) {
	const id = sampleInstance
	for _, tc := range []struct {
		name string
		body string
		code string
	}{
		{"instance_id twice", `{"instance_id": "` + id + `", "instance_id": "i-0fedcba9876543210"}`, "duplicate_field"},
		{"region twice", `{"instance_id": "` + id + `", "region": "us-east-1", "region": "eu-west-1"}`, "duplicate_field"},
		{"the same key, once escaped", `{"instance_id": "` + id + `", "instance\u005fid": "i-0fedcba9876543210"}`, "duplicate_field"},
		{"capitalised key", `{"Instance_ID": "` + id + `"}`, "unknown_field"},
		{"upper-case key", `{"INSTANCE_ID": "` + id + `"}`, "unknown_field"},
		{"a key and its capitalised twin", `{"instance_id": "` + id + `", "Instance_id": "i-0fedcba9876543210"}`, "unknown_field"},
		{"long s folded to s", `{"inſtance_id": "` + id + `"}`, "unknown_field"},
		{"Kelvin sign folded to k", `{"instance_id": "` + id + `", "playbooK": "default"}`, "unknown_field"},
		{"null", `null`, "wrong_type"},
		// Each escaped in the message (four bytes for one), which still
		// stays short (assertErrorBody): found by FuzzParseInstanceARN.
		{"control characters", `{"instance_id": "` + strings.Repeat(`\u0001`, 200) + `"}`, "invalid_instance_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			a := decodeAPI(t, e.mustHandle(e.postV1(tc.body)))
			if a.Status != http.StatusBadRequest || a.Body["code"] != tc.code {
				t.Fatalf("answer %d %s, want 400 %s", a.Status, a.Raw, tc.code)
			}
			assertErrorBody(t, a)
			assertNothingStarted(t, e)
		})
	}
}

// A key spelt with a JSON escape is the same key, and is accepted.
func TestPostCasesAcceptsAnEscapedKey(t *testing.T) {
	e := newEnv(t)
	a := decodeAPI(t, e.mustHandle(e.postV1(`{"instance\u005fid": "`+e.suspect.InstanceID+`"}`)))
	if a.Status != http.StatusAccepted {
		t.Fatalf("answer %d %s, want 202", a.Status, a.Raw)
	}
}

// The region must be a Region of the function's partition: the function
// cannot act in another one. Refused before any AWS call.
func TestPostCasesRefusesARegionOfAnotherPartition(t *testing.T) {
	for _, tc := range []struct {
		name      string
		partition string // the function's
		region    string // the function's
		body      string // region in the body
	}{
		{"China from aws", "aws", "us-east-1", "cn-north-1"},
		{"GovCloud from aws", "aws", "us-east-1", "us-gov-west-1"},
		{"ISO-B from aws", "aws", "us-east-1", "us-isob-east-1"},
		{"aws from China", "aws-cn", "cn-north-1", "us-east-1"},
		{"aws from GovCloud", "aws-us-gov", "us-gov-west-1", "eu-west-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *trigger.Config) { c.HomePartition, c.Region = tc.partition, tc.region })
			body := fmt.Sprintf(`{"instance_id": %q, "region": %q}`, e.suspect.InstanceID, tc.body)
			a := decodeAPI(t, e.mustHandle(e.postV2(body)))
			if a.Status != http.StatusBadRequest || a.Body["code"] != "invalid_region" {
				t.Fatalf("answer %d %s, want 400 invalid_region", a.Status, a.Raw)
			}
			assertErrorBody(t, a)
			assertNothingStarted(t, e)
		})
	}
}

// Another Region of the function's partition starts a case.
func TestPostCasesAcceptsARegionOfThePartition(t *testing.T) {
	for _, region := range []string{"eu-west-3", "ap-southeast-7"} {
		t.Run(region, func(t *testing.T) {
			e := newEnv(t)
			body := fmt.Sprintf(`{"instance_id": %q, "region": %q}`, e.suspect.InstanceID, region)
			a := decodeAPI(t, e.mustHandle(e.postV1(body)))
			if a.Status != http.StatusAccepted || a.Body["region"] != region {
				t.Fatalf("answer %d %s, want 202 in %s", a.Status, a.Raw, region)
			}
		})
	}
}

// assertNothingStarted checks the state bad input must leave: no execution,
// and no call to the (fake) cloud, so no lock either.
func assertNothingStarted(t *testing.T, e *env) {
	t.Helper()
	if exs := e.sfn.Executions(); len(exs) != 0 {
		t.Errorf("bad input started %d execution(s)", len(exs))
	}
	if n := e.cloud.TotalCalls(); n != 0 {
		t.Errorf("bad input made %d AWS call(s)", n)
	}
}
