package step

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/responder/evidence"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

type instanceTypeAPI interface {
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
}

// MemoryCapture runs the Responder-LinuxMemoryCapture or
// Responder-WindowsMemoryCapture document: AVML (LiME as fallback) or
// WinPmem reads physical memory, and the instance compresses it, hashes it
// while streaming and uploads it as an S3 multipart upload into the evidence
// store, through UploadPart URLs presigned for it: it never holds
// credentials for the store. The tools are fetched from the staging bucket
// through presigned GET URLs and run only if their SHA-256 matches the pin.
//
// When the command ends, the step checks every part S3 holds against the
// instance's report before it completes the upload (a partial image is never
// completed: the upload is aborted), compares the object's multipart ETag
// with the parts' Content-MD5, and reads the image back to compute its
// SHA-256 in the forensics account. The record keeps the document version,
// the tool and memory source, ranges skipped or zero-filled, and both hashes.
type MemoryCapture struct{}

func (MemoryCapture) Name() string    { return "memory-capture" }
func (MemoryCapture) Phase() Phase    { return Collect }
func (MemoryCapture) Needs() []string { return []string{"ssm-access"} }

// Timeout covers the capture and reading the image back.
func (MemoryCapture) Timeout(env *Env) time.Duration {
	return 2*time.Duration(env.Collection.CaptureTimeout.Or(DefaultCaptureTimeout)) + 5*time.Minute
}

// memoryState is the step's record.
type memoryState struct {
	// SealingKey is the command that made the key the capture's URLs were
	// sealed to; Command the capture itself.
	SealingKey  CommandRun         `json:"sealing_key_command"`
	Command     CommandRun         `json:"command"`
	MemoryBytes int64              `json:"memory_bytes"`
	PartSizeMiB int                `json:"part_size_mib"`
	PartURLs    int                `json:"part_urls"`
	Upload      *evidence.Upload   `json:"upload,omitempty"`
	Aborted     string             `json:"aborted,omitempty"`
	Image       *evidence.Artifact `json:"image,omitempty"`
	// ImageHash says who hashed the image: read back in the forensics
	// account (matching the instance's SHA-256 of the compressed stream, or
	// with none from the instance, which then hashed the raw stream only),
	// or only on the instance (verify_image false).
	ImageHash  string                        `json:"image_hash,omitempty"`
	Report     *evidence.Artifact            `json:"report,omitempty"`
	Tool       *ssmdocuments.MemoryTool      `json:"tool,omitempty"`
	Attempts   []ssmdocuments.CaptureAttempt `json:"attempts,omitempty"`
	Skipped    []ssmdocuments.Range          `json:"ranges_skipped,omitempty"`
	ZeroFilled []string                      `json:"ranges_zero_filled,omitempty"`
	Warnings   []string                      `json:"warnings,omitempty"`
	Failure    string                        `json:"failure,omitempty"`
	FailedPart int                           `json:"failed_part,omitempty"`
	// Staged is set when the capture runs as separate stages (Env.Stage).
	Staged *stagedCapture `json:"staged,omitempty"`
}

// Run goes in three phases: plan (check and size the capture, change
// nothing), prepare (open the upload and everything the instance needs to
// fill it) and, once the command has run, conclude (keep the instance's
// report, check the parts, complete the upload). Every failure after plan
// goes through memoryCapture.fail, the one place that aborts the upload.
func (s MemoryCapture) Run(ctx context.Context, env *Env) Result {
	if env.Stage.Name != "" {
		return s.runStage(ctx, env)
	}
	c, res := s.plan(ctx, env)
	if c == nil {
		return res
	}
	if why, err := c.prepare(ctx); err != nil {
		return c.fail(ctx, why, err)
	}
	runErr := c.run(ctx)
	return c.conclude(ctx, runErr)
}

