package ssmdocuments

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
)

// Report schemas, the "schema" field of each report.
const (
	SchemaLinuxMemory     = "responder.linux-memory-capture/1"
	SchemaLinuxVolatile   = "responder.linux-volatile-data/1"
	SchemaWindowsMemory   = "responder.windows-memory-capture/1"
	SchemaWindowsVolatile = "responder.windows-volatile-data/1"
)

// Report statuses.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Instance describes the instance as the script saw it.
type Instance struct {
	Hostname      string `json:"hostname"`
	Kernel        string `json:"kernel"`
	Arch          string `json:"arch"`
	OS            string `json:"os"`
	BootID        string `json:"boot_id"`
	MemTotalBytes int64  `json:"mem_total_bytes"`
}

// ResultUpload is how the script's PUT of the report itself went. It is only
// in what the script printed on stdout, not in the uploaded object.
type ResultUpload struct {
	Status     string `json:"status"`
	ETag       string `json:"etag,omitempty"`
	Attempts   int    `json:"attempts,omitempty"`
	HTTPStatus string `json:"http_status,omitempty"`
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	PartNumber int    `json:"part_number"`
	Size       int64  `json:"size"`
	Status     string `json:"status"` // ok, failed or missing
	Attempts   int    `json:"attempts"`
	HTTPStatus int    `json:"http_status"`
	CurlExit   int    `json:"curl_exit"`
	ContentMD5 string `json:"content_md5,omitempty"`
	ETag       string `json:"etag,omitempty"`
}

// StreamUpload is the outcome of one streamed, compressed, hashed multipart
// upload (stream-upload.sh).
type StreamUpload struct {
	Status             string   `json:"status"`
	Error              string   `json:"error,omitempty"`
	Failure            string   `json:"failure,omitempty"` // urls, source, compress, upload, exhausted
	FailedPart         int      `json:"failed_part,omitempty"`
	Compression        string   `json:"compression"` // zstd, gzip or none
	Compressor         string   `json:"compressor"`
	HashingTee         string   `json:"hashing_tee"` // python or coreutils
	RawSHA256          string   `json:"raw_sha256"`
	RawBytes           int64    `json:"raw_bytes"`
	CompressedSHA256   string   `json:"compressed_sha256"`
	CompressedBytes    int64    `json:"compressed_bytes"`
	PipelineExitStatus string   `json:"pipeline_exit_status"`
	ElapsedSeconds     *float64 `json:"elapsed_seconds"`
	PartSize           int64    `json:"part_size"`
	PartCount          int      `json:"part_count"`
	Parts              []Part   `json:"parts"`
}

// CompletedParts returns the part numbers and ETags to pass to
// CompleteMultipartUpload, in order. It fails unless the upload succeeded and
// parts 1..PartCount are all present and uploaded: a partial image is never
// completed. The engine should also compare them with ListParts.
func (s StreamUpload) CompletedParts() ([]Part, error) {
	if s.Status != StatusSucceeded {
		return nil, fmt.Errorf("stream upload %s: %s", s.Status, s.Error)
	}
	if len(s.Parts) != s.PartCount || s.PartCount == 0 {
		return nil, fmt.Errorf("stream upload: %d parts listed, %d reported", len(s.Parts), s.PartCount)
	}
	parts := append([]Part(nil), s.Parts...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	var total int64
	for i, p := range parts {
		if p.PartNumber != i+1 {
			return nil, fmt.Errorf("stream upload: part %d missing", i+1)
		}
		if p.Status != "ok" || p.ETag == "" {
			return nil, fmt.Errorf("stream upload: part %d not uploaded (%s)", p.PartNumber, p.Status)
		}
		total += p.Size
	}
	if total != s.CompressedBytes {
		return nil, fmt.Errorf("stream upload: parts hold %d bytes, stream had %d", total, s.CompressedBytes)
	}
	return parts, nil
}

// CaptureAttempt is one tool and memory source tried.
type CaptureAttempt struct {
	Tool             string `json:"tool"`
	Source           string `json:"source"`
	Status           string `json:"status"`
	Failure          string `json:"failure"`
	RawBytes         int64  `json:"raw_bytes"`
	SourceExitStatus *int   `json:"source_exit_status"`
	StderrTail       string `json:"stderr_tail"`
}

// MemoryTool is the tool whose image was kept.
type MemoryTool struct {
	Name          string `json:"name"`            // avml, lime, winpmem; empty when none worked
	MemorySource  string `json:"memory_source"`   // e.g. /proc/kcore
	AVMLVersion   string `json:"avml_version"`    // Linux
	Version       string `json:"version"`         // Windows
	SHA256        string `json:"sha256"`          // of the binary or module that ran
	LimeTimeoutMS int    `json:"lime_timeout_ms"` // Linux
}

// Range is a physical address range, both ends inclusive, in hex.
type Range struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Bytes int64  `json:"bytes"`
}

// Ranges compares the image with the instance's physical memory map.
type Ranges struct {
	IomemReadable   bool    `json:"iomem_readable"`
	ImageParseError string  `json:"image_parse_error,omitempty"`
	SystemRAM       []Range `json:"system_ram"`
	Captured        []Range `json:"captured"`
	Skipped         []Range `json:"skipped"`
}

