package investigate

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// online waits until the analysis instance is an online managed node (its
// agent reaches SSM through the VPC's endpoints with the instance profile).
func (j *startJob) online(ctx context.Context) bool {
	err := poll(ctx, j.req.PollInterval, "SSM agent of "+j.ws.InstanceID, func() (bool, error) {
		out, err := j.iv.SSM.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{j.ws.InstanceID}}},
		})
		if err != nil {
			return false, fmt.Errorf("describe instance information: %w", err)
		}
		for _, n := range out.InstanceInformationList {
			if aws.ToString(n.InstanceId) == j.ws.InstanceID && n.PingStatus == ssmtypes.PingStatusOnline {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		j.problem("the analysis instance is not a managed node, nothing was mounted: %v (check the instance profile, the VPC's ssm, ssmmessages and ec2messages endpoints, and the image's SSM Agent)", err)
		return false
	}
	return true
}

// command runs an analysis document on the instance and returns its
// standard output (the document's one-line JSON report). The run is
// recorded in the workspace with the document version SSM ran.
func (j *startJob) command(ctx context.Context, doc string, params map[string]string) (string, error) {
	run, err := j.sendDocument(ctx, doc, params)
	if err != nil {
		return "", err
	}
	defer func() { j.ws.Documents = append(j.ws.Documents, run) }()
	var out string
	err = poll(ctx, j.req.PollInterval, doc+" on "+j.ws.InstanceID, func() (bool, error) {
		done, o, err := j.invocation(ctx, &run)
		out = o
		return done, err
	})
	return out, err
}

// sendDocument sends an analysis document to the instance; nothing is sent
// when a value fails the document's allowedPattern.
func (j *startJob) sendDocument(ctx context.Context, doc string, params map[string]string) (evidence.DocumentRun, error) {
	d, ok := ssmdocuments.Lookup(doc)
	if !ok {
		return evidence.DocumentRun{}, fmt.Errorf("no document %s", doc)
	}
	values, err := d.SendCommandParameters(params, nil)
	if err != nil {
		return evidence.DocumentRun{}, err // allowedPattern refused a value: nothing is sent
	}
	out, err := j.iv.SSM.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String(doc), DocumentVersion: aws.String("$DEFAULT"),
		InstanceIds: []string{j.ws.InstanceID}, Parameters: values,
		Comment: aws.String(truncate("responder investigate "+j.ws.CaseID+" "+j.ws.ID, 100)),
	})
	if err != nil {
		return evidence.DocumentRun{}, fmt.Errorf("send %s: %w", doc, err)
	}
	return evidence.DocumentRun{Name: doc, CommandID: aws.ToString(out.Command.CommandId)}, nil
}

// invocation reads a sent command once: not done while it runs; done, its
// report (the last line of its standard output) when it ended.
func (j *startJob) invocation(ctx context.Context, run *evidence.DocumentRun) (bool, string, error) {
	got, err := j.iv.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
		CommandId: aws.String(run.CommandID), InstanceId: aws.String(j.ws.InstanceID),
	})
	if cloud.IsErrorCode(err, "InvocationDoesNotExist") {
		return false, "", nil // not visible yet, right after SendCommand
	}
	if err != nil {
		return false, "", fmt.Errorf("command %s: %w", run.CommandID, err)
	}
	run.Status = string(got.Status)
	switch got.Status {
	case ssmtypes.CommandInvocationStatusPending, ssmtypes.CommandInvocationStatusInProgress, ssmtypes.CommandInvocationStatusDelayed:
		return false, "", nil
	}
	run.Version = aws.ToString(got.DocumentVersion)
	stdout := strings.TrimSpace(aws.ToString(got.StandardOutputContent))
	if got.Status != ssmtypes.CommandInvocationStatusSuccess && stdout == "" {
		return true, "", fmt.Errorf("%s ended %s: %s", run.Name, got.Status, truncate(aws.ToString(got.StandardErrorContent), 300))
	}
	return true, lastLine(stdout), nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// mountReport is the report of Responder-AnalysisMount.
type mountReport struct {
	Schema string           `json:"schema"`
	Status string           `json:"status"`
	Error  string           `json:"error"`
	Mounts []evidence.Mount `json:"mounts"`
	Errors []string         `json:"errors"`
}

// mount mounts the attached working volumes read-only and records what the
// document proved of each.
func (j *startJob) mount(ctx context.Context) {
	params, ok := j.mountParams()
	if !ok {
		return
	}
	out, err := j.command(ctx, ssmdocuments.AnalysisMount, params)
	j.mounted(out, err)
}

// mountParams are the mount document's parameters: every attached working
// volume; false (a problem) when there is none.
func (j *startJob) mountParams() (map[string]string, bool) {
	var entries []string
	for _, v := range j.ws.Volumes {
		if v.Error == "" && v.VolumeID != "" {
			entries = append(entries, v.VolumeID+":"+v.Device)
		}
	}
	if len(entries) == 0 {
		j.problem("no working volume attached: nothing mounted")
		return nil, false
	}
	return map[string]string{
		"CaseId": j.ws.CaseID, "Volumes": strings.Join(entries, ","), "HashDevices": fmt.Sprint(j.req.HashDevices),
	}, true
}

