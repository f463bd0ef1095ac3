package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/lambda/trigger/triggertest"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// The fleet tests run a fleet's execution through the interpreter against
// the handler, on two fake accounts in two Regions. A case's own execution,
// which fleet-case starts, is run by the interpreter too, at once and to its
// end, inside the StartExecution that starts it (runningSFN): a lane then
// holds its place while its case is in its response, as it does in AWS
// until fleet-case-status finds the case settled.

// fleetWorld is two workload accounts, each in its own Region, the
// evidence bucket in the first, and the handler over them.
type fleetWorld struct {
	clouds    []*fakeaws.Cloud
	instances map[string][]string // by account
	groups    map[string]string   // the instances' security group, by account
	sfn       *runningSFN
	h         *trigger.Handler
	machine   *aslMachine

	mu sync.Mutex
	// responding counts the respond tasks running per account/Region, and
	// maxResponding the most seen at once.
	responding, maxResponding map[string]int
	// onRespond, when set, runs as a respond task starts (its case ID).
	onRespond func(caseID string)
}

const (
	fleetAccountA = fakeaws.DefaultAccount
	fleetAccountB = "444455556666"
	fleetRegionB  = "eu-west-3"
)

// runningSFN is the Step Functions fake whose StartExecution of a new case
// execution runs it to its end with the interpreter, then finishes it.
type runningSFN struct {
	*triggertest.SFN
	w *fleetWorld
}

func (s *runningSFN) StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	arn := strings.Replace(aws.ToString(in.StateMachineArn), ":stateMachine:", ":execution:", 1) + ":" + aws.ToString(in.Name)
	_, err := s.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	isNew := err != nil
	out, err := s.SFN.StartExecution(ctx, in, opts...)
	if err != nil || !isNew {
		return out, err
	}
	var input map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(in.Input)), &input); err != nil {
		return nil, err
	}
	if _, fleet := input["fleet_id"]; fleet {
		return out, nil // the test runs the fleet's execution itself
	}
	m := &aslMachine{StartAt: s.w.machine.StartAt, States: s.w.machine.States}
	ex, err := m.run(input, s.w.invoke, nil, 200)
	if err != nil {
		return nil, fmt.Errorf("case execution %s: %w", arn, err)
	}
	status := sfntypes.ExecutionStatusSucceeded
	if ex.Status != "SUCCEEDED" {
		status = sfntypes.ExecutionStatusFailed
	}
	return out, s.Finish(arn, status, ex.Error)
}

func newFleetWorld(t *testing.T, perAccount int, configure func(*trigger.Config)) *fleetWorld {
	t.Helper()
	m, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	w := &fleetWorld{instances: map[string][]string{}, groups: map[string]string{}, machine: m,
		responding: map[string]int{}, maxResponding: map[string]int{}}
	w.sfn = &runningSFN{SFN: triggertest.NewSFN(), w: w}
	for _, c := range []*fakeaws.Cloud{fakeaws.New(), fakeaws.New(fakeaws.WithAccount(fleetAccountB), fakeaws.WithRegion(fleetRegionB))} {
		if c.Account == fleetAccountB {
			c.AddVPC() // the fakes share a seed: shift B's IDs off A's
		}
		c.SnapshotCompletesAfter = 1
		c.Latency = time.Millisecond
		// Every response calls CreateSnapshots once: held longer, the
		// calls of the cases that respond at once overlap there, and the
		// fake's count of them in flight shows how many did.
		c.OnCall = func(op string) {
			if op == "CreateSnapshots" {
				time.Sleep(20 * time.Millisecond)
			}
		}
		w.clouds = append(w.clouds, c)
		w.addInstances(c, perAccount)
	}
	home := w.clouds[0]
	home.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
	cfg := trigger.Config{
		EvidenceBucket: "evidence", TopicARN: home.AddTopic("incidents"),
		StateMachineARN: "arn:aws:states:us-east-1:" + home.Account + ":stateMachine:responder-response",
		HomePartition:   "aws", HomeAccount: home.Account, AllowedAccounts: []string{fleetAccountA, fleetAccountB},
		MemberRoleName: trigger.DefaultMemberRoleName, LockWindow: trigger.DefaultLockWindow, Region: home.Region,
		Fleet: trigger.FleetConfig{Concurrency: 2, DistributedFrom: trigger.DefaultFleetDistributedFrom},
	}
	if configure != nil {
		configure(&cfg)
	}
	w.h = &trigger.Handler{
		Config:     cfg,
		Store:      &evidence.Bucket{API: home.S3(), Name: "evidence"},
		Executions: w.sfn,
		Findings:   triggertest.NewSecurityHub(),
		SNS:        home.SNS(),
		Workload: func(_ context.Context, t trigger.Target, _ string) (*cloud.Clients, error) {
			c := w.cloud(t.AccountID)
			if c == nil || c.Region != t.Region {
				return nil, fmt.Errorf("no account %s in %s", t.AccountID, t.Region)
			}
			return &cloud.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB()}, nil
		},
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	return w
}

