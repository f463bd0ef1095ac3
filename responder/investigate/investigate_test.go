package investigate_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
	"github.com/responder-ir/responder/responder/investigate"
	"github.com/responder-ir/responder/responder/investigate/investigatetest"
	"github.com/responder-ir/responder/responder/preserve"
	"github.com/responder-ir/responder/responder/report"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

const forensicsAccount = "444455556666"

// lab is a workload account whose case snapshots were preserved (copied,
// completed) into a forensics account, which has an analysis subnet in the
// Region's second Availability Zone.
type lab struct {
	src, dst *fakeaws.Cloud
	store    evidence.Store
	subnet   string
	az       string
	key      string
	copies   []string
	agent    *investigatetest.Agent
}

func newLab(t testing.TB, wait bool) *lab {
	t.Helper()
	return newLabIn(t, wait, false)
}

// newLabIn makes the lab with the case in a local folder, or (inBucket) in
// the forensics account's evidence bucket, which the analysis instance can
// reach.
func newLabIn(t testing.TB, wait, inBucket bool) *lab {
	t.Helper()
	l := &lab{src: fakeaws.New(), dst: fakeaws.New(fakeaws.WithAccount(forensicsAccount)), store: &evidence.Folder{Root: t.TempDir()}}
	if inBucket {
		l.dst.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
		l.store = &evidence.Bucket{API: l.dst.S3(), Name: "evidence"}
	}
	fakeaws.Link(l.src, l.dst)
	l.key = l.dst.AddKMSKey("alias/evidence")
	inst := l.src.AddInstance(fakeaws.InstanceSpec{Volumes: 2})
	if res := casetest.Respond(t, l.src, l.store, responder.Request{InstanceID: inst, Plan: []string{"snapshots"}, PlanName: "custom"}); res.Err != nil {
		t.Fatalf("respond: %v", res.Err)
	}
	l.src.CompleteSnapshots()
	p := &preserve.Preserver{Source: l.src.EC2(), Forensics: l.dst.EC2(), Store: l.store, Region: l.src.Region,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	res, err := p.Preserve(context.Background(), preserve.Request{CaseID: casetest.CaseID, ForensicsAccountID: forensicsAccount,
		ForensicsKMSKeyID: l.key, Wait: false, PollInterval: time.Millisecond, Timeout: 5 * time.Second})
	if err != nil || res.Err != nil {
		t.Fatalf("preserve: %v %v", err, res.Err)
	}
	if wait {
		l.dst.CompleteSnapshots()
		if res, err = p.Preserve(context.Background(), preserve.Request{CaseID: casetest.CaseID, ForensicsAccountID: forensicsAccount,
			ForensicsKMSKeyID: l.key, PollInterval: time.Millisecond, Timeout: 5 * time.Second}); err != nil || res.Status != preserve.Completed {
			t.Fatalf("preserve: %v %v", err, res.Status)
		}
	}
	for _, c := range res.Copies {
		l.copies = append(l.copies, c.SnapshotID)
	}
	l.az = l.dst.Region + "b"
	l.subnet = l.dst.AddSubnetIn(l.dst.AddVPC(), l.az)
	l.agent = &investigatetest.Agent{Allowed: l.instanceMay}
	l.dst.AddRole(investigate.DefaultInstanceProfile, "")
	return l
}

// instanceMay decides a request an analysis instance makes with its role's
// credentials by the analysis role's inline policies, as IAM would.
func (l *lab) instanceMay(instanceID, action, resource string) (bool, error) {
	return l.dst.RoleAllows(investigate.DefaultInstanceProfile, fakeaws.Session{InstanceARN: l.instanceARN(instanceID)}, action, resource, nil)
}

func (l *lab) instanceARN(id string) string {
	return "arn:aws:ec2:" + l.dst.Region + ":" + forensicsAccount + ":instance/" + id
}

func (l *lab) investigator() *investigate.Investigator {
	return &investigate.Investigator{EC2: l.dst.EC2(), SSM: l.agent, IAM: l.dst.IAM(), Caller: l.dst.STS(), Store: l.store, Region: l.dst.Region,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessSettle: -1}
}

func (l *lab) request() investigate.Request {
	return investigate.Request{CaseID: casetest.CaseID, SubnetID: l.subnet, AMIID: "ami-0123456789abcdef0",
		PollInterval: time.Millisecond, Timeout: 5 * time.Second}
}

func (l *lab) start(t *testing.T, req investigate.Request) *investigate.Result {
	t.Helper()
	res, err := l.investigator().Start(context.Background(), req)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return res
}

// instances lists the forensics account's instances that are not terminated.
func (l *lab) instances(t *testing.T) []types.Instance {
	t.Helper()
	out, err := l.dst.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var live []types.Instance
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if in.State.Name != types.InstanceStateNameTerminated {
				live = append(live, in)
			}
		}
	}
	return live
}

