package step_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// collectEnv is a step Env for the collection steps: the suspect of
// fakeaws.NewSuspect with its agent, and an evidence and a staging bucket in
// a forensics account.
func collectEnv(t *testing.T, agent fakeaws.Agent) (*step.Env, *fakeaws.Cloud, *fakeaws.Cloud, fakeaws.Suspect) {
	t.Helper()
	env, c, forensics, s := collectEnvWithout(t, agent)
	c.DeployMemberDocuments()
	return env, c, forensics, s
}

// collectEnvWithout is collectEnv before the member documents stack put the
// Responder-* documents in the workload account.
func collectEnvWithout(t *testing.T, agent fakeaws.Agent) (*step.Env, *fakeaws.Cloud, *fakeaws.Cloud, fakeaws.Suspect) {
	t.Helper()
	c, s := fakeaws.NewSuspect()
	forensics := fakeaws.New(fakeaws.WithAccount("444455556666"))
	forensics.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
	forensics.AddBucket("staging", fakeaws.BucketOptions{})
	avml := fakeaws.StandInAVML() // the fake instance runs what it downloads
	if _, err := forensics.S3().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("staging"), Key: aws.String("tools/avml"), Body: bytes.NewReader(avml),
	}); err != nil {
		t.Fatal(err)
	}
	c.SetAgent(s.InstanceID, agent)
	c.AgentS3(forensics.S3())
	presign := s3.NewPresignClient(s3.New(s3.Options{
		Region: c.Region, BaseEndpoint: aws.String("https://s3.fake.test"), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", ""),
	}))
	env := envFor(t, c, s.InstanceID)
	env.Clients.Store = &evidence.Bucket{API: forensics.S3(), Name: "evidence", Presign: presign}
	env.Clients.SSM, env.Clients.Presign, env.Clients.Staging = c.SSM(), presign, forensics.S3()
	sum := sha256.Sum256(avml)
	env.Collection = step.Collection{
		Order: step.IsolateFirst, StagingBucket: "staging",
		ForensicProfileARN:  "arn:aws:iam::" + c.Account + ":instance-profile/responder-forensic-ssm",
		PollInterval:        step.Duration(time.Millisecond),
		RegistrationTimeout: step.Duration(200 * time.Millisecond),
		CaptureTimeout:      step.Duration(30 * time.Second), // a bound on failure only: a loaded machine runs the scripts slowly
		Memory: step.MemorySettings{PartSizeMiB: 5, Tools: map[string]step.StagedTool{
			"avml-x86_64": {Key: "tools/avml", SHA256: hex.EncodeToString(sum[:])},
		}},
	}
	return env, c, forensics, s
}

func runPlan(t *testing.T, env *step.Env, names ...string) map[string]evidence.StepRecord {
	t.Helper()
	plan, err := step.Plan(names)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]evidence.StepRecord{}
	for _, r := range step.Execute(context.Background(), env, plan, time.Minute) {
		out[r.Name] = r
	}
	return out
}

// openUploads counts the multipart uploads left open in a bucket.
func openUploads(t *testing.T, c *fakeaws.Cloud, bucket string) int {
	t.Helper()
	n := 0
	for _, ids := range c.Uploads(bucket) {
		n += len(ids)
	}
	return n
}

// TestMemoryCaptureFailures: every way the instance can fail or lie ends in
// a failed step that says why; an image that did not arrive whole is never
// completed, and what arrived is kept.
func TestMemoryCaptureFailures(t *testing.T) {
	tests := []struct {
		fault      string
		wantErr    string
		wantImage  bool // a completed image is kept (and recorded)
		wantReport bool
	}{
		{fault: "source", wantErr: "status Failed", wantReport: true},
		{fault: "upload-part-2", wantErr: "status Failed", wantReport: true},
		{fault: "lie-hash", wantErr: "image SHA-256", wantImage: true, wantReport: true},
		{fault: "short", wantErr: "parts", wantReport: true},
		{fault: "no-report", wantErr: "report did not arrive"},
		{fault: "exit-1", wantErr: "exit code 1"},
		{fault: "hang", wantErr: "did not end"},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			env, c, forensics, s := collectEnv(t, fakeaws.Agent{Online: true, PlatformType: "Linux", Fault: tt.fault})
			if tt.fault == "hang" {
				env.Collection.CaptureTimeout = step.Duration(300 * time.Millisecond)
			}
			recs := runPlan(t, env, "ssm-access", "memory-capture")
			r := recs["memory-capture"]
			if r.Status != evidence.StatusFailed || !strings.Contains(r.Error, tt.wantErr) {
				t.Fatalf("memory-capture: %s %q, want failed with %q", r.Status, r.Error, tt.wantErr)
			}
			var image, report bool
			for _, a := range env.Artifacts() {
				image = image || strings.HasSuffix(a.Path, "/memory-image")
				report = report || strings.HasSuffix(a.Path, "/report.json")
				if strings.HasSuffix(a.Path, "/memory-image") && a.ReportedSHA256 == a.SHA256 {
					t.Errorf("a lying image is recorded as matching: %+v", a)
				}
			}
			objects := forensics.Objects("evidence")
			stored := false
			for key := range objects {
				stored = stored || strings.HasSuffix(key, "/memory-image")
			}
			if image != tt.wantImage || stored != tt.wantImage || report != tt.wantReport {
				t.Errorf("image recorded %v stored %v, report %v; want image %v report %v", image, stored, report, tt.wantImage, tt.wantReport)
			}
			if n := openUploads(t, forensics, "evidence"); n != 0 {
				t.Errorf("%d multipart uploads left open", n)
			}
			if tt.fault == "hang" {
				cmds := commandsOf(c, ssmdocuments.LinuxMemoryCapture)
				if len(cmds) != 1 || cmds[0].Status != "Cancelled" {
					t.Errorf("the hung command was not cancelled: %+v", cmds)
				}
			}
			_ = s
		})
	}
}

