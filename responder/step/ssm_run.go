package step

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/responder-ir/responder/responder/cloud"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// commandAPI is what running a collection document needs of SSM.
type commandAPI interface {
	DescribeDocument(context.Context, *ssm.DescribeDocumentInput, ...func(*ssm.Options)) (*ssm.DescribeDocumentOutput, error)
	CreateDocument(context.Context, *ssm.CreateDocumentInput, ...func(*ssm.Options)) (*ssm.CreateDocumentOutput, error)
	UpdateDocument(context.Context, *ssm.UpdateDocumentInput, ...func(*ssm.Options)) (*ssm.UpdateDocumentOutput, error)
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
	CancelCommand(context.Context, *ssm.CancelCommandInput, ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error)
}

// CommandRun is the record of one SSM command: the exact document version
// that ran, and how it ended.
type CommandRun struct {
	Document        string    `json:"document"`
	DocumentVersion string    `json:"document_version"`
	DocumentSHA256  string    `json:"document_sha256"`
	DocumentAction  string    `json:"document_action,omitempty"` // created, updated or "" (already there)
	CommandID       string    `json:"command_id,omitempty"`
	Status          string    `json:"status,omitempty"`
	StatusDetails   string    `json:"status_details,omitempty"`
	ResponseCode    int32     `json:"response_code"`
	SentAt          time.Time `json:"sent_at,omitempty"`
	StartedAt       time.Time `json:"started_at,omitempty"`
	EndedAt         time.Time `json:"ended_at,omitempty"`
	Cancelled       string    `json:"cancelled,omitempty"` // why the toolkit cancelled it
	StderrTail      string    `json:"stderr_tail,omitempty"`
	// Parameters are the names of the parameters given; their values hold
	// presigned URLs and are never recorded.
	Parameters []string `json:"parameters,omitempty"`
}

// ensureDocument makes sure the account holds the document with exactly the
// toolkit's content and returns the version to run. It never changes the
// default version: SendCommand names the version explicitly.
func ensureDocument(ctx context.Context, api commandAPI, doc ssmdocuments.Document, run *CommandRun) error {
	content, err := doc.Content()
	if err != nil {
		return fmt.Errorf("document %s: %w", doc.Name, err)
	}
	want, err := doc.ContentSHA256()
	if err != nil {
		return fmt.Errorf("document %s: %w", doc.Name, err)
	}
	run.Document, run.DocumentSHA256 = doc.Name, want
	d, err := describeDocument(ctx, api, doc.Name, "")
	switch {
	case cloud.IsErrorCode(err, "InvalidDocument"):
		return createDocument(ctx, api, doc, content, run)
	case err != nil:
		return fmt.Errorf("describe document %s: %w", doc.Name, err)
	}
	if aws.ToString(d.Hash) == want {
		return checkDocument(d, want, run)
	}
	if latest := aws.ToString(d.LatestVersion); latest != "" && latest != aws.ToString(d.DocumentVersion) {
		if l, err := describeDocument(ctx, api, doc.Name, latest); err == nil && aws.ToString(l.Hash) == want {
			return checkDocument(l, want, run)
		}
	}
	return updateDocument(ctx, api, doc, content, run)
}