// LimeLog is what a debug build of LiME logged during the capture.
type LimeLog struct {
	DebugLogLines int      `json:"debug_log_lines"`
	ZeroFilled    []string `json:"zero_filled"`
	LogTail       []string `json:"log_tail"`
}

// MemoryReport is the report of a memory capture document.
type MemoryReport struct {
	Schema      string           `json:"schema"`
	CaseID      string           `json:"case_id"`
	Status      string           `json:"status"`
	Error       string           `json:"error,omitempty"`
	StartedAt   string           `json:"started_at"`
	FinishedAt  string           `json:"finished_at"`
	Instance    Instance         `json:"instance"`
	Tool        MemoryTool       `json:"tool"`
	ImageFormat string           `json:"image_format"` // lime (Linux) or raw (Windows)
	Attempts    []CaptureAttempt `json:"attempts"`
	Lime        *LimeLog         `json:"lime,omitempty"`
	Ranges      *Ranges          `json:"ranges,omitempty"`
	Warnings    []string         `json:"warnings"`
	// Upload is the full outcome with every part; it is left out of stdout
	// when the report is too long for SSM's output (see UploadSummary).
	Upload          *StreamUpload `json:"upload,omitempty"`
	UploadSummary   *StreamUpload `json:"upload_summary,omitempty"`
	ResultUpload    *ResultUpload `json:"result_upload,omitempty"`
	StdoutTruncated bool          `json:"stdout_truncated,omitempty"`
}

// Archive is the uploaded archive of a volatile-data collection.
type Archive struct {
	Format     string `json:"format"` // tar+gzip (Linux) or zip (Windows)
	Bytes      int64  `json:"bytes"`
	SHA256     string `json:"sha256"`
	ContentMD5 string `json:"content_md5"`
	ETag       string `json:"etag"`
	Attempts   int    `json:"attempts"`
	HTTPStatus int    `json:"http_status"`
}

// Section is one part of a volatile-data collection, a file in the archive.
type Section struct {
	Name       string   `json:"name"`
	File       string   `json:"file"`
	Source     string   `json:"source"`
	Status     string   `json:"status"` // ok, failed, unavailable
	ExitStatus int      `json:"exit_status"`
	Seconds    *float64 `json:"seconds"`
	Bytes      int64    `json:"bytes"`
	SHA256     string   `json:"sha256"`
	Stderr     string   `json:"stderr,omitempty"`
}

// VolatileReport is the report of a volatile-data document.
type VolatileReport struct {
	Schema          string        `json:"schema"`
	CaseID          string        `json:"case_id"`
	Status          string        `json:"status"`
	Error           string        `json:"error,omitempty"`
	StartedAt       string        `json:"started_at"`
	FinishedAt      string        `json:"finished_at"`
	Instance        Instance      `json:"instance"`
	Archive         *Archive      `json:"archive,omitempty"`
	Sections        []Section     `json:"sections"`
	ResultUpload    *ResultUpload `json:"result_upload,omitempty"`
	StdoutTruncated bool          `json:"stdout_truncated,omitempty"`
}

// ParseMemoryReport decodes a memory capture report (stdout or result object).
func ParseMemoryReport(b []byte) (MemoryReport, error) {
	var r MemoryReport
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("memory report: %w", err)
	}
	if r.Schema != SchemaLinuxMemory && r.Schema != SchemaWindowsMemory {
		return r, fmt.Errorf("memory report: unknown schema %q", r.Schema)
	}
	return r, nil
}

// ParseVolatileReport decodes a volatile-data report (stdout or result object).
func ParseVolatileReport(b []byte) (VolatileReport, error) {
	var r VolatileReport
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("volatile report: %w", err)
	}
	if r.Schema != SchemaLinuxVolatile && r.Schema != SchemaWindowsVolatile {
		return r, fmt.Errorf("volatile report: unknown schema %q", r.Schema)
	}
	return r, nil
}

// MultipartETag is the ETag S3 gives the object completed from parts: the
// MD5 of the concatenated binary MD5s of the parts, then "-" and the number
// of parts. Computed from the Content-MD5 values the instance sent (and S3
// checked on each UploadPart), it ties the instance's report to the object:
// compare it with HeadObject's ETag after CompleteMultipartUpload.
func MultipartETag(parts []Part) (string, error) {
	if len(parts) == 0 {
		return "", fmt.Errorf("multipart ETag: no parts")
	}
	h := md5.New()
	for _, p := range parts {
		sum, err := base64.StdEncoding.DecodeString(p.ContentMD5)
		if err != nil || len(sum) != md5.Size {
			return "", fmt.Errorf("multipart ETag: part %d: invalid content_md5", p.PartNumber)
		}
		h.Write(sum)
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(h.Sum(nil)), len(parts)), nil
}

// SinglePutETag is the ETag S3 gives an object stored by one PUT (without
// SSE-KMS) with the given Content-MD5: the hex MD5, quoted.
func SinglePutETag(contentMD5 string) (string, error) {
	sum, err := base64.StdEncoding.DecodeString(contentMD5)
	if err != nil || len(sum) != md5.Size {
		return "", fmt.Errorf("single PUT ETag: invalid content_md5")
	}
	return `"` + hex.EncodeToString(sum) + `"`, nil
}