func (w *fleetWorld) cloud(account string) *fakeaws.Cloud {
	for _, c := range w.clouds {
		if c.Account == account {
			return c
		}
	}
	return nil
}

// addInstances gives an account n running instances with one interface in
// a "web" group.
func (w *fleetWorld) addInstances(c *fakeaws.Cloud, n int) {
	vpc := c.AddVPC()
	subnet := c.AddSubnet(vpc)
	group := c.AddSecurityGroup(vpc, "web", []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
		IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}, fakeaws.DefaultEgress())
	w.groups[c.Account] = group
	for i := range n {
		id := c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc, SubnetID: subnet, SecurityGroupIDs: []string{group},
			Tags: map[string]string{"Name": fmt.Sprintf("web-%d", i+1), "app": "web"}})
		w.instances[c.Account] = append(w.instances[c.Account], id)
	}
}

// arn is an instance's ARN.
func (w *fleetWorld) arn(account, id string) string {
	c := w.cloud(account)
	return "arn:aws:ec2:" + c.Region + ":" + account + ":instance/" + id
}

// invoke calls the handler as the function does, counting the respond
// tasks in flight per account and Region.
func (w *fleetWorld) invoke(payload []byte) (json.RawMessage, *taskError) {
	var p struct {
		Task, CaseID, AccountID, Region string
	}
	var fields map[string]any
	_ = json.Unmarshal(payload, &fields)
	p.Task, _ = fields["task"].(string)
	p.CaseID, _ = fields["case_id"].(string)
	p.AccountID, _ = fields["account_id"].(string)
	p.Region, _ = fields["region"].(string)
	if p.Task == trigger.TaskRespond {
		place := p.AccountID + "/" + p.Region
		w.mu.Lock()
		w.responding[place]++
		w.maxResponding[place] = max(w.maxResponding[place], w.responding[place])
		hook := w.onRespond
		w.mu.Unlock()
		if hook != nil {
			hook(p.CaseID)
		}
		defer func() {
			w.mu.Lock()
			w.responding[place]--
			w.mu.Unlock()
		}()
	}
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

// api sends an API Gateway (v1) request to the handler.
func (w *fleetWorld) api(t *testing.T, method, resource, path, body string) (int, map[string]any) {
	t.Helper()
	ev := map[string]any{
		"resource": resource, "path": path, "httpMethod": method,
		"headers":        map[string]any{"Content-Type": "application/json"},
		"requestContext": map[string]any{"identity": map[string]any{"userArn": "arn:aws:iam::111122223333:user/alice"}},
		"body":           body,
	}
	if id, ok := strings.CutPrefix(path, "/fleets/"); ok {
		ev["pathParameters"] = map[string]any{"id": id}
	}
	b, _ := json.Marshal(ev)
	out, terr := w.invoke(b)
	if terr != nil {
		t.Fatalf("%s %s: %v", method, path, terr)
	}
	var resp struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

// startFleet posts a fleet and returns its ID and execution input.
func (w *fleetWorld) startFleet(t *testing.T, body string) (string, map[string]any) {
	t.Helper()
	status, resp := w.api(t, "POST", "/cases", "/cases", body)
	if status != 202 {
		t.Fatalf("POST /cases: %d %v", status, resp)
	}
	fleetID := resp["fleet_id"].(string)
	for _, e := range w.sfn.Executions() {
		if e.Name == fleetID {
			var input map[string]any
			if err := json.Unmarshal([]byte(e.Input), &input); err != nil {
				t.Fatal(err)
			}
			return fleetID, input
		}
	}
	t.Fatalf("no execution %s", fleetID)
	return "", nil
}

// allInstancesBody names every instance of both accounts by ARN.
func (w *fleetWorld) allInstancesBody(extra ...string) string {
	var arns []string
	for _, c := range w.clouds {
		for _, id := range w.instances[c.Account] {
			arns = append(arns, w.arn(c.Account, id))
		}
	}
	arns = append(arns, extra...)
	b, _ := json.Marshal(map[string]any{"instance_ids": arns})
	return string(b)
}

// contained says whether an instance's interfaces left its original group.
func (w *fleetWorld) contained(account, id string) bool {
	inst := w.cloud(account).Instance(id)
	for _, n := range inst.NetworkInterfaces {
		for _, g := range n.Groups {
			if aws.ToString(g.GroupId) == w.groups[account] {
				return false
			}
		}
	}
	return len(inst.NetworkInterfaces) > 0
}

// A fleet of 20 instances in two accounts and Regions, inline and
// distributed: every case is contained by its own execution, at most the
// fleet's concurrency of cases respond at once in each account and Region
// (counted by the handler, and seen by each account's fake as its most
// CreateSnapshots calls in flight at once, one per response), the fleet
// record lists them and GET /fleets/{id} says contained.
func TestFleetStateMachineContainsTheFleet(t *testing.T) {
	for _, mode := range []string{trigger.FleetInline, trigger.FleetDistributed} {
		t.Run(mode, func(t *testing.T) {
			w := newFleetWorld(t, 10, func(c *trigger.Config) {
				if mode == trigger.FleetDistributed {
					c.Fleet.DistributedFrom = 2
				}
			})
			fleetID, input := w.startFleet(t, w.allInstancesBody())
			ex, err := w.machine.run(input, w.invoke, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			if ex.Status != "SUCCEEDED" || ex.End != "FleetDone" {
				t.Fatalf("fleet ended %s in %s: %s %s", ex.Status, ex.End, ex.Error, ex.Cause)
			}
			if got := visited(ex, "FleetMode"); got == nil {
				t.Fatal("FleetMode not visited")
			}
			wantMap := map[string]string{trigger.FleetInline: "FleetLanes", trigger.FleetDistributed: "FleetLanesDistributed"}[mode]
			if visited(ex, wantMap) == nil {
				t.Errorf("the fleet did not run %s", wantMap)
			}
			for _, c := range w.clouds {
				for _, id := range w.instances[c.Account] {
					if !w.contained(c.Account, id) {
						t.Errorf("%s/%s is not quarantined", c.Account, id)
					}
				}
				place := c.Account + "/" + c.Region
				if got := w.maxResponding[place]; got > 2 || got < 1 {
					t.Errorf("%s: %d cases responded at once, want 1 to the fleet's concurrency 2", place, got)
				}
				// Each response calls CreateSnapshots once: the fake sees
				// as many at once as cases respond at once.
				if got := c.MaxConcurrentCalls("CreateSnapshots"); got > 2 || got < 1 {
					t.Errorf("%s: %d CreateSnapshots calls in flight at once, want 1 to the fleet's concurrency 2", place, got)
				}
			}
			for _, c := range w.clouds {
				t.Logf("%s/%s: at most %d cases responding, %d CreateSnapshots and %d EC2 calls in flight at once",
					c.Account, c.Region, w.maxResponding[c.Account+"/"+c.Region], c.MaxConcurrentCalls("CreateSnapshots"), c.MaxConcurrentCalls("EC2"))
			}
			t.Logf("%d Map iterations (lanes and cases), %d function invocations by the fleet's execution", w.machine.iterations.Load(), ex.Invocations)
			status, fleet := w.api(t, "GET", "/fleets/{id}", "/fleets/"+fleetID, "")
			if status != 200 {
				t.Fatalf("GET /fleets: %d %v", status, fleet)
			}
			counts, _ := fleet["counts"].(map[string]any)
			if counts["contained"] != 20.0 || len(counts) != 1 {
				t.Errorf("fleet counts %v, want 20 contained", counts)
			}
			rec, err := evidence.LoadFleet(t.Context(), w.h.Store, fleetID)
			if err != nil || len(rec.Cases) != 20 {
				t.Fatalf("fleet record: %v %+v", err, rec)
			}
			for _, c := range rec.Cases {
				if c.CaseID != evidence.FleetCaseID(fleetID, c.InstanceID) {
					t.Errorf("case %s of %s: not derived from the fleet", c.CaseID, c.InstanceID)
				}
			}
			closed, err := evidence.LastFleetClose(t.Context(), w.h.Store, fleetID)
			if err != nil || closed.Counts["contained"] != 20 {
				t.Errorf("closed record: %v %+v", err, closed)
			}
		})
	}
}

// visited returns the first visit of a state, or nil.
func visited(ex *execution, state string) *visit {
	for i := range ex.Visits {
		if ex.Visits[i].State == state {
			return &ex.Visits[i]
		}
	}
	return nil
}

// One instance that does not exist and one that is protected fail their
// own cases; the others are contained; the fleet ends FleetIncomplete and
// its record and GET /fleets/{id} say which.
func TestFleetStateMachinePartialFailure(t *testing.T) {
	w := newFleetWorld(t, 5, nil)
	protected := w.instances[fleetAccountB][0]
	if _, err := w.clouds[1].EC2().CreateTags(t.Context(), fleetTag(protected)); err != nil {
		t.Fatal(err)
	}
	missing := "i-0fffffffffffffff0"
	fleetID, input := w.startFleet(t, w.allInstancesBody(w.arn(fleetAccountB, missing)))
	ex, err := w.machine.run(input, w.invoke, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != "FAILED" || ex.End != "FleetIncomplete" || !strings.Contains(ex.Cause, `"contained":9`) || !strings.Contains(ex.Cause, `"failed":2`) {
		t.Fatalf("fleet ended %s in %s: %s", ex.Status, ex.End, ex.Cause)
	}
	_, fleet := w.api(t, "GET", "/fleets/{id}", "/fleets/"+fleetID, "")
	byInstance := map[string]string{}
	for _, c := range fleet["cases"].([]any) {
		cm := c.(map[string]any)
		byInstance[cm["instance_id"].(string)] = cm["status"].(string)
	}
	if byInstance[missing] != "failed" || byInstance[protected] != "failed" {
		t.Errorf("failed cases: %v", byInstance)
	}
	if w.contained(fleetAccountB, protected) {
		t.Error("the protected instance was changed")
	}
	for _, c := range w.clouds {
		for _, id := range w.instances[c.Account] {
			if id == protected {
				continue
			}
			if byInstance[id] != evidence.CaseContained || !w.contained(c.Account, id) {
				t.Errorf("%s: %s, quarantined %v", id, byInstance[id], w.contained(c.Account, id))
			}
		}
	}
}

func fleetTag(id string) *ec2.CreateTagsInput {
	return &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String(responder.DefaultProtectedTag), Value: aws.String("true")}}}
}

// The fleet's execution run again (a retry, or a redrive, within the lock
// window) doubles nothing: no new case execution, snapshot or run of a
// case; the fleet is closed a second time.
func TestFleetStateMachineRetryDoublesNothing(t *testing.T) {
	w := newFleetWorld(t, 4, nil)
	fleetID, input := w.startFleet(t, w.allInstancesBody())
	if ex, err := w.machine.run(input, w.invoke, nil, 100); err != nil || ex.End != "FleetDone" {
		t.Fatalf("first run: %v %+v", err, ex)
	}
	snapshots := func() (n int) {
		for _, c := range w.clouds {
			n += len(c.Snapshots())
		}
		return n
	}
	runs := func() map[string]int {
		out := map[string]int{}
		rec, _ := evidence.LoadFleet(t.Context(), w.h.Store, fleetID)
		for _, c := range rec.Cases {
			m, err := responder.Status(t.Context(), w.h.Store, c.CaseID)
			if err != nil {
				t.Fatal(err)
			}
			out[c.CaseID] = len(m.Runs)
		}
		return out
	}
	executions, snaps, before := len(w.sfn.Executions()), snapshots(), runs()
	if snaps != 8 {
		t.Fatalf("%d snapshots after the first run, want 8 (one a volume)", snaps)
	}

	ex, err := w.machine.run(input, w.invoke, nil, 100)
	if err != nil || ex.End != "FleetDone" {
		t.Fatalf("second run: %v %+v", err, ex)
	}
	if got := len(w.sfn.Executions()); got != executions {
		t.Errorf("%d executions after the retry, want %d", got, executions)
	}
	if got := snapshots(); got != snaps {
		t.Errorf("%d snapshots after the retry, want %d", got, snaps)
	}
	if after := runs(); !equalMaps(after, before) {
		t.Errorf("case runs %v after the retry, want %v", after, before)
	}
	if _, err := w.h.Store.Get(t.Context(), evidence.FleetsFolder, fleetID+"/closed-002.json"); err != nil {
		t.Errorf("the retry did not close the fleet again: %v", err)
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// While the fleet's case of an instance responds, a CLI-style Respond of
// the same case (the case a CLI fleet with the same fleet ID derives) is
// refused by the case's run lock and changes nothing.
func TestFleetCaseRefusesAConcurrentCLIRespond(t *testing.T) {
	w := newFleetWorld(t, 1, nil)
	c := w.clouds[0]
	id := w.instances[fleetAccountA][0]
	var once sync.Once
	var cliErr error
	var caseID string
	c.OnCall = func(op string) {
		if op != "CreateSnapshots" {
			return
		}
		once.Do(func() {
			r := responder.New(&cloud.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB(),
				Region: c.Region}, w.h.Store)
			r.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
			_, cliErr = r.Respond(context.Background(), responder.Request{InstanceID: id, CaseID: caseID, CaseIDGiven: true, Actor: "cli"})
		})
	}
	fleetID, input := w.startFleet(t, `{"instance_ids": ["`+w.arn(fleetAccountA, id)+`"]}`)
	caseID = evidence.FleetCaseID(fleetID, id)
	ex, err := w.machine.run(input, w.invoke, nil, 100)
	if err != nil || ex.End != "FleetDone" {
		t.Fatalf("fleet: %v %+v", err, ex)
	}
	if !errors.Is(cliErr, responder.ErrCaseBusy) {
		t.Fatalf("the CLI-style Respond during the fleet's case: %v, want %v", cliErr, responder.ErrCaseBusy)
	}
	m, err := responder.Status(t.Context(), w.h.Store, caseID)
	if err != nil || len(m.Runs) != 1 || m.Runs[0].Actor == "cli" {
		t.Fatalf("case record: %v, runs %+v", err, m.Runs)
	}
	if n := len(c.Snapshots()); n != 1 {
		t.Errorf("%d snapshots, want 1 (the CLI made none)", n)
	}
	if !slices.Contains([]string{evidence.CaseContained}, m.Status) {
		t.Errorf("case status %s", m.Status)
	}
}

// An instance already under a case (started alone, within the lock window)
// joins it: the fleet starts no second case for it, its record links the
// case that responded, and GET /fleets/{id} shows that case's status.
func TestFleetJoinsTheCaseThatHoldsAnInstance(t *testing.T) {
	w := newFleetWorld(t, 2, nil)
	held := w.instances[fleetAccountA][0]
	status, resp := w.api(t, "POST", "/cases", "/cases", `{"instance_id": "`+held+`"}`)
	if status != 202 {
		t.Fatalf("POST /cases: %d %v", status, resp)
	}
	alone := resp["case_id"].(string)
	fleetID, input := w.startFleet(t, w.allInstancesBody())
	ex, err := w.machine.run(input, w.invoke, nil, 100)
	if err != nil || ex.End != "FleetDone" {
		t.Fatalf("fleet: %v %+v", err, ex)
	}
	_, fleet := w.api(t, "GET", "/fleets/{id}", "/fleets/"+fleetID, "")
	for _, c := range fleet["cases"].([]any) {
		cm := c.(map[string]any)
		if cm["instance_id"] == held && (cm["joined_case_id"] != alone || cm["status"] != evidence.CaseContained) {
			t.Errorf("held instance: %v, want joined to %s, contained", cm, alone)
		}
	}
	if _, err := responder.Status(t.Context(), w.h.Store, evidence.FleetCaseID(fleetID, held)); !errors.Is(err, evidence.ErrNotFound) {
		t.Errorf("the fleet made a second case for the held instance: %v", err)
	}
	if n := len(w.clouds[0].Snapshots()); n != 2 {
		t.Errorf("%d snapshots in account A, want 2 (one per instance)", n)
	}
}

// The same fleet_id again after the lock window (a second execution of the
// fleet) continues the same cases: each case's run resumes its record in a
// second execution of the case, and no snapshot is taken twice.
func TestFleetRerunContinuesTheCases(t *testing.T) {
	w := newFleetWorld(t, 2, nil)
	clock := &testClock{now: time.Now().UTC()}
	w.h.Now = clock.Now
	body := strings.Replace(w.allInstancesBody(), `{`, `{"fleet_id": "fleet-INC-9", `, 1)
	_, input := w.startFleet(t, body)
	if ex, err := w.machine.run(input, w.invoke, nil, 100); err != nil || ex.End != "FleetDone" {
		t.Fatalf("first run: %v %+v", err, ex)
	}
	snapshots := len(w.clouds[0].Snapshots()) + len(w.clouds[1].Snapshots())

	clock.Advance(time.Hour)
	status, resp := w.api(t, "POST", "/cases", "/cases", body)
	if status != 202 || resp["execution_arn"] == "" || strings.HasSuffix(resp["execution_arn"].(string), ":fleet-INC-9") {
		t.Fatalf("rerun: %d %v, want a second execution of the fleet", status, resp)
	}
	var rerun map[string]any
	for _, e := range w.sfn.Executions() {
		if e.ARN == resp["execution_arn"] {
			_ = json.Unmarshal([]byte(e.Input), &rerun)
		}
	}
	ex, err := w.machine.run(rerun, w.invoke, nil, 100)
	if err != nil || ex.End != "FleetDone" {
		t.Fatalf("rerun: %v %+v", err, ex)
	}
	if got := len(w.clouds[0].Snapshots()) + len(w.clouds[1].Snapshots()); got != snapshots {
		t.Errorf("%d snapshots after the rerun, want %d", got, snapshots)
	}
	for _, c := range w.clouds {
		for _, id := range w.instances[c.Account] {
			m, err := responder.Status(t.Context(), w.h.Store, evidence.FleetCaseID("fleet-INC-9", id))
			if err != nil || len(m.Runs) != 2 || m.Status != evidence.CaseContained {
				t.Errorf("case of %s: %v; runs %d, status %s; want 2 runs, contained", id, err, len(m.Runs), m.Status)
			}
		}
	}
}