// describeDocument describes a version of the document ("": the default).
func describeDocument(ctx context.Context, api commandAPI, name, version string) (*ssmtypes.DocumentDescription, error) {
	in := &ssm.DescribeDocumentInput{Name: aws.String(name)}
	if version != "" {
		in.DocumentVersion = aws.String(version)
	}
	out, err := api.DescribeDocument(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.Document, nil
}

// createDocument creates the document the account lacks.
func createDocument(ctx context.Context, api commandAPI, doc ssmdocuments.Document, content []byte, run *CommandRun) error {
	out, err := api.CreateDocument(ctx, &ssm.CreateDocumentInput{
		Name: aws.String(doc.Name), Content: aws.String(string(content)),
		DocumentType: ssmtypes.DocumentTypeCommand, DocumentFormat: ssmtypes.DocumentFormatJson,
	})
	if cloud.IsErrorCode(err, "DocumentAlreadyExists") {
		// Another response created it meanwhile.
		return ensureDocument(ctx, api, doc, run)
	}
	if err != nil {
		return fmt.Errorf("create document %s: %w", doc.Name, err)
	}
	run.DocumentAction = "created"
	return checkDocument(out.DocumentDescription, run.DocumentSHA256, run)
}

// updateDocument adds the toolkit's content as the document's latest
// version.
func updateDocument(ctx context.Context, api commandAPI, doc ssmdocuments.Document, content []byte, run *CommandRun) error {
	out, err := api.UpdateDocument(ctx, &ssm.UpdateDocumentInput{
		Name: aws.String(doc.Name), Content: aws.String(string(content)),
		DocumentVersion: aws.String("$LATEST"), DocumentFormat: ssmtypes.DocumentFormatJson,
	})
	if cloud.IsErrorCode(err, "DuplicateDocumentContent") {
		// The latest version has this content (another response updated it).
		l, derr := describeDocument(ctx, api, doc.Name, "$LATEST")
		if derr != nil {
			return fmt.Errorf("describe document %s: %w", doc.Name, derr)
		}
		return checkDocument(l, run.DocumentSHA256, run)
	}
	if err != nil {
		return fmt.Errorf("update document %s: %w", doc.Name, err)
	}
	run.DocumentAction = "updated"
	return checkDocument(out.DocumentDescription, run.DocumentSHA256, run)
}

// checkDocument records the version to run, after checking that SSM holds
// the toolkit's content.
func checkDocument(d *ssmtypes.DocumentDescription, want string, run *CommandRun) error {
	if d == nil {
		return fmt.Errorf("document %s: no description returned", run.Document)
	}
	if got := aws.ToString(d.Hash); got != want {
		return fmt.Errorf("document %s version %s has SHA-256 %s, not the toolkit's %s", run.Document, aws.ToString(d.DocumentVersion), got, want)
	}
	run.DocumentVersion = aws.ToString(d.DocumentVersion)
	return nil
}

// Terminal command statuses (GetCommandInvocation Status).
var terminalStatuses = map[string]bool{
	"Success": true, "Failed": true, "Cancelled": true, "TimedOut": true,
	"DeliveryTimedOut": true, "ExecutionTimedOut": true, "Undeliverable": true, "Terminated": true,
	"InvalidPlatform": true, "AccessDenied": true,
}

// ErrCommandTimedOut is returned when a command did not end within its bound.
var ErrCommandTimedOut = errors.New("command did not end in time")

// invocationLagPolls is how many InvocationDoesNotExist answers right after
// SendCommand are taken for eventual consistency before giving up.
const invocationLagPolls = 10

// runCommand sends the document to the instance and polls it until it ends,
// cancels it when the wait passes deadline (or the step is cancelled), and
// returns the last invocation. onPoll, when set, is called after each poll.
func runCommand(ctx context.Context, env *Env, api commandAPI, run *CommandRun, params map[string][]string,
	deadline time.Time, onPoll func(status string)) (*ssm.GetCommandInvocationOutput, error) {
	if err := sendCommand(ctx, env, api, run, params, deadline); err != nil {
		return nil, err
	}
	return waitCommand(ctx, env, api, run, deadline, onPoll)
}

// sendCommand sends the document's version to the instance.
func sendCommand(ctx context.Context, env *Env, api commandAPI, run *CommandRun, params map[string][]string, deadline time.Time) error {
	for name := range params {
		run.Parameters = append(run.Parameters, name)
	}
	sort.Strings(run.Parameters)
	id := env.Target.InstanceID()
	// The delivery timeout: how long SSM keeps trying to reach the agent.
	delivery := int32(time.Until(deadline).Seconds())
	delivery = max(30, min(delivery, 2592000))
	sent, err := api.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String(run.Document), DocumentVersion: aws.String(run.DocumentVersion),
		InstanceIds: []string{id}, Parameters: params, TimeoutSeconds: aws.Int32(delivery),
		Comment: aws.String(truncate("responder case "+env.Target.CaseID, 100)),
	})
	if err != nil {
		return fmt.Errorf("send %s to %s: %w", run.Document, id, err)
	}
	run.CommandID, run.SentAt = aws.ToString(sent.Command.CommandId), env.now()
	return nil
}

