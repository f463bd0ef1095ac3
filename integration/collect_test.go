package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"gopkg.in/yaml.v3"

	"github.com/responder-ir/responder/internal/testenv"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// The OS-level collection tests run `responder respond` with a collection
// playbook against moto, with the real SSM documents run on this machine by
// the Agent (agent.go) as if it were the instance: the memory capture reads
// a stand-in memory file through a fake avml that the binary presigns from a
// staging bucket, streams it compressed into a multipart upload in the
// evidence bucket through presigned https URLs (TLSFront, tls.go), and the
// binary checks, completes and reads back the image.
//
// What this cannot show: that an isolated instance reaches SSM and S3 only
// through the VPC endpoints (moto has no network: the forensic access
// group's rules are checked as state; moto gives the endpoints' interfaces
// addresses outside the subnet, which does not matter here); the real SSM
// Agent (delivery, registration, its output limits beyond what Agent
// imitates); KMS encryption of the image.

const collectAVMLKey = "tools/avml-x86_64"

// collectRig is a lab prepared for OS-level collection.
type collectRig struct {
	*fixture
	front *TLSFront
	agent *Agent
	// staging is the staging bucket; forensicProfile the forensic instance
	// profile's ARN; playbook the path of the playbook file.
	staging         string
	forensicProfile string
	playbook        string
	memory          memoryStandIn
}

type collectOptions struct {
	// base is the embedded playbook the test's playbook is made from.
	base string
	// endpoints creates the VPC endpoints for ssm, ssmmessages, ec2messages
	// (interface, private DNS) and s3 (gateway) in the lab's VPC.
	endpoints bool
	// noProfile removes the lab instance's profile before the run.
	noProfile bool
	// agentEnv is added to the scripts' environment.
	agentEnv []string
}

func setupCollect(t *testing.T, opts collectOptions) *collectRig {
	t.Helper()
	f := setup(t)
	requireCollectTools(t)
	l := f.buildLab()
	ctx := context.Background()
	dir := t.TempDir()
	r := &collectRig{fixture: f}

	front, err := NewTLSFront(f.proxy.URL, dir)
	must(t, err)
	t.Cleanup(front.Close)
	r.front = front
	// The binary signs S3 for https://127.0.0.1:PORT and trusts the front.
	f.env = append(f.env, "AWS_ENDPOINT_URL_S3="+front.URL, "AWS_CA_BUNDLE="+front.CAFile)

	// The forensic instance profile of the member-account stack.
	role := l.Name + "-forensic"
	_, err = f.aws.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: &role, AssumeRolePolicyDocument: aws.String(ec2TrustPolicy)})
	must(t, err)
	prof, err := f.aws.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: &role})
	must(t, err)
	_, err = f.aws.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: &role, RoleName: &role})
	must(t, err)
	r.forensicProfile = aws.ToString(prof.InstanceProfile.Arn)

	// The staging bucket with the (fake) avml.
	r.staging = l.Name + "-staging"
	_, err = f.aws.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &r.staging})
	must(t, err)
	_, err = f.aws.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &r.staging, Key: aws.String(collectAVMLKey), Body: bytes.NewReader(fakeAVML)})
	must(t, err)

	if opts.endpoints {
		createSSMEndpoints(t, f)
	}
	if opts.noProfile {
		removeProfiles(t, f)
	}
	r.memory = newMemoryStandIn(t, dir)
	r.playbook = writeCollectPlaybook(t, dir, opts.base)

	env := append([]string{
		"CURL_CA_BUNDLE=" + front.CAFile,
		"RESPONDER_MEMORY_SOURCES=" + r.memory.path,
		"RESPONDER_IOMEM=" + r.memory.iomem,
		"RC_RETRY_SLEEP=0",
	}, opts.agentEnv...)
	agent, err := NewAgent(ctx, f.aws, suite.moto.URL, l.InstanceID, t.TempDir(), env)
	must(t, err)
	agent.Install(f.proxy)
	agent.Start()
	t.Cleanup(agent.Stop)
	r.agent = agent
	deployMemberDocuments(t, agent.SSM())
	return r
}

