package fakeaws

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/responder-ir/responder/responder/cloud"
)

// Managed nodes and Run Command.
//
// An instance is a managed node when SetAgent gave it an Agent that is
// Online. Its ping status (what DescribeInstanceInformation shows, and what
// SendCommand checks) is re-evaluated by each DescribeInstanceInformation
// call that covers it, from the instance's state, its instance profile (for
// an agent that NeedsProfile) and CanReach. The first evaluation happens in
// SetAgent, so a node set up healthy is Online at once.
//
// A command's invocation moves on each GetCommandInvocation (none of it
// happens in the background):
//
//	Pending     until the agent is live (running, profile if needed, SSM
//	            reachable, warm-up over); TimedOut/DeliveryTimedOut once
//	            TimeoutSeconds + the step's execution timeout have passed
//	            since SendCommand (as the Systems Manager User Guide
//	            describes delivery timeouts)
//	InProgress  for Agent.PollsToFinish polls (the poll that delivers it is
//	            the first); TimedOut/ExecutionTimedOut once the step's
//	            timeoutSeconds have passed since it started; it finishes
//	            only while the agent is live (a cut-off agent cannot report)
//	Success / Failed   at the poll after that: the fake agent runs the
//	            document then (agent_run.go), outside the lock, and the
//	            poll answers when it has ended
//	Cancelled   by CancelCommand, from Pending or InProgress

// commandIDPattern is the form of SSM command IDs (a UUID).
var commandIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// SSM's output limits in GetCommandInvocation.
const (
	maxStdout = 24000
	maxStderr = 8000
)

// command is a SendCommand to one instance.
type command struct {
	ID              string
	DocumentName    string
	DocumentVersion string // as asked ("$DEFAULT" when not given)
	ResolvedVersion int
	DocumentHash    string
	InstanceID      string
	Parameters      map[string][]string // as sent
	Comment         string
	TimeoutSeconds  int32
	Requested       time.Time
	Seq             int
	// Inv is the invocation's progress. GetCommandInvocation, a read,
	// advances it, so StateDigest leaves it out.
	Inv invocation `json:"-"`
}

// invocation is the progress of a command on its instance.
type invocation struct {
	Status       ssmtypes.CommandInvocationStatus
	Details      string
	Lag          int // InvocationDoesNotExist answers still to give
	Polls        int // polls seen InProgress
	Started      time.Time
	Ended        time.Time
	ResponseCode int32
	Stdout       string
	Stderr       string
	Running      bool // the agent's work is being done by a poll
}

func (inv *invocation) terminal() bool {
	switch inv.Status {
	case ssmtypes.CommandInvocationStatusPending, ssmtypes.CommandInvocationStatusInProgress:
		return false
	}
	return true
}

func (inv *invocation) finish(status ssmtypes.CommandInvocationStatus, details string, at time.Time) {
	inv.Status, inv.Details, inv.Ended = status, details, at
}

// CommandRecord is a command as Commands returns it, for tests to inspect:
// what was sent (parameters included) and how it went (output untruncated).
type CommandRecord struct {
	CommandID       string
	DocumentName    string
	DocumentVersion string // as SendCommand asked for it; "$DEFAULT" when it did not
	ResolvedVersion int    // the document version it runs
	DocumentHash    string // hex SHA-256 of that version's content
	InstanceID      string
	Parameters      map[string][]string
	Comment         string
	TimeoutSeconds  int32
	RequestedAt     time.Time
	Status          ssmtypes.CommandInvocationStatus
	StatusDetails   string
	ResponseCode    int32
	Stdout          string
	Stderr          string
}