// waitCommand polls the sent command until it ends, and cancels it when the
// wait passes deadline or the step is cancelled.
func waitCommand(ctx context.Context, env *Env, api commandAPI, run *CommandRun,
	deadline time.Time, onPoll func(status string)) (*ssm.GetCommandInvocationOutput, error) {
	id := env.Target.InstanceID()
	poll := time.Duration(env.Collection.PollInterval.Or(5 * time.Second))
	lag := 0
	var last *ssm.GetCommandInvocationOutput
	for {
		out, err := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: &run.CommandID, InstanceId: &id})
		switch {
		case cloud.IsErrorCode(err, "InvocationDoesNotExist") && lag < invocationLagPolls:
			lag++
		case err != nil && ctx.Err() == nil:
			return last, fmt.Errorf("poll command %s: %w", run.CommandID, err)
		case err == nil:
			last = out
			run.record(out)
			if onPoll != nil {
				onPoll(run.Status)
			}
			if terminalStatuses[run.Status] {
				return last, nil
			}
		}
		if why := stopWaiting(ctx, env, deadline); why != "" {
			return last, cancelCommand(ctx, api, run, id, why)
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

// record takes an invocation's state into the record.
func (run *CommandRun) record(out *ssm.GetCommandInvocationOutput) {
	run.Status, run.StatusDetails, run.ResponseCode = string(out.Status), aws.ToString(out.StatusDetails), out.ResponseCode
	if t := parseSSMTime(out.ExecutionStartDateTime); !t.IsZero() {
		run.StartedAt = t
	}
	if t := parseSSMTime(out.ExecutionEndDateTime); !t.IsZero() {
		run.EndedAt = t
	}
	run.StderrTail = tail(aws.ToString(out.StandardErrorContent), 2000)
}

// stopWaiting says why the wait for a command ends before the command
// does, or "" to keep waiting.
func stopWaiting(ctx context.Context, env *Env, deadline time.Time) string {
	switch {
	case ctx.Err() != nil:
		return "the step was cancelled or ran out of time"
	case !env.now().Before(deadline):
		return "the command did not end within its bound (" + deadline.Format(time.RFC3339) + ")"
	}
	return ""
}

// cancelCommand cancels a command the step stopped waiting for (why), and
// returns the ErrCommandTimedOut that ends the step.
func cancelCommand(ctx context.Context, api commandAPI, run *CommandRun, instanceID, why string) error {
	run.Cancelled = why
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := api.CancelCommand(cctx, &ssm.CancelCommandInput{CommandId: &run.CommandID, InstanceIds: []string{instanceID}}); err != nil {
		return fmt.Errorf("%w: %s; cancelling command %s failed: %v", ErrCommandTimedOut, why, run.CommandID, err)
	}
	return fmt.Errorf("%w: %s; command %s cancelled", ErrCommandTimedOut, why, run.CommandID)
}

func parseSSMTime(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, *s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// commandFailure explains a command that did not succeed, for the record.
func commandFailure(run *CommandRun) string {
	parts := []string{"status " + run.Status}
	if run.StatusDetails != "" && run.StatusDetails != run.Status {
		parts = append(parts, "details "+run.StatusDetails)
	}
	if run.ResponseCode != 0 {
		parts = append(parts, fmt.Sprintf("exit code %d", run.ResponseCode))
	}
	if run.StderrTail != "" {
		parts = append(parts, "stderr: "+strings.TrimSpace(tail(run.StderrTail, 300)))
	}
	return strings.Join(parts, ", ")
}
