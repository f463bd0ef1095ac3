package fakeaws

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// The agent tests run the real Linux documents (bash, curl, zstd or gzip on
// this machine) and the Windows stand-in, and check what arrives in the
// forensics account. What the scripts do in detail is tested with the
// scripts (ssm-documents); these tests are about what the fake adds: the
// agent, the instance's S3 endpoint and the faults.

func memoryDoc(windows bool) string {
	if windows {
		return ssmdocuments.WindowsMemoryCapture
	}
	return ssmdocuments.LinuxMemoryCapture
}

func agentFor(windows bool) Agent {
	if windows {
		return WindowsAgent()
	}
	return LinuxAgent()
}

func parseMemory(t *testing.T, b []byte) ssmdocuments.MemoryReport {
	t.Helper()
	r, err := ssmdocuments.ParseMemoryReport(b)
	if err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return r
}

// decompress undoes the compression a report names, failing the test when it cannot.
func decompress(t *testing.T, compression string, b []byte) []byte {
	t.Helper()
	out, err := Decode(compression, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// complete completes the image upload from the report's parts, as the
// engine does, and returns the object.
func (k *collection) complete(u memoryUpload, parts []ssmdocuments.Part) (*Object, error) {
	var done []s3types.CompletedPart
	for _, p := range parts {
		done = append(done, s3types.CompletedPart{PartNumber: aws.Int32(int32(p.PartNumber)), ETag: aws.String(p.ETag)})
	}
	_, err := k.f.S3().CompleteMultipartUpload(k.ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("evidence"), Key: aws.String(u.key),
		UploadId: &u.uploadID, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		return nil, err
	}
	return k.object("evidence", u.key), nil
}

func TestAgentMemoryCapture(t *testing.T) {
	tests := []struct {
		name      string
		windows   bool
		pathStyle bool
		extra     map[string]string
	}{
		{name: "linux, path-style URLs", pathStyle: true},
		{name: "linux, virtual-hosted URLs"},
		{name: "linux, no compression", pathStyle: true, extra: map[string]string{"Compression": "none"}},
		{name: "windows stand-in", windows: true, pathStyle: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newCollection(t, agentFor(tt.windows))
			k.presign = newPresigner("us-east-1", tt.pathStyle)
			u := k.prepareMemory(tt.windows, 4, tt.extra)
			if !tt.pathStyle && !strings.HasPrefix(u.params["ResultUrl"], "https://evidence.s3.us-east-1.amazonaws.com/") {
				t.Fatalf("not a virtual-hosted URL: %s", u.params["ResultUrl"])
			}
			out := k.run(memoryDoc(tt.windows), u.params)
			if out.Status != ssmtypes.CommandInvocationStatusSuccess || out.ResponseCode != 0 {
				t.Fatalf("invocation %s (%d): %s\n%s", out.Status, out.ResponseCode, aws.ToString(out.StandardOutputContent), aws.ToString(out.StandardErrorContent))
			}
			stdout := parseMemory(t, []byte(aws.ToString(out.StandardOutputContent)))
			if stdout.Status != ssmdocuments.StatusSucceeded || stdout.CaseID != "case-42" || stdout.ResultUpload == nil ||
				stdout.ResultUpload.Status != "succeeded" {
				t.Fatalf("stdout report = %s", aws.ToString(out.StandardOutputContent))
			}
			// The report object: stored under the bucket's Object Lock,
			// with the ETag the script was answered.
			obj := k.object("evidence", u.reportKey)
			if obj == nil {
				t.Fatal("no report object")
			}
			if stdout.ResultUpload.ETag != obj.ETag || obj.RetentionMode != s3types.ObjectLockModeCompliance {
				t.Errorf("report object ETag %s (stdout says %s), retention %s", obj.ETag, stdout.ResultUpload.ETag, obj.RetentionMode)
			}
			rep := parseMemory(t, obj.Body)
			wantTool, wantFormat := "avml", "lime"
			if tt.windows {
				wantTool, wantFormat = "winpmem", "raw"
			}
			if rep.ResultUpload != nil || rep.Upload == nil || rep.Tool.Name != wantTool || rep.ImageFormat != wantFormat {
				t.Fatalf("report object = %s", obj.Body)
			}

			// The parts S3 holds are the parts reported; the completed
			// image is what the report hashed, and decompresses to the
			// instance's memory.
			parts, err := rep.Upload.CompletedParts()
			if err != nil {
				t.Fatal(err)
			}
			listed := k.listParts(u)
			if len(listed) != len(parts) || len(parts) < 2 {
				t.Fatalf("ListParts has %d parts, the report %d; want the same, at least 2", len(listed), len(parts))
			}
			for i, p := range listed {
				if aws.ToString(p.ETag) != parts[i].ETag || aws.ToInt64(p.Size) != parts[i].Size {
					t.Errorf("part %d: listed %s/%d, reported %s/%d", i+1, aws.ToString(p.ETag), aws.ToInt64(p.Size), parts[i].ETag, parts[i].Size)
				}
			}
			image, err := k.complete(u, parts)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := ssmdocuments.MultipartETag(parts); image.ETag != want {
				t.Errorf("image ETag %s, MultipartETag of the report %s", image.ETag, want)
			}
			if sha256hex(image.Body) != rep.Upload.CompressedSHA256 || int64(len(image.Body)) != rep.Upload.CompressedBytes {
				t.Error("the image is not what the report hashed")
			}
			raw := decompress(t, rep.Upload.Compression, image.Body)
			want := limeImage(DefaultMemory())
			if tt.windows {
				want = DefaultMemory()
			}
			if !bytes.Equal(raw, want) || sha256hex(raw) != rep.Upload.RawSHA256 {
				t.Errorf("the %s image decompresses to %d bytes, not the instance's memory (%d bytes)", rep.Upload.Compression, len(raw), len(want))
			}
			if len(k.f.Uploads("evidence")) != 0 {
				t.Error("the upload is still open")
			}
			cmds := k.c.Commands()
			cmd := cmds[len(cmds)-1]
			if _, sealed := cmd.Parameters[ssmdocuments.ParamSealed]; !sealed || cmd.Status != ssmtypes.CommandInvocationStatusSuccess ||
				!strings.HasPrefix(cmd.Stdout, "{") {
				t.Errorf("command record = %v", cmd)
			}
			for _, c := range cmds {
				for name, values := range c.Parameters {
					if strings.Contains(strings.Join(values, ","), "X-Amz-Signature") {
						t.Errorf("%s: parameter %s holds a presigned URL", c.DocumentName, name)
					}
				}
			}
		})
	}
}

func TestAgentFaults(t *testing.T) {
	tests := []struct {
		fault    string
		windows  bool
		status   ssmtypes.CommandInvocationStatus
		report   string // status in the report ("" when there is none)
		failure  string
		failed   int  // failed_part
		uploaded int  // parts in ListParts
		reported int  // parts in the report
		stored   bool // the report object exists
	}{
		{fault: "", status: "Success", report: "succeeded", uploaded: 3, reported: 3, stored: true},
		// The compressor's frame of the empty stream is uploaded.
		{fault: FaultSource, status: "Failed", report: "failed", failure: "source", uploaded: 1, reported: 1, stored: true},
		// Parts go up two at a time: part 3 is on its way before part
		// 2's failure is known.
		{fault: FaultUploadPart2, status: "Failed", report: "failed", failure: "upload", failed: 2, uploaded: 2, reported: 3, stored: true},
		{fault: FaultUploadPart2, windows: true, status: "Failed", report: "failed", failure: "upload", failed: 2, uploaded: 1, reported: 2, stored: true},
		{fault: FaultLieHash, status: "Success", report: "succeeded", uploaded: 3, reported: 3, stored: true},
		{fault: FaultLieHash, windows: true, status: "Success", report: "succeeded", uploaded: 3, reported: 3, stored: true},
		{fault: FaultShort, status: "Success", report: "succeeded", uploaded: 2, reported: 3, stored: true},
		{fault: FaultNoReport, status: "Success", report: "succeeded", uploaded: 3, reported: 3},
		{fault: FaultExit1, status: "Failed"},
	}
	for _, tt := range tests {
		name := tt.fault
		if name == "" {
			name = "none"
		}
		if tt.windows {
			name += " windows"
		}
		t.Run(name, func(t *testing.T) {
			agent := agentFor(tt.windows)
			agent.Fault = tt.fault
			k := newCollection(t, agent)
			u := k.prepareMemory(tt.windows, 4, nil)
			out := k.run(memoryDoc(tt.windows), u.params)
			stdout := aws.ToString(out.StandardOutputContent)
			if out.Status != tt.status {
				t.Fatalf("invocation %s, want %s: %s\n%s", out.Status, tt.status, stdout, aws.ToString(out.StandardErrorContent))
			}
			if wantCode := map[ssmtypes.CommandInvocationStatus]int32{"Success": 0, "Failed": 1}[tt.status]; out.ResponseCode != wantCode {
				t.Errorf("response code %d, want %d", out.ResponseCode, wantCode)
			}
			if got := len(k.listParts(u)); got != tt.uploaded {
				t.Errorf("%d parts uploaded, want %d", got, tt.uploaded)
			}
			obj := k.object("evidence", u.reportKey)
			if (obj != nil) != tt.stored {
				t.Fatalf("report object exists: %v, want %v", obj != nil, tt.stored)
			}
			if tt.report == "" {
				if stdout != "" || len(k.f.Objects("evidence")) != 0 {
					t.Errorf("stdout %q, objects %d; want none", stdout, len(k.f.Objects("evidence")))
				}
				return
			}
			// What the script printed says its report was stored, also
			// when it was not.
			printed := parseMemory(t, []byte(stdout))
			if printed.Status != tt.report || printed.ResultUpload == nil || printed.ResultUpload.Status != "succeeded" {
				t.Fatalf("stdout = %s", stdout)
			}
			rep := printed
			if obj != nil {
				rep = parseMemory(t, obj.Body) // what the engine reads
			}
			if tt.failure != "" && (rep.Upload == nil || rep.Upload.Failure != tt.failure || rep.Upload.FailedPart != tt.failed) {
				t.Errorf("upload = %+v, want failure %s part %d", rep.Upload, tt.failure, tt.failed)
			}
			if tt.fault == FaultSource && (len(rep.Attempts) != 1 || rep.Attempts[0].Failure != "source" || rep.Upload == nil || rep.Upload.RawBytes != 0) {
				t.Errorf("a source failure reported as %s", obj.Body)
			}
			if rep.Upload != nil && len(rep.Upload.Parts) != tt.reported {
				t.Errorf("the report lists %d parts, want %d", len(rep.Upload.Parts), tt.reported)
			}
			if tt.status != "Success" {
				return
			}
			// What the engine checks after a successful run.
			parts, err := rep.Upload.CompletedParts()
			if err != nil {
				t.Fatal(err)
			}
			image, err := k.complete(u, parts)
			switch tt.fault {
			case FaultShort:
				wantCode(t, err, "InvalidPart")
			case FaultLieHash:
				if err != nil {
					t.Fatal(err)
				}
				if sha256hex(image.Body) == rep.Upload.CompressedSHA256 || sha256hex(image.Body) != printed.Upload.CompressedSHA256 {
					t.Error("the stored report does not lie, or the script's output does")
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if sha256hex(image.Body) != rep.Upload.CompressedSHA256 {
					t.Error("the reported digest is not the image's")
				}
			}
		})
	}
}

func TestAgentPresignedRequests(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(k *collection) // before the URLs are signed
		after   func(k *collection) // after they are signed
		errMsg  string              // of the early failure
		upload  string              // result_upload status
		check   func(t *testing.T, k *collection, rep ssmdocuments.MemoryReport)
	}{
		{name: "expired", after: func(k *collection) { k.clock.Advance(2 * time.Hour) },
			errMsg: "could not download the part URL list (HTTP 403)", upload: "failed"},
		{name: "signed for another Region", prepare: func(k *collection) { k.presign = newPresigner("eu-west-1", true) },
			errMsg: "could not download the part URL list (HTTP 400)", upload: "failed"},
		{name: "signer lacks s3:GetObject", after: func(k *collection) { k.f.Deny("GetObject") },
			errMsg: "could not download the part URL list (HTTP 403)", upload: "succeeded"},
		{name: "S3 unreachable", after: func(k *collection) {
			vpc := k.s.VpcID
			ssmEP, msgEP := k.c.AddVpcEndpoint(vpc, "ssm"), k.c.AddVpcEndpoint(vpc, "ssmmessages")
			ips := hosts(append(endpointIPs(k.t, k.c, ssmEP), endpointIPs(k.t, k.c, msgEP)...))
			k.isolate(k.c.AddSecurityGroup(vpc, "forensic", nil, []types.IpPermission{httpsTo(ips...)}))
		}, errMsg: "could not download the part URL list (HTTP 000)", upload: "failed"},
		{name: "S3 through the gateway endpoint", after: func(k *collection) {
			vpc := k.s.VpcID
			ssmEP, msgEP := k.c.AddVpcEndpoint(vpc, "ssm"), k.c.AddVpcEndpoint(vpc, "ssmmessages")
			k.c.AddVpcEndpoint(vpc, "s3", EndpointSpec{Gateway: true})
			p := httpsTo(hosts(append(endpointIPs(k.t, k.c, ssmEP), endpointIPs(k.t, k.c, msgEP)...))...)
			p.PrefixListIds = []types.PrefixListId{{PrefixListId: aws.String("pl-63a5400a")}}
			g := k.c.AddSecurityGroup(vpc, "forensic", nil, nil)
			_, err := k.c.EC2().AuthorizeSecurityGroupEgress(k.ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: &g, IpPermissions: []types.IpPermission{p}})
			k.must(err)
			k.isolate(g)
		}, upload: "succeeded"},
		{name: "transient S3 errors are retried", after: func(k *collection) { k.f.Fail("PutObject", "InternalError", 2) },
			upload: "succeeded", check: func(t *testing.T, k *collection, rep ssmdocuments.MemoryReport) {
				if rep.ResultUpload.Attempts != 3 {
					t.Errorf("report uploaded in %d attempts, want 3", rep.ResultUpload.Attempts)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newCollection(t, LinuxAgent())
			if tt.prepare != nil {
				tt.prepare(k)
			}
			u := k.prepareMemory(false, 4, nil)
			if tt.after != nil {
				tt.after(k)
			}
			out := k.run(ssmdocuments.LinuxMemoryCapture, u.params)
			var rep ssmdocuments.MemoryReport
			if err := json.Unmarshal([]byte(aws.ToString(out.StandardOutputContent)), &rep); err != nil {
				t.Fatalf("%v: %q\n%s", err, aws.ToString(out.StandardOutputContent), aws.ToString(out.StandardErrorContent))
			}
			if rep.Error != tt.errMsg || rep.ResultUpload == nil || rep.ResultUpload.Status != tt.upload {
				t.Fatalf("stdout = %s", aws.ToString(out.StandardOutputContent))
			}
			if wantOK := tt.errMsg == ""; (out.Status == ssmtypes.CommandInvocationStatusSuccess) != wantOK {
				t.Errorf("invocation %s", out.Status)
			}
			if tt.check != nil {
				tt.check(t, k, rep)
			}
		})
	}
}

// untar reads the files of a tar.gz archive.
func untar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(decompress(t, "gzip", b)))
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		files[h.Name] = body
	}
}

