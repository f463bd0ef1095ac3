package responder_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// collectLab is a suspect in a workload account and the evidence and
// staging buckets of a forensics account, with the instance's fake SSM Agent
// able to reach the forensics account's S3 through presigned URLs.
type collectLab struct {
	c, forensics *fakeaws.Cloud
	s            fakeaws.Suspect
	store        *evidence.Bucket
	logs         *bytes.Buffer
	avml         []byte
	forensicARN  string
}

const (
	evidenceBucket = "evidence"
	stagingBucket  = "staging"
)

func newCollectLab(t *testing.T, endpoints bool, agent fakeaws.Agent) *collectLab {
	t.Helper()
	c, s := fakeaws.NewSuspect()
	forensics := fakeaws.New(fakeaws.WithAccount("444455556666"))
	forensics.AddBucket(evidenceBucket, fakeaws.BucketOptions{Versioning: true})
	forensics.AddBucket(stagingBucket, fakeaws.BucketOptions{})
	l := &collectLab{c: c, forensics: forensics, s: s, logs: &bytes.Buffer{},
		avml: fakeaws.StandInAVML(), forensicARN: "arn:aws:iam::" + c.Account + ":instance-profile/responder-forensic-ssm"}
	if _, err := forensics.S3().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(stagingBucket), Key: aws.String("tools/avml-x86_64"), Body: bytes.NewReader(l.avml),
	}); err != nil {
		t.Fatal(err)
	}
	if endpoints {
		for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
			c.AddVpcEndpoint(s.VpcID, svc)
		}
		c.AddVpcEndpoint(s.VpcID, "s3", fakeaws.EndpointSpec{Gateway: true})
	}
	c.SetAgent(s.InstanceID, agent)
	c.AgentS3(forensics.S3())
	c.DeployMemberDocuments() // as the member documents stack does
	presign := s3.NewPresignClient(s3.New(s3.Options{
		Region: c.Region, BaseEndpoint: aws.String("https://s3.fake.test"), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", ""),
	}))
	l.store = &evidence.Bucket{API: forensics.S3(), Name: evidenceBucket, Presign: presign}
	return l
}

func (l *collectLab) responder() *responder.Responder {
	r := newResponder(l.c, l.store)
	r.Clients.SSM = l.c.SSM()
	r.Clients.Presign = l.store.Presign.(*s3.PresignClient)
	r.Clients.Staging = l.forensics.S3()
	r.Log = slog.New(slog.NewJSONHandler(l.logs, nil))
	return r
}

// request builds the request of a playbook, with the lab's account facts.
func (l *collectLab) request(t *testing.T, name string) responder.Request {
	t.Helper()
	pb, err := playbooks.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(l.avml)
	col := pb.Collection
	col.ForensicProfileARN, col.StagingBucket = l.forensicARN, stagingBucket
	col.PollInterval = step.Duration(time.Millisecond)
	col.RegistrationTimeout = step.Duration(5 * time.Second)
	col.Memory.PartSizeMiB = 5
	col.Memory.Tools = map[string]step.StagedTool{"avml-x86_64": {Key: "tools/avml-x86_64", SHA256: hex.EncodeToString(sum[:])}}
	return responder.Request{InstanceID: l.s.InstanceID, CaseID: caseID, Plan: pb.Names(), After: pb.After(), PlanName: pb.Name, Collection: col}
}

func (l *collectLab) run(t *testing.T, req responder.Request) *responder.Result {
	t.Helper()
	res, err := l.responder().Respond(context.Background(), req)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	// Presigned URLs never reach the log or the record.
	body, _ := json.Marshal(res.Manifest)
	for _, leak := range []string{"X-Amz-Signature", "X-Amz-Credential"} {
		if strings.Contains(l.logs.String(), leak) || strings.Contains(string(body), leak) {
			t.Fatalf("a presigned URL leaked into the log or the case record (%s)", leak)
		}
	}
	return res
}

func (l *collectLab) object(t *testing.T, path string) []byte {
	t.Helper()
	o, ok := l.forensics.Objects(evidenceBucket)[evidence.Prefix+caseID+"/"+path]
	if !ok {
		t.Fatalf("no object %s in the evidence bucket", path)
	}
	return o.Body
}

func artifactAt(m *evidence.Manifest, suffix string) (evidence.Artifact, bool) {
	for _, a := range m.Artifacts {
		if strings.HasSuffix(a.Path, suffix) {
			return a, true
		}
	}
	return evidence.Artifact{}, false
}