// deployMemberDocuments creates the Responder-* documents in moto, with the
// toolkit's content, as the member documents stack does
// (cloudformation/member-documents.yaml): the binary only reads them. The
// tests share one moto: a document an earlier test created is this
// binary's too.
func deployMemberDocuments(t *testing.T, api *ssm.Client) {
	t.Helper()
	for _, d := range ssmdocuments.Documents() {
		content, err := d.Content()
		must(t, err)
		_, err = api.CreateDocument(context.Background(), &ssm.CreateDocumentInput{Name: aws.String(d.Name),
			Content: aws.String(string(content)), DocumentType: ssmtypes.DocumentTypeCommand, DocumentFormat: ssmtypes.DocumentFormatJson})
		var exists *ssmtypes.DocumentAlreadyExists
		if !errors.As(err, &exists) {
			must(t, err)
		}
	}
}

// checkNoURLInCommands checks, with moto's ListCommands (what anyone with
// ssm:ListCommands in the account reads), that no command parameter holds
// a presigned URL.
func (r *collectRig) checkNoURLInCommands(t *testing.T) {
	t.Helper()
	p := ssm.NewListCommandsPaginator(r.agent.SSM(), &ssm.ListCommandsInput{InstanceId: aws.String(r.lab.InstanceID)})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		must(t, err)
		for _, c := range page.Commands {
			n++
			for name, values := range c.Parameters {
				for _, v := range values {
					checkNoPresignedURL(t, aws.ToString(c.DocumentName)+" parameter "+name, v)
				}
			}
		}
	}
	if n == 0 {
		t.Error("ListCommands shows no command: did the collection run?")
	}
}

// respond runs the collection playbook on the lab instance, with every
// step and its progress logged to standard error (where no presigned URL
// may appear).
func (r *collectRig) respond(caseID string) Result {
	r.t.Helper()
	return r.run("respond", "--instance-id", r.lab.InstanceID, "--case-id", caseID, "--playbook", r.playbook,
		"--forensic-profile", r.forensicProfile, "--staging-bucket", r.staging,
		"--evidence-bucket", r.lab.Bucket, "--topic-arn", r.lab.TopicARN, "--output", "json", "--verbose")
}

func requireCollectTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"sh", "bash", "curl", "zstd", "gzip"} {
		testenv.LookPath(t, "install the Debian package "+tool+" (.ci/run does)", tool)
	}
}

