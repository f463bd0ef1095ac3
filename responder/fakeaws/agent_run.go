package fakeaws

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// What the fake SSM Agent does with a command: it runs the four documents of
// ssm-documents as their scripts do, in Go, against the fake S3s (see
// agent_http.go), and writes the same reports. Differences from the real
// scripts, besides what no fake can do (read memory, list processes):
//
//   - memory: the image is a LiME image of Agent.Memory (one range at
//     0x100000); AVML reads /proc/kcore; "auto" compression is gzip (the
//     fake instance has no zstd), and "zstd" fails with failure "compress";
//     parts go up one at a time, and a failed part stops the stream there;
//   - volatile data: two sections (system, processes) with deterministic
//     content naming the case, plus collection/index.json;
//   - stderr is empty; elapsed times are 0.
//
// The staged tools are fetched and checked like the scripts do: AvmlUrl /
// LimeUrl "none" means the tool is not staged, a download whose SHA-256 is
// not the pinned one is not run, and with no tool left the capture fails
// ("no capture tool could run"). WinpmemUrl is required on Windows.

// agentJob is the work of one command, captured under the lock so that it
// runs without it.
type agentJob struct {
	instanceID  string
	document    string
	step        string
	platform    string // the agent's platform type
	requires    string // the step's precondition platform, or ""
	params      map[string]string
	fault       string
	memory      []byte
	host        hostInfo
	s3s         []*S3
	s3Reachable bool
	now         func() time.Time
	keys        *sealingKeys
}

// agentResult is how the script ended.
type agentResult struct {
	exitCode       int
	stdout, stderr string
}

func (c *Cloud) newJobLocked(cmd *command, inst *instance, a *agentState, content docContent) *agentJob {
	j := &agentJob{
		instanceID:  inst.ID,
		document:    cmd.DocumentName,
		step:        content.MainSteps[0].Name,
		platform:    a.cfg.PlatformType,
		params:      c.commandParamsLocked(cmd),
		fault:       a.cfg.Fault,
		memory:      a.cfg.Memory,
		host:        c.hostLocked(inst, a.cfg),
		s3s:         append([]*S3{c.s3}, c.agentS3...),
		s3Reachable: c.canReachS3Locked(inst),
		now:         c.now,
		keys:        a.sealingKeysLocked(),
	}
	if j.memory == nil {
		j.memory = defaultMemory()
	}
	if pre := content.MainSteps[0].Precondition["StringEquals"]; len(pre) == 2 && pre[0] == "platformType" {
		j.requires = pre[1]
	}
	return j
}

// run does the document's work.
func (j *agentJob) run() agentResult {
	if isSealingKeyDocument(j.document) {
		// Faults are the collection's: the key is made whatever they are.
		return j.makeSealingKey(j.document == ssmdocuments.WindowsSealingKey)
	}
	if j.fault == FaultExit1 {
		return agentResult{exitCode: 1}
	}
	if j.requires != "" && j.requires != j.platform {
		// What the agent answers for a step whose precondition fails: the
		// step is skipped and the invocation succeeds.
		return agentResult{stdout: fmt.Sprintf("Step execution skipped due to unsatisfied preconditions: '\"StringEquals\": [platformType, %s]'. Step name: %s", j.requires, j.step)}
	}
	if res, ok := j.unseal(); !ok {
		return res
	}
	switch j.document {
	case ssmdocuments.LinuxMemoryCapture:
		return j.memoryCapture(false)
	case ssmdocuments.WindowsMemoryCapture:
		return j.memoryCapture(true)
	case ssmdocuments.LinuxVolatileData:
		return j.volatileData(false)
	case ssmdocuments.WindowsVolatileData:
		return j.volatileData(true)
	}
	return agentResult{exitCode: 1, stderr: "fakeaws: the fake SSM Agent runs only the Responder-* documents of ssm-documents, not " + j.document}
}

func (j *agentJob) stamp() string { return j.now().UTC().Format("2006-01-02T15:04:05Z") }

