package trigger_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/responder-ir/responder/lambda/trigger"
)

// The fuzz targets of the package run briefly in CI (.ci/run) and for as
// long as wanted locally:
//
//	go test -run '^$' -fuzz '^FuzzHandle$' -fuzztime 1m ./lambda/trigger/
//
// A failing input is saved under testdata/fuzz/<target>/ and becomes a seed
// of every later run: commit it with the fix.

// FuzzHandle fuzzes the event router: the handler's decision of which kind
// of event it got (API Gateway v1 or v2, Security Hub custom action,
// GuardDuty finding, Step Functions task, or none) and the parsing of each,
// against the fake cloud. Properties: no panic; an error is a *Failure of a
// documented type; an answer is JSON; an API answer is JSON with a status
// below 500 (the fakes never fail, so bad input is never a 5xx); every
// execution started has a valid case and target of the function's
// partition and allowed accounts.
func FuzzHandle(f *testing.F) {
	for _, seed := range eventSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		e := newEnv(t, func(c *trigger.Config) { c.GuardDutyEnabled = true })
		// The seeds name the sample instance: make it the fake's suspect,
		// so that mutations of valid events reach the deepest paths.
		event = bytes.ReplaceAll(event, []byte(sampleInstance), []byte(e.suspect.InstanceID))
		out, err := e.h.Handle(t.Context(), event)
		checkFailure(t, err)
		if err == nil {
			checkAnswer(t, out)
		}
		if !isJSONObject(event) && err == nil {
			t.Fatalf("an event that is not a JSON object was answered: %s", out)
		}
		for _, ex := range e.sfn.Executions() {
			checkCaseInput(t, e, executionInput(t, ex))
		}
	})
}

// eventSeeds are the documented event shapes (testdata), each also with
// its Region replaced by one of another partition, each task's payload, and
// a few that are no event at all.
func eventSeeds(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no sample events in testdata: %v", err)
	}
	var seeds [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b, bytes.ReplaceAll(b, []byte("us-east-1"), []byte("cn-north-1")))
	}
	const target = `"case_id": "case-1", "instance_id": "` + sampleInstance + `", "account_id": "111122223333", "region": "us-east-1"`
	for _, s := range []string{
		`{"task": "respond", ` + target + `, "playbook": "default", "actor": "x", "source": "api", "case_id_given": true, "requested_at": "2025-11-23T10:15:00Z"}`,
		`{"task": "snapshot-status", ` + target + `, "polls": 3}`,
		`{"task": "preserve", "case_id": "case-1", "account_id": "111122223333", "region": "us-east-1", "polls": 0}`,
		`{"task": "wipe"}`,
		`{"version": "2.0", "routeKey": "GET /cases/{id}", "rawPath": "/cases/case-1", "pathParameters": {"id": "case-1"}, "requestContext": {"http": {"method": "GET"}}}`,
		`{"httpMethod": "DELETE", "path": "/cases"}`,
		`{"detail-type": "Scheduled Event", "source": "aws.events"}`,
		`{}`, `[]`, `null`, `"event"`, ``,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

var failureTypes = []string{trigger.ErrorInput, trigger.ErrorUnsupported, trigger.ErrorInstanceNotFound, trigger.ErrorTransient, trigger.ErrorInternal}

// checkFailure checks an error of Handle: a *Failure of a documented type.
func checkFailure(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var f *trigger.Failure
	if !errors.As(err, &f) || !slices.Contains(failureTypes, f.Type) {
		t.Fatalf("error %v (%T) is not a Failure of a documented type", err, err)
	}
	if !utf8.ValidString(f.Error()) {
		t.Fatalf("error message is not valid UTF-8: %q", f.Error())
	}
}

// checkAnswer checks an answer of Handle: JSON, and when it is an API
// answer, a JSON body of the right type, with a status below 500.
func checkAnswer(t *testing.T, out json.RawMessage) {
	t.Helper()
	var shape map[string]json.RawMessage
	if err := json.Unmarshal(out, &shape); err != nil {
		t.Fatalf("answer is not a JSON object: %v\n%s", err, out)
	}
	if _, ok := shape["statusCode"]; !ok {
		return
	}
	a := decodeAPI(t, out)
	if a.Status < 200 || a.Status >= 500 {
		t.Fatalf("API answer %d to fuzzed input (the fakes never fail): %s", a.Status, a.Raw)
	}
	if a.Status >= 400 {
		assertErrorBody(t, a)
	}
}

// checkCaseInput checks the input of an execution the event started.
func checkCaseInput(t *testing.T, e *env, in trigger.CaseInput) {
	t.Helper()
	target := in.Target()
	if err := target.Validate(); err != nil {
		t.Fatalf("execution started for an invalid target %+v: %v", in, err)
	}
	if err := trigger.ValidateRegionIn(target.Region, e.h.Config.HomePartition); err != nil {
		t.Fatalf("execution started in another partition %+v: %v", in, err)
	}
	if !e.h.Config.AccountAllowed(target.AccountID) {
		t.Fatalf("execution started in an account not allowed %+v", in)
	}
	if in.CaseID == "" || in.CaseID == trigger.LockFolder || strings.ContainsAny(in.CaseID, "/\\") {
		t.Fatalf("execution started with case ID %q", in.CaseID)
	}
	if !slices.Contains(trigger.Playbooks, in.Playbook) {
		t.Fatalf("execution started with playbook %q", in.Playbook)
	}
}

func isJSONObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

// FuzzParseInstanceARN fuzzes the instance ARN parser. Properties: no
// panic; an ARN that parses gives a valid target, agrees with the SDK's ARN
// parser field by field, and comes back the same from its target.
func FuzzParseInstanceARN(f *testing.F) {
	for _, s := range []string{
		"arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0",
		"arn:aws-cn:ec2:cn-north-1:111122223333:instance/i-01234567",
		"arn:aws-us-gov:ec2:us-gov-west-1:111122223333:instance/i-0123456789abcdef0",
		"arn:aws:ec2:us-east-1:111122223333:volume/vol-0123456789abcdef0",
		"arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0/extra",
		"arn:aws:ec2::111122223333:instance/i-0123456789abcdef0",
		"arn:aws:iam::111122223333:instance-profile/web-server",
		"i-0123456789abcdef0", "arn:::::", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		target, err := trigger.ParseInstanceARN(s)
		if err != nil {
			if target != (trigger.Target{}) {
				t.Fatalf("error %v with a target %+v", err, target)
			}
			if len(err.Error()) > 300 || !utf8.ValidString(err.Error()) {
				t.Fatalf("error message of %d bytes, valid UTF-8 %t", len(err.Error()), utf8.ValidString(err.Error()))
			}
			return
		}
		if err := target.Validate(); err != nil {
			t.Fatalf("%q parsed into an invalid target %+v: %v", s, target, err)
		}
		a, err := arn.Parse(s)
		if err != nil {
			t.Fatalf("%q parsed, but the SDK says it is no ARN: %v", s, err)
		}
		if a.Service != "ec2" || a.Region != target.Region || a.AccountID != target.AccountID || a.Resource != "instance/"+target.InstanceID {
			t.Fatalf("%q parsed into %+v; the SDK reads %+v", s, target, a)
		}
		back := arn.ARN{Partition: a.Partition, Service: "ec2", Region: target.Region, AccountID: target.AccountID,
			Resource: "instance/" + target.InstanceID}.String()
		if back != s {
			t.Fatalf("%q parsed into %+v, which makes %q", s, target, back)
		}
	})
}
