package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/klauspost/compress/zstd"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/image"
	"github.com/responder-ir/responder/responder/investigate"
	"github.com/responder-ir/responder/responder/investigate/investigatetest"
)

const (
	imageCase  = "case-image-1"
	imageCopy  = "snap-0bbbbbbbbbbbbbbbb"
	imageSrc   = "snap-0aaaaaaaaaaaaaaaa"
	imageInst  = "i-0123456789abcdef0"
	callerARN  = "arn:aws:iam::111122223333:user/alice"
	maxStateKB = 16
)

// api sends a REST API (v1) request to the handler and decodes the answer.
func (w *world) api(t *testing.T, method, resource, caseID, body string) (int, map[string]any) {
	t.Helper()
	path := strings.Replace(resource, "{id}", caseID, 1)
	ev := map[string]any{
		"resource": resource, "path": path, "httpMethod": method,
		"pathParameters": map[string]any{"id": caseID},
		"headers":        map[string]any{"Content-Type": "application/json"},
		"requestContext": map[string]any{"identity": map[string]any{"userArn": callerARN}, "path": path},
		"body":           body,
	}
	b, _ := json.Marshal(ev)
	out, terr := w.invoke(b)
	if terr != nil {
		t.Fatalf("%s %s: %v", method, path, terr)
	}
	var r struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	var decoded map[string]any
	if err := json.Unmarshal(out, &r); err != nil || json.Unmarshal([]byte(r.Body), &decoded) != nil {
		t.Fatalf("%s %s: answer %s", method, path, out)
	}
	return r.StatusCode, decoded
}

// lastInput is the input of the newest execution started.
func (w *world) lastInput(t *testing.T) map[string]any {
	t.Helper()
	exs := w.sfn.Executions()
	var in map[string]any
	if len(exs) == 0 || json.Unmarshal([]byte(exs[len(exs)-1].Input), &in) != nil {
		t.Fatalf("no execution input (%d executions)", len(exs))
	}
	return in
}

// imageWorld is a case whose snapshot was copied (completed) in the
// function's own account, the copy's blocks behind the fake EBS direct API.
func imageWorld(t *testing.T, written []int32) (*world, *fakeaws.EBS) {
	t.Helper()
	w := newWorld(t)
	e := fakeaws.NewEBS()
	rng := rand.New(rand.NewPCG(3, 4))
	blocks := map[int32][]byte{}
	for _, i := range written {
		b := make([]byte, fakeaws.EBSBlockSize)
		for k := 0; k < len(b); k += 8 {
			binary.LittleEndian.PutUint64(b[k:], rng.Uint64()&0x0303030303030303)
		}
		blocks[i] = b
	}
	e.AddSnapshot(imageCopy, 1, blocks)
	now := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	m := evidence.AppendRun(nil, evidence.Manifest{CaseID: imageCase, InstanceID: imageInst, AccountID: w.cloud.Account, Region: w.cloud.Region},
		evidence.Revision{
			Run:       evidence.Run{Number: 1, Playbook: "default", Status: "contained", StartedAt: now, EndedAt: now},
			Snapshots: []evidence.Snapshot{{SnapshotID: imageSrc, VolumeID: "vol-1", InstanceID: imageInst, State: "completed", Run: 1}},
			Copies: []evidence.SnapshotCopy{{SourceSnapshotID: imageSrc, SnapshotID: imageCopy, AccountID: w.cloud.Account,
				Region: w.cloud.Region, KMSKeyID: "k", State: evidence.CopyCompleted, Run: 1}},
			SetStatus: true, Tool: "test", Location: w.h.Store.Location(imageCase, ""),
		})
	if err := w.h.Store.SaveManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	w.h.EBS = e
	// Four advance stages of 32 parts' worth of blocks each (a 1 GiB disk).
	w.h.ImagePace = image.Pace{FirstChunk: 32, MaxChunks: 1}
	return w, e
}

