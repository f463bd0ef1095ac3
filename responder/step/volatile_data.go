package step

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// VolatileData runs the Responder-LinuxVolatileData or
// Responder-WindowsVolatileData document: processes with their command lines
// and executable hashes, connections and listening sockets with their owners,
// logins, modules or drivers, persistence, shell histories and recently
// modified files. The instance uploads one archive and its report straight
// to the evidence store through presigned PUT URLs; the step then hashes the
// stored archive itself and checks it against what the instance reported
// (SHA-256, and the Content-MD5 S3 verified as the ETag).
type VolatileData struct{}

func (VolatileData) Name() string    { return "volatile-data" }
func (VolatileData) Phase() Phase    { return Collect }
func (VolatileData) Needs() []string { return []string{"ssm-access"} }

// Timeout covers the command and the check of what it uploaded.
func (VolatileData) Timeout(env *Env) time.Duration {
	return time.Duration(env.Collection.CaptureTimeout.Or(DefaultVolatileTimeout)) + 5*time.Minute
}

// volatileState is the step's record.
type volatileState struct {
	Command  CommandRun             `json:"command"`
	Archive  *evidence.Artifact     `json:"archive,omitempty"`
	Report   *evidence.Artifact     `json:"report,omitempty"`
	Sections []ssmdocuments.Section `json:"sections,omitempty"`
	Warnings []string               `json:"warnings,omitempty"`
}

func (s VolatileData) Run(ctx context.Context, env *Env) Result {
	node, why := env.ssmNode()
	if node == nil {
		return Skipped("no managed node to run on: "+why, nil)
	}
	rcv, err := evidence.AsReceiver(env.Clients.Store)
	if err != nil {
		return Failed(err, nil)
	}
	docName, ext := ssmdocuments.LinuxVolatileData, "tar.gz"
	if node.PlatformType == "Windows" {
		docName, ext = ssmdocuments.WindowsVolatileData, "zip"
	} else if node.PlatformType != "Linux" {
		return Failed(fmt.Errorf("no volatile data document for platform %q", node.PlatformType), nil)
	}
	doc, _ := ssmdocuments.Lookup(docName)
	if env.Target.DryRun {
		return Skipped("dry run: would run "+docName+" on "+env.Target.InstanceID(), nil)
	}
	st := volatileState{}
	if err := ensureDocument(ctx, env.Clients.SSM, doc, &st.Command); err != nil {
		return Failed(err, nil)
	}
	own := time.Duration(env.Collection.CaptureTimeout.Or(DefaultVolatileTimeout))
	bound := env.collectionBound(own)
	ttl, warning, err := env.presignTTL(bound)
	if err != nil {
		return Failed(err, nil)
	}
	if warning != "" {
		st.Warnings = append(st.Warnings, warning)
	}
	base := fmt.Sprintf("%s/volatile/run-%03d/", env.Target.InstanceID(), env.Target.Run)
	archivePath, reportPath := base+"volatile-data."+ext, base+"report.json"
	archiveURL, err := rcv.PresignPut(ctx, env.Target.CaseID, archivePath, ttl)
	if err != nil {
		return Failed(err, nil)
	}
	resultURL, err := rcv.PresignPut(ctx, env.Target.CaseID, reportPath, ttl)
	if err != nil {
		return Failed(err, nil)
	}
	recent := env.Collection.RecentDays
	if recent == 0 {
		recent = 7
	}
	params, err := doc.SendCommandParameters(map[string]string{
		"CaseId": env.Target.CaseID, "ArchiveUrl": archiveURL, "ResultUrl": resultURL,
		"RecentDays": strconv.Itoa(recent), "ExecutionTimeout": strconv.Itoa(max(60, int(time.Until(bound).Seconds()))),
	})
	if err != nil {
		return Failed(err, nil)
	}
	start := env.now()
	_, runErr := runCommand(ctx, env, env.Clients.SSM, &st.Command, params, bound, func(status string) {
		env.progress(ctx, fmt.Sprintf("%s %s (%s)", docName, status, env.now().Sub(start).Round(time.Second)), 0, 0)
	})
	// Whatever the command did, keep what arrived.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var report *ssmdocuments.VolatileReport
	if a, err := env.recordReceived(rctx, rcv, evidence.Artifact{Path: reportPath, ContentType: "application/json", Step: s.Name(),
		Source: "report of " + docName + " from the instance"}); err == nil {
		st.Report = &a
		if body, err := env.Clients.Store.Get(rctx, env.Target.CaseID, reportPath); err == nil {
			if r, err := ssmdocuments.ParseVolatileReport(body); err == nil {
				report = &r
			}
		}
	}
	if report != nil {
		st.Sections = report.Sections
	}
	var problems mismatches
	want := evidence.Artifact{Path: archivePath, ContentType: archiveType(ext), Step: s.Name(),
		Source: fmt.Sprintf("%s version %s (command %s)", docName, st.Command.DocumentVersion, st.Command.CommandID)}
	if report != nil && report.Archive != nil {
		want.ReportedSHA256 = report.Archive.SHA256
	}
	archive, err := env.recordReceived(rctx, rcv, want)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		problems = append(problems, "no archive arrived in the evidence store")
	case err != nil:
		problems = append(problems, "archive: "+err.Error())
	default:
		st.Archive = &archive
		if report != nil && report.Archive != nil {
			problems.check("archive SHA-256", report.Archive.SHA256, archive.SHA256)
			if report.Archive.Bytes != archive.Size {
				problems = append(problems, fmt.Sprintf("archive size: the instance reported %d bytes, the store holds %d", report.Archive.Bytes, archive.Size))
			}
			if got, err := rcv.Received(rctx, env.Target.CaseID, archivePath); err == nil && !strings.HasPrefix(got.Encryption, "aws:kms") {
				// With SSE-KMS, S3's ETag is not the MD5 of the object.
				want, _ := ssmdocuments.SinglePutETag(report.Archive.ContentMD5)
				problems.check("archive ETag (Content-MD5)", want, got.ETag)
			}
		}
	}
	switch {
	case runErr != nil:
		return Result{Status: evidence.StatusFailed, Err: fmt.Errorf("%s: %w", docName, runErr), After: st}
	case st.Command.Status != "Success":
		return Result{Status: evidence.StatusFailed, Err: fmt.Errorf("%s: %s", docName, commandFailure(&st.Command)), After: st}
	case report == nil:
		return Result{Status: evidence.StatusFailed, Err: fmt.Errorf("%s: the instance's report did not arrive", docName), After: st}
	case report.Status != ssmdocuments.StatusSucceeded:
		return Result{Status: evidence.StatusFailed, Err: fmt.Errorf("%s: the instance reports %s: %s", docName, report.Status, report.Error), After: st}
	case len(problems) > 0:
		return Result{Status: evidence.StatusFailed, Err: problems.err(), After: st}
	}
	failed := 0
	for _, sec := range report.Sections {
		if sec.Status == "failed" {
			failed++
		}
	}
	reason := fmt.Sprintf("%s version %s: %d sections (%d failed), archive %s (%d bytes, SHA-256 checked)",
		docName, st.Command.DocumentVersion, len(report.Sections), failed, archive.Path, archive.Size)
	return OK(reason, nil, st)
}

func archiveType(ext string) string {
	if ext == "zip" {
		return "application/zip"
	}
	return "application/gzip"
}