// Commands returns every command sent to the account, in the order sent.
func (c *Cloud) Commands() []CommandRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []CommandRecord
	for _, cmd := range sortedBySeq(c.st.Commands, func(cmd *command) int { return cmd.Seq }) {
		params := map[string][]string{}
		for k, v := range cmd.Parameters {
			params[k] = slices.Clone(v)
		}
		out = append(out, CommandRecord{
			CommandID:       cmd.ID,
			DocumentName:    cmd.DocumentName,
			DocumentVersion: cmd.DocumentVersion,
			ResolvedVersion: cmd.ResolvedVersion,
			DocumentHash:    cmd.DocumentHash,
			InstanceID:      cmd.InstanceID,
			Parameters:      params,
			Comment:         cmd.Comment,
			TimeoutSeconds:  cmd.TimeoutSeconds,
			RequestedAt:     cmd.Requested,
			Status:          cmd.Inv.Status,
			StatusDetails:   cmd.Inv.Details,
			ResponseCode:    cmd.Inv.ResponseCode,
			Stdout:          cmd.Inv.Stdout,
			Stderr:          cmd.Inv.Stderr,
		})
	}
	return out
}

// agentLiveLocked reports whether an instance's agent is connected to SSM
// now: online, the instance running, an instance profile when it needs one,
// SSM reachable, and no warm-up left.
func (c *Cloud) agentLiveLocked(inst *instance, a *agentState) bool {
	return a.healthyLocked(c, inst) && a.warmup == 0
}

// healthyLocked is agentLiveLocked without the warm-up.
func (a *agentState) healthyLocked(c *Cloud, inst *instance) bool {
	return a.cfg.Online && inst.State == ec2types.InstanceStateNameRunning &&
		(!a.cfg.NeedsProfile || inst.AssociationID != "") && c.canReachSSMLocked(inst)
}

// evaluateLocked updates the node's ping status as a DescribeInstanceInformation
// call sees it (see the top of this file).
func (c *Cloud) evaluateLocked(inst *instance, a *agentState) {
	if !a.healthyLocked(c, inst) {
		if a.registered {
			a.ping = ssmtypes.PingStatusConnectionLost
			if inst.State == ec2types.InstanceStateNameTerminated {
				a.ping = ssmtypes.PingStatusInactive
			}
		}
		return
	}
	if a.warmup > 0 {
		a.warmup--
		return
	}
	a.registered, a.ping, a.lastPing = true, ssmtypes.PingStatusOnline, c.now()
}

// profileAssociatedLocked starts the warm-up of an agent that needs an
// instance profile: it connects OnlineAfterCalls DescribeInstanceInformation
// calls later (at once when zero).
func (c *Cloud) profileAssociatedLocked(inst *instance) {
	a, ok := c.agents[inst.ID]
	if !ok || !a.cfg.NeedsProfile {
		return
	}
	a.warmup = max(a.cfg.OnlineAfterCalls, 0)
	if a.warmup == 0 && a.healthyLocked(c, inst) {
		a.registered, a.ping, a.lastPing = true, ssmtypes.PingStatusOnline, c.now()
	}
}

// profileRemovedLocked loses the connection of an agent that needs an
// instance profile.
func (c *Cloud) profileRemovedLocked(instanceID string) {
	a, ok := c.agents[instanceID]
	if !ok || !a.cfg.NeedsProfile {
		return
	}
	a.warmup = 0
	if a.registered {
		a.ping = ssmtypes.PingStatusConnectionLost
	}
}

// instanceInfoFilterKeys are the filter keys DescribeInstanceInformation
// supports here.
var instanceInfoFilterKeys = map[string]bool{"InstanceIds": true, "PingStatus": true, "PlatformTypes": true, "ResourceType": true}

