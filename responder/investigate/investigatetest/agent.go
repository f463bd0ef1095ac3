// Package investigatetest stands in for SSM and the agent of an analysis
// instance in the tests of responder investigate (the engine's and the
// CLI's).
package investigatetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/responder-ir/responder/responder/cloud"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

var _ cloud.InvestigationSSM = (*Agent)(nil)

// Agent stands in for SSM and the agent on the analysis instance (the fake
// cloud's agent runs the member documents; the analysis documents run for
// real on loop devices in ssm-documents/mount_test.go). It checks every
// parameter against the document's allowedPattern as SendCommand does,
// and reports a mount of each volume it is given.
type Agent struct {
	mu sync.Mutex
	// Writes reports a mount whose write counters moved.
	Writes bool
	// S3 is where the analysis jobs store their outputs (the evidence
	// bucket's S3); nil, or NoTools, reports the tools missing.
	S3      cloud.S3
	NoTools bool
	// LieHash reports a SHA-256 that is not that of the stored output.
	LieHash bool
	// Allowed, when set, decides each S3 request the instance makes with
	// its role's credentials (the fetch's GetObject, the jobs' PutObject):
	// a refused one fails as AccessDenied, as the aws CLI reports it.
	Allowed func(instanceID, action, resource string) (bool, error)
	cmds    map[string]*ssm.SendCommandInput
}

func (a *Agent) DescribeInstanceInformation(_ context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	out := &ssm.DescribeInstanceInformationOutput{}
	for _, f := range in.Filters {
		for _, id := range f.Values {
			out.InstanceInformationList = append(out.InstanceInformationList, ssmtypes.InstanceInformation{InstanceId: aws.String(id), PingStatus: ssmtypes.PingStatusOnline})
		}
	}
	return out, nil
}

func (a *Agent) SendCommand(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	doc, ok := ssmdocuments.Lookup(aws.ToString(in.DocumentName))
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "InvalidDocument"}
	}
	for _, p := range doc.DocumentParameters() {
		v := in.Parameters[p.Name]
		if len(v) != 1 || !regexp.MustCompile(p.AllowedPattern).MatchString(v[0]) {
			return nil, &smithy.GenericAPIError{Code: "InvalidParameters", Message: p.Name}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmds == nil {
		a.cmds = map[string]*ssm.SendCommandInput{}
	}
	id := fmt.Sprintf("cmd-%d", len(a.cmds)+1)
	a.cmds[id] = in
	return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String(id)}}, nil
}

func (a *Agent) GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, _ ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	a.mu.Lock()
	cmd := a.cmds[aws.ToString(in.CommandId)]
	a.mu.Unlock()
	if cmd == nil {
		return nil, &smithy.GenericAPIError{Code: "InvocationDoesNotExist"}
	}
	p := func(name string) string {
		if v := cmd.Parameters[name]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	var stdout string
	switch aws.ToString(cmd.DocumentName) {
	case ssmdocuments.AnalysisMount:
		stdout = a.mount(p("Volumes"))
	case ssmdocuments.AnalysisFetch:
		if denied := a.denied(aws.ToString(in.InstanceId), "s3:GetObject", p("Bucket"), p("Key")); denied != "" {
			stdout = fmt.Sprintf(`{"schema":%q,"status":"failed","error":%q}`, ssmdocuments.FetchSchema, "download failed: "+denied)
			break
		}
		stdout = fmt.Sprintf(`{"schema":%q,"status":"ok","path":"%s/memory-image","sha256":%q,"matches":true,"decoded_path":"%s/memory.lime"}`,
			ssmdocuments.FetchSchema, p("Destination"), p("Sha256"), p("Destination"))
	case ssmdocuments.AnalysisJob:
		var err error
		if stdout, err = a.job(ctx, aws.ToString(in.InstanceId), p("Tool"), p("Bucket"), p("Prefix"), p("Plugins")); err != nil {
			return nil, err
		}
	}
	return &ssm.GetCommandInvocationOutput{Status: ssmtypes.CommandInvocationStatusSuccess, DocumentName: cmd.DocumentName,
		DocumentVersion: aws.String("1"), StandardOutputContent: aws.String(stdout)}, nil
}

