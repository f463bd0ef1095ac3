package fakeaws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// testClock starts at the real time, because the SDK signs presigned URLs
// with the real time, and moves only when told to.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now().UTC()} }

func (k *testClock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.t
}

func (k *testClock) Advance(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.t = k.t.Add(d)
}

// forensicsAccount is the account that holds the evidence.
const forensicsAccount = "444455556666"

// collection is a workload account whose suspect is a managed node, and a
// forensics account with an Object Lock evidence bucket and a staging
// bucket, wired as the engine wires them: the Responder-* documents exist in
// the workload account, and its agents reach the forensics account's S3.
type collection struct {
	t       *testing.T
	ctx     context.Context
	c       *Cloud // workload
	s       Suspect
	f       *Cloud // forensics
	clock   *testClock
	presign *s3.PresignClient
}

func newCollection(t *testing.T, agent Agent) *collection {
	t.Helper()
	k := &collection{t: t, ctx: context.Background(), clock: newTestClock()}
	k.c, k.s = NewSuspect()
	k.c.Clock = k.clock.Now
	k.f = New(WithAccount(forensicsAccount))
	k.f.Clock = k.clock.Now
	k.f.AddBucket("evidence", BucketOptions{ObjectLockDefaultRetention: &Retention{Mode: s3types.ObjectLockRetentionModeCompliance, Days: 365}})
	k.f.AddBucket("staging", BucketOptions{})
	k.c.AgentS3(k.f.S3())
	k.c.SetAgent(k.s.InstanceID, agent)
	k.c.DeployMemberDocuments()
	if _, err := k.c.SSM().CreateDocument(k.ctx, &ssm.CreateDocumentInput{Name: aws.String(testDocumentName), Content: aws.String(testDocument),
		DocumentType: ssmtypes.DocumentTypeCommand, DocumentFormat: ssmtypes.DocumentFormatJson}); err != nil {
		t.Fatal(err)
	}
	k.presign = newPresigner("us-east-1", true)
	return k
}

// newPresigner signs as the engine does: path style against a made-up
// endpoint, or virtual-hosted against AWS's.
func newPresigner(region string, pathStyle bool) *s3.PresignClient {
	o := s3.Options{Region: region, UsePathStyle: pathStyle,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAFORENSICS0EXAMPLE", "secret", "")}
	if pathStyle {
		o.BaseEndpoint = aws.String("https://s3.fake.test")
	}
	return s3.NewPresignClient(s3.New(o), s3.WithPresignExpires(time.Hour))
}

func (k *collection) must(err error) {
	k.t.Helper()
	if err != nil {
		k.t.Fatal(err)
	}
}

// stage puts an object in the staging bucket and returns a presigned GET.
func (k *collection) stage(key string, body []byte) string {
	k.t.Helper()
	_, err := k.f.S3().PutObject(k.ctx, &s3.PutObjectInput{Bucket: aws.String("staging"), Key: aws.String(key), Body: bytes.NewReader(body)})
	k.must(err)
	r, err := k.presign.PresignGetObject(k.ctx, &s3.GetObjectInput{Bucket: aws.String("staging"), Key: aws.String(key)})
	k.must(err)
	return r.URL
}

func (k *collection) presignPut(bucket, key string) string {
	k.t.Helper()
	r, err := k.presign.PresignPutObject(k.ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	k.must(err)
	return r.URL
}

// avml is the staged avml of the tests (WinPmem is fetched and checked, not
// run: any bytes will do).
var avml = StandInAVML()

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// memoryUpload is a memory capture prepared as the engine prepares it.
type memoryUpload struct {
	key, uploadID, reportKey string
	params                   map[string]string
}

// prepareMemory opens the multipart upload for the image, presigns parts
// URLs for it and stages their list, stages avml, and returns the
// parameters of the capture document.
func (k *collection) prepareMemory(windows bool, parts int, extra map[string]string) memoryUpload {
	k.t.Helper()
	u := memoryUpload{key: "case-42/memory.img", reportKey: "case-42/memory-report.json"}
	out, err := k.f.S3().CreateMultipartUpload(k.ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("evidence"), Key: aws.String(u.key)})
	k.must(err)
	u.uploadID = aws.ToString(out.UploadId)
	var urls []string
	for n := 1; n <= parts; n++ {
		r, err := k.presign.PresignUploadPart(k.ctx, &s3.UploadPartInput{Bucket: aws.String("evidence"), Key: aws.String(u.key),
			UploadId: out.UploadId, PartNumber: aws.Int32(int32(n))})
		k.must(err)
		urls = append(urls, r.URL)
	}
	u.params = map[string]string{
		"CaseId":      "case-42",
		"PartUrlsUrl": k.stage("case-42/parts.txt", ssmdocuments.PartURLList(urls)),
		"PartSizeMiB": "5",
		"ResultUrl":   k.presignPut("evidence", u.reportKey),
	}
	if windows {
		u.params["WinpmemUrl"], u.params["WinpmemSha256"] = k.stage("tools/winpmem.exe", avml), sha256hex(avml)
	} else {
		u.params["AvmlUrl"], u.params["AvmlSha256"] = k.stage("tools/avml", avml), sha256hex(avml)
	}
	for name, v := range extra {
		if v == "" {
			delete(u.params, name)
		} else {
			u.params[name] = v
		}
	}
	return u
}

// send sends a document with parameters checked by ssmdocuments, as the
// engine does: for a document with sealed parameters, the instance first
// makes the key they are sealed to.
func (k *collection) send(doc string, params map[string]string) (string, error) {
	k.t.Helper()
	d, ok := ssmdocuments.Lookup(doc)
	if !ok {
		k.t.Fatalf("no document %s", doc)
	}
	var key *ssmdocuments.SealingKey
	if d.HasSealed() {
		key = k.sealingKey()
	}
	p, err := d.SendCommandParameters(params, key)
	k.must(err)
	out, err := k.c.SSM().SendCommand(k.ctx, &ssm.SendCommandInput{DocumentName: aws.String(doc), InstanceIds: []string{k.s.InstanceID},
		Parameters: p, TimeoutSeconds: aws.Int32(600), Comment: aws.String("responder case-42")})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Command.CommandId), nil
}

