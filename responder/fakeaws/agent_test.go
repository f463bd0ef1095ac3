package fakeaws

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"slices"
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

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
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
		tool      string
		source    string
		gzip      bool
	}{
		{name: "linux avml, path-style URLs", pathStyle: true, tool: "avml", source: "/proc/kcore", gzip: true},
		{name: "linux avml, virtual-hosted URLs", tool: "avml", source: "/proc/kcore", gzip: true},
		{name: "linux, LiME when AVML is not staged", pathStyle: true, tool: "lime", source: "lime (System RAM from iomem_resource)", gzip: true,
			extra: map[string]string{"AvmlUrl": "", "AvmlSha256": "", "LimeUrl": "lime", "LimeSha256": "lime"}},
		{name: "linux, no compression", pathStyle: true, tool: "avml", source: "/proc/kcore", extra: map[string]string{"Compression": "none"}},
		{name: "windows winpmem", windows: true, pathStyle: true, tool: "winpmem", source: "winpmem driver", gzip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newCollection(t, agentFor(tt.windows))
			k.presign = newPresigner("us-east-1", tt.pathStyle)
			if tt.extra["LimeUrl"] == "lime" {
				lime := []byte("lime.ko for 6.1")
				tt.extra["LimeUrl"], tt.extra["LimeSha256"] = k.stage("tools/lime.ko", lime), sha256hex(lime)
			}
			u := k.prepareMemory(tt.windows, 4, tt.extra)
			if !tt.pathStyle && !strings.HasPrefix(u.params["ResultUrl"], "https://evidence.s3.us-east-1.amazonaws.com/") {
				t.Fatalf("not a virtual-hosted URL: %s", u.params["ResultUrl"])
			}
			out := k.run(memoryDoc(tt.windows), u.params)
			if out.Status != ssmtypes.CommandInvocationStatusSuccess || out.ResponseCode != 0 {
				t.Fatalf("invocation %s (%d): %s", out.Status, out.ResponseCode, aws.ToString(out.StandardOutputContent))
			}
			stdout := parseMemory(t, []byte(aws.ToString(out.StandardOutputContent)))
			if stdout.Status != ssmdocuments.StatusSucceeded || stdout.CaseID != "case-42" || stdout.ResultUpload == nil ||
				stdout.ResultUpload.Status != "succeeded" || stdout.Tool.Name != tt.tool || stdout.Tool.MemorySource != tt.source {
				t.Fatalf("stdout report = %s", aws.ToString(out.StandardOutputContent))
			}
			obj := k.object("evidence", u.reportKey)
			if obj == nil {
				t.Fatal("no report object")
			}
			if stdout.ResultUpload.ETag != obj.ETag || obj.RetentionMode != s3types.ObjectLockModeCompliance {
				t.Errorf("report object ETag %s (stdout says %s), retention %s", obj.ETag, stdout.ResultUpload.ETag, obj.RetentionMode)
			}
			rep := parseMemory(t, obj.Body)
			if rep.ResultUpload != nil || rep.Upload == nil || rep.UploadSummary == nil || rep.UploadSummary.Parts != nil {
				t.Errorf("report object = %s", obj.Body)
			}
			wantFormat := "lime"
			if tt.windows {
				wantFormat = "raw"
			}
			if rep.ImageFormat != wantFormat || len(rep.Attempts) != 1 || rep.Attempts[0].Status != "succeeded" ||
				rep.Instance.MemTotalBytes != defaultMemorySize || rep.StartedAt == "" || rep.FinishedAt == "" {
				t.Errorf("report = %+v", rep)
			}
			if tt.tool == "lime" != (rep.Lime != nil) {
				t.Errorf("lime log = %+v", rep.Lime)
			}

			parts, err := rep.Upload.CompletedParts()
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != 3 || rep.Upload.PartSize != 5<<20 {
				t.Fatalf("parts = %+v (part size %d)", parts, rep.Upload.PartSize)
			}
			listed := k.listParts(u)
			if len(listed) != len(parts) {
				t.Fatalf("ListParts has %d parts, the report %d", len(listed), len(parts))
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
			wantETag, _ := ssmdocuments.MultipartETag(parts)
			if image.ETag != wantETag {
				t.Errorf("image ETag %s, MultipartETag of the report %s", image.ETag, wantETag)
			}
			if sha256hex(image.Body) != rep.Upload.CompressedSHA256 || int64(len(image.Body)) != rep.Upload.CompressedBytes {
				t.Error("the image is not what the report hashed")
			}
			raw := image.Body
			if tt.gzip {
				raw = gunzip(t, image.Body)
			}
			wantRaw := limeImage(DefaultMemory())
			if tt.windows {
				wantRaw = DefaultMemory()
			}
			if !bytes.Equal(raw, wantRaw) || sha256hex(raw) != rep.Upload.RawSHA256 || int64(len(raw)) != rep.Upload.RawBytes {
				t.Error("the decompressed image is not the instance's memory")
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
		fault     string
		windows   bool
		status    ssmtypes.CommandInvocationStatus
		report    string // status in stdout ("" when there is no stdout)
		failure   string
		failed    int  // failed_part
		uploaded  int  // parts in ListParts
		reported  int  // parts in the report
		reportObj bool // the report object exists
	}{
		{fault: "", status: "Success", report: "succeeded", uploaded: 3, reported: 3, reportObj: true},
		{fault: FaultSource, status: "Failed", report: "failed", failure: "source", reportObj: true},
		{fault: FaultSource, windows: true, status: "Failed", report: "failed", reportObj: true},
		{fault: FaultUploadPart2, status: "Failed", report: "failed", failure: "upload", failed: 2, uploaded: 1, reported: 2, reportObj: true},
		{fault: FaultUploadPart2, windows: true, status: "Failed", report: "failed", failure: "upload", failed: 2, uploaded: 1, reported: 2, reportObj: true},
		{fault: FaultLieHash, status: "Success", report: "succeeded", uploaded: 3, reported: 3, reportObj: true},
		{fault: FaultShort, status: "Success", report: "succeeded", uploaded: 2, reported: 3, reportObj: true},
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
			if out.Status != tt.status {
				t.Fatalf("invocation %s, want %s: %s", out.Status, tt.status, aws.ToString(out.StandardOutputContent))
			}
			if wantCode := int32(0); tt.status == "Failed" && out.ResponseCode != 1 || tt.status == "Success" && out.ResponseCode != wantCode {
				t.Errorf("response code %d", out.ResponseCode)
			}
			if got := len(k.listParts(u)); got != tt.uploaded {
				t.Errorf("%d parts uploaded, want %d", got, tt.uploaded)
			}
			if got := k.object("evidence", u.reportKey) != nil; got != tt.reportObj {
				t.Errorf("report object exists: %v, want %v", got, tt.reportObj)
			}
			if tt.report == "" {
				if aws.ToString(out.StandardOutputContent) != "" {
					t.Errorf("stdout = %q, want none", aws.ToString(out.StandardOutputContent))
				}
				return
			}
			rep := parseMemory(t, []byte(aws.ToString(out.StandardOutputContent)))
			if rep.Status != tt.report || rep.ResultUpload == nil || rep.ResultUpload.Status != "succeeded" {
				t.Fatalf("report = %s", aws.ToString(out.StandardOutputContent))
			}
			if tt.failure != "" && (rep.Upload == nil || rep.Upload.Failure != tt.failure || rep.Upload.FailedPart != tt.failed) {
				t.Errorf("upload = %+v, want failure %s part %d", rep.Upload, tt.failure, tt.failed)
			}
			if tt.fault == FaultSource && (len(rep.Attempts) == 0 || rep.Attempts[0].Status != "failed" || rep.Upload != nil && len(rep.Upload.Parts) != 0) {
				t.Errorf("source failure reported as %s", aws.ToString(out.StandardOutputContent))
			}
			if rep.Upload != nil && len(rep.Upload.Parts) != tt.reported {
				t.Errorf("report lists %d parts, want %d", len(rep.Upload.Parts), tt.reported)
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
				if sha256hex(image.Body) == rep.Upload.CompressedSHA256 {
					t.Error("the lie went unnoticed: the reported digest is the image's")
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

func TestAgentToolsAndParameters(t *testing.T) {
	other := []byte("not the pinned avml")
	tests := []struct {
		name     string
		extra    func(k *collection) map[string]string
		parts    int
		status   string
		errMsg   string
		warning  string
		failure  string
		attempts int
	}{
		{name: "avml digest mismatch", extra: func(k *collection) map[string]string {
			return map[string]string{"AvmlUrl": k.stage("tools/other", other)}
		}, parts: 4, status: "failed", errMsg: "no capture tool could run", warning: "avml not run: SHA-256 mismatch: got " + sha256hex(other)},
		{name: "nothing staged", extra: func(*collection) map[string]string {
			return map[string]string{"AvmlUrl": "", "AvmlSha256": ""}
		}, parts: 4, status: "failed", errMsg: "no capture tool could run", warning: "LiME not staged (LimeUrl is none)"},
		{name: "avml only, not staged", extra: func(*collection) map[string]string {
			return map[string]string{"AvmlUrl": "", "AvmlSha256": "", "Tool": "avml"}
		}, parts: 4, status: "failed", errMsg: "no capture tool could run", warning: "AVML not staged (AvmlUrl is none)"},
		{name: "zstd is not installed", extra: func(*collection) map[string]string {
			return map[string]string{"Compression": "zstd"}
		}, parts: 4, status: "failed", errMsg: "capture failed; see attempts", failure: "compress", attempts: 2},
		{name: "too few part URLs", parts: 2, status: "failed", errMsg: "capture failed; see attempts", failure: "exhausted", attempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newCollection(t, LinuxAgent())
			var extra map[string]string
			if tt.extra != nil {
				extra = tt.extra(k)
			}
			u := k.prepareMemory(false, tt.parts, extra)
			out := k.run(ssmdocuments.LinuxMemoryCapture, u.params)
			rep := parseMemory(t, []byte(aws.ToString(out.StandardOutputContent)))
			if rep.Status != tt.status || rep.Error != tt.errMsg || len(rep.Attempts) != tt.attempts {
				t.Fatalf("report = %s", aws.ToString(out.StandardOutputContent))
			}
			if out.Status != ssmtypes.CommandInvocationStatusFailed {
				t.Errorf("invocation %s", out.Status)
			}
			if tt.warning != "" && !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.HasPrefix(w, tt.warning) }) {
				t.Errorf("warnings %q, want one starting %q", rep.Warnings, tt.warning)
			}
			if tt.failure != "" && (rep.Upload == nil || rep.Upload.Failure != tt.failure) {
				t.Errorf("upload = %+v", rep.Upload)
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
				t.Fatalf("%v: %q", err, aws.ToString(out.StandardOutputContent))
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
	tr := tar.NewReader(bytes.NewReader(gunzip(t, b)))
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
	}{{name: "linux"}, {name: "windows", windows: true}, {name: "linux lie-hash", fault: FaultLieHash}} {
		t.Run(tt.name, func(t *testing.T) {
			agent := agentFor(tt.windows)
			agent.Fault = tt.fault
			k := newCollection(t, agent)
			doc, archiveKey := ssmdocuments.LinuxVolatileData, "case-42/volatile.tar.gz"
			if tt.windows {
				doc, archiveKey = ssmdocuments.WindowsVolatileData, "case-42/volatile.zip"
			}
			out := k.run(doc, map[string]string{"CaseId": "case-42",
				"ArchiveUrl": k.presignPut("evidence", archiveKey), "ResultUrl": k.presignPut("evidence", "case-42/volatile-report.json")})
			if out.Status != ssmtypes.CommandInvocationStatusSuccess {
				t.Fatalf("invocation %s: %s", out.Status, aws.ToString(out.StandardOutputContent))
			}
			rep, err := ssmdocuments.ParseVolatileReport([]byte(aws.ToString(out.StandardOutputContent)))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Status != "succeeded" || rep.CaseID != "case-42" || rep.Archive == nil || len(rep.Sections) != 2 || rep.ResultUpload.Status != "succeeded" {
				t.Fatalf("report = %s", aws.ToString(out.StandardOutputContent))
			}
			archive := k.object("evidence", archiveKey)
			if archive == nil || k.object("evidence", "case-42/volatile-report.json") == nil {
				t.Fatal("archive or report not uploaded")
			}
			etag, _ := ssmdocuments.SinglePutETag(rep.Archive.ContentMD5)
			if etag != archive.ETag || rep.Archive.ETag != archive.ETag || rep.Archive.Bytes != int64(len(archive.Body)) {
				t.Errorf("archive %+v, object ETag %s", rep.Archive, archive.ETag)
			}
			if (sha256hex(archive.Body) == rep.Archive.SHA256) != (tt.fault == "") {
				t.Errorf("archive digest %s, object %s (fault %q)", rep.Archive.SHA256, sha256hex(archive.Body), tt.fault)
			}
			var files map[string][]byte
			if tt.windows {
				files = unzip(t, archive.Body)
				if rep.Archive.Format != "zip" || rep.Schema != ssmdocuments.SchemaWindowsVolatile {
					t.Errorf("format %s schema %s", rep.Archive.Format, rep.Schema)
				}
			} else {
				files = untar(t, archive.Body)
				if rep.Archive.Format != "tar+gzip" {
					t.Errorf("format %s", rep.Archive.Format)
				}
			}
			if !bytes.Contains(files["collection/index.json"], []byte(`"case_id":"case-42"`)) {
				t.Errorf("index.json = %s", files["collection/index.json"])
			}
			for _, s := range rep.Sections {
				if body, ok := files[s.File]; !ok || sha256hex(body) != s.SHA256 || int64(len(body)) != s.Bytes || s.Status != "ok" {
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

func TestAgentOutputLimits(t *testing.T) {
	if got := truncate(strings.Repeat("é", 25000), maxStdout); len([]rune(got)) != 24000 {
		t.Errorf("truncated to %d characters", len([]rune(got)))
	}
	j := &agentJob{fault: FaultNoReport}
	var short bool
	line := j.emit(bytes.Repeat([]byte("x"), 20001), "https://s3.fake.test/b/k", func(ru *ssmdocuments.ResultUpload, s bool) []byte {
		short = s
		return []byte("{}")
	}, false)
	if !short || line != "{}\n" {
		t.Errorf("a 20,001-character report was printed whole (short %v, line %q)", short, line)
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
	id, err := k.send(ssmdocuments.LinuxVolatileData, map[string]string{"CaseId": "c", "ArchiveUrl": k.presignPut("evidence", "a"), "ResultUrl": k.presignPut("evidence", "r")})
	k.must(err)
	sent := k.c.StateDigest()
	if sent == before {
		t.Fatal("SendCommand did not change the digest")
	}
	k.poll(id)
	if k.c.StateDigest() != sent {
		t.Error("polling a command changed the digest")
	}
}