// DescribeInstanceInformation lists the managed nodes: the instances whose
// agent has registered (see SetAgent). Nodes that are not managed are simply
// absent, as on AWS. Filters and InstanceInformationFilterList support the
// keys InstanceIds, PingStatus, PlatformTypes and ResourceType; others answer
// InvalidFilterKey. Each call re-evaluates the ping status of the nodes it
// covers (see the top of this file). Pagination is not modelled.
func (s *SSM) DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, _ ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error) {
	if in == nil {
		in = &ssm.DescribeInstanceInformationInput{}
	}
	c := s.c
	out := &ssm.DescribeInstanceInformationOutput{}
	err := c.call(ctx, serviceSSM, "DescribeInstanceInformation", false, &out.ResultMetadata, func() (func(), error) {
		filters := map[string][][]string{}
		for _, f := range in.Filters {
			key := aws.ToString(f.Key)
			if !instanceInfoFilterKeys[key] {
				return nil, apiError("InvalidFilterKey", "The filter key %s is not valid.", key)
			}
			if len(f.Values) == 0 {
				return nil, apiError("InvalidInstanceInformationFilterValue", "The filter %s needs at least one value.", key)
			}
			filters[key] = append(filters[key], f.Values)
		}
		for _, f := range in.InstanceInformationFilterList {
			key := string(f.Key)
			if !instanceInfoFilterKeys[key] {
				return nil, apiError("InvalidFilterKey", "The filter key %s is not valid.", key)
			}
			if len(f.ValueSet) == 0 {
				return nil, apiError("InvalidInstanceInformationFilterValue", "The filter %s needs at least one value.", key)
			}
			filters[key] = append(filters[key], f.ValueSet)
		}
		return func() {
			out.InstanceInformationList = []ssmtypes.InstanceInformation{}
			for _, inst := range sortedBySeq(c.st.Instances, func(i *instance) int { return i.Seq }) {
				a, ok := c.agents[inst.ID]
				if !ok || !matchAll(filters["InstanceIds"], inst.ID) {
					continue
				}
				c.evaluateLocked(inst, a)
				if !a.registered {
					continue
				}
				info := c.renderNodeLocked(inst, a)
				if matchAll(filters["PingStatus"], string(info.PingStatus)) &&
					matchAll(filters["PlatformTypes"], string(info.PlatformType)) &&
					matchAll(filters["ResourceType"], string(info.ResourceType)) {
					out.InstanceInformationList = append(out.InstanceInformationList, info)
				}
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// matchAll reports whether v is among the values of every filter.
func matchAll(filters [][]string, v string) bool {
	for _, values := range filters {
		if !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

func (c *Cloud) renderNodeLocked(inst *instance, a *agentState) ssmtypes.InstanceInformation {
	host := c.hostLocked(inst, a.cfg)
	info := ssmtypes.InstanceInformation{
		InstanceId:       aws.String(inst.ID),
		PingStatus:       a.ping,
		PlatformType:     ssmtypes.PlatformType(a.cfg.PlatformType),
		PlatformName:     aws.String(a.cfg.PlatformName),
		PlatformVersion:  aws.String(a.cfg.PlatformVersion),
		AgentVersion:     aws.String(a.cfg.AgentVersion),
		IsLatestVersion:  aws.Bool(false),
		LastPingDateTime: aws.Time(a.lastPing),
		ResourceType:     ssmtypes.ResourceTypeEc2Instance,
		ComputerName:     aws.String(host.Hostname),
		IPAddress:        aws.String(host.IP),
		SourceId:         aws.String(inst.ID),
		SourceType:       ssmtypes.SourceTypeAwsEc2Instance,
	}
	if assoc, ok := c.st.Associations[inst.AssociationID]; ok {
		// IAM is not modelled: the role is named like the profile.
		info.IamRole = aws.String(assoc.ProfileArn[strings.LastIndex(assoc.ProfileArn, "/")+1:])
	}
	return info
}

// notValidInstance is SendCommand's answer for an instance that is not an
// online managed node.
func (c *Cloud) notValidInstance(id string) error {
	return apiError("InvalidInstanceId", "Instances [[%s]] not in a valid state for account %s", id, c.Account)
}

// SendCommand runs a Command document on one managed node. It checks, as
// SSM does: the document and version (InvalidDocument,
// InvalidDocumentVersion; DocumentHash, when given, must be the version's),
// the instance (InvalidInstanceId unless it is a managed node whose ping
// status is Online), the parameters against the document's (InvalidParameters
// for an unknown or missing required parameter or a value outside its
// allowedPattern), TimeoutSeconds (30 to 2592000, default 3600) and Comment
// (at most 100 characters). The command starts Pending; its invocation
// advances with GetCommandInvocation. Targets, several instances, output to
// S3 or CloudWatch, notifications and alarms are not modelled.
func (s *SSM) SendCommand(ctx context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	if in == nil {
		in = &ssm.SendCommandInput{}
	}
	c := s.c
	out := &ssm.SendCommandOutput{}
	err := c.call(ctx, serviceSSM, "SendCommand", false, &out.ResultMetadata, func() (func(), error) {
		name := aws.ToString(in.DocumentName)
		switch {
		case name == "":
			return nil, apiError("ValidationException", "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null")
		case len(in.Targets) > 0:
			return nil, notModelled("SendCommand", "with Targets")
		case in.OutputS3BucketName != nil || in.CloudWatchOutputConfig != nil || in.NotificationConfig != nil ||
			in.ServiceRoleArn != nil || in.AlarmConfiguration != nil:
			return nil, notModelled("SendCommand", "with output to S3 or CloudWatch, notifications or alarms")
		case len(in.InstanceIds) == 0:
			return nil, apiError("ValidationException", "Either InstanceIds or Targets must be given.")
		case len(in.InstanceIds) > 1:
			return nil, notModelled("SendCommand", "to more than one instance")
		case len(aws.ToString(in.Comment)) > 100:
			return nil, apiError("ValidationException", "1 validation error detected: Value at 'comment' failed to satisfy constraint: Member must have length less than or equal to 100")
		}
		timeout := int32(3600)
		if in.TimeoutSeconds != nil {
			timeout = *in.TimeoutSeconds
			if timeout < 30 || timeout > 2592000 {
				return nil, apiError("ValidationException", "1 validation error detected: Value '%d' at 'timeoutSeconds' failed to satisfy constraint: Member must have value between 30 and 2592000", timeout)
			}
		}
		d, err := c.documentLocked(name)
		if err != nil {
			return nil, err
		}
		version := aws.ToString(in.DocumentVersion)
		n, err := d.resolveVersion(version)
		if err != nil {
			return nil, err
		}
		if version == "" {
			version = "$DEFAULT"
		}
		v := d.Versions[n-1]
		if h := aws.ToString(in.DocumentHash); h != "" {
			if in.DocumentHashType != "" && in.DocumentHashType != ssmtypes.DocumentHashTypeSha256 {
				return nil, notModelled("SendCommand", "DocumentHashType "+string(in.DocumentHashType))
			}
			if h != v.Hash {
				return nil, apiError("InvalidDocument", "The document hash does not match the hash of version %d of document %s.", n, name)
			}
		}
		id := in.InstanceIds[0]
		inst, ok := c.st.Instances[id]
		a, managed := c.agents[id]
		if !ok || !managed || !a.registered || a.ping != ssmtypes.PingStatusOnline {
			return nil, c.notValidInstance(id)
		}
		content, _ := parseDocument(v.Content)
		if _, err := content.checkParameters(in.Parameters); err != nil {
			return nil, err
		}
		return func() {
			params := map[string][]string{}
			for k, vals := range in.Parameters {
				params[k] = slices.Clone(vals)
			}
			cmd := &command{
				ID:              c.uuidLocked(),
				DocumentName:    name,
				DocumentVersion: version,
				ResolvedVersion: n,
				DocumentHash:    v.Hash,
				InstanceID:      inst.ID,
				Parameters:      params,
				Comment:         aws.ToString(in.Comment),
				TimeoutSeconds:  timeout,
				Requested:       c.now(),
				Seq:             c.nextSeqLocked(),
				Inv: invocation{
					Status:       ssmtypes.CommandInvocationStatusPending,
					Details:      "Pending",
					Lag:          max(a.cfg.InvocationLag, 0),
					ResponseCode: -1,
				},
			}
			c.st.Commands[cmd.ID] = cmd
			expires := cmd.Requested.Add(time.Duration(timeout)*time.Second + content.stepTimeout(c.commandParamsLocked(cmd)))
			out.Command = &ssmtypes.Command{
				CommandId:         aws.String(cmd.ID),
				DocumentName:      aws.String(name),
				DocumentVersion:   aws.String(version),
				Comment:           aws.String(cmd.Comment),
				InstanceIds:       []string{inst.ID},
				Targets:           []ssmtypes.Target{},
				Parameters:        maps.Clone(params),
				RequestedDateTime: aws.Time(cmd.Requested),
				ExpiresAfter:      aws.Time(expires),
				Status:            ssmtypes.CommandStatusPending,
				StatusDetails:     aws.String("Pending"),
				TargetCount:       1,
				MaxConcurrency:    aws.String("50"),
				MaxErrors:         aws.String("0"),
				TimeoutSeconds:    aws.Int32(timeout),
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// commandParamsLocked returns a command's parameter values with the
// document's defaults filled in.
func (c *Cloud) commandParamsLocked(cmd *command) map[string]string {
	d := c.st.Documents[cmd.DocumentName]
	content, _ := parseDocument(d.Versions[cmd.ResolvedVersion-1].Content)
	values, _ := content.checkParameters(cmd.Parameters) // checked by SendCommand
	return values
}

// commandContentLocked returns the parsed document version a command runs.
func (c *Cloud) commandContentLocked(cmd *command) docContent {
	d := c.st.Documents[cmd.DocumentName]
	content, _ := parseDocument(d.Versions[cmd.ResolvedVersion-1].Content)
	return content
}

// commandLocked returns a command for GetCommandInvocation and
// CancelCommand, or the error they answer.
func (c *Cloud) commandLocked(id string) (*command, error) {
	if !commandIDPattern.MatchString(id) {
		return nil, apiError("InvalidCommandId", "The command ID is not valid.")
	}
	cmd, ok := c.st.Commands[id]
	if !ok {
		return nil, apiError("InvocationDoesNotExist", "An invocation with command ID %s does not exist.", id)
	}
	return cmd, nil
}

// GetCommandInvocation answers a command's invocation on an instance and
// advances it (see the top of this file). While Agent.InvocationLag is
// positive, the first polls of a new command answer InvocationDoesNotExist,
// as SSM's eventual consistency does. StandardOutputContent and
// StandardErrorContent are cut at 24,000 and 8,000 characters, as SSM cuts
// them.
func (s *SSM) GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, _ ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	if in == nil {
		in = &ssm.GetCommandInvocationInput{}
	}
	c := s.c
	out := &ssm.GetCommandInvocationOutput{}
	var (
		cmd *command
		job *agentJob
	)
	err := c.call(ctx, serviceSSM, "GetCommandInvocation", false, &out.ResultMetadata, func() (func(), error) {
		if in.CommandId == nil || in.InstanceId == nil {
			return nil, apiError("ValidationException", "CommandId and InstanceId are required")
		}
		found, err := c.commandLocked(aws.ToString(in.CommandId))
		if err != nil {
			return nil, err
		}
		if found.InstanceID != aws.ToString(in.InstanceId) {
			return nil, apiError("InvocationDoesNotExist", "An invocation of command %s on instance %s does not exist.", found.ID, aws.ToString(in.InstanceId))
		}
		content := c.commandContentLocked(found)
		if p := aws.ToString(in.PluginName); p != "" && p != content.MainSteps[0].Name {
			return nil, apiError("InvalidPluginName", "The plugin name %s is not valid.", p)
		}
		if found.Inv.Lag > 0 {
			// Eventual consistency: the invocation is not visible yet. The
			// count moves on a failed call, like GroupPropagationCalls.
			found.Inv.Lag--
			return nil, apiError("InvocationDoesNotExist", "An invocation with command ID %s does not exist.", found.ID)
		}
		return func() {
			cmd = found
			job = c.advanceCommandLocked(found)
			if job == nil {
				c.renderInvocationLocked(found, out)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if job != nil {
		res := job.run()
		c.mu.Lock()
		c.finishLocked(cmd, res)
		c.renderInvocationLocked(cmd, out)
		c.mu.Unlock()
	}
	return out, nil
}

// advanceCommandLocked moves an invocation on by one poll and returns the agent's
// work when this poll finishes it (the invocation is then marked Running).
func (c *Cloud) advanceCommandLocked(cmd *command) *agentJob {
	inv := &cmd.Inv
	now := c.now()
	inst := c.st.Instances[cmd.InstanceID]
	a := c.agents[cmd.InstanceID]
	content := c.commandContentLocked(cmd)
	execTimeout := content.stepTimeout(c.commandParamsLocked(cmd))
	if inv.Status == ssmtypes.CommandInvocationStatusPending {
		deadline := cmd.Requested.Add(time.Duration(cmd.TimeoutSeconds)*time.Second + execTimeout)
		switch {
		case now.After(deadline):
			inv.finish(ssmtypes.CommandInvocationStatusTimedOut, "DeliveryTimedOut", deadline)
			return nil
		case a == nil || !c.agentLiveLocked(inst, a):
			return nil
		}
		inv.Status, inv.Details, inv.Started, inv.Polls = ssmtypes.CommandInvocationStatusInProgress, "InProgress", now, 0
	}
	if inv.Status != ssmtypes.CommandInvocationStatusInProgress || inv.Running {
		return nil
	}
	inv.Polls++
	if end := inv.Started.Add(execTimeout); now.After(end) {
		inv.finish(ssmtypes.CommandInvocationStatusTimedOut, "ExecutionTimedOut", end)
		return nil
	}
	hang := a.cfg.Fault == FaultHang && !isSealingKeyDocument(cmd.DocumentName)
	if hang || inv.Polls <= max(a.cfg.PollsToFinish, 1) || !c.agentLiveLocked(inst, a) {
		return nil
	}
	inv.Running = true
	return c.newJobLocked(cmd, inst, a, content)
}

// finishLocked records the outcome of the agent's work, unless the
// invocation was cancelled meanwhile.
func (c *Cloud) finishLocked(cmd *command, res agentResult) {
	inv := &cmd.Inv
	inv.Running = false
	if inv.terminal() {
		return
	}
	inv.ResponseCode, inv.Stdout, inv.Stderr = int32(res.exitCode), res.stdout, res.stderr
	if res.exitCode == 0 {
		inv.finish(ssmtypes.CommandInvocationStatusSuccess, "Success", c.now())
	} else {
		inv.finish(ssmtypes.CommandInvocationStatusFailed, "Failed", c.now())
	}
}

func (c *Cloud) renderInvocationLocked(cmd *command, out *ssm.GetCommandInvocationOutput) {
	inv := cmd.Inv
	content := c.commandContentLocked(cmd)
	out.CommandId = aws.String(cmd.ID)
	out.InstanceId = aws.String(cmd.InstanceID)
	out.Comment = aws.String(cmd.Comment)
	out.DocumentName = aws.String(cmd.DocumentName)
	out.DocumentVersion = aws.String(cmd.DocumentVersion)
	out.PluginName = aws.String(content.MainSteps[0].Name)
	out.Status = inv.Status
	out.StatusDetails = aws.String(inv.Details)
	out.ResponseCode = inv.ResponseCode
	out.StandardOutputContent = aws.String(truncate(inv.Stdout, maxStdout))
	out.StandardErrorContent = aws.String(truncate(inv.Stderr, maxStderr))
	out.StandardOutputUrl, out.StandardErrorUrl = aws.String(""), aws.String("")
	out.ExecutionStartDateTime = fmtSSMTime(inv.Started)
	out.ExecutionEndDateTime = fmtSSMTime(inv.Ended)
	out.ExecutionElapsedTime = aws.String("")
	if !inv.Started.IsZero() {
		end := inv.Ended
		if end.IsZero() {
			end = c.now()
		}
		out.ExecutionElapsedTime = fmtElapsed(end.Sub(inv.Started))
	}
}

// truncate cuts s to at most n characters (runes).
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// CancelCommand cancels a command's invocation that has not finished: it
// becomes Cancelled. A finished invocation does not change. InstanceIds,
// when given, must be the command's instance.
func (s *SSM) CancelCommand(ctx context.Context, in *ssm.CancelCommandInput, _ ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error) {
	if in == nil {
		in = &ssm.CancelCommandInput{}
	}
	c := s.c
	out := &ssm.CancelCommandOutput{}
	err := c.call(ctx, serviceSSM, "CancelCommand", false, &out.ResultMetadata, func() (func(), error) {
		if in.CommandId == nil {
			return nil, apiError("ValidationException", "1 validation error detected: Value null at 'commandId' failed to satisfy constraint: Member must not be null")
		}
		cmd, err := c.commandLocked(aws.ToString(in.CommandId))
		if err != nil {
			if cloud.ErrorCode(err) == "InvocationDoesNotExist" {
				return nil, apiError("InvalidCommandId", "The command ID %s does not exist.", aws.ToString(in.CommandId))
			}
			return nil, err
		}
		for _, id := range in.InstanceIds {
			if id != cmd.InstanceID {
				return nil, apiError("InvalidInstanceId", "Instance %s is not a target of command %s.", id, cmd.ID)
			}
		}
		return func() {
			if !cmd.Inv.terminal() {
				cmd.Inv.finish(ssmtypes.CommandInvocationStatusCancelled, "Cancelled", c.now())
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// String helps test failure messages.
func (r CommandRecord) String() string {
	return fmt.Sprintf("%s %s on %s: %s/%s (code %d)", r.CommandID, r.DocumentName, r.InstanceID, r.Status, r.StatusDetails, r.ResponseCode)
}

// ListCommands lists the commands sent to the account, newest first, as
// SSM does: filtered by InstanceId and by the DocumentName filter (the
// other filters are not served). Parameters are left out: SSM hides
// SecureString values, and a test should not lean on the listing for
// them (Commands has them). One page.
func (s *SSM) ListCommands(ctx context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	if in == nil {
		in = &ssm.ListCommandsInput{}
	}
	c := s.c
	out := &ssm.ListCommandsOutput{}
	err := c.call(ctx, serviceSSM, "ListCommands", false, &out.ResultMetadata, func() (func(), error) {
		var doc string
		for _, f := range in.Filters {
			if f.Key != ssmtypes.CommandFilterKeyDocumentName {
				return nil, apiError("InvalidFilterKey", "filter %s is not served by the fake", f.Key)
			}
			doc = aws.ToString(f.Value)
		}
		cmds := sortedBySeq(c.st.Commands, func(cmd *command) int { return cmd.Seq })
		for i := len(cmds) - 1; i >= 0; i-- {
			cmd := cmds[i]
			if (in.InstanceId != nil && cmd.InstanceID != aws.ToString(in.InstanceId)) || (doc != "" && cmd.DocumentName != doc) {
				continue
			}
			out.Commands = append(out.Commands, ssmtypes.Command{
				CommandId: aws.String(cmd.ID), DocumentName: aws.String(cmd.DocumentName), DocumentVersion: aws.String(cmd.DocumentVersion),
				Comment: aws.String(cmd.Comment), InstanceIds: []string{cmd.InstanceID}, RequestedDateTime: aws.Time(cmd.Requested),
			})
		}
		return func() {}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