// ec2TrustPolicy lets EC2 assume a role.
const ec2TrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
	`"Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// fakeAVML writes whatever memory source the script names (the stand-in
// file, through RESPONDER_MEMORY_SOURCES) to the image path, as AVML writes
// a LiME image of /proc/kcore.
var fakeAVML = []byte(`#!/bin/bash
case ${1-} in --help) echo "Usage: avml [OPTIONS] <FILENAME>"; exit 0 ;; --version) echo "avml 0.14.0 (fake)"; exit 0 ;; esac
src=''
while (($# > 1)); do case $1 in --source) src=$2; shift 2 ;; *) shift ;; esac; done
cat -- "$src" >"$1"
`)

// createSSMEndpoints gives the lab's VPC what a forensic access group needs.
func createSSMEndpoints(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	l := f.lab
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
		_, err := f.aws.EC2.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{
			VpcId: &l.VpcID, ServiceName: aws.String("com.amazonaws." + l.Region + "." + svc),
			VpcEndpointType: ec2types.VpcEndpointTypeInterface, SubnetIds: []string{l.SubnetID}, PrivateDnsEnabled: aws.Bool(true),
		})
		must(t, err)
	}
	rts, err := f.aws.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{l.VpcID}}}})
	must(t, err)
	var ids []string
	for _, rt := range rts.RouteTables {
		ids = append(ids, aws.ToString(rt.RouteTableId))
	}
	_, err = f.aws.EC2.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{
		VpcId: &l.VpcID, ServiceName: aws.String("com.amazonaws." + l.Region + ".s3"),
		VpcEndpointType: ec2types.VpcEndpointTypeGateway, RouteTableIds: ids,
	})
	must(t, err)
}

// removeProfiles disassociates every instance profile of the lab instance.
func removeProfiles(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	for _, id := range observe(t, f.aws, f.lab).ProfileAssociations {
		_, err := f.aws.EC2.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(id)})
		must(t, err)
	}
	if left := observe(t, f.aws, f.lab).ProfileAssociations; len(left) != 0 {
		t.Fatalf("the lab instance still has profile associations %v", left)
	}
	f.lab.InstanceProfileARN = "" // no role credentials to revoke (assertRevoked)
}

// writeCollectPlaybook writes a playbook file made from an embedded one:
// the same steps, short polls and bounds, 5 MiB parts (so that the
// stand-in memory takes several), and the fake avml pinned by its SHA-256.
func writeCollectPlaybook(t *testing.T, dir, base string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "playbooks", base+".yaml"))
	must(t, err)
	var p map[string]any
	must(t, yaml.Unmarshal(src, &p))
	name := "moto-" + base
	p["name"] = name
	coll, ok := p["collection"].(map[string]any)
	if !ok {
		t.Fatalf("playbook %s has no collection settings", base)
	}
	sum := sha256.Sum256(fakeAVML)
	coll["poll_interval"] = "200ms"
	coll["registration_timeout"] = "1m"
	coll["capture_timeout"] = "2m"
	coll["recent_days"] = 1
	coll["memory"] = map[string]any{
		"tool": "auto", "compression": "auto", "part_size_mib": 5,
		"tools": map[string]any{"avml-x86_64": map[string]any{"key": collectAVMLKey, "sha256": hex.EncodeToString(sum[:])}},
	}
	out, err := yaml.Marshal(p)
	must(t, err)
	path := filepath.Join(dir, name+".yaml")
	must(t, os.WriteFile(path, out, 0o600))
	return path
}

// memoryStandIn is a LiME image of known content, standing in for the
// instance's memory, and the /proc/iomem that goes with it.
type memoryStandIn struct {
	path, iomem string
	data        []byte
}

// newMemoryStandIn writes about 10.6 MiB of LiME image in two System RAM
// ranges: pages that are zero, random or text, mostly random, so that even
// compressed it takes two 5 MiB parts.
func newMemoryStandIn(t *testing.T, dir string) memoryStandIn {
	t.Helper()
	ranges := [][2]uint64{{0x1000, 0x9fbff}, {0x100000, 0xafffff}}
	rng := rand.New(rand.NewSource(5))
	text := bytes.Repeat([]byte("GET /index.html HTTP/1.1\r\nHost: example.internal\r\nUser-Agent: curl/8\r\n"), 80)
	var img bytes.Buffer
	for _, r := range ranges {
		hdr := make([]byte, 32)
		binary.LittleEndian.PutUint32(hdr[0:], 0x4C694D45) // "EMiL"
		binary.LittleEndian.PutUint32(hdr[4:], 1)
		binary.LittleEndian.PutUint64(hdr[8:], r[0])
		binary.LittleEndian.PutUint64(hdr[16:], r[1])
		img.Write(hdr)
		page := make([]byte, int(r[1]-r[0]+1))
		for off := 0; off < len(page); off += 4096 {
			end := min(off+4096, len(page))
			switch x := rng.Float64(); {
			case x < 0.25:
			case x < 0.85:
				rng.Read(page[off:end])
			default:
				copy(page[off:end], text[rng.Intn(len(text)-4096):])
			}
		}
		img.Write(page)
	}
	m := memoryStandIn{path: filepath.Join(dir, "memory.lime"), iomem: filepath.Join(dir, "iomem"), data: img.Bytes()}
	must(t, os.WriteFile(m.path, m.data, 0o600))
	iomem := "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n000a0000-000fffff : Reserved\n" +
		"00100000-00afffff : System RAM\n  00200000-002fffff : Kernel code\nfec00000-fec003ff : IOAPIC 0\n"
	must(t, os.WriteFile(m.iomem, []byte(iomem), 0o600))
	return m
}

// collectManifest is what the collection tests read of manifest.json.
type collectManifest struct {
	Steps []struct {
		Name   string          `json:"name"`
		Status string          `json:"status"`
		Reason string          `json:"reason"`
		Error  string          `json:"error"`
		After  json.RawMessage `json:"after"`
	} `json:"steps"`
	Artifacts []struct {
		Path           string `json:"path"`
		SHA256         string `json:"sha256"`
		Size           int64  `json:"size"`
		Step           string `json:"step"`
		Source         string `json:"source"`
		ReportedSHA256 string `json:"reported_sha256"`
		Encoding       string `json:"encoding"`
		DecodedSHA256  string `json:"decoded_sha256"`
		DecodedSize    int64  `json:"decoded_size"`
	} `json:"artifacts"`
}

// step returns the record of a step, failing the test when it is missing.
func (m collectManifest) step(t *testing.T, name string) (status, detail string, after json.RawMessage) {
	t.Helper()
	for _, s := range m.Steps {
		if s.Name == name {
			return s.Status, s.Reason + s.Error, s.After
		}
	}
	t.Fatalf("the manifest has no step %s", name)
	return "", "", nil
}

// memoryRecord is the memory-capture step's record (its "after").
type memoryRecord struct {
	Command struct {
		Document        string `json:"document"`
		DocumentVersion string `json:"document_version"`
		DocumentSHA256  string `json:"document_sha256"`
		CommandID       string `json:"command_id"`
		Status          string `json:"status"`
	} `json:"command"`
	Upload *struct {
		Key      string `json:"key"`
		UploadID string `json:"upload_id"`
	} `json:"upload"`
	Aborted string `json:"aborted"`
	Image   *struct {
		Path string `json:"path"`
	} `json:"image"`
	Report *struct {
		Path string `json:"path"`
	} `json:"report"`
	Tool *struct {
		Name         string `json:"name"`
		MemorySource string `json:"memory_source"`
	} `json:"tool"`
	Failure    string `json:"failure"`
	FailedPart int    `json:"failed_part"`
}

func (r *collectRig) manifest(t *testing.T, caseID string) (collectManifest, []byte) {
	t.Helper()
	raw := bucketStore(r.aws, r.lab.Bucket, caseID)(t, "manifest.json")
	var m collectManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return m, raw
}

func (r *collectRig) memoryRecord(t *testing.T, m collectManifest) (string, memoryRecord) {
	t.Helper()
	status, detail, after := m.step(t, "memory-capture")
	var rec memoryRecord
	if len(after) == 0 || json.Unmarshal(after, &rec) != nil {
		t.Fatalf("memory-capture (%s: %s) recorded no state: %s", status, detail, after)
	}
	return status, rec
}

// getObject reads an object from moto; ok is false when there is none.
func (r *collectRig) getObject(t *testing.T, bucket, key string) ([]byte, bool) {
	t.Helper()
	out, err := r.aws.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	var missing *s3types.NoSuchKey
	if errors.As(err, &missing) {
		return nil, false
	}
	must(t, err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	must(t, err)
	return b, true
}

// checkImage checks the memory image in the evidence bucket against the
// stand-in and the manifest, and returns the instance's report.
func (r *collectRig) checkImage(t *testing.T, caseID string, m collectManifest, rec memoryRecord) ssmdocuments.MemoryReport {
	t.Helper()
	if rec.Image == nil || rec.Report == nil {
		t.Fatalf("memory-capture recorded no image or no report: %+v", rec)
	}
	var found bool
	for _, a := range m.Artifacts {
		if a.Path != rec.Image.Path {
			continue
		}
		found = true
		stored, ok := r.getObject(t, r.lab.Bucket, "cases/"+caseID+"/"+a.Path)
		if !ok {
			t.Fatalf("the memory image %s is not in the evidence bucket", a.Path)
		}
		// The read-back is on (the default), so the instance was asked to
		// hash only the raw stream: the image's SHA-256 is the toolkit's.
		if got := sha256Hex(stored); got != a.SHA256 || a.ReportedSHA256 != "" || int64(len(stored)) != a.Size {
			t.Errorf("image object: SHA-256 %s size %d; manifest sha256 %s reported_sha256 %s size %d", got, len(stored), a.SHA256, a.ReportedSHA256, a.Size)
		}
		plain := decode(t, a.Encoding, stored)
		if !bytes.Equal(plain, r.memory.data) {
			t.Errorf("the image decoded with %q (%d bytes) is not the stand-in memory (%d bytes)", a.Encoding, len(plain), len(r.memory.data))
		}
		if want := sha256Hex(r.memory.data); a.DecodedSHA256 != want || a.DecodedSize != int64(len(r.memory.data)) {
			t.Errorf("manifest decoded_sha256 %s size %d, the stand-in's %s size %d", a.DecodedSHA256, a.DecodedSize, want, len(r.memory.data))
		}
		if !strings.Contains(a.Source, rec.Command.Document) || !strings.Contains(a.Source, "version "+rec.Command.DocumentVersion) {
			t.Errorf("image source %q does not name %s version %s", a.Source, rec.Command.Document, rec.Command.DocumentVersion)
		}
	}
	if !found {
		t.Fatalf("the manifest lists no artifact %s", rec.Image.Path)
	}
	if rec.Tool == nil || rec.Tool.Name != "avml" || rec.Tool.MemorySource != r.memory.path {
		t.Errorf("tool %+v, want avml reading %s", rec.Tool, r.memory.path)
	}
	body, ok := r.getObject(t, r.lab.Bucket, "cases/"+caseID+"/"+rec.Report.Path)
	if !ok {
		t.Fatalf("the instance's report %s is not in the evidence bucket", rec.Report.Path)
	}
	rep, err := ssmdocuments.ParseMemoryReport(body)
	must(t, err)
	if rep.Upload == nil || rep.Upload.PartCount < 2 {
		t.Errorf("upload %+v: the stand-in should take two parts or more", rep.Upload)
	}
	return rep
}

// checkDocument checks that moto holds, at the version the record names,
// the toolkit's document.
func (r *collectRig) checkDocument(t *testing.T, name, version, recordedHash string) {
	t.Helper()
	doc, ok := ssmdocuments.Lookup(name)
	if !ok {
		t.Fatalf("the record names document %q, which the toolkit does not have", name)
	}
	want, err := doc.ContentSHA256()
	must(t, err)
	out, err := r.agent.SSM().DescribeDocument(context.Background(), &ssm.DescribeDocumentInput{Name: &name, DocumentVersion: &version})
	if err != nil {
		t.Fatalf("moto: describe %s version %q: %v", name, version, err)
	}
	if got := aws.ToString(out.Document.Hash); got != want || recordedHash != want {
		t.Errorf("%s version %s: moto's hash %s, recorded %s, the toolkit's %s", name, version, got, recordedHash, want)
	}
}

// checkNoOpenUploads checks that no multipart upload is left in the bucket.
func (r *collectRig) checkNoOpenUploads(t *testing.T) {
	t.Helper()
	out, err := r.aws.S3.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &r.lab.Bucket})
	must(t, err)
	for _, u := range out.Uploads {
		t.Errorf("multipart upload left open: s3://%s/%s (%s)", r.lab.Bucket, aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
}

// checkNoPresignedURL checks that no presigned URL leaked into what the
// binary printed or recorded.
func checkNoPresignedURL(t *testing.T, where string, text string) {
	t.Helper()
	for _, mark := range []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"} {
		if strings.Contains(text, mark) {
			t.Errorf("%s holds a presigned URL (%s)", where, mark)
		}
	}
}

// checkRanAs checks that the Agent ran the collection documents, each after
// a sealing-key command, with the forensic profile associated, and returns
// when the first one started.
func (r *collectRig) checkRanAs(t *testing.T) time.Time {
	t.Helper()
	invs := r.agent.Invocations()
	var docs []string
	for _, inv := range invs {
		docs = append(docs, inv.Document)
		if inv.ProfileARN != r.forensicProfile {
			t.Errorf("%s ran with instance profile %q associated, want the forensic profile %s", inv.Document, inv.ProfileARN, r.forensicProfile)
		}
	}
	slices.Sort(docs)
	if want := []string{ssmdocuments.LinuxMemoryCapture, ssmdocuments.LinuxSealingKey, ssmdocuments.LinuxSealingKey,
		ssmdocuments.LinuxVolatileData}; !slices.Equal(docs, want) {
		t.Fatalf("the instance ran %v, want %v", docs, want)
	}
	return invs[0].StartedAt
}

func decode(t *testing.T, encoding string, b []byte) []byte {
	t.Helper()
	switch encoding {
	case "", "none":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		must(t, err)
		out, err := io.ReadAll(zr)
		must(t, err)
		return out
	case "zstd":
		cmd := exec.Command("zstd", "-d", "-c", "-q")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		must(t, err)
		return out
	}
	t.Fatalf("unknown encoding %q", encoding)
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func failedOf(m collectManifest) []string {
	var failed []string
	for _, s := range m.Steps {
		if s.Status == "failed" {
			failed = append(failed, s.Name+": "+s.Error)
		}
	}
	return failed
}

// TestCollectAgainstMoto: the collect playbook (isolate first) in a VPC with
// the SSM and S3 endpoints. The instance is contained with its interfaces in
// the forensic access group, its profile removed and the forensic one
// associated; the volatile data and the memory image arrive in the evidence
// bucket; then the forensic access is closed.
func TestCollectAgainstMoto(t *testing.T) {
	r := setupCollect(t, collectOptions{base: "collect", endpoints: true})
	l := r.lab
	caseID := "case-collect-1"
	res := r.respond(caseID)
	m, raw := r.manifest(t, caseID)
	if res.Code != exitOK {
		t.Fatalf("want exit %d; failed steps %v:\n%s", exitOK, failedOf(m), res)
	}
	if failed := failedOf(m); len(failed) > 0 {
		t.Errorf("exit 0 but steps failed: %v", failed)
	}
	for _, name := range []string{"forensic-access-group", "ssm-access", "volatile-data", "memory-capture", "forensic-access-close"} {
		if status, detail, _ := m.step(t, name); status != "ok" {
			t.Errorf("step %s: %s (%s), want ok", name, status, detail)
		}
	}

	// Evidence: every artifact (the image, the archive, the reports) hashes
	// as recorded; the image is the stand-in memory.
	assertManifest(t, bucketStore(r.aws, l.Bucket, caseID), l, caseID, assertSnapshots(t, r.aws, l, caseID))
	_, rec := r.memoryRecord(t, m)
	r.checkImage(t, caseID, m, rec)
	r.checkDocument(t, rec.Command.Document, rec.Command.DocumentVersion, rec.Command.DocumentSHA256)
	r.checkNoOpenUploads(t)
	for where, text := range map[string]string{"stderr": res.Stderr, "stdout": res.Stdout, "manifest.json": string(raw)} {
		checkNoPresignedURL(t, where, text)
	}
	r.checkNoURLInCommands(t)
	// Everything the instance uploaded is in the record, in the version
	// recorded, written once: the case verifies intact.
	if v := r.run("verify", "--case-id", caseID, "--evidence-bucket", l.Bucket, "--no-snapshots"); v.Code != exitOK {
		t.Errorf("verify: want exit %d:\n%s", exitOK, v)
	}

	// Containment: no profile at all (the original removed, the forensic
	// one removed after the collection), interfaces in the closed group.
	assertContained(t, r.aws, l, caseID)
	r.checkRanAs(t)
	r.checkForensicGroup(t)
	assertNotified(t, r.aws, l, caseID)
}

// checkForensicGroup checks the forensic access group of the lab's VPC: no
// ingress, and egress only HTTPS to the SSM endpoints' interfaces and the
// S3 gateway endpoint's prefix list.
func (r *collectRig) checkForensicGroup(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	l := r.lab
	eps, err := r.aws.EC2.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{l.VpcID}}}})
	must(t, err)
	var enis, want []string
	for _, ep := range eps.VpcEndpoints {
		enis = append(enis, ep.NetworkInterfaceIds...)
	}
	nis, err := r.aws.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: enis})
	must(t, err)
	for _, ni := range nis.NetworkInterfaces {
		want = append(want, aws.ToString(ni.PrivateIpAddress)+"/32")
	}
	pls, err := r.aws.EC2.DescribePrefixLists(ctx, &ec2.DescribePrefixListsInput{Filters: []ec2types.Filter{
		{Name: aws.String("prefix-list-name"), Values: []string{"com.amazonaws." + l.Region + ".s3"}}}})
	must(t, err)
	for _, pl := range pls.PrefixLists {
		want = append(want, aws.ToString(pl.PrefixListId))
	}
	slices.Sort(want)
	if len(want) != 4 {
		t.Fatalf("moto shows %d endpoint addresses and prefix lists (%v), want 3 interfaces and 1 prefix list", len(want), want)
	}
	groups, err := r.aws.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{l.VpcID}},
		{Name: aws.String("tag:" + tagQuarantine), Values: []string{"forensic-access"}},
	}})
	must(t, err)
	if len(groups.SecurityGroups) != 1 {
		t.Fatalf("VPC %s has %d forensic access groups, want 1", l.VpcID, len(groups.SecurityGroups))
	}
	g := groups.SecurityGroups[0]
	var got []string
	for _, p := range g.IpPermissionsEgress {
		if aws.ToString(p.IpProtocol) != "tcp" || aws.ToInt32(p.FromPort) != 443 || aws.ToInt32(p.ToPort) != 443 {
			t.Errorf("forensic access group %s allows %s %d-%d out, want HTTPS only", aws.ToString(g.GroupId),
				aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort))
		}
		for _, ip := range p.IpRanges {
			got = append(got, aws.ToString(ip.CidrIp))
		}
		for _, pl := range p.PrefixListIds {
			got = append(got, aws.ToString(pl.PrefixListId))
		}
	}
	slices.Sort(got)
	if len(g.IpPermissions) != 0 || !slices.Equal(got, want) {
		t.Errorf("forensic access group %s: %d ingress rules, egress to %v; want none in, HTTPS out to %v",
			aws.ToString(g.GroupId), len(g.IpPermissions), got, want)
	}
}

// TestCollectAttachRunDetachMoto is the sequence of the seed workflow on an
// instance without an instance profile, with the collect-before-isolate
// playbook in a VPC without SSM endpoints: the forensic profile is
// associated, the agent registers, the documents run while it is
// associated, it is removed, and the instance is isolated.
func TestCollectAttachRunDetachMoto(t *testing.T) {
	r := setupCollect(t, collectOptions{base: "collect-before-isolate", noProfile: true})
	l := r.lab
	caseID := "case-attach-run-detach"
	res := r.respond(caseID)
	m, raw := r.manifest(t, caseID)
	if res.Code != exitOK {
		t.Fatalf("want exit %d; failed steps %v:\n%s", exitOK, failedOf(m), res)
	}

	// Attached: ssm-access associated the forensic profile, and the node
	// came online (as the stand-in saw the association) before any command.
	_, _, after := m.step(t, "ssm-access")
	var access struct {
		ForensicProfile *struct {
			ProfileARN string `json:"instance_profile_arn"`
		} `json:"forensic_profile"`
	}
	must(t, json.Unmarshal(after, &access))
	if access.ForensicProfile == nil || access.ForensicProfile.ProfileARN != r.forensicProfile {
		t.Errorf("ssm-access recorded forensic profile %+v, want %s", access.ForensicProfile, r.forensicProfile)
	}
	firstRun := r.checkRanAs(t)
	online := r.agent.FirstOnline()
	if online.IsZero() || !online.Before(firstRun) {
		t.Errorf("DescribeInstanceInformation first answered Online at %s, the first command started at %s", online, firstRun)
	}
	for _, inv := range r.agent.Invocations() {
		if inv.Status != "Success" {
			t.Errorf("%s ended %s (exit %d): %s", inv.Document, inv.Status, inv.ResponseCode, tail(inv.Stderr, 2000))
		}
	}

	// Run: the evidence arrived.
	assertManifest(t, bucketStore(r.aws, l.Bucket, caseID), l, caseID, assertSnapshots(t, r.aws, l, caseID))
	_, rec := r.memoryRecord(t, m)
	r.checkImage(t, caseID, m, rec)
	r.checkNoOpenUploads(t)
	checkNoPresignedURL(t, "stderr", res.Stderr)
	checkNoPresignedURL(t, "manifest.json", string(raw))
	r.checkNoURLInCommands(t)

	// Detached, then isolated: moto shows no association at all.
	assoc, err := r.aws.EC2.DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{l.InstanceID}}}})
	must(t, err)
	for _, a := range assoc.IamInstanceProfileAssociations {
		if a.State == ec2types.IamInstanceProfileAssociationStateAssociated || a.State == ec2types.IamInstanceProfileAssociationStateAssociating {
			t.Errorf("instance profile %s still %s", aws.ToString(a.IamInstanceProfile.Arn), a.State)
		}
	}
	if status, detail, _ := m.step(t, "forensic-access-close"); status != "ok" || !strings.Contains(detail, r.forensicProfile) {
		t.Errorf("forensic-access-close: %s (%s), want ok, removing %s", status, detail, r.forensicProfile)
	}
	assertContained(t, r.aws, l, caseID)
}

// TestCollectPartFails: the upload of part 2 of the memory image fails every
// time (the TLS front answers 500). The capture fails and says which part,
// the multipart upload is aborted, the instance's report is kept, the rest
// of the response goes on, and the binary exits 3.
func TestCollectPartFails(t *testing.T) {
	r := setupCollect(t, collectOptions{base: "collect", endpoints: true,
		agentEnv: []string{"RC_PUT_ATTEMPTS=2", "RC_CURL_RETRY=0"}})
	l := r.lab
	r.front.FailWhere(func(req *http.Request) bool { return IsUploadPart(req, 2) },
		http.StatusInternalServerError, S3Error("InternalError", "We encountered an internal error. Please try again."))
	caseID := "case-part-fails"
	res := r.respond(caseID)
	m, raw := r.manifest(t, caseID)
	if res.Code != exitEvidenceFailed {
		t.Fatalf("want exit %d; failed steps %v:\n%s", exitEvidenceFailed, failedOf(m), res)
	}
	if r.front.Failed() == 0 {
		t.Fatal("no upload of part 2 was refused: did the capture run?")
	}
	status, rec := r.memoryRecord(t, m)
	if status != "failed" || rec.Failure != "upload" || rec.FailedPart != 2 || rec.Aborted == "" {
		t.Errorf("memory-capture %s: failure %q part %d aborted %q; want failed at the upload of part 2, aborted",
			status, rec.Failure, rec.FailedPart, rec.Aborted)
	}
	if rec.Upload == nil {
		t.Fatal("memory-capture recorded no upload")
	}
	// No image, no open upload; the report is kept and recorded.
	if _, ok := r.getObject(t, l.Bucket, rec.Upload.Key); ok {
		t.Errorf("an image was stored at %s", rec.Upload.Key)
	}
	r.checkNoOpenUploads(t)
	if rec.Report == nil {
		t.Fatal("memory-capture kept no report")
	}
	body, ok := r.getObject(t, l.Bucket, "cases/"+caseID+"/"+rec.Report.Path)
	if !ok {
		t.Fatalf("the report %s is not in the evidence bucket", rec.Report.Path)
	}
	rep, err := ssmdocuments.ParseMemoryReport(body)
	must(t, err)
	if rep.Status != ssmdocuments.StatusFailed {
		t.Errorf("the instance's report says %s, want failed", rep.Status)
	}
	assertManifest(t, bucketStore(r.aws, l.Bucket, caseID), l, caseID, assertSnapshots(t, r.aws, l, caseID))
	checkNoPresignedURL(t, "stderr", res.Stderr)
	checkNoPresignedURL(t, "manifest.json", string(raw))

	// The rest went on: volatile data collected, forensic access closed,
	// the instance contained.
	for _, name := range []string{"volatile-data", "forensic-access-close"} {
		if status, detail, _ := m.step(t, name); status != "ok" {
			t.Errorf("step %s: %s (%s), want ok", name, status, detail)
		}
	}
	assertContained(t, r.aws, l, caseID)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