// memoryCapture is one capture under way: what plan settled, what prepare
// opened (the multipart upload is st.Upload) and the step's record.
type memoryCapture struct {
	step     MemoryCapture
	env      *Env
	rcv      evidence.Receiver
	platform string // the managed node's platform type
	docName  string
	doc      ssmdocuments.Document
	tools    memoryTools

	// Set by prepare.
	bound                 time.Time // when the command must have ended
	key                   *ssmdocuments.SealingKey
	imagePath, reportPath string
	params                map[string][]string // SendCommand's parameters

	st memoryState
}

// plan checks that the capture can run and sizes it, without changing
// anything. It returns nil and the step's result when the step ends there
// (no managed node, no staging bucket, a dry run).
func (s MemoryCapture) plan(ctx context.Context, env *Env) (*memoryCapture, Result) {
	node, why := env.ssmNode()
	if node == nil {
		return nil, Skipped("no managed node to run on: "+why, nil)
	}
	rcv, err := evidence.AsReceiver(env.Clients.Store)
	if err != nil {
		return nil, Failed(err, nil)
	}
	if env.Clients.Staging == nil || env.Clients.Presign == nil || env.Collection.StagingBucket == "" {
		return nil, Failed(errors.New("memory capture needs a staging bucket (--staging-bucket) for the tools and the part URLs"), nil)
	}
	docName, err := memoryDocument(node.PlatformType)
	if err != nil {
		return nil, Failed(err, nil)
	}
	c := &memoryCapture{step: s, env: env, rcv: rcv, platform: node.PlatformType, docName: docName}
	c.doc, _ = ssmdocuments.Lookup(docName)
	if c.tools, err = s.tools(node.PlatformType, env.Target.Instance, env.Collection.Memory); err != nil {
		return nil, Failed(err, nil)
	}
	if err := c.size(ctx, node.PlatformType); err != nil {
		return nil, Failed(err, nil)
	}
	if env.Target.DryRun {
		return nil, Skipped(fmt.Sprintf("dry run: would run %s on %s: %d MiB of memory in up to %d parts of %d MiB",
			docName, env.Target.InstanceID(), c.st.MemoryBytes>>20, c.st.PartURLs, c.st.PartSizeMiB), nil)
	}
	return c, Result{}
}

// memoryDocument names the capture document of a platform.
func memoryDocument(platform string) (string, error) {
	switch platform {
	case "Linux":
		return ssmdocuments.LinuxMemoryCapture, nil
	case "Windows":
		return ssmdocuments.WindowsMemoryCapture, nil
	}
	return "", fmt.Errorf("no memory capture document for platform %q", platform)
}

// size reads the memory of the instance's type and plans the parts.
func (c *memoryCapture) size(ctx context.Context, platform string) error {
	var err error
	c.st.MemoryBytes, err = memorySize(ctx, c.env.Clients.EC2, c.env.Target.Instance)
	if err != nil {
		return err
	}
	preferred := c.env.Collection.Memory.PartSizeMiB
	if preferred == 0 {
		preferred = 64
	}
	if platform == "Windows" {
		preferred = min(preferred, 2047) // a part is held in memory on Windows
	}
	c.st.PartSizeMiB, c.st.PartURLs, err = ssmdocuments.PlanParts(c.st.MemoryBytes, preferred)
	return err
}

