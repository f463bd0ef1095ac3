package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/responder-ir/responder/integration"
	"github.com/responder-ir/responder/internal/testenv"
	"github.com/responder-ir/responder/responder/fakeaws"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// e2eAVML stands in for avml: it writes the memory source the script names
// (the stand-in file, through RESPONDER_MEMORY_SOURCES) to the image path.
var e2eAVML = []byte(`#!/bin/bash
case ${1-} in --help) echo "Usage: avml [OPTIONS] <FILENAME>"; exit 0 ;; --version) echo "avml 0.14.0 (fake)"; exit 0 ;; esac
src=''
while (($# > 1)); do case $1 in --source) src=$2; shift 2 ;; *) shift ;; esac; done
cat -- "$src" >"$1"
`)

// e2eMemory writes a LiME image of one 6 MiB System RAM range and the
// /proc/iomem that goes with it; it returns the image and the two paths.
func e2eMemory(t *testing.T, dir string) (img []byte, path, iomem string) {
	t.Helper()
	start, end := uint64(0x100000), uint64(0x6fffff)
	hdr := make([]byte, 32)
	binary.LittleEndian.PutUint32(hdr[0:], 0x4C694D45) // "EMiL"
	binary.LittleEndian.PutUint32(hdr[4:], 1)
	binary.LittleEndian.PutUint64(hdr[8:], start)
	binary.LittleEndian.PutUint64(hdr[16:], end)
	page := make([]byte, end-start+1)
	rand.New(rand.NewSource(14)).Read(page[:len(page)/2]) // half random, half zero
	img = append(hdr, page...)
	path, iomem = filepath.Join(dir, "memory.lime"), filepath.Join(dir, "iomem")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(iomem, []byte("00000000-000fffff : Reserved\n00100000-006fffff : System RAM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return img, path, iomem
}

// TestBootstrapCollectsMemoryAgainstMoto runs a collect case end to end:
// the built bootstrap under the Runtime API test server, the state machine
// by the ASL interpreter, AWS in moto, and the integration package's
// stand-in SSM Agent running the real capture script on this machine, which
// streams the image into the evidence bucket through the function's
// presigned URLs (over the TLS front). The prepare and send stages are each
// run twice, as Step Functions retries a task whose function died after
// doing its work: still one upload and one command.
func TestBootstrapCollectsMemoryAgainstMoto(t *testing.T) {
	for _, tool := range []string{"sh", "bash", "curl", "zstd", "gzip"} {
		testenv.LookPath(t, "install the Debian package "+tool+" (.ci/run does)", tool)
	}
	m := startMoto(t)
	w := newAWSWorld(t, m, "lambda-collect")
	ctx := context.Background()
	l, dir := w.lab, t.TempDir()

	front, err := integration.NewTLSFront(w.proxy.URL, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(front.Close)
	// The forensic instance profile of the member stack.
	role := l.Name + "-forensic"
	if _, err := w.clients.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: &role, AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
		t.Fatal(err)
	}
	prof, err := w.clients.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: &role})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.clients.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: &role, RoleName: &role}); err != nil {
		t.Fatal(err)
	}
	// The staging bucket with the stand-in avml.
	staging := l.Name + "-staging"
	if _, err := w.clients.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &staging}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &staging, Key: aws.String("tools/avml-x86_64"), Body: bytes.NewReader(e2eAVML)}); err != nil {
		t.Fatal(err)
	}
	e2eEndpoints(t, w)
	memory, memPath, iomem := e2eMemory(t, dir)

	agent, err := integration.NewAgent(ctx, w.clients, m.URL, l.InstanceID, t.TempDir(), []string{
		"CURL_CA_BUNDLE=" + front.CAFile, "RESPONDER_MEMORY_SOURCES=" + memPath, "RESPONDER_IOMEM=" + iomem, "RC_RETRY_SLEEP=0"})
	if err != nil {
		t.Fatal(err)
	}
	agent.Install(w.proxy)
	agent.Start()
	t.Cleanup(agent.Stop)
	for _, d := range ssmdocuments.Documents() {
		content, err := d.Content()
		if err != nil {
			t.Fatal(err)
		}
		_, err = agent.SSM().CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String(d.Name), Content: aws.String(string(content)),
			DocumentType: ssmtypes.DocumentTypeCommand, DocumentFormat: ssmtypes.DocumentFormatJson})
		var exists *ssmtypes.DocumentAlreadyExists
		if err != nil && !errors.As(err, &exists) {
			t.Fatal(err)
		}
	}

	sum := sha256.Sum256(e2eAVML)
	env := append(w.env,
		"RESPONDER_STAGING_BUCKET="+staging,
		"RESPONDER_MEMORY_TOOLS=avml-x86_64=tools/avml-x86_64@"+hex.EncodeToString(sum[:]),
		"RESPONDER_FORENSIC_PROFILE="+aws.ToString(prof.InstanceProfile.Arn),
		// The function signs S3 for the TLS front, which the instance's curl trusts.
		"AWS_ENDPOINT_URL_S3="+front.URL, "AWS_CA_BUNDLE="+front.CAFile,
	)
	rt := newRuntimeAPI(t)
	f := startFunction(t, bootstrapBinary(t), rt, env)

	status, body := apiResult(t, rt.Invoke(t, postCases(`{"instance_id": "`+l.InstanceID+`", "playbook": "collect"}`)))
	if status != http.StatusAccepted {
		t.Fatalf("POST /cases: %d %v", status, body)
	}
	caseID := body["case_id"].(string)
	desc, err := w.sfn.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(body["execution_arn"].(string))})
	if err != nil {
		t.Fatal(err)
	}
	var input map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(desc.Input)), &input); err != nil {
		t.Fatal(err)
	}
	machine, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	retried := map[string]bool{}
	invoke := func(payload []byte) (json.RawMessage, *taskError) {
		var p struct{ Stage string }
		_ = json.Unmarshal(payload, &p)
		r := rt.Invoke(t, payload)
		if (p.Stage == "prepare" || p.Stage == "send") && !retried[p.Stage] && r.Error == nil {
			retried[p.Stage] = true
			return nil, &taskError{Name: "Lambda.ServiceException", Cause: "the function died before it answered"}
		}
		if r.Error != nil {
			return nil, &taskError{Name: r.Error.Type, Cause: r.Error.Message}
		}
		return r.Body, nil
	}
	// The agent works in real time: a Wait state waits a little.
	ex, err := machine.run(input, invoke, func() { time.Sleep(300 * time.Millisecond) }, 3000)
	if err != nil {
		t.Fatalf("state machine run: %v", err)
	}
	if ex.Status != "SUCCEEDED" || ex.End != "Done" {
		lc, err := agent.SSM().ListCommands(ctx, &ssm.ListCommandsInput{InstanceId: aws.String(l.InstanceID)})
		if lc != nil {
			for _, c := range lc.Commands {
				t.Logf("moto command %s %s %s %v", aws.ToString(c.CommandId), aws.ToString(c.DocumentName), c.Status, c.InstanceIds)
			}
		}
		t.Logf("list err %v", err)
		for _, inv := range agent.Invocations() {
			t.Logf("agent ran %s: %s %d\nstdout: %.2000s\nstderr: %.2000s", inv.Document, inv.Status, inv.ResponseCode, inv.Stdout, inv.Stderr)
		}
		t.Fatalf("execution %s at %s: %s %s", ex.Status, ex.End, ex.Error, ex.Cause)
	}

	// The image, read from moto: whole, decompressing to the memory.
	key := "cases/" + caseID + "/" + l.InstanceID + "/memory/run-001/memory-image"
	obj, err := w.clients.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &l.Bucket, Key: &key})
	if err != nil {
		t.Fatalf("no memory image at %s: %v", key, err)
	}
	var stored bytes.Buffer
	_, _ = stored.ReadFrom(obj.Body)
	obj.Body.Close()
	var record struct {
		Status    string `json:"status"`
		Artifacts []struct {
			Path, SHA256, Encoding string
		} `json:"artifacts"`
	}
	rec, err := w.clients.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &l.Bucket, Key: aws.String("cases/" + caseID + "/manifest.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(rec.Body).Decode(&record); err != nil {
		t.Fatal(err)
	}
	rec.Body.Close()
	if record.Status != "contained" {
		t.Errorf("case status %s", record.Status)
	}
	var encoding, hash string
	for _, a := range record.Artifacts {
		if strings.HasSuffix(a.Path, "/memory-image") {
			encoding, hash = a.Encoding, a.SHA256
		}
	}
	got := sha256.Sum256(stored.Bytes())
	if hash != hex.EncodeToString(got[:]) {
		t.Errorf("recorded SHA-256 %q, stored bytes %x", hash, got)
	}
	raw, err := fakeaws.Decode(encoding, stored.Bytes())
	if err != nil || !bytes.Equal(raw, memory) {
		t.Fatalf("the image does not decode (%s) to the stand-in memory: %d bytes (%v)", encoding, len(raw), err)
	}

	// One upload (none left open), one capture command, the access closed.
	ups, err := w.clients.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &l.Bucket})
	if err != nil || len(ups.Uploads) != 0 {
		t.Errorf("open multipart uploads: %v (%v)", ups, err)
	}
	captures := 0
	for _, inv := range agent.Invocations() {
		if inv.Document == ssmdocuments.LinuxMemoryCapture {
			captures++
		}
	}
	if captures != 1 || !retried["prepare"] || !retried["send"] {
		t.Errorf("%d capture commands ran (retried %v), want 1", captures, retried)
	}
	assocs, err := w.clients.EC2.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{l.InstanceID}}, {Name: aws.String("state"), Values: []string{"associated"}}}})
	if err != nil || len(assocs.IamInstanceProfileAssociations) != 0 {
		t.Errorf("profile associations left: %v (%v)", assocs, err)
	}
	// No presigned URL in the function's log, the execution's data or a
	// command's parameters.
	texts := []string{f.logs.String()}
	for _, v := range ex.Visits {
		b, _ := json.Marshal(v)
		texts = append(texts, string(b))
	}
	for _, inv := range agent.Invocations() {
		b, _ := json.Marshal(inv.Parameters)
		texts = append(texts, string(b))
	}
	for _, s := range texts {
		if strings.Contains(s, "X-Amz-Signature") || strings.Contains(s, "X-Amz-Credential") {
			t.Fatalf("a presigned URL leaked: %.300s", s[max(0, strings.Index(s, "X-Amz")-200):])
		}
	}
	// GET /cases/{id} shows the collection finished.
	_, body = apiResult(t, rt.Invoke(t, getCase(caseID)))
	if c, _ := body["collection"].(map[string]any); c == nil || c["stage"] != "finish" || c["image_sha256"] != hash {
		t.Errorf("GET collection: %v", body["collection"])
	}
}

// e2eEndpoints gives the lab's VPC the endpoints a forensic access group
// needs.
func e2eEndpoints(t *testing.T, w *awsWorld) {
	t.Helper()
	ctx, l := context.Background(), w.lab
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
		if _, err := w.clients.EC2.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{
			VpcId: &l.VpcID, ServiceName: aws.String("com.amazonaws." + l.Region + "." + svc),
			VpcEndpointType: ec2types.VpcEndpointTypeInterface, SubnetIds: []string{l.SubnetID}, PrivateDnsEnabled: aws.Bool(true),
		}); err != nil {
			t.Fatal(err)
		}
	}
	rts, err := w.clients.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{l.VpcID}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, rt := range rts.RouteTables {
		ids = append(ids, aws.ToString(rt.RouteTableId))
	}
	if _, err := w.clients.EC2.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{
		VpcId: &l.VpcID, ServiceName: aws.String("com.amazonaws." + l.Region + ".s3"),
		VpcEndpointType: ec2types.VpcEndpointTypeGateway, RouteTableIds: ids,
	}); err != nil {
		t.Fatal(err)
	}
}