// The workspace: one instance in the subnet's AZ, tagged with the case; one
// volume per completed copy, restored from it in that AZ, encrypted with the
// forensics key and attached; each mounted read-only (as the agent
// reported); all of it recorded; the copies untouched.
func TestStartBuildsTheWorkspaceInTheInstancesZone(t *testing.T) {
	l := newLab(t, true)
	res := l.start(t, l.request())
	ws := res.Workspace
	if res.Err != nil || ws.State != evidence.WorkspaceReady {
		t.Fatalf("state %s, err %v, problems %q", ws.State, res.Err, ws.Problems)
	}
	live := l.instances(t)
	if len(live) != 1 || aws.ToString(live[0].InstanceId) != ws.InstanceID {
		t.Fatalf("instances %v, want the workspace's %s", live, ws.InstanceID)
	}
	if az := aws.ToString(live[0].Placement.AvailabilityZone); az != l.az || ws.AvailabilityZone != l.az {
		t.Errorf("instance in %s (recorded %s), want %s", az, ws.AvailabilityZone, l.az)
	}
	if len(ws.Volumes) != len(l.copies) {
		t.Fatalf("%d volumes for %d copies", len(ws.Volumes), len(l.copies))
	}
	for i, v := range ws.Volumes {
		got := l.dst.Volume(v.VolumeID)
		if got == nil {
			t.Fatalf("volume %s does not exist", v.VolumeID)
		}
		inst, dev := "", ""
		if len(got.Attachments) == 1 {
			inst, dev = aws.ToString(got.Attachments[0].InstanceId), aws.ToString(got.Attachments[0].Device)
		}
		if aws.ToString(got.AvailabilityZone) != l.az || aws.ToString(got.SnapshotId) != l.copies[i] ||
			!aws.ToBool(got.Encrypted) || aws.ToString(got.KmsKeyId) != l.key || inst != ws.InstanceID || dev != v.Device {
			t.Errorf("volume %d: az %s snap %s enc %v key %s attached %s at %s",
				i, aws.ToString(got.AvailabilityZone), aws.ToString(got.SnapshotId), aws.ToBool(got.Encrypted), aws.ToString(got.KmsKeyId), inst, dev)
		}
	}
	if len(ws.Mounts) != len(l.copies) || len(ws.Documents) != 1 || ws.Documents[0].Version != "1" {
		t.Errorf("mounts %+v, documents %+v", ws.Mounts, ws.Documents)
	}
	// The record holds the workspace as read back.
	rec, err := evidence.LoadRecord(context.Background(), l.store, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	got := investigate.Workspaces(rec.Manifest)
	if len(got) != 1 || got[0].InstanceID != ws.InstanceID || got[0].State != evidence.WorkspaceReady {
		t.Fatalf("recorded workspaces %+v", got)
	}
	if last := rec.Manifest.Runs[len(rec.Manifest.Runs)-1]; last.Playbook != investigate.PlaybookStart {
		t.Errorf("last run %+v", last)
	}
	l.copiesIntact(t)
}

// copiesIntact: every copy still exists, completed.
func (l *lab) copiesIntact(t *testing.T) {
	t.Helper()
	have := map[string]types.SnapshotState{}
	for _, s := range l.dst.Snapshots() {
		have[aws.ToString(s.SnapshotId)] = s.State
	}
	for _, id := range l.copies {
		if have[id] != types.SnapshotStateCompleted {
			t.Errorf("copy %s is %q, want completed", id, have[id])
		}
	}
}

// A case whose copies are not completed gets no workspace: nothing is
// launched.
func TestStartRefusesACaseWithoutCompletedCopies(t *testing.T) {
	l := newLab(t, false)
	_, err := l.investigator().Start(context.Background(), l.request())
	if !errors.Is(err, investigate.ErrNoCopies) {
		t.Fatalf("err = %v, want ErrNoCopies", err)
	}
	if live := l.instances(t); len(live) != 0 {
		t.Errorf("instances launched: %v", live)
	}
}

// A second workspace for the case is refused unless asked for (--new).
func TestStartRefusesASecondWorkspaceUnlessNew(t *testing.T) {
	l := newLab(t, true)
	first := l.start(t, l.request())
	_, err := l.investigator().Start(context.Background(), l.request())
	if !errors.Is(err, investigate.ErrWorkspaceExists) || !strings.Contains(err.Error(), first.Workspace.ID) {
		t.Fatalf("err = %v, want ErrWorkspaceExists naming %s", err, first.Workspace.ID)
	}
	if live := l.instances(t); len(live) != 1 {
		t.Fatalf("%d instances after the refusal, want 1", len(live))
	}
	req := l.request()
	req.New = true
	second := l.start(t, req)
	if second.Workspace.ID == first.Workspace.ID || second.Workspace.State != evidence.WorkspaceReady || len(l.instances(t)) != 2 {
		t.Errorf("second workspace %+v", second.Workspace)
	}
}

// An analysis instance tagged with the case but not in the record (a run
// interrupted before its save) also refuses a second workspace.
func TestStartFindsAnUnrecordedWorkspaceByItsTags(t *testing.T) {
	l := newLab(t, true)
	if _, err := l.dst.EC2().RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-01234567"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(l.subnet),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String(investigate.TagCaseID), Value: aws.String(casetest.CaseID)},
			{Key: aws.String(investigate.TagRole), Value: aws.String(investigate.RoleAnalysis)}}}},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := l.investigator().Start(context.Background(), l.request())
	if !errors.Is(err, investigate.ErrWorkspaceExists) {
		t.Fatalf("err = %v, want ErrWorkspaceExists", err)
	}
}