func (j *agentJob) instanceReport() ssmdocuments.Instance {
	return ssmdocuments.Instance{
		Hostname: j.host.Hostname, Kernel: j.host.Kernel, Arch: j.host.Arch, OS: j.host.OS,
		BootID: j.host.BootID, MemTotalBytes: int64(len(j.memory)),
	}
}

var urlPattern = regexp.MustCompile(ssmdocuments.PatternURL)

// emit uploads the report (full, the object's content) to ResultUrl and
// returns the stdout line: the report with result_upload, or the short
// form when the full one is over 20,000 characters (rc_emit_report, and
// Write-Report on Windows).
func (j *agentJob) emit(full []byte, resultURL string, withUpload func(ru *ssmdocuments.ResultUpload, short bool) []byte, windows bool) string {
	body := full
	if !windows {
		body = append(slices.Clone(full), '\n')
	}
	ru := &ssmdocuments.ResultUpload{Status: "skipped"}
	switch {
	case resultURL == "none" || (windows && !urlPattern.MatchString(resultURL)):
	case j.fault == FaultNoReport:
		sum := md5.Sum(body)
		ru = &ssmdocuments.ResultUpload{Status: "succeeded", ETag: `"` + hex.EncodeToString(sum[:]) + `"`, Attempts: 1}
	case !urlPattern.MatchString(resultURL):
		ru = &ssmdocuments.ResultUpload{Status: "failed", HTTPStatus: "000"}
	default:
		r := j.put(resultURL, body, "application/json")
		if r.ok() {
			ru = &ssmdocuments.ResultUpload{Status: "succeeded", ETag: r.etag, Attempts: r.attempts}
		} else {
			ru = &ssmdocuments.ResultUpload{Status: "failed", HTTPStatus: httpCode(r.status, windows), Attempts: r.attempts}
		}
		if windows {
			ru.HTTPStatus = strconv.Itoa(r.status)
		}
	}
	return string(withUpload(ru, len(full) > 20000)) + "\n"
}

// httpCode formats a status as curl's %{http_code} does (000 for none).
func httpCode(status int, windows bool) string {
	if windows {
		return strconv.Itoa(status)
	}
	return fmt.Sprintf("%03d", status)
}

// marshal encodes a report as the scripts print it: compact, no HTML
// escaping, and upload_summary without "parts" (the scripts cut the list
// off; the only nil Parts of a report is the summary's).
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("fakeaws: encoding a report: %v", err))
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return bytes.ReplaceAll(b, []byte(`,"parts":null`), nil)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// liar returns a digest that is not the real one, for FaultLieHash.
func liar(real string) string { return sha256Hex([]byte("not " + real)) }

// earlyReport is the report of a capture that failed before it started
// (mc_fail_early): schema, status and error only.
type earlyReport struct {
	Schema       string                     `json:"schema"`
	Status       string                     `json:"status"`
	Error        string                     `json:"error"`
	ResultUpload *ssmdocuments.ResultUpload `json:"result_upload,omitempty"`
}

// fetchTool downloads a staged tool and checks its pinned digest
// (rc_fetch_tool); it returns the error the script records, or "".
func (j *agentJob) fetchTool(url, want string) string {
	if !urlPattern.MatchString(url) {
		return "download URL is not a valid https URL"
	}
	if !regexp.MustCompile(ssmdocuments.PatternSHA256).MatchString(want) {
		return "no valid pinned SHA-256"
	}
	r := j.get(url)
	if !r.ok() {
		return fmt.Sprintf("download failed (HTTP %03d)", r.status)
	}
	if got := sha256Hex(r.body); got != want {
		return fmt.Sprintf("SHA-256 mismatch: got %s, pinned %s", got, want)
	}
	return ""
}

// limeImage wraps memory in one LiME range header (magic EMiL, version 1,
// start and inclusive end address), as AVML writes it.
func limeImage(memory []byte) []byte {
	const start = 0x100000
	hdr := make([]byte, 32)
	binary.LittleEndian.PutUint32(hdr[0:], 0x4C694D45)
	binary.LittleEndian.PutUint32(hdr[4:], 1)
	binary.LittleEndian.PutUint64(hdr[8:], start)
	binary.LittleEndian.PutUint64(hdr[16:], start+uint64(len(memory))-1)
	return append(hdr, memory...)
}

