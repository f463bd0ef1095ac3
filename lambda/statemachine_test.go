package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/internal/testenv"
	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/lambda/trigger/triggertest"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

const definitionPath = "statemachine.asl.json"

// aslValidatorVersion is the npm package that validates the definition.
const aslValidatorVersion = "asl-validator@4.0.0"

// aslValidator finds the asl-validator command: $ASL_VALIDATOR, or an npm
// install in the user cache directory (made on first use). It returns why
// it cannot when npm is missing or the install fails.
func aslValidator(t *testing.T) (string, error) {
	t.Helper()
	if p := os.Getenv("ASL_VALIDATOR"); p != "" {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	prefix := filepath.Join(cache, "responder", strings.ReplaceAll(aslValidatorVersion, "@", "-"))
	bin := filepath.Join(prefix, "node_modules", ".bin", "asl-validator")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("npm is not installed (Debian: apt-get install npm)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", prefix, aslValidatorVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New("npm install " + aslValidatorVersion + ": " + err.Error() + "\n" + string(out))
	}
	return bin, nil
}

// The definition is valid Amazon States Language, as the npm asl-validator
// checks it; a broken copy is refused (the validator really validates).
func TestStateMachineDefinitionIsValidASL(t *testing.T) {
	bin, err := aslValidator(t)
	if err != nil {
		testenv.Missing(t, "asl-validator: %v", err)
	}
	validate := func(path string) (string, error) {
		out, err := exec.Command(bin, "--json-path", path).CombinedOutput()
		return string(out), err
	}
	if out, err := validate(definitionPath); err != nil {
		t.Fatalf("asl-validator refuses %s: %v\n%s", definitionPath, err, out)
	}
	b, err := os.ReadFile(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.asl.json")
	if err := os.WriteFile(broken, []byte(strings.Replace(string(b), `"Next": "CheckSnapshots"`, `"Next": "NoSuchState"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := validate(broken); err == nil {
		t.Fatalf("asl-validator accepts a definition with a missing state:\n%s", out)
	}
}

// Every Task invokes the responder function with a payload that routes to a
// task the handler serves, with only fields that task reads (the handler
// refuses unknown fields), and is retried on Lambda's transient errors and
// caught into a Fail state.
func TestStateMachineTasksRouteToTheHandler(t *testing.T) {
	m, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	states, err := m.allStates()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for name, st := range states {
		if st.Type != "Task" {
			continue
		}
		if st.Resource != lambdaInvoke || st.Parameters["FunctionName"] != functionPlaceholder {
			t.Errorf("%s: resource %s, function %v; want %s of %s", name, st.Resource, st.Parameters["FunctionName"], lambdaInvoke, functionPlaceholder)
		}
		payload, _ := st.Parameters["Payload"].(map[string]any)
		task, _ := payload["task"].(string)
		fields, ok := trigger.TaskFields(task)
		if !ok {
			t.Errorf("%s: payload task %q is not a handler route (routes: %v)", name, task, trigger.Tasks())
			continue
		}
		seen = append(seen, task)
		var keys []string
		for k := range payload {
			keys = append(keys, strings.TrimSuffix(k, ".$"))
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !slices.Contains(fields, k) {
				t.Errorf("%s: payload field %q is not a field of task %s (%v)", name, k, task, fields)
			}
		}
		if task == trigger.TaskRespond && !slices.Equal(keys, fields) {
			t.Errorf("%s: the respond payload has %v, want every field of the case %v", name, keys, fields)
		}
		if task == trigger.TaskFleetOpen {
			// The plan replaces the fleet's input (its targets are in the
			// lanes now), carrying the fleet's fields on.
			if st.ResultSelector["fleet_id.$"] != "$.Payload.fleet_id" {
				t.Errorf("%s: the plan does not carry fleet_id on", name)
			}
		} else if st.ResultPath == nil || *st.ResultPath == "$" {
			t.Errorf("%s: its result replaces the state's data (and the case_id with it): give a ResultPath", name)
		}
		retriesLambda := false
		for _, r := range st.Retry {
			retriesLambda = retriesLambda || slices.Contains(r.ErrorEquals, "Lambda.ServiceException")
		}
		if !retriesLambda {
			t.Errorf("%s: no retry of Lambda's transient errors", name)
		}
		if len(st.Catch) == 0 {
			t.Errorf("%s: failures are not caught", name)
			continue
		}
		caught := st.Catch[len(st.Catch)-1].Next
		if task == trigger.TaskFleetCase || task == trigger.TaskFleetCaseStatus {
			// One case that cannot be started or read ends its iteration
			// (the fleet's close reads every case's record), not the fleet.
			if c := states[caught]; c.Type != "Pass" || !c.End {
				t.Errorf("%s: failures do not end the case's iteration", name)
			}
			continue
		}
		if task == trigger.TaskCollect && payload["stage"] != trigger.StageClose {
			// A collection that fails must still close the forensic
			// access (and, capture-first, isolate): Close, then on.
			if !reaches(m, caught, "Close", 3) {
				t.Errorf("%s: failures do not lead to Close", name)
			}
			continue
		}
		if states[caught].Type != "Fail" {
			t.Errorf("%s: failures are not caught into a Fail state", name)
		}
	}
	sort.Strings(seen)
	if want := trigger.Tasks(); !slices.Equal(slices.Compact(seen), want) {
		t.Errorf("the state machine uses tasks %v, the handler serves %v: every route should be used", seen, want)
	}
}

// reaches says whether state to follows from from within hops Next links.
func reaches(m *aslMachine, from, to string, hops int) bool {
	for range hops + 1 {
		if from == to {
			return true
		}
		from = m.States[from].Next
	}
	return false
}

// world is a fake account with a suspect instance and the handler on it.
type world struct {
	cloud   *fakeaws.Cloud
	suspect fakeaws.Suspect
	sfn     *triggertest.SFN
	h       *trigger.Handler
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
	w := &world{cloud: c, suspect: s, sfn: triggertest.NewSFN()}
	w.h = &trigger.Handler{
		Config: trigger.Config{
			EvidenceBucket: "evidence", TopicARN: c.AddTopic("incidents"),
			StateMachineARN: "arn:aws:states:us-east-1:" + c.Account + ":stateMachine:responder-response",
			HomePartition:   "aws", HomeAccount: c.Account, AllowedAccounts: []string{c.Account},
			MemberRoleName: trigger.DefaultMemberRoleName, LockWindow: trigger.DefaultLockWindow, Region: c.Region,
		},
		Store:      &evidence.Bucket{API: c.S3(), Name: "evidence"},
		Executions: w.sfn,
		Findings:   triggertest.NewSecurityHub(),
		SNS:        c.SNS(),
		Workload: func(context.Context, trigger.Target, string) (*cloud.Clients, error) {
			return &cloud.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB()}, nil
		},
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	return w
}

// invoke calls the handler as the function does: a failure becomes a task
// error named after its type.
func (w *world) invoke(payload []byte) (json.RawMessage, *taskError) {
	out, err := w.h.Handle(context.Background(), payload)
	if err != nil {
		var f *trigger.Failure
		name := trigger.ErrorInternal
		if errors.As(err, &f) {
			name = f.Type
		}
		return nil, &taskError{Name: name, Cause: err.Error()}
	}
	return out, nil
}

// startCase starts a case through the API and returns the execution's input.
func (w *world) startCase(t *testing.T, instanceID string) map[string]any {
	t.Helper()
	return w.startCaseBody(t, `{"instance_id": "`+instanceID+`"}`)
}

// startCaseBody starts a case through the API with a request body.
func (w *world) startCaseBody(t *testing.T, body string) map[string]any {
	t.Helper()
	ev := map[string]any{
		"resource": "/cases", "path": "/cases", "httpMethod": "POST",
		"headers":        map[string]any{"Content-Type": "application/json"},
		"requestContext": map[string]any{"identity": map[string]any{"userArn": "arn:aws:iam::111122223333:user/alice"}},
		"body":           body,
	}
	b, _ := json.Marshal(ev)
	if _, terr := w.invoke(b); terr != nil {
		t.Fatalf("POST /cases: %v", terr)
	}
	exs := w.sfn.Executions()
	if len(exs) != 1 {
		t.Fatalf("%d executions", len(exs))
	}
	var input map[string]any
	if err := json.Unmarshal([]byte(exs[0].Input), &input); err != nil {
		t.Fatal(err)
	}
	return input
}

func TestStateMachineRunsTheCase(t *testing.T) {
	for _, tc := range []struct {
		name     string
		arrange  func(w *world)
		instance func(w *world) string
		status   string
		end      string
		cause    string
	}{
		{name: "contained, snapshots completed", status: "SUCCEEDED", end: "Done",
			arrange: func(w *world) { w.cloud.SnapshotCompletesAfter = 3 }},
		{name: "containment failed", status: "FAILED", end: "ContainmentFailed", cause: "a containment step failed",
			arrange: func(w *world) { w.cloud.Deny("ModifyNetworkInterfaceAttribute"); w.cloud.SnapshotCompletesAfter = 1 }},
		{name: "instance gone", status: "FAILED", end: "ResponseFailed", cause: "a task failed",
			instance: func(*world) string { return "i-0fffffffffffffff0" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := loadMachine(definitionPath)
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t)
			if tc.arrange != nil {
				tc.arrange(w)
			}
			instanceID := w.suspect.InstanceID
			if tc.instance != nil {
				instanceID = tc.instance(w)
			}
			input := w.startCase(t, instanceID)
			caseID := input["case_id"].(string)

			ex, err := m.run(input, w.invoke, nil, 100)
			if err != nil {
				t.Fatalf("run: %v (visited %d states)", err, len(ex.Visits))
			}
			if ex.Status != tc.status || ex.End != tc.end {
				t.Fatalf("execution %s at %s (%s: %s), want %s at %s", ex.Status, ex.End, ex.Error, ex.Cause, tc.status, tc.end)
			}
			if tc.cause != "" && (!strings.Contains(ex.Cause, tc.cause) || !strings.Contains(ex.Cause, caseID)) {
				t.Errorf("cause %q, want it to say %q about case %s", ex.Cause, tc.cause, caseID)
			}
			// Every state receives (and passes on) the case ID.
			for _, v := range ex.Visits {
				for _, d := range []any{v.Input, v.Output} {
					if d == nil {
						continue
					}
					if got, _ := d.(map[string]any)["case_id"]; got != caseID {
						t.Errorf("state %s: data without case_id %s: %v", v.State, caseID, d)
					}
				}
			}
			if tc.end != "Done" {
				return
			}
			out := ex.Output.(map[string]any)
			if resp := out["response"].(map[string]any); resp["status"] != evidence.CaseContained {
				t.Errorf("response %v", resp)
			}
			if pres := out["preservation"].(map[string]any); pres["complete"] != true || pres["configured"] != false || pres["polls"] != 1.0 {
				t.Errorf("preservation %v, want complete at once (not configured)", pres)
			}
			if snaps := out["snapshots"].(map[string]any); snaps["complete"] != true || snaps["polls"] != 4.0 || ex.Waits != 3 {
				// Pending at the first three polls (SnapshotCompletesAfter),
				// completed at the fourth.
				t.Errorf("snapshots %v after %d waits, want complete at the fourth poll", snaps, ex.Waits)
			}
			for _, s := range w.cloud.Snapshots() {
				if s.State != "completed" || aws.ToString(s.Progress) != "100%" {
					t.Errorf("snapshot %s is %s", aws.ToString(s.SnapshotId), s.State)
				}
			}
		})
	}
}

// With a forensics key configured, the execution copies the completed
// snapshots into the forensics account (the function's own) and polls the
// copies until they complete; a snapshot that cannot be copied fails it.
func TestStateMachinePreservesTheSnapshots(t *testing.T) {
	const forensicsAccount = "444455556666"
	for _, tc := range []struct {
		name      string
		encrypted bool // volumes under aws/ebs, and no source key alias configured
		copyNever bool // the copies stay pending
		status    string
		end       string
		waits     int
	}{
		// 3 waits for the snapshots (SnapshotCompletesAfter), then 2 for
		// the copies, which complete after two looks: made (and seen
		// pending) at the first preserve poll, seen pending at the second,
		// completed at the third.
		{name: "copied", status: "SUCCEEDED", end: "Done", waits: 3 + 2},
		{name: "aws/ebs without source key", encrypted: true, status: "FAILED", end: "PreservationFailed", waits: 3},
		// The copies never complete: 288 polls, 287 waits between them.
		{name: "copies never complete", copyNever: true, status: "FAILED", end: "PreservationTimedOut", waits: 3 + 287},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := loadMachine(definitionPath)
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t)
			w.cloud.SnapshotCompletesAfter = 3
			instanceID := w.suspect.InstanceID
			if tc.encrypted {
				instanceID = w.cloud.AddInstance(fakeaws.InstanceSpec{Encrypted: true, Volumes: 2})
			}
			dst := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
			fakeaws.Link(w.cloud, dst)
			if !tc.copyNever {
				dst.SnapshotCompletesAfter = 2
			}
			key := dst.AddKMSKey("alias/evidence")
			w.h.Config.HomeAccount, w.h.Config.ForensicsKMSKey = forensicsAccount, key
			w.h.Forensics, w.h.PreservePoll = dst.EC2(), time.Millisecond
			// The function's own credentials (CallerSTS) act in the
			// forensics account; the member role in the workload account.
			w.h.Workload = func(context.Context, trigger.Target, string) (*cloud.Clients, error) {
				return &cloud.Clients{EC2: w.cloud.EC2(), STS: w.cloud.STS(), IAM: w.cloud.IAM(), AutoScaling: w.cloud.AutoScaling(), ELBv2: w.cloud.ELBv2(), ELB: w.cloud.ELB(), CallerSTS: dst.STS()}, nil
			}
			input := w.startCaseBody(t, `{"instance_id": "`+instanceID+`", "account_id": "`+w.cloud.Account+`"}`)
			caseID := input["case_id"].(string)

			ex, err := m.run(input, w.invoke, nil, 2000)
			if err != nil {
				t.Fatalf("run: %v (visited %d states)", err, len(ex.Visits))
			}
			if ex.Status != tc.status || ex.End != tc.end || ex.Waits != tc.waits {
				t.Fatalf("execution %s at %s after %d waits (%s: %s), want %s at %s after %d", ex.Status, ex.End, ex.Waits, ex.Error, ex.Cause, tc.status, tc.end, tc.waits)
			}
			for _, v := range ex.Visits {
				if d, ok := v.Input.(map[string]any); ok && d["case_id"] != caseID {
					t.Errorf("state %s: data without case_id %s", v.State, caseID)
				}
			}
			if tc.end != "Done" {
				if !strings.Contains(ex.Cause, caseID) || !strings.Contains(ex.Cause, "forensics account") {
					t.Errorf("cause %q", ex.Cause)
				}
				want := 0
				if tc.copyNever {
					want = 2 // made once, never again
				}
				if got := len(dst.Snapshots()); got != want {
					t.Errorf("forensics account holds %d snapshots, want %d", got, want)
				}
				return
			}
			pres := ex.Output.(map[string]any)["preservation"].(map[string]any)
			if pres["complete"] != true || pres["configured"] != true || pres["percent"] != 100.0 || pres["polls"] != 3.0 {
				t.Errorf("preservation %v, want complete at the third poll", pres)
			}
			copies := dst.Snapshots()
			if len(copies) != 2 {
				t.Fatalf("forensics account holds %d snapshots, want the 2 copies", len(copies))
			}
			for _, s := range copies {
				if s.State != "completed" || aws.ToString(s.KmsKeyId) != key {
					t.Errorf("copy %s: %s under %s", aws.ToString(s.SnapshotId), s.State, aws.ToString(s.KmsKeyId))
				}
			}
		})
	}
}
