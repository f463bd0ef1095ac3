package fakeaws

import (
	"archive/zip"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// A stand-in for the two Responder-* Windows documents, whose PowerShell
// cannot run here (no pwsh). It does, in Go, the least the engine's checks
// need, through the same S3 endpoint as a Linux script (agent_http.go, with
// its wire faults), and writes reports of the Windows schemas:
//
//   - memory: WinPmem is fetched and checked against its pinned SHA-256 (not
//     run); the image is Agent.Memory, raw, gzip-compressed, one PUT per
//     part;
//   - volatile data: a zip of collection/system.json and
//     collection/index.json, one PUT.
//
// Every PUT is one attempt. The faults that need a script (source, exit-1)
// are not modelled for Windows: SetAgent refuses them.

// windowsStandIns are the documents the stand-in runs.
var windowsStandIns = map[string]func(*windowsJob) agentResult{
	ssmdocuments.WindowsMemoryCapture: (*windowsJob).memoryCapture,
	ssmdocuments.WindowsVolatileData:  (*windowsJob).volatileData,
}

// windowsJob is one run of the stand-in, with its client for the job's S3
// endpoint.
type windowsJob struct {
	*agentJob
	client *http.Client
}

func (j *agentJob) runWindowsStandIn(run func(*windowsJob) agentResult) agentResult {
	ca, err := theCA()
	if err != nil {
		return agentResult{exitCode: 1, stderr: err.Error()}
	}
	ep, err := startEndpoint(ca, j.s3s, j.fault, j.s3Reachable)
	if err != nil {
		return agentResult{exitCode: 1, stderr: err.Error()}
	}
	defer ep.close()
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, ep.addr()) // every host is the endpoint
		},
		TLSClientConfig: &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12},
	}
	defer transport.CloseIdleConnections()
	return run(&windowsJob{agentJob: j, client: &http.Client{Timeout: time.Minute, Transport: transport}})
}