func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		r, _ := f.Open()
		files[f.Name], _ = io.ReadAll(r)
		r.Close()
	}
	return files
}

func TestAgentVolatileData(t *testing.T) {
	for _, tt := range []struct {
		name    string
		windows bool
		fault   string
	}{{name: "linux"}, {name: "windows stand-in", windows: true}, {name: "windows stand-in lie-hash", windows: true, fault: FaultLieHash}} {
		t.Run(tt.name, func(t *testing.T) {
			agent := agentFor(tt.windows)
			agent.Fault = tt.fault
			k := newCollection(t, agent)
			doc, archiveKey, reportKey := ssmdocuments.LinuxVolatileData, "case-42/volatile.tar.gz", "case-42/volatile-report.json"
			if tt.windows {
				doc, archiveKey = ssmdocuments.WindowsVolatileData, "case-42/volatile.zip"
			}
			out := k.run(doc, map[string]string{"CaseId": "case-42", "RecentDays": "1",
				"ArchiveUrl": k.presignPut("evidence", archiveKey), "ResultUrl": k.presignPut("evidence", reportKey)})
			if out.Status != ssmtypes.CommandInvocationStatusSuccess {
				t.Fatalf("invocation %s: %s\n%s", out.Status, aws.ToString(out.StandardOutputContent), aws.ToString(out.StandardErrorContent))
			}
			archive, stored := k.object("evidence", archiveKey), k.object("evidence", reportKey)
			if archive == nil || stored == nil {
				t.Fatal("archive or report not uploaded")
			}
			rep, err := ssmdocuments.ParseVolatileReport(stored.Body)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Status != "succeeded" || rep.CaseID != "case-42" || rep.Archive == nil || len(rep.Sections) == 0 {
				t.Fatalf("report = %s", stored.Body)
			}
			etag, _ := ssmdocuments.SinglePutETag(rep.Archive.ContentMD5)
			if etag != archive.ETag || rep.Archive.ETag != archive.ETag || rep.Archive.Bytes != int64(len(archive.Body)) {
				t.Errorf("archive %+v, object ETag %s", rep.Archive, archive.ETag)
			}
			if (sha256hex(archive.Body) == rep.Archive.SHA256) != (tt.fault == "") {
				t.Errorf("archive digest %s, object %s (fault %q)", rep.Archive.SHA256, sha256hex(archive.Body), tt.fault)
			}
			files := untar
			if tt.windows {
				files = unzip
			}
			inArchive := files(t, archive.Body)
			if !bytes.Contains(inArchive["collection/index.json"], []byte(`"case_id":"case-42"`)) {
				t.Errorf("index.json = %s", inArchive["collection/index.json"])
			}
			for _, s := range rep.Sections {
				if body, ok := inArchive[s.File]; !ok || sha256hex(body) != s.SHA256 || int64(len(body)) != s.Bytes {
					t.Errorf("section %+v does not match the archive", s)
				}
			}
		})
	}
}

