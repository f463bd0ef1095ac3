package investigate_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
	"github.com/responder-ir/responder/responder/investigate"
	"github.com/responder-ir/responder/responder/preserve"
	"github.com/responder-ir/responder/responder/report"
)

const analysisRole = investigate.DefaultInstanceProfile

// addCase responds to another instance of the workload account under
// caseID and preserves its snapshots into the lab's forensics account,
// completed: a second case beside the lab's.
func (l *lab) addCase(t *testing.T, caseID string) {
	t.Helper()
	inst := l.src.AddInstance(fakeaws.InstanceSpec{Volumes: 1})
	if res := casetest.Respond(t, l.src, l.store, responder.Request{CaseID: caseID, InstanceID: inst, Plan: []string{"snapshots"}, PlanName: "custom"}); res.Err != nil {
		t.Fatalf("respond: %v", res.Err)
	}
	l.src.CompleteSnapshots()
	p := &preserve.Preserver{Source: l.src.EC2(), Forensics: l.dst.EC2(), Store: l.store, Region: l.src.Region,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	req := preserve.Request{CaseID: caseID, ForensicsAccountID: forensicsAccount, ForensicsKMSKeyID: l.key, PollInterval: time.Millisecond, Timeout: 5 * time.Second}
	if _, err := p.Preserve(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	l.dst.CompleteSnapshots()
	if res, err := p.Preserve(context.Background(), req); err != nil || res.Status != preserve.Completed {
		t.Fatalf("preserve %s: %v %v", caseID, err, res.Status)
	}
}

// policyOf reads a policy of the analysis role as the fake holds it.
func (l *lab) policyOf(t *testing.T, name string) map[string]any {
	t.Helper()
	doc, ok := l.dst.RolePolicy(analysisRole, name)
	if !ok {
		t.Fatalf("role %s has no policy %s (it has %v)", analysisRole, name, l.dst.RolePolicyNames(analysisRole))
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkConfined: the workspace's policy is on the role under its name,
// every statement conditioned on its instance's ARN, its resources the
// case's prefix of the bucket only; the record holds it as put.
func (l *lab) checkConfined(t *testing.T, ws evidence.Workspace) {
	t.Helper()
	name := "responder-analysis-" + ws.CaseID + "-" + ws.ID
	arn := l.instanceARN(ws.InstanceID)
	a := ws.Access
	if a == nil || a.State != evidence.AccessGranted || a.Role != analysisRole || a.PolicyName != name || a.InstanceARN != arn || a.GrantedAt == nil {
		t.Fatalf("recorded access %+v, want %s granted for %s", a, name, arn)
	}
	p := l.policyOf(t, name)
	var recorded map[string]any
	if err := json.Unmarshal(a.Document, &recorded); err != nil || !jsonEqual(recorded, p) {
		t.Errorf("recorded document %s is not the role's %v (%v)", a.Document, p, err)
	}
	bucket, prefix := "arn:aws:s3:::evidence", "cases/"+ws.CaseID+"/"
	want := map[string]string{
		"s3:GetObject": bucket + "/" + prefix + "*", "s3:ListBucket": bucket, "s3:PutObject": bucket + "/" + prefix + "analysis/*",
		"kms:Decrypt": "arn:aws:kms:" + l.dst.Region + ":" + forensicsAccount + ":key/*", "kms:GenerateDataKey": "arn:aws:kms:" + l.dst.Region + ":" + forensicsAccount + ":key/*",
	}
	seen := map[string]bool{}
	for _, raw := range p["Statement"].([]any) {
		st := raw.(map[string]any)
		cond := st["Condition"].(map[string]any)
		if got := cond["ArnEquals"].(map[string]any)["ec2:SourceInstanceARN"]; got != arn || st["Effect"] != "Allow" {
			t.Errorf("statement %v: %v ec2:SourceInstanceARN %v, want Allow for %s", st["Sid"], st["Effect"], got, arn)
		}
		actions, ok := st["Action"].([]any)
		if !ok {
			actions = []any{st["Action"]}
		}
		for _, action := range actions {
			seen[action.(string)] = true
			if st["Resource"] != want[action.(string)] {
				t.Errorf("%s on %v, want %s", action, st["Resource"], want[action.(string)])
			}
			switch action {
			case "s3:ListBucket":
				if got := cond["StringLike"].(map[string]any)["s3:prefix"]; got != prefix+"*" {
					t.Errorf("s3:ListBucket under s3:prefix %v, want %s*", got, prefix)
				}
			case "kms:Decrypt":
				if got := cond["StringEquals"].(map[string]any)["kms:ViaService"]; got != "s3."+l.dst.Region+".amazonaws.com" {
					t.Errorf("KMS via %v", got)
				}
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("actions %v, want %v", seen, want)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// may asks whether an instance may make a request, as IAM would decide it
// on the analysis role's inline policies.
func (l *lab) may(t *testing.T, instanceID, action, resource string) bool {
	t.Helper()
	ok, err := l.instanceMay(instanceID, action, resource)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A workspace's instance reads its own case, and writes only its analysis
// outputs, through a policy put for it alone; the memory image is fetched
// with it. --stop removes the policy, read back, and records it revoked.
func TestStartConfinesTheInstanceToItsCase(t *testing.T) {
	l := newLabIn(t, true, true)
	l.addMemoryImage(t)
	res := l.start(t, l.request())
	ws := res.Workspace
	if res.Err != nil || ws.State != evidence.WorkspaceReady || ws.Memory == nil || !ws.Memory.Matches {
		t.Fatalf("state %s err %v memory %+v", ws.State, res.Err, ws.Memory)
	}
	l.checkConfined(t, ws)
	own, other := "arn:aws:s3:::evidence/cases/"+casetest.CaseID+"/", "arn:aws:s3:::evidence/cases/case-other/"
	if !l.may(t, ws.InstanceID, "s3:GetObject", own+"i-1/memory-image") || !l.may(t, ws.InstanceID, "s3:PutObject", own+"analysis/ws-001/x.json") {
		t.Error("the workspace's instance may not read its case or write its analysis outputs")
	}
	if l.may(t, ws.InstanceID, "s3:GetObject", other+"i-1/memory-image") || l.may(t, ws.InstanceID, "s3:PutObject", own+"manifest.json") ||
		l.may(t, "i-0ffffffffffffffff", "s3:GetObject", own+"i-1/memory-image") {
		t.Error("the policy lets the instance read another case, overwrite its case, or another instance read it")
	}
	stopped, err := l.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: casetest.CaseID, PollInterval: time.Millisecond})
	if err != nil || stopped.Err != nil || stopped.Workspace.State != evidence.WorkspaceStopped {
		t.Fatalf("stop: %v %+v", err, stopped)
	}
	if names := l.dst.RolePolicyNames(analysisRole); len(names) != 0 {
		t.Errorf("policies left on the role: %v", names)
	}
	rec, err := evidence.LoadRecord(context.Background(), l.store, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	got := investigate.Workspaces(rec.Manifest)
	if a := got[len(got)-1].Access; a == nil || a.State != evidence.AccessRevoked || a.RevokedAt == nil || a.PolicyName != ws.Access.PolicyName {
		t.Errorf("recorded access after stop %+v", a)
	}
	if l.may(t, ws.InstanceID, "s3:GetObject", own+"i-1/memory-image") {
		t.Error("the instance still reads its case after the stop")
	}
	r, err := report.Build(context.Background(), l.store, casetest.CaseID, report.Options{Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := report.Render(&b, report.FormatMarkdown, r); err != nil {
		t.Fatal(err)
	}
	if want := "Evidence access: policy `" + ws.Access.PolicyName + "` on role `" + analysisRole + "`, for `" + ws.Access.InstanceARN + "` only: revoked"; !strings.Contains(b.String(), want) {
		t.Errorf("the report lacks %q", want)
	}
}

// Two workspaces of two cases: two policies on the one analysis role, each
// for its own instance and its own case's prefix; neither instance reads
// the other's case. Stopping one leaves the other's.
func TestTwoCasesTwoPolicies(t *testing.T) {
	l := newLabIn(t, true, true)
	l.addCase(t, "case-test-0002")
	a := l.start(t, l.request()).Workspace
	req := l.request()
	req.CaseID = "case-test-0002"
	b := l.start(t, req).Workspace
	if a.State != evidence.WorkspaceReady || b.State != evidence.WorkspaceReady {
		t.Fatalf("states %s %s: %q %q", a.State, b.State, a.Problems, b.Problems)
	}
	l.checkConfined(t, a)
	l.checkConfined(t, b)
	if names := l.dst.RolePolicyNames(analysisRole); len(names) != 2 || a.Access.PolicyName == b.Access.PolicyName {
		t.Fatalf("policies %v", names)
	}
	aCase, bCase := "arn:aws:s3:::evidence/cases/"+a.CaseID+"/x", "arn:aws:s3:::evidence/cases/"+b.CaseID+"/x"
	if !l.may(t, a.InstanceID, "s3:GetObject", aCase) || !l.may(t, b.InstanceID, "s3:GetObject", bCase) ||
		l.may(t, a.InstanceID, "s3:GetObject", bCase) || l.may(t, b.InstanceID, "s3:GetObject", aCase) {
		t.Error("an instance reads the other case, or not its own")
	}
	if _, err := l.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: a.CaseID, PollInterval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if names := l.dst.RolePolicyNames(analysisRole); !slices.Equal(names, []string{b.Access.PolicyName}) {
		t.Errorf("after stopping %s: policies %v, want %s's only", a.ID, names, b.CaseID)
	}
}

// A launch stage retried with the same input (the Lambda failed after the
// put) finds its instance by the client token and its policy as put: one
// instance, one policy, and the workspace ends ready.
func TestStagedRetryDoesNotDuplicateThePolicy(t *testing.T) {
	l := newLabIn(t, true, true)
	iv := l.investigator()
	ctx := context.Background()
	s, err := iv.BeginStaged(ctx, l.request(), "", "exec-1")
	if err != nil {
		t.Fatal(err)
	}
	retried := carry(t, s)
	if err := iv.AdvanceStaged(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := iv.AdvanceStaged(ctx, retried); err != nil {
		t.Fatal(err)
	}
	if retried.Workspace.InstanceID != s.Workspace.InstanceID || len(l.dst.RolePolicyNames(analysisRole)) != 1 ||
		retried.Workspace.Access == nil || retried.Workspace.Access.State != evidence.AccessGranted {
		t.Fatalf("retry: instance %s (first %s), policies %v, access %+v", retried.Workspace.InstanceID, s.Workspace.InstanceID,
			l.dst.RolePolicyNames(analysisRole), retried.Workspace.Access)
	}
	for i := 0; !retried.Done() && i < 50; i++ {
		retried = carry(t, retried)
		if err := iv.AdvanceStaged(ctx, retried); err != nil {
			t.Fatal(err)
		}
	}
	res, err := iv.FinishStaged(ctx, retried, "")
	if err != nil || res.Workspace.State != evidence.WorkspaceReady || len(l.instances(t)) != 1 {
		t.Fatalf("finish: %v state %s problems %q", err, res.Workspace.State, res.Workspace.Problems)
	}
	l.checkConfined(t, res.Workspace)
}

// A policy IAM refuses (the role's inline quota full, or no permission)
// leaves the workspace incomplete, says why, and fetches nothing: the
// memory image is not asked for and the jobs are skipped. The refused
// policy is recorded as failed, never as granted.
func TestRefusedPolicyFetchesNothing(t *testing.T) {
	for _, c := range []struct {
		name, want string
		refuse     func(l *lab)
	}{
		{"quota full", "LimitExceeded", func(l *lab) {
			l.dst.SetRolePolicy(analysisRole, "someone-else", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::x/`+
				strings.Repeat("a", fakeaws.MaxRolePolicyChars-200)+`"}]}`)
		}},
		{"not permitted", "AccessDenied", func(l *lab) { l.dst.Deny("PutRolePolicy") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLabIn(t, true, true)
			l.addMemoryImage(t)
			l.agent.S3 = l.dst.S3()
			c.refuse(l)
			req := l.request()
			req.Volatility, req.Plaso = true, true
			res := l.start(t, req)
			ws := res.Workspace
			problems := strings.Join(ws.Problems, ";")
			if ws.State != evidence.WorkspaceIncomplete || !strings.Contains(problems, c.want) || !strings.Contains(problems, "cannot read the case's evidence") {
				t.Fatalf("state %s problems %q", ws.State, ws.Problems)
			}
			if ws.Access == nil || ws.Access.State != evidence.AccessFailed || !strings.Contains(ws.Access.Error, c.want) {
				t.Errorf("recorded access %+v", ws.Access)
			}
			if ws.Memory == nil || ws.Memory.Matches || !strings.Contains(ws.Memory.Error, "not fetched") {
				t.Errorf("memory %+v", ws.Memory)
			}
			for _, d := range ws.Documents {
				if d.Name != "Responder-AnalysisMount" {
					t.Errorf("%s was sent without the evidence policy", d.Name)
				}
			}
			if len(ws.Jobs) != 2 || ws.Jobs[0].Status != evidence.StatusSkipped || ws.Jobs[1].Status != evidence.StatusSkipped {
				t.Errorf("jobs %+v", ws.Jobs)
			}
			if slices.Contains(l.dst.RolePolicyNames(analysisRole), "responder-analysis-"+casetest.CaseID+"-"+ws.ID) {
				t.Error("the refused policy is on the role")
			}
		})
	}
}

// A case kept in a local folder needs no policy: the instance cannot reach
// the folder anyway; nothing is put on the role.
func TestLocalCaseNeedsNoPolicy(t *testing.T) {
	l := newLab(t, true)
	ws := l.start(t, l.request()).Workspace
	if ws.State != evidence.WorkspaceReady || ws.Access != nil || len(l.dst.RolePolicyNames(analysisRole)) != 0 {
		t.Fatalf("state %s access %+v policies %v", ws.State, ws.Access, l.dst.RolePolicyNames(analysisRole))
	}
}

// The policy is recorded before IAM answers: when the process is killed
// between the put and the save, --stop still finds the workspace by its tags
// and removes the policy by its name.
func TestStopRemovesThePolicyOfAnUnrecordedWorkspace(t *testing.T) {
	l := newLabIn(t, true, true)
	ws := l.start(t, l.request()).Workspace
	// The record as it was before the start: the workspace unknown to it.
	rec, err := evidence.LoadRecord(context.Background(), l.store, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	before := len(rec.Manifest.Steps)
	m := *rec.Manifest
	m.Steps = slices.DeleteFunc(slices.Clone(m.Steps), func(s evidence.StepRecord) bool { return s.Name == "investigation" })
	if len(m.Steps) == before {
		t.Fatal("no investigation entry to forget")
	}
	if err := evidence.SaveRun(context.Background(), l.store, evidence.AppendRun(rec.Manifest, m, evidence.Revision{Run: evidence.Run{Number: rec.Run + 1, Playbook: "test"}})); err != nil {
		t.Fatal(err)
	}
	res, err := l.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: casetest.CaseID, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Workspace.ID != ws.ID || res.Workspace.State != evidence.WorkspaceStopped || res.Workspace.Access == nil ||
		res.Workspace.Access.State != evidence.AccessRevoked || len(l.dst.RolePolicyNames(analysisRole)) != 0 {
		t.Fatalf("stopped %+v, policies %v", res.Workspace, l.dst.RolePolicyNames(analysisRole))
	}
}

// Without an IAM client (or a forensics account to name the instance by),
// no policy can be put: the workspace says so and fetches nothing.
func TestNoPolicyWithoutIAMFetchesNothing(t *testing.T) {
	l := newLabIn(t, true, true)
	l.addMemoryImage(t)
	iv := l.investigator()
	iv.IAM = nil
	res, err := iv.Start(context.Background(), l.request())
	if err != nil {
		t.Fatal(err)
	}
	ws := res.Workspace
	if ws.State != evidence.WorkspaceIncomplete || ws.Access == nil || ws.Access.State != evidence.AccessFailed ||
		ws.Memory == nil || ws.Memory.Matches || !strings.Contains(ws.Memory.Error, "not fetched") {
		t.Fatalf("state %s access %+v memory %+v", ws.State, ws.Access, ws.Memory)
	}
}