// ramRange is the System RAM range of the fake instance.
func (j *agentJob) ramRange() ssmdocuments.Range {
	const start = 0x100000
	n := int64(len(j.memory))
	return ssmdocuments.Range{Start: fmt.Sprintf("0x%x", start), End: fmt.Sprintf("0x%x", start+n-1), Bytes: n}
}

// streamUpload cuts the (compressed) image into parts and uploads them
// (su_stream_upload, or ResponderUploader on Windows). sourceOK false is a
// source that fails at once.
func (j *agentJob) streamUpload(urls []string, partSize int64, compression string, sourceOK, windows bool) ssmdocuments.StreamUpload {
	zero := 0.0
	s := ssmdocuments.StreamUpload{Status: ssmdocuments.StatusFailed, Compression: "none", PartSize: partSize,
		ElapsedSeconds: &zero, Parts: []ssmdocuments.Part{}}
	if !windows {
		s.ElapsedSeconds = nil // set below once the stream ran
	}
	switch compression {
	case "auto", "gzip":
		s.Compression, s.Compressor = "gzip", "gzip -1 -c"
		if windows {
			s.Compressor = "GZipStream Fastest"
		}
	case "none":
		s.Compression, s.Compressor = "none", "cat"
		if windows {
			s.Compressor = "none"
		}
	default:
		s.Error, s.Failure = "compression "+compression+" is not available", "compress"
		return s
	}
	if !windows {
		for i, u := range urls {
			if !urlPattern.MatchString(u) {
				s.Compression, s.Compressor = "none", ""
				s.Error, s.Failure = fmt.Sprintf("part URL %d is not a valid https URL", i+1), "urls"
				return s
			}
		}
		if len(urls) == 0 {
			s.Error, s.Failure = "no part URLs", "urls"
			return s
		}
		s.HashingTee = "python"
		s.ElapsedSeconds = &zero
	}
	if !sourceOK {
		s.RawSHA256, s.CompressedSHA256 = sha256Hex(nil), sha256Hex(nil)
		if !windows {
			s.PipelineExitStatus = "1 0 0 0"
		}
		s.Error, s.Failure = "the source exited with status 1", "source"
		if windows {
			s.Error = "WinPmem exited with status 1"
		}
		return s
	}
	raw := limeImage(j.memory)
	if windows {
		raw = slices.Clone(j.memory) // WinPmem writes a raw image
	}
	stream := raw
	if s.Compression == "gzip" {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(raw)
		zw.Close()
		stream = buf.Bytes()
	}
	s.RawSHA256, s.RawBytes = sha256Hex(raw), int64(len(raw))
	s.CompressedSHA256 = sha256Hex(stream)
	if !windows {
		s.PipelineExitStatus = "0 0 0 0"
	}
	if j.fault == FaultLieHash {
		s.CompressedSHA256 = liar(s.CompressedSHA256)
	}
	var chunks [][]byte
	for off := 0; off < len(stream); off += int(partSize) {
		chunks = append(chunks, stream[off:min(off+int(partSize), len(stream))])
	}
	for i, chunk := range chunks {
		n := i + 1
		if n > len(urls) {
			s.Error, s.Failure, s.FailedPart = fmt.Sprintf("the stream needs more than the %d part URLs provided", len(urls)), "exhausted", n
			break
		}
		s.CompressedBytes += int64(len(chunk))
		sum := md5.Sum(chunk)
		p := ssmdocuments.Part{PartNumber: n, Size: int64(len(chunk)), ContentMD5: base64.StdEncoding.EncodeToString(sum[:])}
		var r putResult
		switch {
		case j.fault == FaultUploadPart2 && n == 2:
			r = putResult{httpResult: httpResult{status: 500}, attempts: putAttempts}
		case j.fault == FaultShort && n == len(chunks):
			// Never sent, but reported as if it had been.
			r = putResult{httpResult: httpResult{status: 200, etag: `"` + hex.EncodeToString(sum[:]) + `"`}, attempts: 1}
		default:
			r = j.put(urls[i], chunk, "application/octet-stream")
		}
		p.Attempts, p.HTTPStatus, p.CurlExit, p.ETag = r.attempts, r.status, r.curlExit, r.etag
		p.Status = "ok"
		if !r.ok() || r.etag == "" {
			p.Status = "failed"
		}
		s.Parts = append(s.Parts, p)
		if p.Status != "ok" {
			s.Error, s.Failure, s.FailedPart = fmt.Sprintf("part %d could not be uploaded", n), "upload", n
			break
		}
	}
	s.PartCount = len(s.Parts)
	if s.Error == "" {
		s.Status = ssmdocuments.StatusSucceeded
	}
	return s
}