// prepare checks the document and has the instance make the key its URLs
// are sealed to, then opens the multipart upload and what the instance
// needs to fill it. When it fails, why is what the record says of the
// aborted upload.
func (c *memoryCapture) prepare(ctx context.Context) (why string, err error) {
	env := c.env
	if err := pinDocument(ctx, env.Clients.SSM, c.doc, &c.st.Command); err != nil {
		return "", err
	}
	c.bound = env.collectionBound(time.Duration(env.Collection.CaptureTimeout.Or(DefaultCaptureTimeout)))
	ttl, warning, err := env.presignTTL(c.bound)
	if err != nil {
		return "", err
	}
	if warning != "" {
		c.st.Warnings = append(c.st.Warnings, warning)
	}
	if c.key, err = sealingKey(ctx, env, env.Clients.SSM, c.platform, c.bound, &c.st.SealingKey); err != nil {
		return "", err
	}
	base := fmt.Sprintf("%s/memory/run-%03d/", env.Target.InstanceID(), env.Target.Run)
	if env.Stage.Collection != "" {
		base = fmt.Sprintf("%s/memory/%s/", env.Target.InstanceID(), env.Stage.Collection)
	}
	c.imagePath, c.reportPath = base+"memory-image", base+"report.json"
	params, err := c.toolParameters(ctx, ttl)
	if err != nil {
		return "", err
	}
	upload, err := c.beginUpload(ctx)
	if err != nil {
		return "", err
	}
	c.st.Upload = upload
	return c.uploadParameters(ctx, ttl, params)
}

// toolParameters are the document's parameters but for the upload: the
// capture settings, and the tools, each a presigned GET with its pinned
// digest.
func (c *memoryCapture) toolParameters(ctx context.Context, ttl time.Duration) (map[string]string, error) {
	env := c.env
	params := map[string]string{
		"CaseId": env.Target.CaseID, "PartSizeMiB": strconv.Itoa(c.st.PartSizeMiB),
		"ExecutionTimeout": strconv.Itoa(max(60, int(c.bound.Sub(env.now()).Seconds()))),
	}
	if compression := env.Collection.Memory.Compression; compression != "" {
		params["Compression"] = compression
	}
	c.askCompressedHash(params)
	maps.Copy(params, c.tools.params)
	for param, tool := range c.tools.urls {
		url, err := env.Clients.Presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(env.Collection.StagingBucket), Key: aws.String(tool.Key)},
			s3.WithPresignExpires(ttl))
		if err != nil {
			return nil, fmt.Errorf("presign the staged tool %s: %w", tool.Key, err)
		}
		params[param] = url.URL
	}
	return params, nil
}

// uploadParameters presigns the open upload's part URLs and the report URL,
// and completes the command's parameters. The part URLs do not fit in
// SendCommand's parameters: they go to a staging object the instance
// fetches; the staging bucket's lifecycle rule removes it.
func (c *memoryCapture) uploadParameters(ctx context.Context, ttl time.Duration, params map[string]string) (why string, err error) {
	env, bucket := c.env, c.env.Collection.StagingBucket
	partURLs, err := c.rcv.PresignParts(ctx, c.st.Upload, c.st.PartURLs, ttl)
	if err != nil {
		return "presigning failed", err
	}
	listKey := fmt.Sprintf("parts/%s/%s-run-%03d-%s.txt", env.Target.CaseID, env.Target.InstanceID(), env.Target.Run, randomHex(8))
	if _, err := env.Clients.Staging.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(listKey),
		Body: strings.NewReader(string(ssmdocuments.PartURLList(partURLs))), ContentType: aws.String("text/plain"),
	}); err != nil {
		return "the part URL list could not be staged", fmt.Errorf("stage the part URL list in s3://%s: %w", bucket, err)
	}
	listURL, err := env.Clients.Presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(listKey)},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "presigning failed", fmt.Errorf("presign the part URL list: %w", err)
	}
	resultURL, err := c.rcv.PresignPut(ctx, env.Target.CaseID, c.reportPath, ttl)
	if err != nil {
		return "presigning failed", err
	}
	params["PartUrlsUrl"], params["ResultUrl"] = listURL.URL, resultURL
	if c.params, err = c.doc.SendCommandParameters(params, c.key); err != nil {
		return "invalid parameters", err
	}
	return "", nil
}