// POST /cases/{id}/images starts an execution that the state machine runs
// through begin, several advance stages and finish: the stored image
// decompresses to the disk (its SHA-256 is the disk's), the record holds
// it, no upload is left open, no state carries more than a few kilobytes,
// and GET /cases/{id} shows every block done. Every advance is invoked
// twice on the same input (a retry after a lost answer): both answer the
// same job, and the image is the disk.
func TestStateMachineImagesTheSnapshotCopies(t *testing.T) {
	m, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	w, ebs := imageWorld(t, []int32{0, 1, 300, 1023, 1024, 2047})
	status, body := w.api(t, http.MethodPost, "/cases/{id}/images", imageCase, ``)
	if status != http.StatusAccepted || body["action"] != "image" {
		t.Fatalf("POST images: %d %v", status, body)
	}
	mismatches := 0
	invoke := func(payload []byte) (json.RawMessage, *taskError) {
		first, terr := w.invoke(payload)
		if terr != nil || !strings.Contains(string(payload), `"stage":"advance"`) {
			return first, terr
		}
		again, terr := w.invoke(payload)
		if terr == nil && !sameJSONBytes(first, again) {
			mismatches++
		}
		return again, terr
	}
	ex, err := m.run(w.lastInput(t), invoke, nil, 200)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if ex.Status != "SUCCEEDED" || ex.End != "ImagesDone" {
		t.Fatalf("execution %s at %s (%s: %s)", ex.Status, ex.End, ex.Error, ex.Cause)
	}
	advances := 0
	for _, v := range ex.Visits {
		if v.State == "ImageAdvance" {
			advances++
		}
		if b, _ := json.Marshal(v.Output); len(b) > maxStateKB<<10 {
			t.Errorf("state %s carries %d bytes", v.State, len(b))
		}
	}
	if advances != 4 || mismatches != 0 {
		t.Fatalf("%d advance stages (want 4), %d retried advances answered differently", advances, mismatches)
	}
	path := image.ImagePath(imageInst, imageCopy, image.CompressZstd)
	obj, ok := w.cloud.Objects("evidence")["cases/"+imageCase+"/"+path]
	if !ok {
		t.Fatal("no image stored")
	}
	if got, n := unzstdSHA256(t, obj.Body); got != ebs.DiskSHA256(imageCopy) || n != 1<<30 {
		t.Fatalf("stored image: %d bytes sha256 %s, want the disk's %s", n, got, ebs.DiskSHA256(imageCopy))
	}
	rec, err := evidence.LoadManifest(context.Background(), w.h.Store, imageCase)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := rec.Artifact(path); !ok || a.DecodedSHA256 != ebs.DiskSHA256(imageCopy) || a.SHA256 != hexSHA256(obj.Body) {
		t.Fatalf("artifact %+v", a)
	}
	if ups := w.cloud.Uploads("evidence"); len(ups) != 0 {
		t.Fatalf("uploads left open: %v", ups)
	}
	_, got := w.api(t, http.MethodGet, "/cases/{id}", imageCase, "")
	img, _ := got["image"].(map[string]any)
	if img["stage"] != image.StageFinish || img["blocks_done"] != 2048.0 || img["blocks"] != 2048.0 || img["raw_sha256"] != ebs.DiskSHA256(imageCopy) {
		t.Fatalf("GET image progress %v", img)
	}
}

// A block whose checksum does not match ends the execution in ImageFailed:
// the upload is aborted and the record names the block. A second POST
// while an image runs is refused.
func TestStateMachineImageRefusesACorruptedBlock(t *testing.T) {
	m, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	w, ebs := imageWorld(t, []int32{0, 600, 1200})
	ebs.CorruptBlock(imageCopy, 600)
	if status, _ := w.api(t, http.MethodPost, "/cases/{id}/images", imageCase, `{"compression": "none"}`); status != http.StatusAccepted {
		t.Fatalf("POST images: %d", status)
	}
	input := w.lastInput(t)
	// Begin, then a second request while the first execution runs.
	if out, terr := w.invoke([]byte(`{"task":"image","stage":"begin","case_id":"` + imageCase + `","snapshot_id":"","compression":"none","actor":"` +
		callerARN + `","execution":"` + input["execution"].(string) + `"}`)); terr != nil {
		t.Fatalf("begin: %v", terr)
	} else if !strings.Contains(string(out), `"done":false`) {
		t.Fatalf("begin: %s", out)
	}
	if status, body := w.api(t, http.MethodPost, "/cases/{id}/images", imageCase, ``); status != http.StatusConflict || body["code"] != "image_in_progress" {
		t.Fatalf("second POST while imaging: %d %v", status, body)
	}
	ex, err := m.run(input, w.invoke, nil, 200)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != "FAILED" || ex.End != "ImageFailed" {
		t.Fatalf("execution %s at %s", ex.Status, ex.End)
	}
	if ups := w.cloud.Uploads("evidence"); len(ups) != 0 {
		t.Fatalf("uploads left open: %v", ups)
	}
	for k := range w.cloud.Objects("evidence") {
		if strings.Contains(k, "/images/") {
			t.Fatalf("an image was stored: %s", k)
		}
	}
	_, got := w.api(t, http.MethodGet, "/cases/{id}", imageCase, "")
	img, _ := got["image"].(map[string]any)
	if img["stage"] != image.StageAbort || img["status"] != evidence.StatusFailed || !strings.Contains(img["error"].(string), "block 600") {
		t.Fatalf("GET image progress %v", img)
	}
	// Once that execution ended, a new image may start.
	exs := w.sfn.Executions()
	if err := w.sfn.Finish(exs[len(exs)-1].ARN, "FAILED", "ImageFailed"); err != nil {
		t.Fatal(err)
	}
	if status, body := w.api(t, http.MethodPost, "/cases/{id}/images", imageCase, ``); status != http.StatusAccepted {
		t.Fatalf("POST after the failed image: %d %v", status, body)
	}
}

