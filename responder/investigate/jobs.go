package investigate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// Analysis tools (Request.Volatility, Request.Plaso).
const (
	ToolVolatility = "volatility"
	ToolPlaso      = "plaso"
)

// Volatility 3 plugins run on a memory image, by the image's platform, by
// their full names (vol takes a name as a substring of the registered ones).
var (
	linuxPlugins   = ssmdocuments.DefaultLinuxPlugins
	windowsPlugins = "windows.info.Info,windows.pslist.PsList,windows.netscan.NetScan,windows.cmdline.CmdLine"
)

// jobReport is the report of Responder-AnalysisJob.
type jobReport struct {
	Schema  string `json:"schema"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Version string `json:"version"`
	Runs    []struct {
		Name       string `json:"name"`
		ExitStatus int    `json:"exit_status"`
		Status     string `json:"status"`
		Output     string `json:"output"`
		Log        string `json:"log"`
	} `json:"runs"`
	Outputs []struct {
		Key    string `json:"key"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"outputs"`
}

// jobs runs the analysis tools asked for, after the mounts and the memory
// image: Volatility 3 on the fetched image, plaso on the read-only mounts.
func (j *startJob) jobs(ctx context.Context) {
	if j.req.Volatility {
		j.job(ctx, ToolVolatility, j.volatilityReady())
	}
	if j.req.Plaso {
		j.job(ctx, ToolPlaso, j.plasoReady())
	}
}

func (j *startJob) volatilityReady() string {
	if mf := j.ws.Memory; mf == nil || !mf.Matches || mf.Path == "" {
		return "no memory image on the instance that matches the record"
	}
	return ""
}

func (j *startJob) plasoReady() string {
	for _, mt := range j.ws.Mounts {
		if mt.Unchanged {
			return ""
		}
	}
	return "no filesystem mounted and proven unwritten"
}

// job runs one tool and records its outputs as artifacts of the case, each
// read back from the store and hashed here.
func (j *startJob) job(ctx context.Context, tool, notReady string) {
	aj := evidence.AnalysisJob{Tool: tool}
	defer func() { j.ws.Jobs = append(j.ws.Jobs, aj) }()
	bucket, _ := s3Location(j.iv.Store.Location(j.ws.CaseID, ""))
	switch {
	case notReady != "":
		aj.Status, aj.Reason = evidence.StatusSkipped, notReady
		return
	case bucket == "":
		aj.Status, aj.Reason = evidence.StatusSkipped, "the case is kept in a local folder: the instance cannot store outputs in it"
		return
	}
	if ok, why := accessReady(j.ws); !ok {
		aj.Status, aj.Reason = evidence.StatusSkipped, why
		return
	}
	params := map[string]string{"CaseId": j.ws.CaseID, "Tool": tool, "Bucket": bucket,
		"Prefix": "cases/" + j.ws.CaseID + "/analysis/" + j.ws.ID + "/"}
	if tool == ToolVolatility {
		params["MemoryPath"], params["Plugins"] = j.ws.Memory.Path, j.plugins()
	}
	out, err := j.command(ctx, ssmdocuments.AnalysisJob, params)
	var rep jobReport
	if err == nil {
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || rep.Schema != ssmdocuments.JobSchema {
			err = fmt.Errorf("the report is not %s", ssmdocuments.JobSchema)
		}
	}
	if err != nil {
		aj.Status, aj.Reason = evidence.StatusFailed, err.Error()
		j.problem("%s: %v", tool, err)
		return
	}
	aj.Status, aj.Reason, aj.Version = jobStatus(rep.Status), rep.Reason, rep.Version
	if aj.Status == evidence.StatusFailed {
		j.problem("%s: %s", tool, rep.Reason)
	}
	prefix := "cases/" + j.ws.CaseID + "/"
	for _, r := range rep.Runs {
		output, _ := strings.CutPrefix(r.Output, prefix)
		log, _ := strings.CutPrefix(r.Log, prefix)
		aj.Runs = append(aj.Runs, evidence.AnalysisRun{Name: r.Name, ExitStatus: r.ExitStatus, Status: jobStatus(r.Status), Output: output, Log: log})
	}
	for _, o := range rep.Outputs {
		if path, ok := j.output(ctx, tool, o.Key, o.SHA256); ok {
			aj.Outputs = append(aj.Outputs, path)
		}
	}
}

func jobStatus(s string) string {
	switch s {
	case "ok":
		return evidence.StatusOK
	case "skipped":
		return evidence.StatusSkipped
	}
	return evidence.StatusFailed
}

// plugins are the Volatility 3 plugins for the image's platform: Windows
// when WinPmem captured it.
func (j *startJob) plugins() string {
	if img, ok := memoryImage(j.m); ok && strings.Contains(strings.ToLower(img.Source), "winpmem") {
		return windowsPlugins
	}
	return linuxPlugins
}

// output reads one stored output back, hashes it and records it as an
// artifact of the case; a digest that differs from the instance's is a
// problem (the artifact keeps both).
func (j *startJob) output(ctx context.Context, tool, key, reported string) (string, bool) {
	path, ok := strings.CutPrefix(key, "cases/"+j.ws.CaseID+"/")
	if !ok || !strings.HasPrefix(path, "analysis/"+j.ws.ID+"/") {
		j.problem("%s reported an output outside the workspace's prefix: %s", tool, key)
		return "", false
	}
	r, err := j.iv.Store.Open(ctx, j.ws.CaseID, path)
	if err != nil {
		j.problem("%s output %s: %v", tool, path, err)
		return "", false
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		j.problem("%s output %s: read back: %v", tool, path, err)
		return "", false
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != reported {
		j.problem("%s output %s: stored SHA-256 %s, the instance reported %s", tool, path, sum, reported)
	}
	j.artifacts = append(j.artifacts, evidence.Artifact{
		Path: path, SHA256: sum, Size: n, ContentType: contentType(path), CollectedAt: j.iv.now(),
		Step: "investigation", Source: fmt.Sprintf("%s on the analysis instance %s of workspace %s", tool, j.ws.InstanceID, j.ws.ID),
		ReportedSHA256: reported,
	})
	return path, true
}

func contentType(path string) string {
	switch {
	case strings.HasSuffix(path, ".json"):
		return "application/json"
	case strings.HasSuffix(path, ".csv"):
		return "text/csv"
	case strings.HasSuffix(path, ".jsonl"):
		return "application/x-ndjson"
	case strings.HasSuffix(path, ".log"), strings.HasSuffix(path, ".err"), strings.HasSuffix(path, ".txt"):
		return "text/plain"
	}
	return "application/octet-stream"
}