// run sends the command and waits for it to end, reporting how many parts
// have arrived.
func (c *memoryCapture) run(ctx context.Context) error {
	env, start := c.env, c.env.now()
	_, err := runCommand(ctx, env, env.Clients.SSM, &c.st.Command, c.params, c.bound, func(status string) {
		msg := fmt.Sprintf("%s %s (%s; cancelled at %s UTC, capture_timeout)", c.docName, status, env.now().Sub(start).Round(time.Second), c.bound.UTC().Format(time.TimeOnly))
		if parts, err := c.rcv.UploadedParts(ctx, c.st.Upload); err == nil {
			var done int64
			for _, p := range parts {
				done += p.Size
			}
			msg += fmt.Sprintf(": %d parts, %d MiB uploaded", len(parts), done>>20)
		}
		env.progress(ctx, msg, 0, 0)
	})
	return err
}

// conclude keeps the instance's report whatever the command did, and
// completes the upload only when the command, the report and the stored
// parts agree.
func (c *memoryCapture) conclude(ctx context.Context, runErr error) Result {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.step.Timeout(c.env))
	defer cancel()
	report := c.report(rctx)
	upl := reportedUpload(report)
	if upl != nil {
		c.st.Failure, c.st.FailedPart = upl.Failure, upl.FailedPart
	}
	err := c.outcome(runErr, report, upl)
	if err == nil {
		var image *evidence.Artifact
		image, err = c.complete(rctx, upl, report)
		if image != nil {
			c.st.Image, c.st.ImageHash = image, hashProvenance(image)
		}
	}
	if err != nil {
		return c.fail(ctx, err.Error(), fmt.Errorf("%s: %w", c.docName, err))
	}
	return OK(c.reason(report, upl), nil, c.st)
}

// outcome says why the image cannot be completed, if it cannot: the command
// failed, or the instance's report did not arrive or reports a failure.
func (c *memoryCapture) outcome(runErr error, report *ssmdocuments.MemoryReport, upl *ssmdocuments.StreamUpload) error {
	switch {
	case runErr != nil:
		return runErr
	case c.st.Command.Status != "Success":
		return errors.New(commandFailure(&c.st.Command))
	case report == nil:
		return errors.New("the instance's report did not arrive: the image cannot be checked, so it is not completed")
	case report.Status != ssmdocuments.StatusSucceeded || upl == nil:
		return fmt.Errorf("the instance reports %s (failure %s, part %d): %s", report.Status, orNone(c.st.Failure), c.st.FailedPart, report.Error)
	}
	return nil
}

// fail is the capture's one failure path. Before the upload opens there is
// nothing to undo, and nothing to record but the sealing-key command if it
// ran. Once it is open, an upload whose image was not completed is aborted,
// why says so in the record, and the record keeps what the capture did.
func (c *memoryCapture) fail(ctx context.Context, why string, err error) Result {
	if c.st.Upload == nil {
		if c.st.SealingKey.CommandID != "" {
			// The sealing-key command ran: the record keeps it.
			return Result{Status: evidence.StatusFailed, Err: err, After: c.st}
		}
		return Failed(err, nil)
	}
	if c.st.Image == nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		c.st.Aborted = why
		if err := c.rcv.AbortUpload(actx, c.st.Upload); err != nil {
			c.st.Aborted += " (abort failed: " + err.Error() + "; the bucket's lifecycle rule removes incomplete uploads)"
		}
	}
	return Result{Status: evidence.StatusFailed, Err: err, After: c.st}
}

// askCompressedHash sets the document's HashCompressed parameter (the
// Linux document has it; Windows always hashes): the instance hashes the
// compressed image too only when the image will not be read back and hashed
// in the forensics account. With the read-back, the stored bytes are proved
// by S3's check of every part's Content-MD5, the multipart ETag and the
// read-back hash; the instance's SHA-256 of the raw stream stays the custody
// anchor. The instance's SHA-256 of the compressed stream costs it about 6%
// of the CPU of a capture (BENCHMARKS.md).
func (c *memoryCapture) askCompressedHash(params map[string]string) {
	for _, p := range c.doc.Parameters {
		if p.Name == "HashCompressed" {
			params[p.Name] = "on"
			if readsBack(c.env) {
				params[p.Name] = "off"
			}
		}
	}
}

