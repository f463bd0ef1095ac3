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
	// SealingKey is the command that made the key the collection's URLs
	// were sealed to; Command the collection itself.
	SealingKey CommandRun             `json:"sealing_key_command"`
	Command    CommandRun             `json:"command"`
	Archive    *evidence.Artifact     `json:"archive,omitempty"`
	Report     *evidence.Artifact     `json:"report,omitempty"`
	Sections   []ssmdocuments.Section `json:"sections,omitempty"`
	Warnings   []string               `json:"warnings,omitempty"`
	// Staged is set when the collection runs as separate stages (Env.Stage).
	Staged *stagedVolatile `json:"staged,omitempty"`
}

// Run goes in three phases: plan (pick the document, change nothing),
// prepare (install the document, presign the archive and report URLs) and,
// once the command has run, conclude (keep what arrived, check it against
// the instance's report). Every failure after plan goes through
// volatileCollection.fail.
func (s VolatileData) Run(ctx context.Context, env *Env) Result {
	if env.Stage.Name != "" {
		return s.runStage(ctx, env)
	}
	c, res := s.plan(env)
	if c == nil {
		return res
	}
	if err := c.prepare(ctx); err != nil {
		return c.fail(err)
	}
	runErr := c.run(ctx)
	return c.conclude(ctx, runErr)
}

// volatileCollection is one volatile data collection under way: what plan
// settled, what prepare made, and the step's record.
type volatileCollection struct {
	step         VolatileData
	env          *Env
	rcv          evidence.Receiver
	platform     string // the managed node's platform type
	docName, ext string // ext: the archive's, tar.gz or zip
	doc          ssmdocuments.Document

	// Set by prepare.
	bound                   time.Time // when the command must have ended
	archivePath, reportPath string
	params                  map[string][]string // SendCommand's parameters
	// sent is set once the command is sent: from then on the record keeps
	// what the command did and what arrived, whatever the outcome.
	sent bool

	st volatileState
}

// plan picks the document for the managed node, without changing anything.
// It returns nil and the step's result when the step ends there (no
// managed node, a platform without a document, a dry run).
func (s VolatileData) plan(env *Env) (*volatileCollection, Result) {
	node, why := env.ssmNode()
	if node == nil {
		return nil, Skipped("no managed node to run on: "+why, nil)
	}
	rcv, err := evidence.AsReceiver(env.Clients.Store)
	if err != nil {
		return nil, Failed(err, nil)
	}
	c := &volatileCollection{step: s, env: env, rcv: rcv, platform: node.PlatformType, docName: ssmdocuments.LinuxVolatileData, ext: "tar.gz"}
	if node.PlatformType == "Windows" {
		c.docName, c.ext = ssmdocuments.WindowsVolatileData, "zip"
	} else if node.PlatformType != "Linux" {
		return nil, Failed(fmt.Errorf("no volatile data document for platform %q", node.PlatformType), nil)
	}
	c.doc, _ = ssmdocuments.Lookup(c.docName)
	if env.Target.DryRun {
		return nil, Skipped("dry run: would run "+c.docName+" on "+env.Target.InstanceID(), nil)
	}
	return c, Result{}
}

// prepare checks the document, has the instance make the key its URLs are
// sealed to, and presigns the URLs the instance uploads the archive and its
// report to.
func (c *volatileCollection) prepare(ctx context.Context) error {
	env := c.env
	if err := pinDocument(ctx, env.Clients.SSM, c.doc, &c.st.Command); err != nil {
		return err
	}
	own := time.Duration(env.Collection.CaptureTimeout.Or(DefaultVolatileTimeout))
	if env.Stage.Name != "" {
		// Staged, the memory capture is sent after it and its bound runs
		// from the prepare stage: volatile data gets a third of it, at
		// most DefaultVolatileTimeout.
		own = min(own/3, DefaultVolatileTimeout)
	}
	c.bound = env.collectionBound(own)
	ttl, warning, err := env.presignTTL(c.bound)
	if err != nil {
		return err
	}
	if warning != "" {
		c.st.Warnings = append(c.st.Warnings, warning)
	}
	base := fmt.Sprintf("%s/volatile/run-%03d/", env.Target.InstanceID(), env.Target.Run)
	if env.Stage.Collection != "" {
		base = fmt.Sprintf("%s/volatile/%s/", env.Target.InstanceID(), env.Stage.Collection)
	}
	c.archivePath, c.reportPath = base+"volatile-data."+c.ext, base+"report.json"
	archiveURL, err := c.rcv.PresignPut(ctx, env.Target.CaseID, c.archivePath, ttl)
	if err != nil {
		return err
	}
	resultURL, err := c.rcv.PresignPut(ctx, env.Target.CaseID, c.reportPath, ttl)
	if err != nil {
		return err
	}
	recent := env.Collection.RecentDays
	if recent == 0 {
		recent = 7
	}
	key, err := sealingKey(ctx, env, env.Clients.SSM, c.platform, c.bound, &c.st.SealingKey)
	if err != nil {
		return err
	}
	c.params, err = c.doc.SendCommandParameters(map[string]string{
		"CaseId": env.Target.CaseID, "ArchiveUrl": archiveURL, "ResultUrl": resultURL,
		"RecentDays": strconv.Itoa(recent), "ExecutionTimeout": strconv.Itoa(max(60, int(c.bound.Sub(env.now()).Seconds()))),
	}, key)
	return err
}

