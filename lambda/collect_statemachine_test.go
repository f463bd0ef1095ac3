package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/lambda/trigger/triggertest"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// The collection tests run the state machine (the ASL interpreter) against
// the handler on the shared fake: a workload account whose instance has a
// fake SSM Agent that runs the real capture script, and the function's own
// (forensics) account with the evidence and staging buckets. Wait states
// advance a test clock instead of sleeping.

// collectWorld is a world for the collecting playbooks.
type collectWorld struct {
	c, forensics *fakeaws.Cloud
	suspect      fakeaws.Suspect
	sfn          *triggertest.SFN
	hub          *triggertest.SecurityHub
	h            *trigger.Handler
	logs         *lockedLog
	clock        *testClock
	memory       []byte
	// crash, when set, makes the first invocation of a stage fail after
	// the handler did its work, as a function that dies before answering.
	crash   map[string]bool
	crashed map[string]bool
	// orphan, when set, opens an upload at the image's key before the first
	// prepare, as an attempt that died before its record was saved; its
	// upload ID is kept in orphanID.
	orphan   bool
	orphanID string
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const forensicProfileName = "responder-forensic-ssm"

func newCollectWorld(t *testing.T, agent fakeaws.Agent, endpoints bool) *collectWorld {
	t.Helper()
	c, s := fakeaws.NewSuspect()
	forensics := fakeaws.New(fakeaws.WithAccount("444455556666"))
	forensics.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
	forensics.AddBucket("staging", fakeaws.BucketOptions{})
	avml := fakeaws.StandInAVML()
	if _, err := forensics.S3().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("staging"), Key: aws.String("tools/avml-x86_64"), Body: bytes.NewReader(avml),
	}); err != nil {
		t.Fatal(err)
	}
	if endpoints {
		for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
			c.AddVpcEndpoint(s.VpcID, svc)
		}
		c.AddVpcEndpoint(s.VpcID, "s3", fakeaws.EndpointSpec{Gateway: true})
	}
	if agent.Memory == nil {
		agent.Memory = fakeaws.DefaultMemory()
	}
	c.SetAgent(s.InstanceID, agent)
	c.AgentS3(forensics.S3())
	c.DeployMemberDocuments()
	clock := &testClock{now: time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)}
	c.Clock, forensics.Clock = clock.Now, clock.Now

	presign := s3.NewPresignClient(s3.New(s3.Options{
		Region: c.Region, BaseEndpoint: aws.String("https://s3.fake.test"), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", ""),
	}))
	sum := sha256.Sum256(avml)
	w := &collectWorld{c: c, forensics: forensics, suspect: s, sfn: triggertest.NewSFN(), hub: triggertest.NewSecurityHub(),
		logs: &lockedLog{}, clock: clock, memory: agent.Memory, crash: map[string]bool{}, crashed: map[string]bool{}}
	w.hub.AnyFinding = true
	w.h = &trigger.Handler{
		Config: trigger.Config{
			EvidenceBucket: "evidence", TopicARN: c.AddTopic("incidents"),
			StateMachineARN: "arn:aws:states:us-east-1:" + forensics.Account + ":stateMachine:responder-response",
			HomePartition:   "aws", HomeAccount: forensics.Account, AllowedAccounts: []string{c.Account},
			MemberRoleName: trigger.DefaultMemberRoleName, LockWindow: trigger.DefaultLockWindow, Region: c.Region,
			Collection: trigger.CollectionConfig{
				ForensicProfile: forensicProfileName, StagingBucket: "staging",
				MemoryTools: map[string]step.StagedTool{"avml-x86_64": {Key: "tools/avml-x86_64", SHA256: hex.EncodeToString(sum[:])}},
			},
		},
		Store:      &evidence.Bucket{API: forensics.S3(), Name: "evidence", Presign: presign},
		Presign:    presign,
		Staging:    forensics.S3(),
		Executions: w.sfn,
		Findings:   w.hub,
		SNS:        c.SNS(),
		Workload: func(context.Context, trigger.Target, string) (*cloud.Clients, error) {
			return &cloud.Clients{EC2: c.EC2(), STS: c.STS(), SSM: c.SSM(), IAM: c.IAM(), AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB()}, nil
		},
		Log: slog.New(slog.NewJSONHandler(w.logs, nil)),
		Now: clock.Now,
	}
	return w
}