// readsBack reports whether the stored image is read back and hashed in the
// forensics account (the playbook's verify_image, true unless set false).
func readsBack(env *Env) bool {
	v := env.Collection.Memory.VerifyImage
	return v == nil || *v
}

// reason is what a completed capture says in the record.
func (c *memoryCapture) reason(report *ssmdocuments.MemoryReport, upl *ssmdocuments.StreamUpload) string {
	image, tool := c.st.Image, report.Tool.Name
	if report.Tool.MemorySource != "" {
		tool += " from " + report.Tool.MemorySource
	}
	reason := fmt.Sprintf("%s version %s: %s, %d MiB of memory as %d MiB %s in %d parts, SHA-256 %s",
		c.docName, c.st.Command.DocumentVersion, tool, upl.RawBytes>>20, image.Size>>20, upl.Compression, upl.PartCount, hashedBy(image))
	if len(c.st.Skipped) > 0 || len(c.st.ZeroFilled) > 0 {
		reason += fmt.Sprintf("; %d range(s) skipped and %d zero-filled (see the record)", len(c.st.Skipped), len(c.st.ZeroFilled))
	}
	return reason
}

// complete checks the parts S3 holds against the report, completes the
// upload, checks the object's ETag and reads the image back for its SHA-256.
func (c *memoryCapture) complete(ctx context.Context, upl *ssmdocuments.StreamUpload, report *ssmdocuments.MemoryReport) (*evidence.Artifact, error) {
	stored, err := c.rcv.UploadedParts(ctx, c.st.Upload)
	if err != nil {
		return nil, err
	}
	reported, perr := upl.CompletedParts()
	if perr != nil && len(upl.Parts) > 0 {
		return nil, fmt.Errorf("the instance's part list: %w", perr)
	}
	// perr != nil: only the summary arrived (stdout, without the part list).
	if err := compareParts(stored, reported, perr == nil, upl).err(); err != nil {
		return nil, err
	}
	got, err := c.rcv.CompleteUpload(ctx, c.st.Upload, stored)
	if err != nil {
		return nil, err
	}
	var problems mismatches
	if perr == nil && !strings.HasPrefix(got.Encryption, "aws:kms") {
		// With SSE-KMS, S3's ETag is not made of the parts' MD5.
		want, err := ssmdocuments.MultipartETag(reported)
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			problems.check("image ETag (from the parts' Content-MD5)", want, got.ETag)
		}
	}
	a, err := c.storedImage(ctx, upl, report, got)
	if err != nil {
		return nil, err
	}
	if a.HashedBy != "instance" && upl.CompressedSHA256 != "" {
		problems.check("image SHA-256", upl.CompressedSHA256, a.SHA256)
	}
	if a.Size != upl.CompressedBytes {
		problems = append(problems, fmt.Sprintf("image size: the instance reported %d bytes, the store holds %d", upl.CompressedBytes, a.Size))
	}
	return &a, problems.err()
}

// compareParts checks the parts the store holds against the instance's
// report: each part's number, size and ETag when the report lists them
// (listed), else only their count and total size (the summary).
func compareParts(stored []evidence.UploadedPart, reported []ssmdocuments.Part, listed bool, upl *ssmdocuments.StreamUpload) mismatches {
	var problems mismatches
	if !listed {
		var total int64
		for _, p := range stored {
			total += p.Size
		}
		if len(stored) != upl.PartCount || total != upl.CompressedBytes {
			problems = append(problems, fmt.Sprintf("the instance reported %d parts of %d bytes in all, the store holds %d parts of %d bytes",
				upl.PartCount, upl.CompressedBytes, len(stored), total))
		}
		return problems
	}
	if len(stored) != len(reported) {
		problems = append(problems, fmt.Sprintf("the instance reported %d parts, the store holds %d", len(reported), len(stored)))
	}
	for i := range min(len(stored), len(reported)) {
		r, p := reported[i], stored[i]
		if int(p.Number) != r.PartNumber || p.Size != r.Size {
			problems = append(problems, fmt.Sprintf("part %d: the instance reported %d bytes, the store holds part %d of %d bytes", r.PartNumber, r.Size, p.Number, p.Size))
			continue
		}
		problems.check(fmt.Sprintf("part %d ETag", r.PartNumber), r.ETag, p.ETag)
	}
	return problems
}

