package step

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/responder-ir/responder/responder/cloud"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// commandAPI is what running a collection document needs of SSM: reading
// the documents (never writing one) and running commands.
type commandAPI interface {
	DescribeDocument(context.Context, *ssm.DescribeDocumentInput, ...func(*ssm.Options)) (*ssm.DescribeDocumentOutput, error)
	GetDocument(context.Context, *ssm.GetDocumentInput, ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error)
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
	CancelCommand(context.Context, *ssm.CancelCommandInput, ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error)
}

// CommandRun is the record of one SSM command: the exact document version
// that ran, and how it ended.
type CommandRun struct {
	Document        string `json:"document"`
	DocumentVersion string `json:"document_version"`
	// DocumentSHA256 is the SHA-256 of the toolkit's content of the
	// document, which the version that ran was checked to hold
	// (GetDocument); DocumentHash is the hash SSM reports for that version
	// (DescribeDocument), recorded as given.
	DocumentSHA256 string    `json:"document_sha256"`
	DocumentHash   string    `json:"document_hash,omitempty"`
	CommandID      string    `json:"command_id,omitempty"`
	Status         string    `json:"status,omitempty"`
	StatusDetails  string    `json:"status_details,omitempty"`
	ResponseCode   int32     `json:"response_code"`
	SentAt         time.Time `json:"sent_at,omitempty"`
	StartedAt      time.Time `json:"started_at,omitempty"`
	EndedAt        time.Time `json:"ended_at,omitempty"`
	Cancelled      string    `json:"cancelled,omitempty"` // why the toolkit cancelled it
	StderrTail     string    `json:"stderr_tail,omitempty"`
	// Parameters are the names of the parameters given, never their
	// values.
	Parameters []string `json:"parameters,omitempty"`
}

// ErrDocumentNotDeployed is returned when the account does not hold the
// toolkit's document, or holds other content under its name: the engine
// never writes a document (the member documents stack does), so the
// collection is refused.
var ErrDocumentNotDeployed = errors.New("the toolkit's SSM document is not deployed")

// memberDocumentsStack is what the refusal tells the operator to deploy.
const memberDocumentsStack = "deploy or update the member documents stack (cloudformation/member-documents.yaml) in this account and Region"

// pinDocument checks that the account holds the toolkit's document, as the
// member documents stack creates it, and records the version to run: the
// default version, or else the latest, whose content (GetDocument) is
// exactly the toolkit's. SSM's Hash is recorded, not compared: how SSM
// computes it from content that CloudFormation serialised is not
// documented, while the content itself can be compared. A version's
// content never changes, so SendCommand with that DocumentVersion runs
// what was checked.
func pinDocument(ctx context.Context, api commandAPI, doc ssmdocuments.Document, run *CommandRun) error {
	want, err := doc.Content()
	if err != nil {
		return fmt.Errorf("document %s: %w", doc.Name, err)
	}
	sum := sha256.Sum256(want)
	run.Document, run.DocumentSHA256 = doc.Name, hex.EncodeToString(sum[:])
	d, err := describeDocument(ctx, api, doc.Name)
	switch {
	case cloud.IsErrorCode(err, "InvalidDocument"):
		return fmt.Errorf("%w: %s does not exist: %s", ErrDocumentNotDeployed, doc.Name, memberDocumentsStack)
	case err != nil:
		return fmt.Errorf("describe document %s: %w", doc.Name, err)
	}
	versions := []string{aws.ToString(d.DocumentVersion)}
	if latest := aws.ToString(d.LatestVersion); latest != "" && latest != versions[0] {
		versions = append(versions, latest)
	}
	var why []string
	for _, v := range versions {
		problem, err := checkVersion(ctx, api, doc.Name, v, want)
		if err != nil {
			return err
		}
		if problem == "" {
			run.DocumentVersion = v
			if v == aws.ToString(d.DocumentVersion) {
				run.DocumentHash = aws.ToString(d.Hash) // d describes the default version
			}
			return nil
		}
		why = append(why, "version "+v+" "+problem)
	}
	return fmt.Errorf("%w: %s: %s; %s", ErrDocumentNotDeployed, doc.Name, strings.Join(why, "; "), memberDocumentsStack)
}