// attemptOf records one capture attempt from its stream.
func attemptOf(tool, source string, s ssmdocuments.StreamUpload, stderr string) ssmdocuments.CaptureAttempt {
	exit := 0
	if s.Failure == "source" {
		exit = 1
	}
	failure := s.Failure
	if s.Status == ssmdocuments.StatusSucceeded {
		failure = "none"
	}
	return ssmdocuments.CaptureAttempt{Tool: tool, Source: source, Status: s.Status, Failure: failure,
		RawBytes: s.RawBytes, SourceExitStatus: &exit, StderrTail: stderr}
}

// memoryCapture runs Responder-LinuxMemoryCapture (linux-memory-capture.sh)
// or Responder-WindowsMemoryCapture (windows-memory-capture.ps1).
func (j *agentJob) memoryCapture(windows bool) agentResult {
	p := j.params
	schema := ssmdocuments.SchemaLinuxMemory
	if windows {
		schema = ssmdocuments.SchemaWindowsMemory
	}
	resultURL := p["ResultUrl"]
	rep := ssmdocuments.MemoryReport{
		Schema: schema, CaseID: p["CaseId"], Status: ssmdocuments.StatusFailed, StartedAt: j.stamp(),
		Instance: j.instanceReport(), ImageFormat: "lime", Attempts: []ssmdocuments.CaptureAttempt{}, Warnings: []string{},
	}
	partMiB, _ := strconv.Atoi(p["PartSizeMiB"])
	partSize := int64(partMiB) << 20
	failEarly := func(msg string) agentResult {
		full := earlyReport{Schema: schema, Status: ssmdocuments.StatusFailed, Error: msg}
		line := j.emit(marshal(full), resultURL, func(ru *ssmdocuments.ResultUpload, _ bool) []byte {
			full.ResultUpload = ru
			return marshal(full)
		}, windows)
		return agentResult{exitCode: 1, stdout: line}
	}

	var (
		stream    *ssmdocuments.StreamUpload
		toolName  string
		source    string
		limeTried bool
		exit      = 1
	)
	if windows {
		rep.ImageFormat = "raw"
		if partMiB > 2047 {
			return j.finishMemory(&rep, nil, "part size must be at most 2047 MiB on Windows", true, 1)
		}
		rep.Warnings = append(rep.Warnings, `the raw image is written to C:\ResponderCapture-`+strings.ReplaceAll(stableUUID("work", j.instanceID), "-", "")+" on local disk and deleted after upload")
		if r := j.get(p["WinpmemUrl"]); !r.ok() {
			return j.finishMemory(&rep, nil, dotNetError(r), true, 1)
		} else if got := sha256Hex(r.body); got != p["WinpmemSha256"] {
			return j.finishMemory(&rep, nil, fmt.Sprintf("WinPmem SHA-256 mismatch: got %s, pinned %s", got, p["WinpmemSha256"]), true, 1)
		}
		list := j.get(p["PartUrlsUrl"])
		if !list.ok() {
			return j.finishMemory(&rep, nil, dotNetError(list), true, 1)
		}
		urls := partURLs(list.body)
		for _, u := range urls {
			if !urlPattern.MatchString(u) {
				return j.finishMemory(&rep, nil, "a part URL is not a valid https URL", true, 1)
			}
		}
		if len(urls) == 0 {
			return j.finishMemory(&rep, nil, "no part URLs", true, 1)
		}
		rep.Tool = ssmdocuments.MemoryTool{Name: "winpmem", MemorySource: "winpmem driver", SHA256: p["WinpmemSha256"]}
		captured := []ssmdocuments.Range{}
		if j.fault != FaultSource {
			captured = append(captured, j.ramRange())
		}
		rep.Ranges = &ssmdocuments.Ranges{SystemRAM: []ssmdocuments.Range{}, Captured: captured, Skipped: []ssmdocuments.Range{}}
		s := j.streamUpload(urls, partSize, p["Compression"], j.fault != FaultSource, true)
		stream = &s
		stderr := "WinPmem 4.0.rc1 acquired " + strconv.Itoa(len(j.memory)) + " bytes"
		if j.fault == FaultSource {
			stderr = "Failed to load driver: Access is denied."
		}
		rep.Attempts = append(rep.Attempts, attemptOf("winpmem", "winpmem driver", s, stderr))
		if s.Failure == "source" {
			rep.Attempts[0].RawBytes = 0
			return j.finishMemory(&rep, nil, s.Error, true, 1)
		}
		if s.Status == ssmdocuments.StatusSucceeded {
			exit = 0
		}
		return j.finishMemory(&rep, stream, s.Error, true, exit)
	}

	list := j.get(p["PartUrlsUrl"])
	if !list.ok() {
		return failEarly(fmt.Sprintf("could not download the part URL list (HTTP %03d)", list.status))
	}
	urls := partURLs(list.body)
	tool := p["Tool"]
	r := 1
	// attempt runs one tool on one memory source (mc_attempt).
	attempt := func(name, src string) int {
		ok := j.fault != FaultSource
		s := j.streamUpload(urls, partSize, p["Compression"], ok, false)
		stderr := ""
		if !ok {
			stderr = "Error: unable to read physical memory from " + src
		}
		stream = &s
		rep.Attempts = append(rep.Attempts, attemptOf(name, src, s, stderr))
		switch {
		case s.Status == ssmdocuments.StatusSucceeded:
			return 0
		case s.Failure == "upload" || s.Failure == "exhausted" || s.Failure == "urls":
			return 2 // another source will not upload better
		}
		return 1
	}
	if tool != "lime" {
		switch {
		case p["AvmlUrl"] == "none":
			rep.Warnings = append(rep.Warnings, "AVML not staged (AvmlUrl is none)")
		default:
			if msg := j.fetchTool(p["AvmlUrl"], p["AvmlSha256"]); msg != "" {
				rep.Warnings = append(rep.Warnings, "avml not run: "+msg)
				break
			}
			rep.Tool.AVMLVersion = "avml 0.14.0"
			// AVML's order; /dev/crash does not exist on the fake instance.
			for _, src := range []string{"/proc/kcore", "/dev/mem"} {
				if r = attempt("avml", src); r != 1 {
					break
				}
			}
			if r == 0 {
				toolName, source = "avml", "/proc/kcore"
			}
		}
	}
	if r == 1 && tool != "avml" {
		switch {
		case p["LimeUrl"] == "none":
			rep.Warnings = append(rep.Warnings, "LiME not staged (LimeUrl is none)")
		default:
			if msg := j.fetchTool(p["LimeUrl"], p["LimeSha256"]); msg != "" {
				rep.Warnings = append(rep.Warnings, "LiME not loaded: "+msg)
				break
			}
			limeTried = true
			if r = attempt("lime", "tcp:127.0.0.1:51234"); r == 0 {
				toolName, source = "lime", "lime (System RAM from iomem_resource)"
			}
		}
	}
	errMsg := ""
	switch {
	case r == 0:
		exit = 0
	case len(rep.Attempts) == 0:
		errMsg = "no capture tool could run"
	default:
		errMsg = "capture failed; see attempts"
	}
	rep.Tool.Name, rep.Tool.MemorySource = toolName, source
	rep.Tool.LimeTimeoutMS, _ = strconv.Atoi(p["LimeTimeoutMs"])
	switch toolName {
	case "avml":
		rep.Tool.SHA256 = p["AvmlSha256"]
	case "lime":
		rep.Tool.SHA256 = p["LimeSha256"]
	}
	if stream != nil {
		ram := []ssmdocuments.Range{j.ramRange()}
		rg := &ssmdocuments.Ranges{IomemReadable: true, SystemRAM: ram, Captured: []ssmdocuments.Range{}, Skipped: []ssmdocuments.Range{}}
		if stream.RawBytes > 0 {
			rg.Captured = ram
		} else {
			rg.Skipped = ram
		}
		rep.Ranges = rg
	}
	if limeTried {
		rep.Lime = &ssmdocuments.LimeLog{ZeroFilled: []string{}, LogTail: []string{}}
		if rep.Tool.LimeTimeoutMS != 0 {
			rep.Warnings = append(rep.Warnings, "LiME logged nothing (not a debug build) and its slow-read timeout is on: zero-filled ranges cannot be detected")
		}
	}
	return j.finishMemory(&rep, stream, errMsg, false, exit)
}