// storedImage records the completed image as an artifact: read back and
// hashed in the forensics account, unless the playbook turned that off
// (VerifyImage), when the record keeps the instance's hash and says so
// (HashedBy "instance"). An instance that reported no hash of the image
// (HashCompressed off, or an older engine's parameters) has its image read
// back whatever the playbook says: no image is recorded unhashed.
func (c *memoryCapture) storedImage(ctx context.Context, upl *ssmdocuments.StreamUpload, report *ssmdocuments.MemoryReport, got evidence.Received) (evidence.Artifact, error) {
	env, cmd := c.env, c.st.Command
	a := evidence.Artifact{
		Path: c.st.Upload.Path, ContentType: "application/octet-stream", Step: c.step.Name(),
		Source: fmt.Sprintf("memory of %s by %s (%s version %s, command %s)", env.Target.InstanceID(), report.Tool.Name,
			cmd.Document, cmd.DocumentVersion, cmd.CommandID),
		ReportedSHA256: upl.CompressedSHA256, DecodedSHA256: upl.RawSHA256, DecodedSize: upl.RawBytes,
	}
	if upl.Compression != "none" {
		a.Encoding = upl.Compression
	}
	if !readsBack(env) && upl.CompressedSHA256 != "" {
		a.SHA256, a.Size, a.HashedBy = upl.CompressedSHA256, got.Size, "instance"
		a.VersionID, a.Encryption, a.CollectedAt = got.VersionID, got.Encryption, env.now()
		env.addArtifact(a)
		return a, nil
	}
	env.progress(ctx, fmt.Sprintf("reading back %d MiB to hash the image", got.Size>>20), 0, 0)
	return env.recordReceived(ctx, c.rcv, a)
}

// report keeps the instance's report, the object it uploaded (which holds
// every part), and takes into the record what it says of the tool, the
// attempts and the ranges it could not read.
func (c *memoryCapture) report(ctx context.Context) *ssmdocuments.MemoryReport {
	var r *ssmdocuments.MemoryReport
	c.st.Report, r = receiveReport(ctx, c.env, c.rcv, evidence.Artifact{Path: c.reportPath, ContentType: "application/json",
		Step: c.step.Name(), Source: "report of " + c.docName + " from the instance"}, ssmdocuments.ParseMemoryReport)
	if r == nil {
		return nil
	}
	c.st.Tool, c.st.Attempts, c.st.Warnings = &r.Tool, r.Attempts, append(c.st.Warnings, r.Warnings...)
	if r.Ranges != nil {
		c.st.Skipped = r.Ranges.Skipped
	}
	if r.Lime != nil {
		c.st.ZeroFilled = r.Lime.ZeroFilled
	}
	return r
}

// reportedUpload is the upload as the report has it: with every part when
// the full report arrived, else the summary.
func reportedUpload(r *ssmdocuments.MemoryReport) *ssmdocuments.StreamUpload {
	switch {
	case r == nil:
		return nil
	case r.Upload != nil:
		return r.Upload
	default:
		return r.UploadSummary
	}
}

func hashedBy(a *evidence.Artifact) string {
	return a.SHA256 + " (" + hashProvenance(a) + ")"
}