// describeDocument describes the document's default version.
func describeDocument(ctx context.Context, api commandAPI, name string) (*ssmtypes.DocumentDescription, error) {
	out, err := api.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(name)})
	if err != nil {
		return nil, err
	}
	if out.Document == nil {
		return nil, fmt.Errorf("describe document %s: no description returned", name)
	}
	return out.Document, nil
}

// checkVersion says what keeps a version of the document from running as
// the toolkit's ("" when nothing does): not an active Command document, or
// other content.
func checkVersion(ctx context.Context, api commandAPI, name, version string, want []byte) (string, error) {
	out, err := api.GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String(name), DocumentVersion: aws.String(version),
		DocumentFormat: ssmtypes.DocumentFormatJson})
	if err != nil {
		return "", fmt.Errorf("get document %s version %s: %w", name, version, err)
	}
	switch {
	case out.DocumentType != ssmtypes.DocumentTypeCommand:
		return fmt.Sprintf("is a %s document, not a Command document", out.DocumentType), nil
	case out.Status != "" && out.Status != ssmtypes.DocumentStatusActive:
		return fmt.Sprintf("is %s, not Active", out.Status), nil
	case !sameJSON([]byte(aws.ToString(out.Content)), want):
		return "holds other content than the toolkit's", nil
	}
	return "", nil
}

// sameJSON reports whether two JSON texts hold the same value, whatever
// their spacing and key order (CloudFormation writes the template's content
// its own way).
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// sealingKeyTimeout bounds the sealing-key command.
const sealingKeyTimeout = 3 * time.Minute

// sealingKey runs the platform's sealing-key document on the instance and
// returns the key it made, to seal one command's presigned URLs to (see
// ssm-documents/README.md, "Sealed parameters"): no URL ever travels as a
// readable command parameter. run records the command.
func sealingKey(ctx context.Context, env *Env, api commandAPI, platform string, bound time.Time, run *CommandRun) (*ssmdocuments.SealingKey, error) {
	name, err := ssmdocuments.SealingKeyDocument(platform)
	if err != nil {
		return nil, err
	}
	doc, _ := ssmdocuments.Lookup(name)
	if err := pinDocument(ctx, api, doc, run); err != nil {
		return nil, err
	}
	id, err := ssmdocuments.NewSealingKeyID()
	if err != nil {
		return nil, err
	}
	params, err := doc.SendCommandParameters(map[string]string{ssmdocuments.ParamSealingKeyID: id}, nil)
	if err != nil {
		return nil, err
	}
	out, err := runCommand(ctx, env, api, run, params, earliest(bound, env.now().Add(sealingKeyTimeout)), nil)
	switch {
	case err != nil:
		return nil, fmt.Errorf("sealing key: %w", err)
	case run.Status != "Success":
		return nil, fmt.Errorf("sealing key: %s", commandFailure(run))
	}
	key, err := ssmdocuments.ParseSealingKey([]byte(aws.ToString(out.StandardOutputContent)), id)
	if err != nil {
		return nil, err
	}
	return &key, nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
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
	delivery := int32(deadline.Sub(env.now()).Seconds())
	delivery = max(30, min(delivery, 2592000))
	sent, err := api.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String(run.Document), DocumentVersion: aws.String(run.DocumentVersion),
		InstanceIds: []string{id}, Parameters: params, TimeoutSeconds: aws.Int32(delivery),
		Comment: aws.String(commandComment(env)),
	})
	if err != nil {
		return fmt.Errorf("send %s to %s: %w", run.Document, id, err)
	}
	run.CommandID, run.SentAt = aws.ToString(sent.Command.CommandId), env.now()
	return nil
}

// commandComment marks a command with its case (and, for a staged
// collection, the collection: how a retried send stage finds it).
func commandComment(env *Env) string {
	c := "responder case " + env.Target.CaseID
	if env.Stage.Collection != "" {
		c += " " + env.Stage.Collection
	}
	return truncate(c, 100)
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

// poll reads the command's invocation on the instance once into the record;
// an invocation SSM does not know yet is Pending.
func (run *CommandRun) poll(ctx context.Context, api cloud.SSM, instanceID string) error {
	out, err := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: &run.CommandID, InstanceId: &instanceID})
	switch {
	case cloud.IsErrorCode(err, "InvocationDoesNotExist"):
		run.Status = "Pending"
	case err != nil:
		return fmt.Errorf("poll command %s: %w", run.CommandID, err)
	default:
		run.record(out)
	}
	return nil
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