// finishMemory completes a memory report and emits it.
func (j *agentJob) finishMemory(rep *ssmdocuments.MemoryReport, stream *ssmdocuments.StreamUpload, errMsg string, windows bool, code int) agentResult {
	if code == 0 {
		rep.Status = ssmdocuments.StatusSucceeded
	} else {
		rep.Error = errMsg
	}
	rep.FinishedAt = j.stamp()
	if stream != nil {
		full := *stream
		summary := full
		summary.Parts = nil
		rep.Upload, rep.UploadSummary = &full, &summary
	}
	line := j.emit(marshal(rep), j.params["ResultUrl"], func(ru *ssmdocuments.ResultUpload, short bool) []byte {
		out := *rep
		out.ResultUpload = ru
		if short {
			out.Upload, out.StdoutTruncated = nil, true
		}
		return marshal(out)
	}, windows)
	return agentResult{exitCode: code, stdout: line}
}

// dotNetError is the message WebClient.DownloadFile throws for a failed
// download.
func dotNetError(r httpResult) string {
	if r.status == 0 {
		return `Exception calling "DownloadFile" with "2" argument(s): "Unable to connect to the remote server"`
	}
	return fmt.Sprintf(`Exception calling "DownloadFile" with "2" argument(s): "The remote server returned an error: (%d) %s."`, r.status, httpStatusText(r.status))
}