func TestAgentSkipsOtherPlatforms(t *testing.T) {
	k := newCollection(t, WindowsAgent())
	out := k.run(ssmdocuments.LinuxVolatileData, map[string]string{"CaseId": "case-42",
		"ArchiveUrl": k.presignPut("evidence", "a.tar.gz"), "ResultUrl": k.presignPut("evidence", "r.json")})
	want := `Step execution skipped due to unsatisfied preconditions: '"StringEquals": [platformType, Linux]'. Step name: collectVolatileData`
	if out.Status != ssmtypes.CommandInvocationStatusSuccess || aws.ToString(out.StandardOutputContent) != want {
		t.Errorf("invocation %s: %q", out.Status, aws.ToString(out.StandardOutputContent))
	}
	if len(k.f.Objects("evidence")) != 0 {
		t.Error("a skipped step uploaded something")
	}
}

// TestAgentRunsShellSteps: any Linux shell document runs, step by step,
// with its parameters; a failing step ends the command with its exit code;
// SSM cuts the output it shows at 24,000 characters.
func TestAgentRunsShellSteps(t *testing.T) {
	tests := []struct {
		name   string
		bucket string // of the first step's upload; staging when empty
		params map[string]string
		word   string // the word uploaded and printed ("" when nothing is)
		status ssmtypes.CommandInvocationStatus
		code   int32
		stdout string // what GetCommandInvocation shows
		full   int    // the characters of output Commands() keeps
	}{
		{name: "both steps", params: map[string]string{"Word": "bonjour"}, word: "bonjour", status: "Success", stdout: "bonjour", full: 7},
		{name: "the last step fails", params: map[string]string{"Exit": "3"}, word: "hello", status: "Failed", code: 3, stdout: "hello", full: 5},
		{name: "long output", params: map[string]string{"Word": "abcde", "Repeat": "5000"}, word: "abcde", status: "Success",
			stdout: strings.Repeat("abcde", 4800), full: 25000},
		// S3 refuses a PUT without Content-MD5 into an Object Lock bucket:
		// curl -f exits 22.
		{name: "the first step fails", bucket: "evidence", status: "Failed", code: 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newCollection(t, LinuxAgent())
			bucket := cmp.Or(tt.bucket, "staging")
			out := k.poll(k.sendTest(bucket, "case-42/put.txt", tt.params))
			if out.Status != tt.status || out.ResponseCode != tt.code || aws.ToString(out.StandardOutputContent) != tt.stdout {
				t.Fatalf("invocation %s (%d): %.100q\n%s", out.Status, out.ResponseCode, aws.ToString(out.StandardOutputContent), aws.ToString(out.StandardErrorContent))
			}
			if obj := k.object(bucket, "case-42/put.txt"); (obj == nil) != (tt.word == "") || obj != nil && string(obj.Body) != "put "+tt.word {
				t.Errorf("the first step's upload: %+v", obj)
			}
			if got := len(k.c.Commands()[0].Stdout); got != tt.full {
				t.Errorf("Commands() keeps %d characters of output, want %d", got, tt.full)
			}
		})
	}
}

