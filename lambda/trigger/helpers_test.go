package trigger_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/lambda/trigger/triggertest"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

const (
	stateMachineARN = "arn:aws:states:us-east-1:111122223333:stateMachine:responder-response"
	bucketName      = "responder-evidence"
	// sampleInstance is the instance ID of the sample events in testdata;
	// tests put the fake suspect's ID in its place.
	sampleInstance = "i-0123456789abcdef0"
	actorV1        = "arn:aws:sts::111122223333:assumed-role/responder-ir-responder/alice"
	actorV2        = "arn:aws:sts::111122223333:assumed-role/soar-integration/bob"
	otherAccount   = "444455556666"
)

// env is one test's world: a fake account holding a suspect instance and the
// evidence bucket (fakeaws), a fake Step Functions and Security Hub
// (triggertest), and the handler under test.
type env struct {
	t       *testing.T
	cloud   *fakeaws.Cloud
	suspect fakeaws.Suspect
	sfn     *triggertest.SFN
	hub     *triggertest.SecurityHub
	h       *trigger.Handler
	logs    *syncBuffer
	clock   *clock
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects the JSON log lines of concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Lines returns the log lines, decoded.
func (b *syncBuffer) Lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		lines = append(lines, m)
	}
	return lines
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

func newEnv(t *testing.T, configure ...func(*trigger.Config)) *env {
	t.Helper()
	c, s := fakeaws.NewSuspect()
	c.AddBucket(bucketName, fakeaws.BucketOptions{
		ObjectLockDefaultRetention: &fakeaws.Retention{Mode: "GOVERNANCE", Days: 1},
	})
	cfg := trigger.Config{
		EvidenceBucket:       bucketName,
		TopicARN:             c.AddTopic("incidents"),
		StateMachineARN:      stateMachineARN,
		HomePartition:        "aws",
		HomeAccount:          c.Account,
		AllowedAccounts:      []string{c.Account},
		MemberRoleName:       trigger.DefaultMemberRoleName,
		GuardDutyMinSeverity: trigger.DefaultGuardDutyMinSeverity,
		LockWindow:           trigger.DefaultLockWindow,
		Region:               c.Region,
	}
	for _, f := range configure {
		f(&cfg)
	}
	e := &env{
		t: t, cloud: c, suspect: s, sfn: triggertest.NewSFN(), hub: triggertest.NewSecurityHub(),
		logs: &syncBuffer{}, clock: &clock{now: time.Date(2025, 11, 23, 10, 15, 0, 0, time.UTC)},
	}
	e.h = &trigger.Handler{
		Config:     cfg,
		Store:      &evidence.Bucket{API: c.S3(), Name: bucketName},
		Executions: e.sfn,
		Findings:   e.hub,
		SNS:        c.SNS(),
		Workload: func(_ context.Context, t trigger.Target, caseID string) (*cloud.Clients, error) {
			// The fake holds one account in one Region: assuming the
			// member role anywhere else fails, as it would on AWS.
			if t.AccountID != c.Account || t.Region != c.Region {
				return nil, fmt.Errorf("assume role in %s: AccessDenied", t)
			}
			return &cloud.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB()}, nil
		},
		Log: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: e.clock.Now,
	}
	return e
}

// handle runs the handler on an event.
func (e *env) handle(event []byte) (json.RawMessage, error) {
	e.t.Helper()
	return e.h.Handle(context.Background(), event)
}

// mustHandle runs the handler and fails the test on an error.
func (e *env) mustHandle(event []byte) json.RawMessage {
	e.t.Helper()
	out, err := e.handle(event)
	if err != nil {
		e.t.Fatalf("Handle: %v", err)
	}
	return out
}

// event reads a sample event from testdata, with the suspect's instance ID
// in place of the sample's.
func (e *env) event(name string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		e.t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(b), sampleInstance, e.suspect.InstanceID))
}

// postV1 is the sample REST API (v1) POST /cases with another body.
func (e *env) postV1(body string, edit ...func(*events.APIGatewayProxyRequest)) []byte {
	e.t.Helper()
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(e.event("apigw-v1-post-cases.json"), &req); err != nil {
		e.t.Fatal(err)
	}
	req.Body = body
	for _, f := range edit {
		f(&req)
	}
	return marshal(e.t, req)
}

// postV2 is the sample HTTP API (v2) POST /cases with another body.
func (e *env) postV2(body string, edit ...func(*events.APIGatewayV2HTTPRequest)) []byte {
	e.t.Helper()
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(e.event("apigw-v2-post-cases.json"), &req); err != nil {
		e.t.Fatal(err)
	}
	req.Body = body
	for _, f := range edit {
		f(&req)
	}
	return marshal(e.t, req)
}

// getV1 is the sample GET /cases/{id}.
func (e *env) getV1(caseID string) []byte {
	e.t.Helper()
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(e.event("apigw-v1-get-case.json"), &req); err != nil {
		e.t.Fatal(err)
	}
	req.PathParameters = map[string]string{"id": caseID}
	req.Path = "/cases/" + caseID
	req.RequestContext.Path = "/v1/cases/" + caseID
	return marshal(e.t, req)
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiAnswer is an API response, v1 or v2, with its body decoded.
type apiAnswer struct {
	Status  int
	Headers map[string]string
	Body    map[string]any
	Raw     string
}

func decodeAPI(t *testing.T, out json.RawMessage) apiAnswer {
	t.Helper()
	var r struct {
		StatusCode int               `json:"statusCode"`
		Headers    map[string]string `json:"headers"`
		Body       string            `json:"body"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("answer is not an API Gateway response: %v\n%s", err, out)
	}
	a := apiAnswer{Status: r.StatusCode, Headers: r.Headers, Raw: r.Body}
	if err := json.Unmarshal([]byte(r.Body), &a.Body); err != nil {
		t.Fatalf("API body is not a JSON object: %v\n%s", err, r.Body)
	}
	if ct := r.Headers["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return a
}

// lockObjects lists the lock objects in the evidence bucket.
func (e *env) lockObjects() []string {
	var keys []string
	for k := range e.cloud.Objects(bucketName) {
		if strings.HasPrefix(k, evidence.Prefix+trigger.LockFolder+"/") {
			keys = append(keys, k)
		}
	}
	return keys
}

// executionInput decodes the input of an execution.
func executionInput(t *testing.T, ex triggertest.Execution) trigger.CaseInput {
	t.Helper()
	var in trigger.CaseInput
	if err := json.Unmarshal([]byte(ex.Input), &in); err != nil {
		t.Fatalf("execution %s input: %v", ex.Name, err)
	}
	return in
}
