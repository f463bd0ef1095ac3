// Package investigatetest stands in for SSM and the agent of an analysis
// instance in the tests of responder investigate (the engine's and the
// CLI's).
package investigatetest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	mu     sync.Mutex
	Writes bool // report a mount whose write counters moved
	cmds   map[string]*ssm.SendCommandInput
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

func (a *Agent) GetCommandInvocation(_ context.Context, in *ssm.GetCommandInvocationInput, _ ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	a.mu.Lock()
	cmd := a.cmds[aws.ToString(in.CommandId)]
	a.mu.Unlock()
	if cmd == nil {
		return nil, &smithy.GenericAPIError{Code: "InvocationDoesNotExist"}
	}
	var mounts []string
	for _, e := range strings.Split(cmd.Parameters["Volumes"][0], ",") {
		vol, dev, _ := strings.Cut(e, ":")
		after := "0:0"
		if a.Writes {
			after = "3:24"
		}
		mounts = append(mounts, fmt.Sprintf(`{"volume_id":%q,"device":%q,"fstype":"ext4","mount_point":"/mnt/evidence/%s/disk","options":"ro,norecovery","read_only":true,"writes_before":"0:0","writes_after":%q,"unchanged":%v}`,
			vol, strings.Replace(dev, "/dev/sd", "/dev/xvd", 1), vol, after, !a.Writes))
	}
	stdout := fmt.Sprintf(`{"schema":%q,"status":"ok","mounts":[%s],"errors":[]}`, ssmdocuments.MountSchema, strings.Join(mounts, ","))
	return &ssm.GetCommandInvocationOutput{Status: ssmtypes.CommandInvocationStatusSuccess, DocumentName: cmd.DocumentName,
		DocumentVersion: aws.String("1"), StandardOutputContent: aws.String(stdout)}, nil
}