// hashProvenance says who hashed the image and against what.
func hashProvenance(a *evidence.Artifact) string {
	switch {
	case a.HashedBy == "instance":
		return "as the instance reported it; not read back"
	case a.ReportedSHA256 == "":
		return "read back; the instance hashed the raw stream only"
	}
	return "read back and matching the instance's"
}

// memoryTools are the tool parameters of one capture.
type memoryTools struct {
	params map[string]string     // Tool, digests
	urls   map[string]StagedTool // URL parameter -> staged tool
}

// tools picks the staged tools for the platform and architecture.
func (MemoryCapture) tools(platform string, inst ec2types.Instance, m MemorySettings) (memoryTools, error) {
	t := memoryTools{params: map[string]string{}, urls: map[string]StagedTool{}}
	if platform == "Windows" {
		w, ok := m.Tools["winpmem-x64"]
		if !ok {
			return t, errors.New("no WinPmem staged: the playbook's collection.memory.tools needs winpmem-x64 (a key in the staging bucket and its SHA-256)")
		}
		t.urls["WinpmemUrl"], t.params["WinpmemSha256"] = w, w.SHA256
		return t, nil
	}
	tool := m.Tool
	if tool == "" {
		tool = "auto"
	}
	t.params["Tool"] = tool
	arch := "x86_64"
	if inst.Architecture == ec2types.ArchitectureValuesArm64 || inst.Architecture == ec2types.ArchitectureValuesArm64Mac {
		arch = "aarch64"
	}
	if tool != "lime" {
		if a, ok := m.Tools["avml-"+arch]; ok {
			t.urls["AvmlUrl"], t.params["AvmlSha256"] = a, a.SHA256
		} else if tool == "avml" {
			return t, fmt.Errorf("no AVML staged for %s: the playbook's collection.memory.tools needs avml-%s", arch, arch)
		}
	}
	if tool != "avml" {
		// A LiME module is built for one kernel; the kernel of the instance
		// is not known before the command runs, so one module is passed and
		// the script checks its vermagic against the running kernel.
		var limes []string
		for name := range m.Tools {
			if strings.HasPrefix(name, "lime-") {
				limes = append(limes, name)
			}
		}
		sort.Strings(limes)
		if len(limes) > 0 {
			l := m.Tools[limes[0]]
			t.urls["LimeUrl"], t.params["LimeSha256"] = l, l.SHA256
			t.params["LimeTimeoutMs"] = strconv.Itoa(m.LimeTimeoutMs)
		}
	}
	if len(t.urls) == 0 {
		return t, fmt.Errorf("no memory tool staged for %s: the playbook's collection.memory.tools needs avml-%s (or a lime-<kernel> module)", arch, arch)
	}
	return t, nil
}

// memorySize returns the memory of the instance's type.
func memorySize(ctx context.Context, api instanceTypeAPI, inst ec2types.Instance) (int64, error) {
	it := inst.InstanceType
	out, err := api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{it}})
	if err != nil {
		return 0, fmt.Errorf("memory size of instance type %s: %w", it, err)
	}
	for _, t := range out.InstanceTypes {
		if t.MemoryInfo != nil && aws.ToInt64(t.MemoryInfo.SizeInMiB) > 0 {
			return aws.ToInt64(t.MemoryInfo.SizeInMiB) << 20, nil
		}
	}
	return 0, fmt.Errorf("memory size of instance type %s: not reported", it)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Describe: the step records only an after (the command and what arrived);
// a before, if one is ever recorded, is shown as recorded.
func (s MemoryCapture) Describe() Description {
	d := RawState(s.Name())
	d.OnFailure = "No verified memory image: injected code, connections, keys and processes that deleted " +
		"their binaries are not preserved. An image that did not arrive whole was not completed; a completed " +
		"image whose hash does not match the instance's report is kept and recorded as such."
	d.OnSkip = "No memory image was collected (see the reason)."
	return d
}