// invoke calls the handler; a stage named in crash fails once after doing
// its work, as Lambda reports a function that died before it answered.
func (w *collectWorld) invoke(payload []byte) (json.RawMessage, *taskError) {
	var p struct {
		Task, Stage string
		CaseID      string `json:"case_id"`
		InstanceID  string `json:"instance_id"`
		Collection  string `json:"collection_id"`
	}
	_ = json.Unmarshal(payload, &p)
	if w.orphan && p.Stage == "prepare" && w.orphanID == "" {
		up, err := w.forensics.S3().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String("evidence"),
			Key: aws.String(evidence.Prefix + p.CaseID + "/" + p.InstanceID + "/memory/" + p.Collection + "/memory-image")})
		if err != nil {
			panic(err)
		}
		w.orphanID = aws.ToString(up.UploadId)
	}
	out, err := w.h.Handle(context.Background(), payload)
	if err == nil && w.crash[p.Stage] && !w.crashed[p.Stage] {
		w.crashed[p.Stage] = true
		return nil, &taskError{Name: "Lambda.ServiceException", Cause: "the function died before it answered"}
	}
	if err != nil {
		var f *trigger.Failure
		name := trigger.ErrorInternal
		if ok := asFailure(err, &f); ok {
			name = f.Type
		}
		return nil, &taskError{Name: name, Cause: err.Error()}
	}
	return out, nil
}