// sealingKey has the suspect's agent make a sealing key with the
// platform's sealing-key document, as the engine does before a collection
// (on Linux the real script makes it, with openssl), and returns its public
// half.
func (k *collection) sealingKey() *ssmdocuments.SealingKey {
	k.t.Helper()
	k.c.mu.Lock()
	platform := k.c.agents[k.s.InstanceID].cfg.PlatformType
	k.c.mu.Unlock()
	return k.sealingKeyByDocument(platform)
}

// poll calls GetCommandInvocation until the invocation is finished (at most
// 20 times) and returns the last answer.
func (k *collection) poll(id string) *ssm.GetCommandInvocationOutput {
	k.t.Helper()
	for range 20 {
		out, err := k.c.SSM().GetCommandInvocation(k.ctx, &ssm.GetCommandInvocationInput{CommandId: &id, InstanceId: &k.s.InstanceID})
		k.must(err)
		switch out.Status {
		case ssmtypes.CommandInvocationStatusPending, ssmtypes.CommandInvocationStatusInProgress:
			continue
		}
		return out
	}
	k.t.Fatalf("command %s did not finish in 20 polls", id)
	return nil
}

// run sends a document and polls it to the end.
func (k *collection) run(doc string, params map[string]string) *ssm.GetCommandInvocationOutput {
	k.t.Helper()
	id, err := k.send(doc, params)
	k.must(err)
	return k.poll(id)
}

// object returns an object of the forensics account, or nil.
func (k *collection) object(bucket, key string) *Object {
	o, ok := k.f.Objects(bucket)[key]
	if !ok {
		return nil
	}
	return &o
}

func (k *collection) listParts(u memoryUpload) []s3types.Part {
	k.t.Helper()
	out, err := k.f.S3().ListParts(k.ctx, &s3.ListPartsInput{Bucket: aws.String("evidence"), Key: aws.String(u.key), UploadId: &u.uploadID})
	k.must(err)
	return out.Parts
}

// isolate puts both interfaces of the suspect in the given groups.
func (k *collection) isolate(groups ...string) {
	k.t.Helper()
	for _, eni := range k.s.InterfaceIDs {
		_, err := k.c.EC2().ModifyNetworkInterfaceAttribute(k.ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Groups: groups})
		k.must(err)
	}
}

// testDocumentName is a small Command document of every collection
// account, testDocument: step "put" uploads "put <Word>"
// through the presigned PUT Url, step "say" prints Word and exits with
// Exit.
const testDocumentName = "Test-Put"

const testDocument = `{"schemaVersion":"2.2","description":"fakeaws test document",
"parameters":{
  "Url":{"type":"String","allowedPattern":"^https://[A-Za-z0-9.:/?&=%_~-]+$"},
  "Word":{"type":"String","default":"hello","allowedPattern":"^[a-z]+$"},
  "Exit":{"type":"String","default":"0","allowedPattern":"^[0-9]$"},
  "Repeat":{"type":"String","default":"1","allowedPattern":"^[0-9]{1,5}$"},
  "ExecutionTimeout":{"type":"String","default":"60","allowedPattern":"^[0-9]{1,5}$"}},
"mainSteps":[
  {"action":"aws:runShellScript","name":"put","precondition":{"StringEquals":["platformType","Linux"]},
   "inputs":{"timeoutSeconds":"{{ ExecutionTimeout }}","runCommand":[
     "printf 'put %s' '{{ Word }}' >body","curl -sS -f -o /dev/null -T body '{{ Url }}'"]}},
  {"action":"aws:runShellScript","name":"say",
   "inputs":{"runCommand":["i=0","while [ $i -lt {{ Repeat }} ]; do printf '%s' '{{ Word }}'; i=$((i+1)); done","exit {{ Exit }}"]}}]}`

// sendTest sends the test document with its Url a presigned PUT of key in
// a bucket (in "staging": the evidence bucket's Object Lock wants a
// Content-MD5, which the document does not send).
func (k *collection) sendTest(bucket, key string, params map[string]string) string {
	k.t.Helper()
	p := map[string][]string{"Url": {k.presignPut(bucket, key)}}
	for name, v := range params {
		p[name] = []string{v}
	}
	out, err := k.c.SSM().SendCommand(k.ctx, &ssm.SendCommandInput{DocumentName: aws.String(testDocumentName),
		InstanceIds: []string{k.s.InstanceID}, Parameters: p, TimeoutSeconds: aws.Int32(600), Comment: aws.String("responder case-42")})
	k.must(err)
	return aws.ToString(out.Command.CommandId)
}