// mounted records the mount document's report.
func (j *startJob) mounted(out string, err error) {
	if err != nil {
		j.problem("mount: %v", err)
		return
	}
	var rep mountReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Schema != ssmdocuments.MountSchema {
		j.problem("mount: the report is not %s: %v", ssmdocuments.MountSchema, err)
		return
	}
	if rep.Error != "" {
		j.problem("mount: %s", rep.Error)
	}
	j.ws.Mounts = rep.Mounts
	j.checkMounts(rep)
}

// checkMounts: every working volume has a mount, and every mount is read-only
// and unchanged (the document's own claim, kept with its counters).
func (j *startJob) checkMounts(rep mountReport) {
	proven := map[string]bool{}
	for _, mt := range rep.Mounts {
		switch {
		case mt.Error != "":
			j.problem("mount %s %s: %s", mt.VolumeID, mt.Device, mt.Error)
		case !mt.ReadOnly || !mt.Unchanged || mt.WritesBefore != mt.WritesAfter || mt.SHA256Before != mt.SHA256After:
			j.problem("mount %s %s: not proven read-only and unwritten (writes %s -> %s)", mt.VolumeID, mt.Device, mt.WritesBefore, mt.WritesAfter)
		default:
			proven[mt.VolumeID] = true
		}
	}
	for _, v := range j.ws.Volumes {
		if v.VolumeID != "" && v.Error == "" && !proven[v.VolumeID] {
			j.problem("volume %s: no filesystem mounted and proven unwritten", v.VolumeID)
		}
	}
}

// fetchReport is the report of Responder-AnalysisFetch.
type fetchReport struct {
	Schema  string `json:"schema"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Matches bool   `json:"matches"`
	// DecodedPath is the image decompressed, what Volatility reads.
	DecodedPath string `json:"decoded_path"`
}

// fetchMemory copies the case's newest memory image onto the instance and
// checks its SHA-256 against the record. A case without one is no problem;
// a case kept in a local folder cannot be reached by the instance.
func (j *startJob) fetchMemory(ctx context.Context) {
	img, params, ok := j.fetchParams()
	if !ok {
		return
	}
	if wait := time.Until(j.iv.accessSettled(j.ws)); wait > 0 {
		if err := sleep(ctx, wait); err != nil {
			j.fetched(img, "", fmt.Errorf("waiting for the evidence policy to settle: %w", err))
			return
		}
	}
	out, err := j.command(ctx, ssmdocuments.AnalysisFetch, params)
	j.fetched(img, out, err)
}

// fetchParams are the fetch document's parameters; false when there is
// nothing to fetch (no image, or one the instance cannot reach: a problem).
func (j *startJob) fetchParams() (evidence.Artifact, map[string]string, bool) {
	img, ok := memoryImage(j.m)
	if !ok {
		return img, nil, false
	}
	mf := &evidence.MemoryFetch{Artifact: img.Path}
	j.ws.Memory = mf
	bucket, key := s3Location(j.iv.Store.Location(j.ws.CaseID, img.Path))
	if bucket == "" {
		mf.Error = "the case is kept in a local folder, which the analysis instance cannot read: copy the image yourself"
		j.problem("memory image: %s", mf.Error)
		return img, nil, false
	}
	if ok, why := accessReady(j.ws); !ok {
		mf.Error = "not fetched: " + why
		j.problem("memory image: %s", mf.Error)
		return img, nil, false
	}
	encoding := img.Encoding
	if encoding == "" {
		encoding = "none"
	}
	return img, map[string]string{
		"CaseId": j.ws.CaseID, "Bucket": bucket, "Key": key, "Sha256": img.SHA256, "Encoding": encoding,
		"Destination": "/analysis/" + strings.ToLower(path.Base(j.ws.ID)),
	}, true
}

// fetched records the fetch document's report.
func (j *startJob) fetched(img evidence.Artifact, out string, err error) {
	mf := j.ws.Memory
	if mf == nil {
		mf = &evidence.MemoryFetch{Artifact: img.Path}
		j.ws.Memory = mf
	}
	var rep fetchReport
	if err == nil {
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || rep.Schema != ssmdocuments.FetchSchema {
			err = fmt.Errorf("the report is not %s", ssmdocuments.FetchSchema)
		}
	}
	mf.Path, mf.SHA256 = rep.DecodedPath, rep.SHA256
	if mf.Path == "" {
		mf.Path = rep.Path
	}
	mf.Matches = err == nil && rep.SHA256 == img.SHA256
	switch {
	case err != nil:
		mf.Error = err.Error()
	case rep.Error != "":
		mf.Error = rep.Error
	case !mf.Matches:
		mf.Error = fmt.Sprintf("the copy's SHA-256 %s is not the recorded %s", rep.SHA256, img.SHA256)
	}
	if mf.Error != "" {
		j.problem("memory image %s: %s", img.Path, mf.Error)
	}
}