func httpStatusText(status int) string {
	switch status {
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 400:
		return "Bad Request"
	}
	return "Internal Server Error"
}

// partURLs splits the part URL list: one URL a line, blank lines skipped.
func partURLs(b []byte) []string {
	var urls []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSuffix(line, "\r"); line != "" {
			urls = append(urls, line)
		}
	}
	return urls
}

// volatileSection is one file of the archive.
type volatileSection struct {
	name, file, source string
	content            []byte
}

func (j *agentJob) volatileSections(windows bool) []volatileSection {
	caseID := j.params["CaseId"]
	system := marshal(map[string]any{
		"case_id": caseID, "instance_id": j.instanceID, "hostname": j.host.Hostname,
		"kernel": j.host.Kernel, "arch": j.host.Arch, "os": j.host.OS, "boot_id": j.host.BootID,
		"collector": "fakeaws",
	})
	type proc struct {
		PID       int    `json:"pid"`
		PPID      int    `json:"ppid"`
		User      string `json:"user"`
		Cmdline   string `json:"cmdline"`
		Exe       string `json:"exe"`
		ExeSHA256 string `json:"exe_sha256"`
	}
	procs := []proc{
		{1, 0, "root", "/usr/lib/systemd/systemd --switched-root --system", "/usr/lib/systemd/systemd", sha256Hex([]byte("systemd"))},
		{4242, 1, "apache", "/tmp/.x/kworker -c " + caseID, "/tmp/.x/kworker (deleted)", sha256Hex([]byte("kworker " + caseID))},
	}
	if windows {
		procs = []proc{
			{4, 0, "SYSTEM", "System", "", ""},
			{4242, 700, `NT AUTHORITY\NETWORK SERVICE`, `C:\Users\Public\svchost.exe -k ` + caseID, `C:\Users\Public\svchost.exe`, sha256Hex([]byte("svchost " + caseID))},
		}
	}
	sections := []volatileSection{
		{"system", "system.json", "/proc, uname, os-release", append(system, '\n')},
		{"processes", "processes.json", "/proc/<pid>/{stat,status,cmdline,exe,cwd}", append(marshal(procs), '\n')},
	}
	if windows {
		sections[0].source = "Win32_OperatingSystem, Win32_ComputerSystem"
		sections[1].source = "Win32_Process, Get-FileHash"
	}
	return sections
}

