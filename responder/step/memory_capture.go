package step

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	Command     CommandRun                    `json:"command"`
	MemoryBytes int64                         `json:"memory_bytes"`
	PartSizeMiB int                           `json:"part_size_mib"`
	PartURLs    int                           `json:"part_urls"`
	Upload      *evidence.Upload              `json:"upload,omitempty"`
	Aborted     string                        `json:"aborted,omitempty"`
	Image       *evidence.Artifact            `json:"image,omitempty"`
	Report      *evidence.Artifact            `json:"report,omitempty"`
	Tool        *ssmdocuments.MemoryTool      `json:"tool,omitempty"`
	Attempts    []ssmdocuments.CaptureAttempt `json:"attempts,omitempty"`
	Skipped     []ssmdocuments.Range          `json:"ranges_skipped,omitempty"`
	ZeroFilled  []string                      `json:"ranges_zero_filled,omitempty"`
	Warnings    []string                      `json:"warnings,omitempty"`
	Failure     string                        `json:"failure,omitempty"`
	FailedPart  int                           `json:"failed_part,omitempty"`
}

func (s MemoryCapture) Run(ctx context.Context, env *Env) Result {
	node, why := env.ssmNode()
	if node == nil {
		return Skipped("no managed node to run on: "+why, nil)
	}
	rcv, err := evidence.AsReceiver(env.Clients.Store)
	if err != nil {
		return Failed(err, nil)
	}
	if env.Clients.Staging == nil || env.Clients.Presign == nil || env.Collection.StagingBucket == "" {
		return Failed(errors.New("memory capture needs a staging bucket (--staging-bucket) for the tools and the part URLs"), nil)
	}
	var docName string
	switch node.PlatformType {
	case "Linux":
		docName = ssmdocuments.LinuxMemoryCapture
	case "Windows":
		docName = ssmdocuments.WindowsMemoryCapture
	default:
		return Failed(fmt.Errorf("no memory capture document for platform %q", node.PlatformType), nil)
	}
	doc, _ := ssmdocuments.Lookup(docName)
	st := memoryState{}
	tools, err := s.tools(node.PlatformType, env.Target.Instance, env.Collection.Memory)
	if err != nil {
		return Failed(err, nil)
	}
	st.MemoryBytes, err = memorySize(ctx, env.Clients.EC2, env.Target.Instance)
	if err != nil {
		return Failed(err, nil)
	}
	preferred := env.Collection.Memory.PartSizeMiB
	if preferred == 0 {
		preferred = 64
	}
	if node.PlatformType == "Windows" {
		preferred = min(preferred, 2047) // a part is held in memory on Windows
	}
	st.PartSizeMiB, st.PartURLs, err = ssmdocuments.PlanParts(st.MemoryBytes, preferred)
	if err != nil {
		return Failed(err, nil)
	}
	if env.Target.DryRun {
		return Skipped(fmt.Sprintf("dry run: would run %s on %s: %d MiB of memory in up to %d parts of %d MiB",
			docName, env.Target.InstanceID(), st.MemoryBytes>>20, st.PartURLs, st.PartSizeMiB), nil)
	}
	if err := ensureDocument(ctx, env.Clients.SSM, doc, &st.Command); err != nil {
		return Failed(err, nil)
	}
	bound := env.collectionBound(time.Duration(env.Collection.CaptureTimeout.Or(DefaultCaptureTimeout)))
	ttl, warning, err := env.presignTTL(bound)
	if err != nil {
		return Failed(err, nil)
	}
	if warning != "" {
		st.Warnings = append(st.Warnings, warning)
	}

	base := fmt.Sprintf("%s/memory/run-%03d/", env.Target.InstanceID(), env.Target.Run)
	imagePath, reportPath := base+"memory-image", base+"report.json"
	params := map[string]string{
		"CaseId": env.Target.CaseID, "PartSizeMiB": strconv.Itoa(st.PartSizeMiB),
		"ExecutionTimeout": strconv.Itoa(max(60, int(time.Until(bound).Seconds()))),
	}
	if c := env.Collection.Memory.Compression; c != "" {
		params["Compression"] = c
	}
	for name, v := range tools.params {
		params[name] = v
	}
	// The tools: a presigned GET each, with the pinned digest.
	for param, tool := range tools.urls {
		url, err := env.Clients.Presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(env.Collection.StagingBucket), Key: aws.String(tool.Key)},
			s3.WithPresignExpires(ttl))
		if err != nil {
			return Failed(fmt.Errorf("presign the staged tool %s: %w", tool.Key, err), nil)
		}
		params[param] = url.URL
	}
	upload, err := rcv.BeginUpload(ctx, env.Target.CaseID, imagePath, "application/octet-stream")
	if err != nil {
		return Failed(err, nil)
	}
	st.Upload = upload
	abort := func(why string) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		st.Aborted = why
		if err := rcv.AbortUpload(actx, upload); err != nil {
			st.Aborted += " (abort failed: " + err.Error() + "; the bucket's lifecycle rule removes incomplete uploads)"
		}
	}
	partURLs, err := rcv.PresignParts(ctx, upload, st.PartURLs, ttl)
	if err != nil {
		abort("presigning failed")
		return Result{Status: evidence.StatusFailed, Err: err, After: st}
	}
	// The part URLs do not fit in SendCommand's parameters: they go to a
	// staging object the instance fetches; its lifecycle rule removes it.
	listKey := fmt.Sprintf("parts/%s/%s-run-%03d-%s.txt", env.Target.CaseID, env.Target.InstanceID(), env.Target.Run, randomHex(8))
	if _, err := env.Clients.Staging.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(env.Collection.StagingBucket), Key: aws.String(listKey),
		Body: strings.NewReader(string(ssmdocuments.PartURLList(partURLs))), ContentType: aws.String("text/plain"),
	}); err != nil {
		abort("the part URL list could not be staged")
		return Result{Status: evidence.StatusFailed, Err: fmt.Errorf("stage the part URL list in s3://%s: %w", env.Collection.StagingBucket, err), After: st}
	}
	listURL, err := env.Clients.Presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(env.Collection.StagingBucket), Key: aws.String(listKey)},
		s3.WithPresignExpires(ttl))
	if err != nil {
		abort("presigning failed")
		return Result{Status: evidence.StatusFailed, Err: fmt.Errorf("presign the part URL list: %w", err), After: st}
	}
	resultURL, err := rcv.PresignPut(ctx, env.Target.CaseID, reportPath, ttl)
	if err != nil {
		abort("presigning failed")
		return Result{Status: evidence.StatusFailed, Err: err, After: st}
	}
	params["PartUrlsUrl"], params["ResultUrl"] = listURL.URL, resultURL
	cmdParams, err := doc.SendCommandParameters(params)
	if err != nil {
		abort("invalid parameters")
		return Result{Status: evidence.StatusFailed, Err: err, After: st}
	}

	start := env.now()
	_, runErr := runCommand(ctx, env, env.Clients.SSM, &st.Command, cmdParams, bound, func(status string) {
		msg := fmt.Sprintf("%s %s (%s)", docName, status, env.now().Sub(start).Round(time.Second))
		if parts, err := rcv.UploadedParts(ctx, upload); err == nil {
			var done int64
			for _, p := range parts {
				done += p.Size
			}
			msg += fmt.Sprintf(": %d parts, %d MiB uploaded", len(parts), done>>20)
		}
		env.progress(ctx, msg, 0, 0)
	})

	// Whatever the command did, keep its report and decide about the image.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeout(env))
	defer cancel()
	report := s.report(rctx, env, rcv, reportPath, docName, &st)
	if report != nil {
		st.Tool, st.Attempts, st.Warnings = &report.Tool, report.Attempts, append(st.Warnings, report.Warnings...)
		if report.Ranges != nil {
			st.Skipped = report.Ranges.Skipped
		}
		if report.Lime != nil {
			st.ZeroFilled = report.Lime.ZeroFilled
		}
	}
	upl := reportedUpload(report)
	if upl != nil {
		st.Failure, st.FailedPart = upl.Failure, upl.FailedPart
	}
	fail := func(err error) Result {
		if st.Image == nil {
			abort(err.Error())
		}
		return Result{Status: evidence.StatusFailed, Err: fmt.Errorf("%s: %w", docName, err), After: st}
	}
	switch {
	case runErr != nil:
		return fail(runErr)
	case st.Command.Status != "Success":
		return fail(errors.New(commandFailure(&st.Command)))
	case report == nil:
		return fail(errors.New("the instance's report did not arrive: the image cannot be checked, so it is not completed"))
	case report.Status != ssmdocuments.StatusSucceeded || upl == nil:
		return fail(fmt.Errorf("the instance reports %s (failure %s, part %d): %s", report.Status, orNone(st.Failure), st.FailedPart, report.Error))
	}
	image, err := s.complete(rctx, env, rcv, upload, upl, report, &st)
	if image != nil {
		st.Image = image
	}
	if err != nil {
		return fail(err)
	}
	tool := report.Tool.Name
	if report.Tool.MemorySource != "" {
		tool += " from " + report.Tool.MemorySource
	}
	reason := fmt.Sprintf("%s version %s: %s, %d MiB of memory as %d MiB %s in %d parts, SHA-256 %s",
		docName, st.Command.DocumentVersion, tool, upl.RawBytes>>20, image.Size>>20, upl.Compression, upl.PartCount, hashedBy(image))
	if len(st.Skipped) > 0 || len(st.ZeroFilled) > 0 {
		reason += fmt.Sprintf("; %d range(s) skipped and %d zero-filled (see the record)", len(st.Skipped), len(st.ZeroFilled))
	}
	return OK(reason, nil, st)
}