// Teardown: the working volumes are detached and deleted, the instance
// terminated, all read back; the snapshot copies remain. A second stop
// finds nothing to stop.
func TestStopDeletesTheWorkingVolumesNeverTheCopies(t *testing.T) {
	l := newLab(t, true)
	ws := l.start(t, l.request()).Workspace
	res, err := l.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: casetest.CaseID, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err != nil || res.Workspace.State != evidence.WorkspaceStopped || res.Workspace.InstanceState != "terminated" {
		t.Fatalf("state %s, instance %s, err %v", res.Workspace.State, res.Workspace.InstanceState, res.Err)
	}
	for _, v := range ws.Volumes {
		if l.dst.Volume(v.VolumeID) != nil {
			t.Errorf("working volume %s still exists", v.VolumeID)
		}
	}
	if live := l.instances(t); len(live) != 0 {
		t.Errorf("instances left: %v", live)
	}
	l.copiesIntact(t)
	_, err = l.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: casetest.CaseID, PollInterval: time.Millisecond})
	if !errors.Is(err, investigate.ErrNoWorkspace) {
		t.Errorf("second stop: err = %v, want ErrNoWorkspace", err)
	}
	rec, _ := evidence.LoadRecord(context.Background(), l.store, casetest.CaseID)
	if got := investigate.Workspaces(rec.Manifest); len(got) != 1 || got[0].State != evidence.WorkspaceStopped || got[0].StoppedAt == nil {
		t.Errorf("recorded %+v", got)
	}
}