func TestAgentOutputLimits(t *testing.T) {
	if got := truncate(strings.Repeat("é", 25000), maxStdout); len([]rune(got)) != 24000 {
		t.Errorf("truncated to %d characters", len([]rune(got)))
	}
}

func TestSSMStateDigest(t *testing.T) {
	k := newCollection(t, LinuxAgent())
	before := k.c.StateDigest()
	if describeNode(t, k.c, k.s.InstanceID) == nil {
		t.Fatal("not managed")
	}
	if _, err := k.c.SSM().DescribeDocument(k.ctx, &ssm.DescribeDocumentInput{Name: aws.String(ssmdocuments.LinuxMemoryCapture)}); err != nil {
		t.Fatal(err)
	}
	if k.c.StateDigest() != before {
		t.Fatal("reads changed the digest")
	}
	out, err := k.c.SSM().SendCommand(k.ctx, &ssm.SendCommandInput{DocumentName: aws.String(testDocumentName), InstanceIds: []string{k.s.InstanceID},
		Parameters: map[string][]string{"Url": {k.presignPut("staging", "a")}}})
	k.must(err)
	sent := k.c.StateDigest()
	if sent == before {
		t.Fatal("SendCommand did not change the digest")
	}
	k.poll(aws.ToString(out.Command.CommandId))
	if k.c.StateDigest() != sent {
		t.Error("polling a command changed the digest")
	}
}