// complete checks the parts S3 holds against the report, completes the
// upload, checks the object's ETag and reads the image back for its SHA-256.
func (s MemoryCapture) complete(ctx context.Context, env *Env, rcv evidence.Receiver, u *evidence.Upload,
	upl *ssmdocuments.StreamUpload, report *ssmdocuments.MemoryReport, st *memoryState) (*evidence.Artifact, error) {
	stored, err := rcv.UploadedParts(ctx, u)
	if err != nil {
		return nil, err
	}
	var problems mismatches
	reported, perr := upl.CompletedParts()
	switch {
	case perr != nil && len(upl.Parts) > 0:
		return nil, fmt.Errorf("the instance's part list: %w", perr)
	case perr != nil:
		// Only the summary arrived (stdout, without the part list): check
		// the count and the total.
		var total int64
		for _, p := range stored {
			total += p.Size
		}
		if len(stored) != upl.PartCount || total != upl.CompressedBytes {
			problems = append(problems, fmt.Sprintf("the instance reported %d parts of %d bytes in all, the store holds %d parts of %d bytes",
				upl.PartCount, upl.CompressedBytes, len(stored), total))
		}
	default:
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
	}
	if err := problems.err(); err != nil {
		return nil, err
	}
	got, err := rcv.CompleteUpload(ctx, u, stored)
	if err != nil {
		return nil, err
	}
	if perr == nil && !strings.HasPrefix(got.Encryption, "aws:kms") {
		want, err := ssmdocuments.MultipartETag(reported)
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			problems.check("image ETag (from the parts' Content-MD5)", want, got.ETag)
		}
	}
	a := evidence.Artifact{
		Path: u.Path, ContentType: "application/octet-stream", Step: s.Name(),
		Source: fmt.Sprintf("memory of %s by %s (%s version %s, command %s)", env.Target.InstanceID(), report.Tool.Name,
			st.Command.Document, st.Command.DocumentVersion, st.Command.CommandID),
		ReportedSHA256: upl.CompressedSHA256, DecodedSHA256: upl.RawSHA256, DecodedSize: upl.RawBytes,
	}
	if upl.Compression != "none" {
		a.Encoding = upl.Compression
	}
	if v := env.Collection.Memory.VerifyImage; v != nil && !*v {
		// Not read back: the record says whose hash it is.
		a.SHA256, a.Size, a.HashedBy = upl.CompressedSHA256, got.Size, "instance"
		a.VersionID, a.Encryption, a.CollectedAt = got.VersionID, got.Encryption, env.now()
		env.addArtifact(a)
	} else {
		env.progress(ctx, fmt.Sprintf("reading back %d MiB to hash the image", got.Size>>20), 0, 0)
		a, err = env.recordReceived(ctx, rcv, a)
		if err != nil {
			return nil, err
		}
		problems.check("image SHA-256", upl.CompressedSHA256, a.SHA256)
	}
	if a.Size != upl.CompressedBytes {
		problems = append(problems, fmt.Sprintf("image size: the instance reported %d bytes, the store holds %d", upl.CompressedBytes, a.Size))
	}
	return &a, problems.err()
}

// report keeps the instance's report: the object it uploaded (which holds
// every part), or else its standard output (which may leave the parts out).
func (s MemoryCapture) report(ctx context.Context, env *Env, rcv evidence.Receiver, path, docName string, st *memoryState) *ssmdocuments.MemoryReport {
	if a, err := env.recordReceived(ctx, rcv, evidence.Artifact{Path: path, ContentType: "application/json", Step: s.Name(),
		Source: "report of " + docName + " from the instance"}); err == nil {
		st.Report = &a
		if body, err := env.Clients.Store.Get(ctx, env.Target.CaseID, path); err == nil {
			if r, err := ssmdocuments.ParseMemoryReport(body); err == nil {
				return &r
			}
		}
	}
	return nil
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
	if a.HashedBy == "instance" {
		return a.SHA256 + " (as the instance reported it; not read back)"
	}
	return a.SHA256 + " (read back and matching the instance's)"
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