// A volume the record names that is not the workspace's (its tag differs:
// the record was edited, or the ID reused) is left alone, and the stop says
// so instead of claiming "stopped".
func TestStopLeavesAVolumeThatIsNotTheWorkspaces(t *testing.T) {
	l := newLab(t, true)
	ws := l.start(t, l.request()).Workspace
	victim := ws.Volumes[0].VolumeID
	if _, err := l.dst.EC2().CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{victim},
		Tags: []types.Tag{{Key: aws.String(investigate.TagWorkspaceID), Value: aws.String("ws-999")}}}); err != nil {
		t.Fatal(err)
	}
	res, err := l.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: casetest.CaseID, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Workspace.State != evidence.WorkspaceStopIncomplete || res.Err == nil {
		t.Fatalf("state %s err %v", res.Workspace.State, res.Err)
	}
	if l.dst.Volume(victim) == nil {
		t.Errorf("volume %s was deleted", victim)
	}
	if l.dst.Volume(ws.Volumes[1].VolumeID) != nil {
		t.Errorf("the workspace's other volume was not deleted")
	}
}

// A mount the agent reports written to (its counters moved) is not proven:
// the workspace is incomplete and says which volume.
func TestStartRecordsAnUnprovenMount(t *testing.T) {
	l := newLab(t, true)
	l.agent.Writes = true
	res := l.start(t, l.request())
	if res.Workspace.State != evidence.WorkspaceIncomplete || !strings.Contains(strings.Join(res.Workspace.Problems, ";"), "not proven") {
		t.Fatalf("state %s problems %q", res.Workspace.State, res.Workspace.Problems)
	}
}

// Bad input is refused before any AWS call: no instance.
func TestStartRejectsBadInput(t *testing.T) {
	l := newLab(t, true)
	for _, mut := range []func(*investigate.Request){
		func(r *investigate.Request) { r.SubnetID = "subnet-x; id" },
		func(r *investigate.Request) { r.AMIID = "ami-1" },
		func(r *investigate.Request) { r.InstanceType = "m7i large" },
		func(r *investigate.Request) { r.SecurityGroupIDs = []string{"default"} },
		func(r *investigate.Request) { r.CaseID = "../x" },
	} {
		req := l.request()
		mut(&req)
		_, err := l.investigator().Start(context.Background(), req)
		var ie *responder.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%+v: err = %v, want an InputError", req, err)
		}
	}
	if live := l.instances(t); len(live) != 0 {
		t.Errorf("instances launched: %v", live)
	}
}

// The case report shows the workspace: instance, working volumes, the
// mounts with their write counters, in the markdown and HTML reports; a
// stopped workspace shows as stopped.
func TestReportShowsTheInvestigation(t *testing.T) {
	l := newLab(t, true)
	ws := l.start(t, l.request()).Workspace
	render := func(format string) string {
		r, err := report.Build(context.Background(), l.store, casetest.CaseID, report.Options{Tool: "test"})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := report.Render(&b, format, r); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, format := range []string{report.FormatMarkdown, report.FormatHTML} {
		out := render(format)
		for _, want := range []string{"Investigation", ws.ID, ws.InstanceID, ws.Volumes[0].VolumeID, ws.Volumes[1].SnapshotID, "ro,norecovery", "ready"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s report lacks %q", format, want)
			}
		}
	}
	if _, err := l.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: casetest.CaseID, PollInterval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if out := render(report.FormatMarkdown); !strings.Contains(out, "### Workspace `"+ws.ID+"`: stopped") {
		t.Errorf("the report does not show the workspace stopped:\n%s", out)
	}
}

// addMemoryImage records a memory image in the case, as memory capture
// would have stored it.
func (l *lab) addMemoryImage(t *testing.T) evidence.Artifact {
	t.Helper()
	return l.addMemoryImageOf(t, casetest.CaseID)
}