// run sends the command and waits for it to end.
func (c *volatileCollection) run(ctx context.Context) error {
	env, start := c.env, c.env.now()
	c.sent = true
	_, err := runCommand(ctx, env, env.Clients.SSM, &c.st.Command, c.params, c.bound, func(status string) {
		env.progress(ctx, fmt.Sprintf("%s %s (%s; cancelled at %s UTC, capture_timeout)", c.docName, status, env.now().Sub(start).Round(time.Second), c.bound.UTC().Format(time.TimeOnly)), 0, 0)
	})
	return err
}

// conclude keeps what arrived, whatever the command did, and checks the
// archive against the instance's report.
func (c *volatileCollection) conclude(ctx context.Context, runErr error) Result {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var report *ssmdocuments.VolatileReport
	c.st.Report, report = receiveReport(rctx, c.env, c.rcv, evidence.Artifact{Path: c.reportPath, ContentType: "application/json",
		Step: c.step.Name(), Source: "report of " + c.docName + " from the instance"}, ssmdocuments.ParseVolatileReport)
	if report != nil {
		c.st.Sections = report.Sections
	}
	problems := c.checkArchive(rctx, report)
	if err := c.outcome(runErr, report, problems); err != nil {
		return c.fail(err)
	}
	failed := 0
	for _, sec := range report.Sections {
		if sec.Status == "failed" {
			failed++
		}
	}
	reason := fmt.Sprintf("%s version %s: %d sections (%d failed), archive %s (%d bytes, SHA-256 checked)",
		c.docName, c.st.Command.DocumentVersion, len(report.Sections), failed, c.st.Archive.Path, c.st.Archive.Size)
	return OK(reason, nil, c.st)
}

// checkArchive records the archive that arrived and checks it against
// what the instance reported: its SHA-256, its size and, unless SSE-KMS
// makes the ETag something else, the Content-MD5 S3 verified.
func (c *volatileCollection) checkArchive(ctx context.Context, report *ssmdocuments.VolatileReport) mismatches {
	want := evidence.Artifact{Path: c.archivePath, ContentType: archiveType(c.ext), Step: c.step.Name(),
		Source: fmt.Sprintf("%s version %s (command %s)", c.docName, c.st.Command.DocumentVersion, c.st.Command.CommandID)}
	reported := report != nil && report.Archive != nil
	if reported {
		want.ReportedSHA256 = report.Archive.SHA256
	}
	archive, err := c.env.recordReceived(ctx, c.rcv, want)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return mismatches{"no archive arrived in the evidence store"}
	case err != nil:
		return mismatches{"archive: " + err.Error()}
	}
	c.st.Archive = &archive
	if !reported {
		return nil
	}
	var problems mismatches
	problems.check("archive SHA-256", report.Archive.SHA256, archive.SHA256)
	if report.Archive.Bytes != archive.Size {
		problems = append(problems, fmt.Sprintf("archive size: the instance reported %d bytes, the store holds %d", report.Archive.Bytes, archive.Size))
	}
	if got, err := c.rcv.Received(ctx, c.env.Target.CaseID, c.archivePath); err == nil && !strings.HasPrefix(got.Encryption, "aws:kms") {
		// With SSE-KMS, S3's ETag is not the MD5 of the object.
		want, _ := ssmdocuments.SinglePutETag(report.Archive.ContentMD5)
		problems.check("archive ETag (Content-MD5)", want, got.ETag)
	}
	return problems
}

// outcome says why the collection failed, if it did: the command failed,
// the instance's report did not arrive or reports a failure, or what
// arrived contradicts it.
func (c *volatileCollection) outcome(runErr error, report *ssmdocuments.VolatileReport, problems mismatches) error {
	switch {
	case runErr != nil:
		return fmt.Errorf("%s: %w", c.docName, runErr)
	case c.st.Command.Status != "Success":
		return fmt.Errorf("%s: %s", c.docName, commandFailure(&c.st.Command))
	case report == nil:
		return fmt.Errorf("%s: the instance's report did not arrive", c.docName)
	case report.Status != ssmdocuments.StatusSucceeded:
		return fmt.Errorf("%s: the instance reports %s: %s", c.docName, report.Status, report.Error)
	}
	return problems.err()
}

// fail is the step's one failure path: once a command was sent (the
// sealing-key command, or the collection), the record keeps what it did and
// what arrived.
func (c *volatileCollection) fail(err error) Result {
	if !c.sent && c.st.SealingKey.CommandID == "" {
		return Failed(err, nil)
	}
	return Result{Status: evidence.StatusFailed, Err: err, After: c.st}
}

func archiveType(ext string) string {
	if ext == "zip" {
		return "application/zip"
	}
	return "application/gzip"
}

// Describe: the step records only an after (the command and what arrived);
// a before, if one is ever recorded, is shown as recorded.
func (s VolatileData) Describe() Description {
	d := RawState(s.Name())
	d.OnFailure = "No verified record of processes, connections, logins and persistence at that moment. " +
		"What arrived, if anything, is kept and recorded with the mismatch; do not rely on it without checking."
	d.OnSkip = "No volatile data was collected (see the reason)."
	return d
}