// TestSSMAccessAttachesAndCloseDetaches: an instance without a profile and
// not managed gets the forensic profile, the node comes online, and
// forensic-access-close removes the profile again, also when the node never
// came online in time.
func TestSSMAccessAttachesAndCloseDetaches(t *testing.T) {
	tests := []struct {
		name       string
		onlineRuns int // DescribeInstanceInformation calls before online
		wantAccess string
	}{
		{"registers in time", 2, evidence.StatusOK},
		{"never registers", 1 << 30, evidence.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, c, _, s := collectEnv(t, fakeaws.Agent{Online: true, NeedsProfile: true, PlatformType: "Linux", OnlineAfterCalls: tt.onlineRuns})
			if _, err := c.EC2().DisassociateIamInstanceProfile(context.Background(), &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(s.AssociationID)}); err != nil {
				t.Fatal(err)
			}
			// The memory capture is the quicker collection to run here
			// (the volatile-data script reads the whole machine).
			recs := runPlan(t, env, "ssm-access", "memory-capture", "forensic-access-close")
			if got := recs["ssm-access"].Status; got != tt.wantAccess {
				t.Fatalf("ssm-access: %s %s", got, recs["ssm-access"].Error)
			}
			if tt.wantAccess == evidence.StatusOK {
				if r := recs["memory-capture"]; r.Status != evidence.StatusOK {
					t.Errorf("memory-capture: %s %s", r.Status, r.Error)
				}
			} else if !strings.Contains(recs["ssm-access"].Error, "did not come online") {
				t.Errorf("ssm-access error: %s", recs["ssm-access"].Error)
			}
			if r := recs["forensic-access-close"]; r.Status != evidence.StatusOK {
				t.Errorf("forensic-access-close: %s %s", r.Status, r.Error)
			}
			if v := c.Instance(s.InstanceID); v.ProfileAssociation != nil {
				t.Errorf("the forensic profile is still associated")
			}
		})
	}
}

// TestCollectionDryRunChangesNothing: a dry run of the collection steps
// describes, sends no command and changes no state.
func TestCollectionDryRunChangesNothing(t *testing.T) {
	env, c, forensics, _ := collectEnv(t, fakeaws.Agent{Online: true, PlatformType: "Linux"})
	env.Target.DryRun = true
	before, fbefore := c.StateDigest(), forensics.StateDigest()
	recs := runPlan(t, env, "forensic-access-group", "ssm-access", "volatile-data", "memory-capture", "forensic-access-close")
	for name, r := range recs {
		if r.Status == evidence.StatusFailed {
			t.Errorf("%s failed in a dry run: %s", name, r.Error)
		}
	}
	if c.StateDigest() != before || forensics.StateDigest() != fbefore || len(c.Commands()) != 0 {
		t.Error("a dry run changed state")
	}
}