// mount reports each volume mounted read-only, its counters unmoved (or
// moved, with Writes).
func (a *Agent) mount(volumes string) string {
	var mounts []string
	for _, e := range strings.Split(volumes, ",") {
		vol, dev, _ := strings.Cut(e, ":")
		after := "0:0"
		if a.Writes {
			after = "3:24"
		}
		mounts = append(mounts, fmt.Sprintf(`{"volume_id":%q,"device":%q,"fstype":"ext4","mount_point":"/mnt/evidence/%s/disk","options":"ro,norecovery","read_only":true,"writes_before":"0:0","writes_after":%q,"unchanged":%v}`,
			vol, strings.Replace(dev, "/dev/sd", "/dev/xvd", 1), vol, after, !a.Writes))
	}
	return fmt.Sprintf(`{"schema":%q,"status":"ok","mounts":[%s],"errors":[]}`, ssmdocuments.MountSchema, strings.Join(mounts, ","))
}

// job stores one output per Volatility plugin (or a plaso timeline) in the
// bucket through S3, as the instance would, and reports their SHA-256;
// without S3 or with NoTools it reports the tool missing.
func (a *Agent) job(ctx context.Context, instanceID, tool, bucket, prefix, plugins string) (string, error) {
	if a.S3 == nil || a.NoTools {
		return fmt.Sprintf(`{"schema":%q,"status":"skipped","tool":%q,"reason":"%s is not installed on the analysis image","outputs":[]}`,
			ssmdocuments.JobSchema, tool, tool), nil
	}
	// Each run stores its output and its log, as analysis-job.sh does.
	runs := map[string]string{"log2timeline": "plaso/timeline.plaso"}
	if tool == "volatility" {
		runs = map[string]string{}
		for _, pl := range strings.Split(plugins, ",") {
			runs[pl] = "volatility/" + pl + ".json"
		}
	}
	var outputs, reports []string
	for name, out := range runs {
		for _, n := range []string{out, out + ".log"} {
			if denied := a.denied(instanceID, "s3:PutObject", bucket, prefix+n); denied != "" {
				return fmt.Sprintf(`{"schema":%q,"status":"failed","tool":%q,"reason":%q,"outputs":[]}`, ssmdocuments.JobSchema, tool, "upload failed: "+denied), nil
			}
			o, err := a.put(ctx, tool, bucket, prefix+n)
			if err != nil {
				return "", err
			}
			outputs = append(outputs, o)
		}
		reports = append(reports, fmt.Sprintf(`{"name":%q,"exit_status":0,"status":"ok","output":%q,"log":%q}`, name, prefix+out, prefix+out+".log"))
	}
	return fmt.Sprintf(`{"schema":%q,"status":"ok","tool":%q,"version":"stand-in","reason":"","runs":[%s],"outputs":[%s]}`,
		ssmdocuments.JobSchema, tool, strings.Join(reports, ","), strings.Join(outputs, ",")), nil
}

// put stores one output once (If-None-Match) and returns its report entry.
func (a *Agent) put(ctx context.Context, tool, bucket, key string) (string, error) {
	body := []byte(`{"tool":"` + tool + `","output":"` + key + `"}`)
	if _, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		IfNoneMatch: aws.String("*")}); err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	reported := hex.EncodeToString(sum[:])
	if a.LieHash {
		reported = strings.Repeat("0", 64)
	}
	return fmt.Sprintf(`{"key":%q,"sha256":%q,"size":%d}`, key, reported, len(body)), nil
}

// denied is the error the aws CLI prints when the instance's role may not
// make the request, "" when it may.
func (a *Agent) denied(instanceID, action, bucket, key string) string {
	if a.Allowed == nil {
		return ""
	}
	ok, err := a.Allowed(instanceID, action, "arn:aws:s3:::"+bucket+"/"+key)
	switch {
	case err != nil:
		return "An error occurred (AccessDenied): " + err.Error()
	case !ok:
		return "An error occurred (AccessDenied) when calling the " + strings.TrimPrefix(action, "s3:") + " operation: Access Denied"
	}
	return ""
}