// decode undoes the compression a report names, failing the test when it cannot.
func decode(t *testing.T, encoding string, b []byte) []byte {
	t.Helper()
	out, err := fakeaws.Decode(encoding, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestCollectIsolateFirst runs the collect playbook on an instance whose VPC
// has the SSM and S3 endpoints: the instance is isolated into the forensic
// access group, its own profile removed, the forensic profile associated for
// the collection, then the access is closed.
func TestCollectIsolateFirst(t *testing.T) {
	memory := bytes.Repeat([]byte("RAM!"), 3<<20) // 12 MiB
	l := newCollectLab(t, true, fakeaws.Agent{Online: true, NeedsProfile: true, PlatformType: "Linux", OnlineAfterCalls: 2, Memory: memory})
	res := l.run(t, l.request(t, "collect"))
	for _, name := range []string{"forensic-access-group", "quarantine", "ssm-access", "volatile-data", "memory-capture", "forensic-access-close"} {
		if r := stepOf(t, res.Steps, name); r.Status != evidence.StatusOK {
			t.Errorf("%s: %s %s %s", name, r.Status, r.Reason, r.Error)
		}
	}
	if res.Status != evidence.CaseContained {
		t.Fatalf("case status %s: %v", res.Status, res.Err)
	}

	// The end state: closed quarantine, no profile at all.
	assertQuarantined(t, l.c, l.s.InstanceID)
	if v := l.c.Instance(l.s.InstanceID); v.ProfileAssociation != nil {
		t.Errorf("a profile is still associated: %s", aws.ToString(v.ProfileAssociation.IamInstanceProfile.Arn))
	}
	// The forensic access group allows HTTPS to the endpoints only.
	groups := l.c.SecurityGroupsByTag(step.TagQuarantine, step.ForensicAccessTagValue)
	if len(groups) != 1 || len(groups[0].IpPermissions) != 0 || len(groups[0].IpPermissionsEgress) == 0 {
		t.Fatalf("forensic access group: %+v", groups)
	}
	for _, p := range groups[0].IpPermissionsEgress {
		if aws.ToInt32(p.FromPort) != 443 || aws.ToInt32(p.ToPort) != 443 || aws.ToString(p.IpProtocol) != "tcp" {
			t.Errorf("forensic access group allows more than HTTPS: %+v", p)
		}
		for _, r := range p.IpRanges {
			if !strings.HasSuffix(aws.ToString(r.CidrIp), "/32") {
				t.Errorf("forensic access group allows %s", aws.ToString(r.CidrIp))
			}
		}
	}

	// The memory image: stored, complete, decompressing to the memory, with
	// the toolkit's hash of the stored bytes and the instance's of the raw
	// (read back, the default: the instance was asked for no hash of the
	// compressed image).
	img, ok := artifactAt(res.Manifest, "/memory-image")
	if !ok {
		t.Fatalf("no memory image artifact: %+v", res.Manifest.Artifacts)
	}
	stored := l.object(t, img.Path)
	if img.SHA256 != hexSHA(stored) || img.ReportedSHA256 != "" || img.HashedBy != "" {
		t.Errorf("image hashes: %+v, stored %s", img, hexSHA(stored))
	}
	raw := decode(t, img.Encoding, stored)
	// A LiME image: one 32-byte range header, then the memory.
	if len(raw) != len(memory)+32 || !bytes.HasPrefix(raw, []byte("EMiL")) || !bytes.Equal(raw[32:], memory) {
		t.Fatalf("the image does not decompress (%s) to a LiME image of the memory (%d bytes)", img.Encoding, len(raw))
	}
	if img.DecodedSHA256 != hexSHA(raw) || img.DecodedSize != int64(len(raw)) {
		t.Errorf("decoded: %+v", img)
	}
	// The volatile archive and both reports.
	arc, ok := artifactAt(res.Manifest, "/volatile-data.tar.gz")
	if !ok || arc.SHA256 != hexSHA(l.object(t, arc.Path)) || arc.ReportedSHA256 != arc.SHA256 {
		t.Errorf("volatile archive: %+v", arc)
	}
	for _, p := range []string{"/memory/run-001/report.json", "/volatile/run-001/report.json"} {
		if _, ok := artifactAt(res.Manifest, p); !ok {
			t.Errorf("no report %s", p)
		}
	}
	// The exact document version that ran is recorded.
	var rec struct {
		Command step.CommandRun `json:"command"`
	}
	if err := json.Unmarshal(stepOf(t, res.Steps, "memory-capture").After, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Command.Document != "Responder-LinuxMemoryCapture" || rec.Command.DocumentVersion == "" || len(rec.Command.DocumentSHA256) != 64 || rec.Command.Status != "Success" {
		t.Errorf("command record: %+v", rec.Command)
	}
}

// TestCollectIsolateFirstWithoutEndpoints: without the VPC endpoints the
// instance is fully quarantined and SSM cannot reach it; the response says
// so and containment is complete.
func TestCollectIsolateFirstWithoutEndpoints(t *testing.T) {
	l := newCollectLab(t, false, fakeaws.Agent{Online: true, PlatformType: "Linux"})
	res := l.run(t, l.request(t, "collect"))
	access := stepOf(t, res.Steps, "ssm-access")
	if access.Status != evidence.StatusFailed || !strings.Contains(access.Error, "collect-before-isolate") {
		t.Errorf("ssm-access: %s %s", access.Status, access.Error)
	}
	for _, name := range []string{"volatile-data", "memory-capture"} {
		if r := stepOf(t, res.Steps, name); r.Status != evidence.StatusSkipped {
			t.Errorf("%s: %s", name, r.Status)
		}
	}
	if res.Status != evidence.CaseContained || res.Err == nil {
		t.Errorf("case status %s, err %v: want contained, with the collection's failure", res.Status, res.Err)
	}
	assertQuarantined(t, l.c, l.s.InstanceID)
	if len(l.c.Commands()) != 0 {
		t.Errorf("commands were sent: %+v", l.c.Commands())
	}
}

// TestCollectBeforeIsolate runs the capture-first playbook: the collection
// ends before the instance is isolated, and isolation follows.
func TestCollectBeforeIsolate(t *testing.T) {
	l := newCollectLab(t, false, fakeaws.Agent{Online: true, NeedsProfile: true, PlatformType: "Linux"})
	res := l.run(t, l.request(t, "collect-before-isolate"))
	memStep, quarantine := stepOf(t, res.Steps, "memory-capture"), stepOf(t, res.Steps, "quarantine")
	if memStep.Status != evidence.StatusOK || quarantine.Status != evidence.StatusOK {
		t.Fatalf("memory-capture %s %s; quarantine %s %s", memStep.Status, memStep.Error, quarantine.Status, quarantine.Error)
	}
	if quarantine.StartedAt.Before(memStep.EndedAt) {
		t.Errorf("quarantine started at %s, before the capture ended at %s", quarantine.StartedAt, memStep.EndedAt)
	}
	assertQuarantined(t, l.c, l.s.InstanceID)
	if v := l.c.Instance(l.s.InstanceID); v.ProfileAssociation != nil {
		t.Error("the instance profile is still associated")
	}
	// The instance's own profile served SSM: no forensic profile was used.
	if r := stepOf(t, res.Steps, "forensic-access-close"); r.Status != evidence.StatusSkipped {
		t.Errorf("forensic-access-close: %s %s", r.Status, r.Reason)
	}
}

// TestSSMAccessRefusals: the cases where the collection cannot run, each
// with a reason that says what to do.
func TestSSMAccessRefusals(t *testing.T) {
	tests := []struct {
		name        string
		agent       fakeaws.Agent
		noForensic  bool
		wantInError string
	}{
		{"unmanaged without a forensic profile", fakeaws.Agent{PlatformType: "Linux"}, true, "--forensic-profile"},
		{"offline with its own profile", fakeaws.Agent{Online: true, PlatformType: "Linux"}, false, "has instance profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newCollectLab(t, false, tt.agent)
			req := l.request(t, "collect-before-isolate")
			ctx := context.Background()
			if tt.noForensic {
				req.Collection.ForensicProfileARN = ""
				if _, err := l.c.EC2().DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(l.s.AssociationID)}); err != nil {
					t.Fatal(err)
				}
			} else {
				// The web group loses its egress: the node is registered
				// but its connection is lost.
				if _, err := l.c.EC2().RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(l.s.GroupID), IpPermissions: fakeaws.DefaultEgress()}); err != nil {
					t.Fatal(err)
				}
				l.c.SetAgent(l.s.InstanceID, tt.agent)
			}
			res := l.run(t, req)
			r := stepOf(t, res.Steps, "ssm-access")
			if r.Status != evidence.StatusFailed || !strings.Contains(r.Error, tt.wantInError) {
				t.Errorf("ssm-access: %s %q", r.Status, r.Error)
			}
			assertQuarantined(t, l.c, l.s.InstanceID)
			if len(l.c.Commands()) != 0 {
				t.Errorf("commands were sent")
			}
		})
	}
}