// archiveTime is the modification time of every file in a fake archive,
// fixed so that the same collection gives the same bytes.
var archiveTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// buildArchive packs the sections and collection/index.json as a tar.gz
// (Linux) or a zip (Windows).
func buildArchive(files []volatileSection, windows bool) []byte {
	var buf bytes.Buffer
	if windows {
		zw := zip.NewWriter(&buf)
		for _, f := range files {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: "collection/" + f.file, Method: zip.Deflate, Modified: archiveTime})
			w.Write(f.content)
		}
		zw.Close()
		return buf.Bytes()
	}
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "collection/", Mode: 0o700, ModTime: archiveTime, Uname: "root", Gname: "root"})
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "collection/" + f.file, Mode: 0o600, Size: int64(len(f.content)),
			ModTime: archiveTime, Uname: "root", Gname: "root"})
		tw.Write(f.content)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// volatileData runs Responder-LinuxVolatileData (linux-volatile-data.sh) or
// Responder-WindowsVolatileData (windows-volatile-data.ps1).
func (j *agentJob) volatileData(windows bool) agentResult {
	p := j.params
	schema, format, ctype := ssmdocuments.SchemaLinuxVolatile, "tar+gzip", "application/gzip"
	if windows {
		schema, format, ctype = ssmdocuments.SchemaWindowsVolatile, "zip", "application/zip"
	}
	rep := ssmdocuments.VolatileReport{Schema: schema, CaseID: p["CaseId"], Status: ssmdocuments.StatusFailed,
		StartedAt: j.stamp(), Instance: j.instanceReport(), Sections: []ssmdocuments.Section{}}
	code := 1
	if !urlPattern.MatchString(p["ArchiveUrl"]) {
		rep.Error = "archive URL is not a valid https URL"
		if windows {
			rep.Error = "ArchiveUrl is not a valid https URL"
		}
	} else {
		files := j.volatileSections(windows)
		secs := 0.01
		for _, f := range files {
			rep.Sections = append(rep.Sections, ssmdocuments.Section{Name: f.name, File: "collection/" + f.file, Source: f.source,
				Status: "ok", Seconds: &secs, Bytes: int64(len(f.content)), SHA256: sha256Hex(f.content)})
		}
		index := marshal(map[string]any{"schema": schema, "case_id": p["CaseId"], "sections": rep.Sections})
		files = append(files, volatileSection{file: "index.json", content: append(index, '\n')})
		archive := buildArchive(files, windows)
		r := j.put(p["ArchiveUrl"], archive, ctype)
		rep.Archive = &ssmdocuments.Archive{Format: format, Bytes: int64(len(archive)), SHA256: sha256Hex(archive),
			ContentMD5: r.contentMD5, ETag: r.etag, Attempts: r.attempts, HTTPStatus: r.status}
		if j.fault == FaultLieHash {
			rep.Archive.SHA256 = liar(rep.Archive.SHA256)
		}
		if r.ok() && r.etag != "" {
			rep.Status, code = ssmdocuments.StatusSucceeded, 0
		} else if windows {
			rep.Error = fmt.Sprintf("uploading the archive failed (HTTP %d)", r.status)
		} else {
			rep.Error = fmt.Sprintf("uploading the archive failed (HTTP %03d, curl exit %d)", r.status, r.curlExit)
		}
	}
	rep.FinishedAt = j.stamp()
	line := j.emit(marshal(rep), p["ResultUrl"], func(ru *ssmdocuments.ResultUpload, short bool) []byte {
		out := rep
		out.ResultUpload = ru
		out.StdoutTruncated = short
		return marshal(out)
	}, windows)
	return agentResult{exitCode: code, stdout: line}
}