func asFailure(err error, f **trigger.Failure) bool {
	for e := err; e != nil; {
		if v, ok := e.(*trigger.Failure); ok {
			*f = v
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// run starts a case through the API with the playbook and runs its
// execution; every Wait state advances the clock by waitStep.
func (w *collectWorld) run(t *testing.T, playbook string, waitStep time.Duration) (*execution, string) {
	t.Helper()
	ev := map[string]any{
		"resource": "/cases", "path": "/cases", "httpMethod": "POST",
		"headers":        map[string]any{"Content-Type": "application/json"},
		"requestContext": map[string]any{"identity": map[string]any{"userArn": "arn:aws:iam::111122223333:user/alice"}},
		"body":           `{"instance_id": "` + w.suspect.InstanceID + `", "account_id": "` + w.c.Account + `", "playbook": "` + playbook + `"}`,
	}
	b, _ := json.Marshal(ev)
	out, err := w.h.Handle(context.Background(), b)
	if err != nil || !strings.Contains(string(out), "202") {
		t.Fatalf("POST /cases: %s %v", out, err)
	}
	return w.execute(t, waitStep)
}

// execute runs the newest execution the handler started.
func (w *collectWorld) execute(t *testing.T, waitStep time.Duration) (*execution, string) {
	t.Helper()
	exs := w.sfn.Executions()
	var input map[string]any
	if err := json.Unmarshal([]byte(exs[len(exs)-1].Input), &input); err != nil {
		t.Fatal(err)
	}
	// The snapshots complete at once.
	w.c.SnapshotCompletesAfter = 1
	m, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := m.run(input, w.invoke, func() { w.clock.Advance(waitStep) }, 2000)
	if err != nil {
		t.Fatalf("run: %v (visited %d states)", err, len(ex.Visits))
	}
	w.checkNoURL(t, ex)
	return ex, input["case_id"].(string)
}

// checkNoURL: no presigned URL in any state's data, the log, the case record
// or a command's parameters.
func (w *collectWorld) checkNoURL(t *testing.T, ex *execution) {
	t.Helper()
	var texts []string
	for _, v := range ex.Visits {
		b, _ := json.Marshal(v)
		texts = append(texts, "state "+v.State+": "+string(b))
	}
	texts = append(texts, "log: "+w.logs.String())
	for key, o := range w.forensics.Objects("evidence") {
		if strings.HasSuffix(key, ".json") {
			texts = append(texts, key+": "+string(o.Body))
		}
	}
	for _, cmd := range w.c.Commands() {
		b, _ := json.Marshal(cmd.Parameters)
		texts = append(texts, "command "+cmd.DocumentName+": "+string(b))
	}
	for _, text := range texts {
		for _, leak := range []string{"X-Amz-Signature", "X-Amz-Credential"} {
			if strings.Contains(text, leak) {
				t.Fatalf("a presigned URL leaked (%s) into %.300s", leak, text)
			}
		}
	}
}

// record is the case record.
func (w *collectWorld) record(t *testing.T, caseID string) *evidence.Manifest {
	t.Helper()
	m, err := evidence.LoadManifest(context.Background(), w.h.Store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// captureCommands are the memory capture commands sent.
func (w *collectWorld) captureCommands() []fakeaws.CommandRecord {
	var out []fakeaws.CommandRecord
	for _, c := range w.c.Commands() {
		if c.DocumentName == ssmdocuments.LinuxMemoryCapture {
			out = append(out, c)
		}
	}
	return out
}

// checkClosed: the forensic access is closed whatever the collection did:
// no instance profile, every interface in the closed quarantine group only.
func (w *collectWorld) checkClosed(t *testing.T) {
	t.Helper()
	v := w.c.Instance(w.suspect.InstanceID)
	if v.ProfileAssociation != nil {
		t.Errorf("a profile is still associated: %s", aws.ToString(v.ProfileAssociation.IamInstanceProfile.Arn))
	}
	for _, n := range v.NetworkInterfaces {
		if len(n.Groups) != 1 {
			t.Fatalf("interface %s in groups %v", aws.ToString(n.NetworkInterfaceId), n.Groups)
		}
		g := w.c.SecurityGroup(aws.ToString(n.Groups[0].GroupId))
		if g == nil || len(g.IpPermissions) != 0 || len(g.IpPermissionsEgress) != 0 {
			t.Fatalf("interface %s is not in a closed group: %+v", aws.ToString(n.NetworkInterfaceId), g)
		}
	}
	for key, ids := range w.forensics.Uploads("evidence") {
		t.Errorf("multipart upload(s) %v of %s left open", ids, key)
	}
}

// lastStep is the newest record of a step.
func lastStep(m *evidence.Manifest, name string) (evidence.StepRecord, bool) {
	for i := len(m.Steps) - 1; i >= 0; i-- {
		if m.Steps[i].Name == name {
			return m.Steps[i], true
		}
	}
	return evidence.StepRecord{}, false
}

// An isolate-first capture from the API: contained first, then the memory
// image lands whole, decompresses to the instance's memory and is hashed in
// the forensics account; the forensic access is closed; a crash of the
// function after the prepare and send stages makes no second upload and no
// second command.
func TestStateMachineCollectsMemory(t *testing.T) {
	for _, crash := range []string{"", "prepare", "send", "inside-prepare"} {
		t.Run("crash="+crash, func(t *testing.T) {
			w := newCollectWorld(t, fakeaws.Agent{Online: true, NeedsProfile: true, PlatformType: "Linux", OnlineAfterCalls: 2, PollsToFinish: 3}, true)
			switch crash {
			case "inside-prepare":
				w.orphan = true
			case "prepare", "send":
				w.crash[crash] = true
			}
			ex, caseID := w.run(t, "collect", 30*time.Second)
			if ex.Status != "SUCCEEDED" || ex.End != "Done" {
				t.Fatalf("execution %s at %s: %s %s", ex.Status, ex.End, ex.Error, ex.Cause)
			}
			if w.crash[crash] && !w.crashed[crash] {
				t.Fatalf("the %s stage never crashed", crash)
			}
			if w.orphan {
				// The upload the dead attempt opened is the one completed.
				rec, _ := lastStep(w.record(t, caseID), "memory-capture")
				var st struct {
					Upload struct {
						UploadID string `json:"upload_id"`
					} `json:"upload"`
				}
				_ = json.Unmarshal(rec.After, &st)
				if w.orphanID == "" || st.Upload.UploadID != w.orphanID {
					t.Errorf("completed upload %q, want the earlier attempt's %q", st.Upload.UploadID, w.orphanID)
				}
			}
			m := w.record(t, caseID)
			if m.Status != evidence.CaseContained {
				t.Errorf("case status %s", m.Status)
			}
			w.checkClosed(t)
			if cmds := w.captureCommands(); len(cmds) != 1 {
				t.Errorf("%d capture commands sent, want 1", len(cmds))
			}
			var img *evidence.Artifact
			for i, a := range m.Artifacts {
				if strings.HasSuffix(a.Path, "/memory-image") {
					img = &m.Artifacts[i]
				}
			}
			if img == nil {
				t.Fatalf("no memory image in the record: %+v", m.Artifacts)
			}
			// The CLI's layout, which the evidence bucket policy expects
			// (the instance PUTs its report beside the image).
			if !strings.HasPrefix(img.Path, w.suspect.InstanceID+"/memory/run-001/") {
				t.Errorf("image at %s", img.Path)
			}
			stored, ok := w.forensics.Objects("evidence")[evidence.Prefix+caseID+"/"+img.Path]
			if !ok {
				t.Fatalf("no object for %s", img.Path)
			}
			sum := sha256.Sum256(stored.Body)
			if img.SHA256 != hex.EncodeToString(sum[:]) || img.HashedBy != "" {
				t.Errorf("image hash %s (hashed by %q), stored bytes %x", img.SHA256, img.HashedBy, sum)
			}
			raw, err := fakeaws.Decode(img.Encoding, stored.Body)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != len(w.memory)+32 || !bytes.Equal(raw[32:], w.memory) {
				t.Fatalf("the image does not decompress to a LiME image of the memory (%d bytes)", len(raw))
			}
			// Progress was recorded at each poll, and the execution ends
			// with the image's key and hash.
			polls := 0
			for _, s := range m.Steps {
				var st struct {
					Staged struct{ Stage string } `json:"staged"`
				}
				_ = json.Unmarshal(s.After, &st)
				if s.Name == "memory-capture" && st.Staged.Stage == step.StagePoll {
					polls++
				}
			}
			col := ex.Output.(map[string]any)["collection"].(map[string]any)
			if polls < 2 || col["image_sha256"] != img.SHA256 || col["failed"] != false {
				t.Errorf("%d polls recorded; collection %v", polls, col)
			}
		})
	}
}

// A capture that never ends is cancelled at the playbook's capture timeout:
// the command cancelled, the upload aborted, the access closed, the
// execution failed as CollectionFailed after containment held.
func TestStateMachineCollectionTimesOut(t *testing.T) {
	w := newCollectWorld(t, fakeaws.Agent{Online: true, PlatformType: "Linux", Fault: fakeaws.FaultHang}, true)
	ex, caseID := w.run(t, "collect", 30*time.Second)
	if ex.Status != "FAILED" || ex.End != "CollectionFailed" || !strings.Contains(ex.Cause, "capture timeout") {
		t.Fatalf("execution %s at %s: %s", ex.Status, ex.End, ex.Cause)
	}
	w.checkClosed(t)
	cmds := w.captureCommands()
	if len(cmds) != 1 || cmds[0].Status != "Cancelled" {
		t.Fatalf("capture commands %+v, want one, cancelled", cmds)
	}
	m := w.record(t, caseID)
	if m.Status != evidence.CaseContained {
		t.Errorf("case status %s", m.Status)
	}
	rec, _ := lastStep(m, "memory-capture")
	if rec.Status != evidence.StatusFailed || !strings.Contains(string(rec.After), "capture timeout") {
		t.Errorf("memory-capture record %s %s", rec.Status, rec.After)
	}
	// The volatile-data command hung too: cancelled at its own bound (a
	// third of the capture timeout), recorded as failed; the capture was
	// sent after it all the same.
	if v := w.checkVolatile(t, m, caseID, evidence.StatusFailed); !strings.Contains(v.Error, "cancelled") {
		t.Errorf("volatile-data error %q", v.Error)
	}
	for _, c := range w.c.Commands() {
		if c.DocumentName == ssmdocuments.LinuxVolatileData && c.Status != "Cancelled" {
			t.Errorf("volatile-data command %s", c.Status)
		}
	}
	// 30 minutes of capture at one poll every 30 s.
	if ex.Waits < 55 || ex.Waits > 70 {
		t.Errorf("%d waits", ex.Waits)
	}
}

// An agent that never comes online: the access stage gives up after the
// registration timeout; nothing is prepared, the forensic profile it
// associated is removed and the instance closed.
func TestStateMachineAgentNeverOnline(t *testing.T) {
	w := newCollectWorld(t, fakeaws.Agent{Online: true, NeedsProfile: true, PlatformType: "Linux", OnlineAfterCalls: 1 << 30}, true)
	ex, caseID := w.run(t, "collect", 15*time.Second)
	if ex.Status != "FAILED" || ex.End != "CollectionFailed" || !strings.Contains(ex.Cause, "did not come online") {
		t.Fatalf("execution %s at %s: %s", ex.Status, ex.End, ex.Cause)
	}
	w.checkClosed(t)
	if cmds := w.captureCommands(); len(cmds) != 0 {
		t.Errorf("%d capture commands sent", len(cmds))
	}
	if m := w.record(t, caseID); m.Status != evidence.CaseContained {
		t.Errorf("case status %s", m.Status)
	}
}

// A part that always fails: the instance reports the failure, the finish
// stage does not complete the image and aborts the upload.
func TestStateMachinePartAlwaysFails(t *testing.T) {
	memory := make([]byte, 70<<20) // two parts of 64 MiB, incompressible
	rand.New(rand.NewSource(1)).Read(memory)
	w := newCollectWorld(t, fakeaws.Agent{Online: true, PlatformType: "Linux", Fault: fakeaws.FaultUploadPart2, Memory: memory}, true)
	ex, caseID := w.run(t, "collect", 30*time.Second)
	if ex.Status != "FAILED" || ex.End != "CollectionFailed" {
		t.Fatalf("execution %s at %s: %s", ex.Status, ex.End, ex.Cause)
	}
	w.checkClosed(t)
	m := w.record(t, caseID)
	for _, a := range m.Artifacts {
		if strings.HasSuffix(a.Path, "/memory-image") {
			t.Errorf("an image was recorded: %+v", a)
		}
	}
	for key := range w.forensics.Objects("evidence") {
		if strings.HasSuffix(key, "/memory-image") {
			t.Errorf("an image was completed: %s", key)
		}
	}
	rec, _ := lastStep(m, "memory-capture")
	var st struct {
		Aborted    string `json:"aborted"`
		FailedPart int    `json:"failed_part"`
	}
	_ = json.Unmarshal(rec.After, &st)
	if rec.Status != evidence.StatusFailed || st.Aborted == "" || st.FailedPart != 2 {
		t.Errorf("memory-capture record %s aborted %q part %d", rec.Status, st.Aborted, st.FailedPart)
	}
}

// The "Respond + memory" custom action runs the collect playbook
// (RESPONDER_ACTION_PLAYBOOKS); once the image lands, its finding's note
// gives the image's key and SHA-256, and GET /cases/{id} shows the
// collection finished.
func TestStateMachineCustomActionCapturesMemory(t *testing.T) {
	w := newCollectWorld(t, fakeaws.Agent{Online: true, PlatformType: "Linux"}, true)
	w.h.Config.Collection.ActionPlaybooks = map[string]string{"ResponderCapture": "collect"}
	ev := strings.ReplaceAll(string(customActionEvent(w.c.Account, w.suspect.InstanceID)), "action/custom/ResponderRespond", "action/custom/ResponderCapture")
	if _, err := w.h.Handle(context.Background(), []byte(ev)); err != nil {
		t.Fatalf("custom action: %v", err)
	}
	ex, caseID := w.execute(t, 30*time.Second)
	if ex.Status != "SUCCEEDED" {
		t.Fatalf("execution %s at %s: %s", ex.Status, ex.End, ex.Cause)
	}
	m := w.record(t, caseID)
	var sum string
	for _, a := range m.Artifacts {
		if strings.HasSuffix(a.Path, "/memory-image") {
			sum = a.SHA256
		}
	}
	if sum == "" {
		t.Fatal("no memory image recorded")
	}
	noted := false
	for _, f := range w.hub.Findings() {
		if f.ID == "finding-ec2" && strings.Contains(f.Note, sum) && strings.Contains(f.Note, "/memory/run-001/memory-image") {
			noted = true
		}
	}
	if !noted {
		t.Errorf("no finding note gives the image and its SHA-256 %s: %+v", sum, w.hub.Findings())
	}
	b, _ := json.Marshal(map[string]any{"resource": "/cases/{id}", "path": "/cases/" + caseID, "httpMethod": "GET",
		"pathParameters": map[string]any{"id": caseID},
		"requestContext": map[string]any{"identity": map[string]any{"userArn": "arn:aws:iam::111122223333:user/alice"}}})
	out, err := w.h.Handle(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct{ Body string }
	_ = json.Unmarshal(out, &resp)
	var body struct {
		Collection *struct {
			Stage       string `json:"stage"`
			Status      string `json:"status"`
			ImageSHA256 string `json:"image_sha256"`
			Polls       int    `json:"polls"`
			Volatile    *struct {
				Status        string `json:"status"`
				Ended         bool   `json:"ended"`
				ArchiveSHA256 string `json:"archive_sha256"`
			} `json:"volatile"`
		} `json:"collection"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Collection == nil {
		t.Fatalf("GET /cases/%s: %s (%v)", caseID, resp.Body, err)
	}
	if c := body.Collection; c.Stage != step.StageFinish || c.Status != evidence.StatusOK || c.ImageSHA256 != sum || c.Polls < 1 {
		t.Errorf("collection %+v", *c)
	}
	archive := ""
	for _, a := range m.Artifacts {
		if strings.HasSuffix(a.Path, "/volatile-data.tar.gz") {
			archive = a.SHA256
		}
	}
	if v := body.Collection.Volatile; v == nil || v.Status != evidence.StatusOK || !v.Ended || archive == "" || v.ArchiveSHA256 != archive {
		t.Errorf("collection.volatile %+v, archive recorded with SHA-256 %q", v, archive)
	}
}

// collect-before-isolate: the capture runs first, over the instance's own
// network and profile, and the instance is isolated in the close stage,
// after the image landed.
func TestStateMachineCollectsBeforeIsolating(t *testing.T) {
	w := newCollectWorld(t, fakeaws.Agent{Online: true, PlatformType: "Linux"}, false)
	ex, caseID := w.run(t, "collect-before-isolate", 30*time.Second)
	if ex.Status != "SUCCEEDED" || ex.End != "Done" {
		t.Fatalf("execution %s at %s: %s %s", ex.Status, ex.End, ex.Error, ex.Cause)
	}
	m := w.record(t, caseID)
	if m.Status != evidence.CaseContained {
		t.Errorf("case status %s", m.Status)
	}
	w.checkClosed(t)
	q, _ := lastStep(m, "quarantine")
	finish, _ := lastStep(m, "memory-capture")
	first := m.Steps[0]
	if q.Status != evidence.StatusOK || finish.Status != evidence.StatusOK || q.Run <= finish.Run || first.Run != 1 {
		t.Errorf("quarantine in run %d (%s), the capture finished in run %d (%s): want isolation after the image", q.Run, q.Status, finish.Run, finish.Status)
	}
	for _, s := range m.Steps {
		if s.Run == 1 && (s.Name == "quarantine" || s.Name == "notify" || s.Name == "instance-profile") {
			t.Errorf("%s ran in the first run, before the capture", s.Name)
		}
	}
}

// collect-before-isolate with a capture that never ends: isolation waits
// at most the playbook's capture timeout (20 minutes), counted from the
// collection's first look at the instance, then goes ahead.
func TestStateMachineCaptureFirstIsBounded(t *testing.T) {
	// The agent answers only after a few looks (15 s apart).
	w := newCollectWorld(t, fakeaws.Agent{Online: true, PlatformType: "Linux", Fault: fakeaws.FaultHang, NeedsProfile: true, OnlineAfterCalls: 5}, false)
	// No profile of its own: the access stage associates the forensic one.
	assocs, err := w.c.EC2().DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range assocs.IamInstanceProfileAssociations {
		if _, err := w.c.EC2().DisassociateIamInstanceProfile(context.Background(), &ec2.DisassociateIamInstanceProfileInput{AssociationId: a.AssociationId}); err != nil {
			t.Fatal(err)
		}
	}
	start := w.clock.Now()
	ex, caseID := w.run(t, "collect-before-isolate", 30*time.Second)
	if ex.Status != "FAILED" || ex.End != "CollectionFailed" {
		t.Fatalf("execution %s at %s: %s", ex.Status, ex.End, ex.Cause)
	}
	w.checkClosed(t)
	m := w.record(t, caseID)
	if m.Status != evidence.CaseContained {
		t.Errorf("case status %s", m.Status)
	}
	q, _ := lastStep(m, "quarantine")
	if waited := q.StartedAt.Sub(start); q.Status != evidence.StatusOK || waited > 21*time.Minute || waited < 19*time.Minute {
		t.Errorf("quarantine %s after %s, want about the 20-minute capture timeout", q.Status, waited)
	}
	access, _ := lastStep(m, "ssm-access")
	if !strings.Contains(access.Reason, "look 2") && !strings.Contains(access.Reason, "look 1") && access.Status == evidence.StatusOK {
		return // the agent took several looks: the bound covered them
	}
	t.Errorf("the agent answered at once (%s %s %s): the test does not show the wait counted", access.Status, access.Reason, access.Error)
}

// A containment step that failed in the respond task is not hidden by the
// close stage, whose own steps held: the case and the execution say the
// containment failed.
func TestStateMachineCloseKeepsAnEarlierContainmentFailure(t *testing.T) {
	w := newCollectWorld(t, fakeaws.Agent{Online: true, PlatformType: "Linux"}, true)
	w.c.Deny("ModifyInstanceAttribute") // termination protection, in the respond task
	ex, caseID := w.run(t, "collect", 30*time.Second)
	if ex.Status != "FAILED" || ex.End != "ContainmentFailed" {
		t.Fatalf("execution %s at %s: %s", ex.Status, ex.End, ex.Cause)
	}
	if m := w.record(t, caseID); m.Status != evidence.CasePartiallyContained {
		t.Errorf("case status %s, want %s", m.Status, evidence.CasePartiallyContained)
	}
}

// checkVolatile checks the case's volatile-data collection: its record
// ended with status want, and, when it succeeded, the archive and the
// instance's report are in the evidence bucket and in the case record, each
// with the SHA-256 of the stored bytes; its one command was sent before the
// capture command. It returns the volatile-data record.
func (w *collectWorld) checkVolatile(t *testing.T, m *evidence.Manifest, caseID, want string) evidence.StepRecord {
	t.Helper()
	rec, ok := lastStep(m, "volatile-data")
	if !ok {
		t.Fatal("no volatile-data record")
	}
	var st struct {
		Staged struct {
			Ended bool   `json:"ended"`
			Error string `json:"error"`
		} `json:"staged"`
	}
	_ = json.Unmarshal(rec.After, &st)
	if rec.Status != want || !st.Staged.Ended {
		t.Fatalf("volatile-data record %s (ended %v, error %q), want %s: %s", rec.Status, st.Staged.Ended, st.Staged.Error, want, rec.Error)
	}
	volatile, capture := -1, -1
	for i, c := range w.c.Commands() {
		switch c.DocumentName {
		case ssmdocuments.LinuxVolatileData:
			if volatile >= 0 {
				t.Errorf("a second volatile-data command: %s", c.CommandID)
			}
			volatile = i
		case ssmdocuments.LinuxMemoryCapture:
			capture = i
		}
	}
	if volatile < 0 || capture >= 0 && capture < volatile {
		t.Errorf("volatile-data command at %d, capture command at %d: volatile data comes first", volatile, capture)
	}
	if want != evidence.StatusOK {
		return rec
	}
	base := w.suspect.InstanceID + "/volatile/run-001/"
	for _, name := range []string{"volatile-data.tar.gz", "report.json"} {
		var art *evidence.Artifact
		for i, a := range m.Artifacts {
			if a.Path == base+name {
				art = &m.Artifacts[i]
			}
		}
		if art == nil {
			t.Fatalf("no artifact %s in the case record", base+name)
		}
		stored, ok := w.forensics.Objects("evidence")[evidence.Prefix+caseID+"/"+art.Path]
		if !ok {
			t.Fatalf("no object for %s", art.Path)
		}
		if sum := sha256.Sum256(stored.Body); art.SHA256 != hex.EncodeToString(sum[:]) || art.Size != int64(len(stored.Body)) {
			t.Errorf("%s recorded with SHA-256 %s (%d bytes), stored %x (%d)", name, art.SHA256, art.Size, sum, len(stored.Body))
		}
		if name == "volatile-data.tar.gz" && !bytes.HasPrefix(stored.Body, []byte{0x1f, 0x8b}) {
			t.Errorf("the archive is not gzip")
		}
	}
	return rec
}

// The collecting playbooks from the API run volatile data too, as the CLI
// does, before the memory capture: its archive and report land in the
// evidence bucket, hashed, and are in the case record; then the image. The
// function dies once after the send stage: the retry sends no second
// volatile-data command (checkVolatile) and no second capture.
func TestStateMachineCollectsVolatileData(t *testing.T) {
	w := newCollectWorld(t, fakeaws.Agent{Online: true, PlatformType: "Linux", PollsToFinish: 2}, true)
	w.crash["send"] = true
	ex, caseID := w.run(t, "collect", 30*time.Second)
	if ex.Status != "SUCCEEDED" || ex.End != "Done" {
		t.Fatalf("execution %s at %s: %s %s", ex.Status, ex.End, ex.Error, ex.Cause)
	}
	if !w.crashed["send"] {
		t.Fatal("the send stage never crashed")
	}
	m := w.record(t, caseID)
	if m.Status != evidence.CaseContained {
		t.Errorf("case status %s", m.Status)
	}
	w.checkVolatile(t, m, caseID, evidence.StatusOK)
	if cmds := w.captureCommands(); len(cmds) != 1 || cmds[0].Status != "Success" {
		t.Errorf("capture commands %+v, want one that succeeded", cmds)
	}
	w.checkClosed(t)
}

// Volatile data that fails (the instance's script dies) is recorded as
// failed; the memory capture still runs and lands, and containment holds.
func TestStateMachineVolatileFailureKeepsMemory(t *testing.T) {
	w := newCollectWorld(t, fakeaws.Agent{Online: true, PlatformType: "Linux", Fault: fakeaws.FaultVolatileExit1}, true)
	ex, caseID := w.run(t, "collect", 30*time.Second)
	if ex.Status != "SUCCEEDED" || ex.End != "Done" {
		t.Fatalf("execution %s at %s: %s %s", ex.Status, ex.End, ex.Error, ex.Cause)
	}
	m := w.record(t, caseID)
	if m.Status != evidence.CaseContained {
		t.Errorf("case status %s", m.Status)
	}
	rec := w.checkVolatile(t, m, caseID, evidence.StatusFailed)
	if !strings.Contains(rec.Error, ssmdocuments.LinuxVolatileData) {
		t.Errorf("volatile-data error %q does not name the document", rec.Error)
	}
	image := false
	for _, a := range m.Artifacts {
		image = image || strings.HasSuffix(a.Path, "/memory-image") && a.SHA256 != ""
		if strings.Contains(a.Path, "/volatile/") && strings.HasSuffix(a.Path, ".tar.gz") {
			t.Errorf("an archive was recorded from a collection that never ran: %+v", a)
		}
	}
	if !image {
		t.Errorf("no memory image recorded: %+v", m.Artifacts)
	}
	w.checkClosed(t)
}