// do makes one request; status 0 means no response. A PUT carries
// Content-MD5, as the script's does.
func (w *windowsJob) do(method, url string, body []byte) (status int, etag string, respBody []byte) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", nil
	}
	if method == http.MethodPut {
		req.Header.Set("Content-MD5", md5Base64(body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, "", nil
	}
	defer resp.Body.Close()
	respBody, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag"), respBody
}

func (w *windowsJob) stamp() string { return w.now().UTC().Format("2006-01-02T15:04:05Z") }

func (w *windowsJob) instance() ssmdocuments.Instance {
	return ssmdocuments.Instance{Hostname: w.host.Hostname, Kernel: w.host.Kernel, Arch: w.host.Arch, OS: w.host.OS,
		BootID: w.host.BootID, MemTotalBytes: int64(len(w.memory))}
}

// emit PUTs the report to ResultUrl and returns the invocation's result,
// whose stdout is the report with how that PUT went (setUpload adds it).
func (w *windowsJob) emit(report any, setUpload func(*ssmdocuments.ResultUpload), exitCode int) agentResult {
	ru := &ssmdocuments.ResultUpload{Status: "skipped"}
	if url := w.params["ResultUrl"]; url != "none" {
		status, etag, _ := w.do(http.MethodPut, url, marshalReport(report))
		ru = &ssmdocuments.ResultUpload{Status: "failed", HTTPStatus: strconv.Itoa(status), Attempts: 1}
		if status == http.StatusOK {
			ru = &ssmdocuments.ResultUpload{Status: "succeeded", ETag: etag, Attempts: 1}
		}
	}
	setUpload(ru)
	return agentResult{exitCode: exitCode, stdout: string(marshalReport(report)) + "\n"}
}

// marshalReport encodes a report as the scripts print it: compact, no HTML
// escaping.
func marshalReport(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("fakeaws: encoding a report: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// memoryCapture stands in for Responder-WindowsMemoryCapture.
func (w *windowsJob) memoryCapture() agentResult {
	p := w.params
	rep := ssmdocuments.MemoryReport{
		Schema: ssmdocuments.SchemaWindowsMemory, CaseID: p["CaseId"], Status: ssmdocuments.StatusFailed, StartedAt: w.stamp(),
		Instance: w.instance(), ImageFormat: "raw", Attempts: []ssmdocuments.CaptureAttempt{}, Warnings: []string{},
		Tool: ssmdocuments.MemoryTool{Name: "winpmem", MemorySource: "winpmem driver", SHA256: p["WinpmemSha256"]},
	}
	status, _, tool := w.do(http.MethodGet, p["WinpmemUrl"], nil)
	_, _, list := w.do(http.MethodGet, p["PartUrlsUrl"], nil)
	switch {
	case status != http.StatusOK || sha256Hex(tool) != p["WinpmemSha256"]:
		rep.Error = fmt.Sprintf("WinPmem could not be fetched, or is not the pinned one (HTTP %d)", status)
	case len(strings.Fields(string(list))) == 0:
		rep.Error = "no part URLs"
	default:
		partMiB, _ := strconv.Atoi(p["PartSizeMiB"])
		up := w.upload(strings.Fields(string(list)), partMiB<<20)
		zero := 0
		rep.Attempts = append(rep.Attempts, ssmdocuments.CaptureAttempt{Tool: "winpmem", Source: "winpmem driver", Status: up.Status,
			Failure: cmp.Or(up.Failure, "none"), RawBytes: up.RawBytes, SourceExitStatus: &zero})
		summary := *up
		summary.Parts = nil
		rep.Upload, rep.UploadSummary, rep.Error = up, &summary, up.Error
	}
	code := 1
	if rep.Error == "" {
		rep.Status, code = ssmdocuments.StatusSucceeded, 0
	}
	rep.FinishedAt = w.stamp()
	return w.emit(&rep, func(ru *ssmdocuments.ResultUpload) { rep.ResultUpload = ru }, code)
}

// upload compresses the memory and uploads it in parts, stopping at the
// first part that fails.
func (w *windowsJob) upload(urls []string, partSize int) *ssmdocuments.StreamUpload {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(w.memory)
	_ = zw.Close()
	stream := buf.Bytes()
	up := &ssmdocuments.StreamUpload{Status: ssmdocuments.StatusFailed, Compression: "gzip", Compressor: "GZipStream (stand-in)",
		RawSHA256: sha256Hex(w.memory), RawBytes: int64(len(w.memory)), CompressedSHA256: sha256Hex(stream),
		PartSize: int64(partSize), Parts: []ssmdocuments.Part{}}
	for n, off := 1, 0; off < len(stream) && up.Error == ""; n, off = n+1, off+partSize {
		if n > len(urls) {
			up.Error, up.Failure, up.FailedPart = fmt.Sprintf("the stream needs more than the %d part URLs provided", len(urls)), "exhausted", n
			break
		}
		chunk := stream[off:min(off+partSize, len(stream))]
		status, etag, _ := w.do(http.MethodPut, urls[n-1], chunk)
		part := ssmdocuments.Part{PartNumber: n, Size: int64(len(chunk)), Status: "ok", Attempts: 1, HTTPStatus: status,
			ContentMD5: md5Base64(chunk), ETag: etag}
		if status != http.StatusOK || etag == "" {
			part.Status = "failed"
			up.Error, up.Failure, up.FailedPart = fmt.Sprintf("part %d could not be uploaded", n), "upload", n
		}
		up.Parts = append(up.Parts, part)
		up.CompressedBytes += part.Size
	}
	up.PartCount = len(up.Parts)
	if up.Error == "" {
		up.Status = ssmdocuments.StatusSucceeded
	}
	return up
}

// volatileData stands in for Responder-WindowsVolatileData.
func (w *windowsJob) volatileData() agentResult {
	p := w.params
	rep := ssmdocuments.VolatileReport{Schema: ssmdocuments.SchemaWindowsVolatile, CaseID: p["CaseId"], Status: ssmdocuments.StatusFailed,
		StartedAt: w.stamp(), Instance: w.instance()}
	system := append(marshalReport(map[string]any{"case_id": p["CaseId"], "instance_id": w.instanceID, "hostname": w.host.Hostname,
		"os": w.host.OS, "collector": "fakeaws Windows stand-in"}), '\n')
	rep.Sections = []ssmdocuments.Section{{Name: "system", File: "collection/system.json",
		Source: "Win32_OperatingSystem, Win32_ComputerSystem", Status: "ok", Bytes: int64(len(system)), SHA256: sha256Hex(system)}}
	index := append(marshalReport(map[string]any{"schema": rep.Schema, "case_id": p["CaseId"], "sections": rep.Sections}), '\n')

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		body []byte
	}{{"collection/system.json", system}, {"collection/index.json", index}} {
		fw, _ := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: w.now()})
		_, _ = fw.Write(f.body)
	}
	_ = zw.Close()
	archive := buf.Bytes()
	status, etag, _ := w.do(http.MethodPut, p["ArchiveUrl"], archive)
	rep.Archive = &ssmdocuments.Archive{Format: "zip", Bytes: int64(len(archive)), SHA256: sha256Hex(archive),
		ContentMD5: md5Base64(archive), ETag: etag, Attempts: 1, HTTPStatus: status}
	code := 1
	if status == http.StatusOK && etag != "" {
		rep.Status, code = ssmdocuments.StatusSucceeded, 0
	} else {
		rep.Error = fmt.Sprintf("uploading the archive failed (HTTP %d)", status)
	}
	rep.FinishedAt = w.stamp()
	return w.emit(&rep, func(ru *ssmdocuments.ResultUpload) { rep.ResultUpload = ru }, code)
}