func (l *lab) addMemoryImageOf(t *testing.T, caseID string) evidence.Artifact {
	t.Helper()
	ctx := context.Background()
	rec, err := evidence.LoadRecord(ctx, l.store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	m := rec.Manifest
	path := m.InstanceID + "/memory/run-009/memory-image"
	body := []byte("LiME image")
	if _, err := l.store.Put(ctx, caseID, path, body, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	a := evidence.Artifact{Path: path, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(body)), Step: "memory-capture", Source: "memory of " + m.InstanceID + " by avml"}
	next := evidence.AppendRun(m, *m, evidence.Revision{Run: evidence.Run{Number: rec.Run, Playbook: "test"}, Artifacts: []evidence.Artifact{a}})
	if err := evidence.SaveRun(ctx, l.store, next); err != nil {
		t.Fatal(err)
	}
	return a
}

// With the case in the evidence bucket, the memory image is fetched onto
// the instance and checked, and the analysis jobs run: each output becomes
// an artifact of the case under analysis/<workspace>/, with the SHA-256
// the toolkit computed from the stored object.
func TestStartRunsTheAnalysisJobs(t *testing.T) {
	l := newLabIn(t, true, true)
	img := l.addMemoryImage(t)
	l.agent.S3 = l.dst.S3()
	req := l.request()
	req.Volatility, req.Plaso = true, true
	res := l.start(t, req)
	ws := res.Workspace
	if res.Err != nil || ws.State != evidence.WorkspaceReady {
		t.Fatalf("state %s err %v problems %q", ws.State, res.Err, ws.Problems)
	}
	if ws.Memory == nil || !ws.Memory.Matches || ws.Memory.Artifact != img.Path || ws.Memory.Path != "/analysis/"+ws.ID+"/memory.lime" {
		t.Errorf("memory %+v", ws.Memory)
	}
	plugins := strings.Split(ssmdocuments.DefaultLinuxPlugins, ",")
	if len(ws.Jobs) != 2 || ws.Jobs[0].Status != evidence.StatusOK || len(ws.Jobs[0].Outputs) != 2*len(plugins) ||
		len(ws.Jobs[0].Runs) != len(plugins) || ws.Jobs[1].Status != evidence.StatusOK || len(ws.Jobs[1].Runs) != 1 {
		t.Fatalf("jobs %+v", ws.Jobs)
	}
	// Each run's output and log are artifacts of the case.
	for _, r := range append(ws.Jobs[0].Runs, ws.Jobs[1].Runs...) {
		for _, p := range []string{r.Output, r.Log} {
			if !slices.Contains(append(ws.Jobs[0].Outputs, ws.Jobs[1].Outputs...), p) || !strings.HasPrefix(p, "analysis/"+ws.ID+"/") {
				t.Errorf("run %+v: %q is not a recorded output", r, p)
			}
		}
	}
	rec, err := evidence.LoadRecord(context.Background(), l.store, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(ws.Jobs[0].Outputs, ws.Jobs[1].Outputs...) {
		a, ok := rec.Manifest.Artifact(p)
		body, gerr := l.store.Get(context.Background(), casetest.CaseID, p)
		sum := sha256.Sum256(body)
		if !ok || gerr != nil || a.SHA256 != hex.EncodeToString(sum[:]) || !strings.HasPrefix(p, "analysis/"+ws.ID+"/") {
			t.Errorf("output %s: recorded %+v (%v), stored %v", p, a, ok, gerr)
		}
	}
	if !strings.Contains(strings.Join(ws.Jobs[0].Outputs, " "), "linux.pslist") {
		t.Errorf("volatility outputs %v, want the Linux plugins", ws.Jobs[0].Outputs)
	}
}

// A tool missing on the image is a skip, said so; a stored output whose
// SHA-256 is not the one the instance reported is a problem.
func TestAnalysisJobsSkipAndCheck(t *testing.T) {
	l := newLabIn(t, true, true)
	l.addMemoryImage(t)
	l.agent.S3, l.agent.NoTools = l.dst.S3(), true
	req := l.request()
	req.Plaso = true
	ws := l.start(t, req).Workspace
	if len(ws.Jobs) != 1 || ws.Jobs[0].Status != evidence.StatusSkipped || !strings.Contains(ws.Jobs[0].Reason, "not installed") || ws.State != evidence.WorkspaceReady {
		t.Fatalf("jobs %+v state %s", ws.Jobs, ws.State)
	}
	l2 := newLabIn(t, true, true)
	l2.addMemoryImage(t)
	l2.agent.S3, l2.agent.LieHash = l2.dst.S3(), true
	req = l2.request()
	req.Volatility = true
	ws = l2.start(t, req).Workspace
	if ws.State != evidence.WorkspaceIncomplete || !strings.Contains(strings.Join(ws.Problems, ";"), "the instance reported") {
		t.Fatalf("state %s problems %q", ws.State, ws.Problems)
	}
}

// With the case in a local folder, the instance can neither fetch the
// memory image nor store outputs: the workspace says so.
func TestLocalCaseCannotFeedTheInstance(t *testing.T) {
	l := newLab(t, true)
	l.addMemoryImage(t)
	req := l.request()
	req.Volatility = true
	ws := l.start(t, req).Workspace
	if ws.State != evidence.WorkspaceIncomplete || ws.Memory == nil || !strings.Contains(ws.Memory.Error, "local folder") ||
		len(ws.Jobs) != 1 || ws.Jobs[0].Status != evidence.StatusSkipped {
		t.Fatalf("state %s memory %+v jobs %+v", ws.State, ws.Memory, ws.Jobs)
	}
}

// A workspace launched by a run that stopped before its save is not in the
// record: --stop finds it by its tags and tears it down, recorded.
func TestStopFindsAnUnrecordedWorkspace(t *testing.T) {
	l := newLab(t, true)
	ws := l.start(t, l.request()).Workspace
	// Forget the record's workspace: the case as it was before the start.
	rec, err := evidence.LoadRecord(context.Background(), l.store, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	l2 := &lab{dst: l.dst, store: &evidence.Folder{Root: t.TempDir()}, agent: l.agent}
	m := *rec.Manifest
	m.Steps = nil
	if err := evidence.SaveRun(context.Background(), l2.store, evidence.AppendRun(nil, m, evidence.Revision{Run: evidence.Run{Number: 1, Playbook: "test"}})); err != nil {
		t.Fatal(err)
	}
	res, err := l2.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: casetest.CaseID, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Workspace.ID != ws.ID || res.Workspace.State != evidence.WorkspaceStopped || len(res.Workspace.Volumes) != 2 {
		t.Fatalf("stopped %+v", res.Workspace)
	}
	for _, v := range ws.Volumes {
		if l.dst.Volume(v.VolumeID) != nil {
			t.Errorf("volume %s left", v.VolumeID)
		}
	}
	l.copiesIntact(t)
}

// The case report lists each analysis job, each of its runs with its exit
// status, and the run's output and log with the SHA-256 the case records.
func TestReportShowsTheAnalysisJobs(t *testing.T) {
	l := newLabIn(t, true, true)
	l.addMemoryImage(t)
	l.agent.S3 = l.dst.S3()
	req := l.request()
	req.Volatility, req.Plaso = true, true
	ws := l.start(t, req).Workspace
	r, err := report.Build(context.Background(), l.store, casetest.CaseID, report.Options{Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := report.Render(&b, report.FormatMarkdown, r); err != nil {
		t.Fatal(err)
	}
	rec, err := evidence.LoadRecord(context.Background(), l.store, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, j := range ws.Jobs {
		for _, run := range j.Runs {
			runs++
			for _, p := range []string{run.Output, run.Log} {
				a, ok := rec.Manifest.Artifact(p)
				if !ok || !strings.Contains(b.String(), "`"+p+"` `"+a.SHA256+"`") {
					t.Errorf("the report lacks %s with its SHA-256 (%v)", p, ok)
				}
			}
		}
	}
	if runs == 0 {
		t.Fatalf("no run recorded: %+v", ws.Jobs)
	}
}