// TestVolatileDataMismatch: an archive that differs from what the instance
// reported is kept, recorded with both hashes, and the step fails.
func TestVolatileDataMismatch(t *testing.T) {
	// The lie is told on the wire, the same for both platforms; the
	// Windows stand-in is quicker to run than the Linux script, which
	// reads the whole machine.
	agent := fakeaws.WindowsAgent()
	agent.Fault = fakeaws.FaultLieHash
	env, _, _, _ := collectEnv(t, agent)
	recs := runPlan(t, env, "ssm-access", "volatile-data")
	r := recs["volatile-data"]
	if r.Status != evidence.StatusFailed || !strings.Contains(r.Error, "archive SHA-256") {
		t.Fatalf("volatile-data: %s %s", r.Status, r.Error)
	}
	var st struct {
		Archive *evidence.Artifact `json:"archive"`
	}
	if err := json.Unmarshal(r.After, &st); err != nil || st.Archive == nil || st.Archive.ReportedSHA256 == st.Archive.SHA256 {
		t.Errorf("archive record: %+v %v", st.Archive, err)
	}
}

// TestWindowsCollection: a Windows node gets the Windows documents, WinPmem
// from the staging bucket, and a zip archive.
func TestWindowsCollection(t *testing.T) {
	env, c, _, _ := collectEnv(t, fakeaws.WindowsAgent())
	env.Collection.Memory.Tools = map[string]step.StagedTool{"winpmem-x64": env.Collection.Memory.Tools["avml-x86_64"]}
	recs := runPlan(t, env, "ssm-access", "volatile-data", "memory-capture")
	for _, name := range []string{"ssm-access", "volatile-data", "memory-capture"} {
		if r := recs[name]; r.Status == evidence.StatusFailed {
			t.Errorf("%s: %s", name, r.Error)
		}
	}
	var zip, image bool
	for _, a := range env.Artifacts() {
		zip = zip || strings.HasSuffix(a.Path, "/volatile-data.zip")
		image = image || (strings.HasSuffix(a.Path, "/memory-image") && a.SHA256 == a.ReportedSHA256)
	}
	if !zip || !image {
		t.Errorf("zip archive %v, verified image %v: %+v", zip, image, env.Artifacts())
	}
	docs := map[string]bool{}
	for _, cmd := range c.Commands() {
		docs[cmd.DocumentName] = true
	}
	if !docs["Responder-WindowsVolatileData"] || !docs["Responder-WindowsMemoryCapture"] {
		t.Errorf("documents run: %v", docs)
	}
	// Without WinPmem staged, the capture says what is missing.
	env2, _, _, _ := collectEnv(t, fakeaws.WindowsAgent())
	recs = runPlan(t, env2, "ssm-access", "memory-capture")
	if r := recs["memory-capture"]; r.Status != evidence.StatusFailed || !strings.Contains(r.Error, "winpmem-x64") {
		t.Errorf("memory-capture without WinPmem: %s %s", r.Status, r.Error)
	}
}

// TestMemoryImageHashedWhereItLands: with the read-back on (the default),
// the instance hashes only the raw stream and the image's SHA-256 is the one
// computed from the stored object, the record saying the instance reported
// none; with verify_image false, the instance hashes the compressed image
// too and the record keeps that hash, which is the stored object's.
func TestMemoryImageHashedWhereItLands(t *testing.T) {
	for _, verify := range []bool{true, false} {
		t.Run(fmt.Sprintf("verify_image=%v", verify), func(t *testing.T) {
			env, _, forensics, _ := collectEnv(t, fakeaws.Agent{Online: true, PlatformType: "Linux"})
			env.Collection.Memory.VerifyImage = &verify
			r := runPlan(t, env, "ssm-access", "memory-capture")["memory-capture"]
			if r.Status == evidence.StatusFailed {
				t.Fatalf("memory-capture: %s", r.Error)
			}
			var st struct {
				Image     *evidence.Artifact `json:"image"`
				ImageHash string             `json:"image_hash"`
			}
			if err := json.Unmarshal(r.After, &st); err != nil || st.Image == nil {
				t.Fatalf("record: %s (%v)", r.After, err)
			}
			var stored []byte
			for key, o := range forensics.Objects("evidence") {
				if strings.HasSuffix(key, "/memory-image") {
					stored = o.Body
				}
			}
			sum := sha256.Sum256(stored)
			a := st.Image
			if len(stored) == 0 || a.SHA256 != hex.EncodeToString(sum[:]) || a.DecodedSHA256 == "" {
				t.Fatalf("image %+v, stored %d bytes with SHA-256 %x", a, len(stored), sum)
			}
			wantReported, wantBy, wantNote := "", "", "the instance hashed the raw stream only"
			if !verify {
				wantReported, wantBy, wantNote = a.SHA256, "instance", "not read back"
			}
			if a.ReportedSHA256 != wantReported || a.HashedBy != wantBy || !strings.Contains(st.ImageHash, wantNote) {
				t.Errorf("reported_sha256 %q hashed_by %q image_hash %q; want %q %q %q", a.ReportedSHA256, a.HashedBy, st.ImageHash, wantReported, wantBy, wantNote)
			}
		})
	}
}