func sameJSONBytes(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func hexSHA256(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// unzstdSHA256 hashes what a zstd stream decompresses to.
func unzstdSHA256(t *testing.T, b []byte) (string, int64) {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h := sha256.New()
	n, err := io.Copy(h, d)
	if err != nil {
		t.Fatalf("decode the stored image: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// investigationWorld is a case responded to and preserved by the state
// machine (its snapshots copied, completed, into the function's own
// account), with an analysis subnet there.
func investigationWorld(t *testing.T, m *aslMachine) (w *world, dst *fakeaws.Cloud, caseID, subnet string) {
	t.Helper()
	const forensicsAccount = "444455556666"
	w = newWorld(t)
	w.cloud.SnapshotCompletesAfter = 1
	dst = fakeaws.New(fakeaws.WithAccount(forensicsAccount))
	fakeaws.Link(w.cloud, dst)
	dst.SnapshotCompletesAfter = 1
	key := dst.AddKMSKey("alias/evidence")
	w.h.Config.HomeAccount, w.h.Config.ForensicsKMSKey = forensicsAccount, key
	w.h.Forensics, w.h.PreservePoll, w.h.TeardownPoll = dst.EC2(), time.Millisecond, time.Millisecond
	w.h.Workload = func(context.Context, trigger.Target, string) (*cloud.Clients, error) {
		return &cloud.Clients{EC2: w.cloud.EC2(), STS: w.cloud.STS(), IAM: w.cloud.IAM(), AutoScaling: w.cloud.AutoScaling(),
			ELBv2: w.cloud.ELBv2(), ELB: w.cloud.ELB(), CallerSTS: dst.STS()}, nil
	}
	w.h.InvestigationEC2, w.h.InvestigationSSM, w.h.InvestigationIAM = dst.EC2(), &investigatetest.Agent{}, dst.IAM()
	dst.AddRole(investigate.DefaultInstanceProfile, "")
	input := w.startCaseBody(t, `{"instance_id": "`+w.suspect.InstanceID+`", "account_id": "`+w.cloud.Account+`"}`)
	ex, err := m.run(input, w.invoke, nil, 200)
	if err != nil || ex.End != "Done" {
		t.Fatalf("response: %v, ended at %s (%s)", err, ex.End, ex.Cause)
	}
	subnet = dst.AddSubnetIn(dst.AddVPC(), dst.Region+"b")
	return w, dst, input["case_id"].(string), subnet
}

// An investigation started and torn down through the API on the fake
// cloud: the workspace is built by the states (instance in the subnet's
// zone, one encrypted volume per copy attached and mounted read-only),
// recorded ready; DELETE deletes the working volumes and terminates the
// instance, read back and recorded stopped; the snapshot copies are kept.
func TestStateMachineInvestigationStartsAndStops(t *testing.T) {
	m, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	w, dst, caseID, subnet := investigationWorld(t, m)
	copies := dst.Snapshots()
	if len(copies) == 0 {
		t.Fatal("no copies in the forensics account")
	}
	status, body := w.api(t, http.MethodPost, "/cases/{id}/investigation", caseID, `{"subnet_id": "`+subnet+`", "ami_id": "ami-0123456789abcdef0"}`)
	if status != http.StatusAccepted || body["action"] != trigger.ActionInvestigate {
		t.Fatalf("POST investigation: %d %v", status, body)
	}
	ex, err := m.run(w.lastInput(t), w.invoke, nil, 200)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != "SUCCEEDED" || ex.End != "InvestigationReady" {
		t.Fatalf("execution %s at %s (%s)", ex.Status, ex.End, ex.Cause)
	}
	// The mount command is sent by one advance and read by the next,
	// after a Wait state: no invocation waits for it.
	if ex.Waits < 1 {
		t.Errorf("%d waits: the mount was not waited for in a Wait state", ex.Waits)
	}
	rec, err := evidence.LoadManifest(context.Background(), w.h.Store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	all := investigate.Workspaces(rec)
	if len(all) != 1 || all[0].State != evidence.WorkspaceReady || len(all[0].Volumes) != len(copies) || len(all[0].Mounts) != len(copies) {
		t.Fatalf("recorded workspaces %+v", all)
	}
	ws := all[0]
	// The instance's own evidence policy, put by the staged launch,
	// recorded as put and read back.
	if a := ws.Access; a == nil || a.State != evidence.AccessGranted || !strings.HasSuffix(a.InstanceARN, ":instance/"+ws.InstanceID) {
		t.Fatalf("evidence access %+v", ws.Access)
	} else if doc, ok := dst.RolePolicy(a.Role, a.PolicyName); !ok || !strings.Contains(doc, a.InstanceARN) || !strings.Contains(doc, "cases/"+caseID+"/*") {
		t.Fatalf("policy %s on %s: %v %s", a.PolicyName, a.Role, ok, doc)
	}
	for _, v := range ws.Volumes {
		got := dst.Volume(v.VolumeID)
		if got == nil || len(got.Attachments) != 1 || aws.ToString(got.Attachments[0].InstanceId) != ws.InstanceID || !aws.ToBool(got.Encrypted) {
			t.Fatalf("working volume %s: %+v", v.VolumeID, got)
		}
	}
	if status, body := w.api(t, http.MethodPost, "/cases/{id}/investigation", caseID, `{"subnet_id": "`+subnet+`", "ami_id": "ami-0123456789abcdef0"}`); status != http.StatusConflict || body["code"] != "workspace_exists" {
		t.Fatalf("second POST: %d %v", status, body)
	}
	if _, got := w.api(t, http.MethodGet, "/cases/{id}", caseID, ""); got["investigation"].(map[string]any)["state"] != evidence.WorkspaceReady {
		t.Fatalf("GET investigation %v", got["investigation"])
	}

	if status, body := w.api(t, http.MethodDelete, "/cases/{id}/investigation", caseID, ``); status != http.StatusAccepted || body["action"] != trigger.ActionInvestigateStop {
		t.Fatalf("DELETE investigation: %d %v", status, body)
	}
	ex, err = m.run(w.lastInput(t), w.invoke, nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != "SUCCEEDED" || ex.End != "InvestigationStopped" {
		t.Fatalf("teardown %s at %s (%s)", ex.Status, ex.End, ex.Cause)
	}
	for _, v := range ws.Volumes {
		if dst.Volume(v.VolumeID) != nil {
			t.Errorf("working volume %s still exists", v.VolumeID)
		}
	}
	if in := dst.Instance(ws.InstanceID); in == nil || in.State.Name != types.InstanceStateNameTerminated {
		t.Errorf("analysis instance %s not terminated", ws.InstanceID)
	}
	kept := map[string]types.SnapshotState{}
	for _, s := range dst.Snapshots() {
		kept[aws.ToString(s.SnapshotId)] = s.State
	}
	for _, c := range copies {
		if kept[aws.ToString(c.SnapshotId)] != types.SnapshotStateCompleted {
			t.Errorf("copy %s is %q after the teardown", aws.ToString(c.SnapshotId), kept[aws.ToString(c.SnapshotId)])
		}
	}
	rec, _ = evidence.LoadManifest(context.Background(), w.h.Store, caseID)
	if all := investigate.Workspaces(rec); len(all) != 1 || all[0].State != evidence.WorkspaceStopped ||
		all[0].Access == nil || all[0].Access.State != evidence.AccessRevoked {
		t.Fatalf("recorded after teardown %+v", all)
	}
	if names := dst.RolePolicyNames(ws.Access.Role); len(names) != 0 {
		t.Errorf("policies left on the analysis role: %v", names)
	}
	if status, body := w.api(t, http.MethodDelete, "/cases/{id}/investigation", caseID, ``); status != http.StatusConflict || body["code"] != "no_workspace" {
		t.Fatalf("second DELETE: %d %v", status, body)
	}
}
