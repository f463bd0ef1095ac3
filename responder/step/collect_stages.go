package step

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/responder-ir/responder/responder/evidence"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// CollectStage names one stage of an OS-level collection that runs across
// separate invocations, as the Lambda's state machine runs it: each stage
// is one short run of the case, which keeps in the case record what the
// next stage needs (never a presigned URL), so that no invocation waits for
// the instance. The stages of one collection share its Collection ID.
type CollectStage struct {
	// Name is one of the Stage* constants; "" runs the steps whole.
	Name string
	// Collection identifies the collection in the record and in the keys
	// of its image and staged objects.
	Collection string
	// Reason is why an abort stage aborts.
	Reason string
}

// Collection stages, in their order. ssm-access serves StageAccess, the
// memory-capture step every other.
const (
	// StageAccess associates the forensic profile when needed and looks
	// once whether the SSM node is online.
	StageAccess = "access"
	// StagePrepare checks the documents, has the instance make its sealing
	// key, opens the multipart upload, stages the part URL list and the
	// sealed command parameters in the staging bucket.
	StagePrepare = "prepare"
	// StageSend sends the capture command.
	StageSend = "send"
	// StagePoll looks once at the command and at the parts uploaded.
	StagePoll = "poll"
	// StageFinish checks every part, completes the upload and reads the
	// image back to hash it.
	StageFinish = "finish"
	// StageAbort cancels the command and aborts the upload.
	StageAbort = "abort"
)

// CollectStages lists the stage names.
var CollectStages = []string{StageAccess, StagePrepare, StageSend, StagePoll, StageFinish, StageAbort}

// stagedAccess is what the access stage records.
type stagedAccess struct {
	ssmAccessState
	Collection   string    `json:"collection"`
	Online       bool      `json:"online"`
	WaitingSince time.Time `json:"waiting_since"`
	Looks        int       `json:"looks"`
	TimedOut     bool      `json:"timed_out,omitempty"`
}

// stagedCapture is what the memory stages keep for each other.
type stagedCapture struct {
	Collection string    `json:"collection"`
	Stage      string    `json:"stage"`
	Platform   string    `json:"platform,omitempty"`
	Bound      time.Time `json:"bound,omitzero"`
	ImagePath  string    `json:"image_path"`
	ReportPath string    `json:"report_path,omitempty"`
	// CommandKey is the staging object that holds the command's sealed
	// parameters, from prepare to send.
	CommandKey string `json:"command_key,omitempty"`
	// Progress is what the last poll saw.
	Polls         int   `json:"polls,omitempty"`
	PartsUploaded int   `json:"parts_uploaded,omitempty"`
	BytesUploaded int64 `json:"bytes_uploaded,omitempty"`
	TimedOut      bool  `json:"timed_out,omitempty"`
}

// priorAfter finds the newest record of step name in the case record whose
// after is of collection, decoded into v.
func priorAfter(env *Env, name, collection string, v any) bool {
	if env.Target.Prior == nil {
		return false
	}
	steps := env.Target.Prior.Steps
	for i := len(steps) - 1; i >= 0; i-- {
		r := steps[i]
		if r.Name != name || len(r.After) == 0 {
			continue
		}
		var probe struct {
			Collection string `json:"collection"`
			Staged     *struct {
				Collection string `json:"collection"`
			} `json:"staged"`
		}
		if json.Unmarshal(r.After, &probe) != nil {
			continue
		}
		if probe.Collection == collection || (probe.Staged != nil && probe.Staged.Collection == collection) {
			return json.Unmarshal(r.After, v) == nil
		}
	}
	return false
}

// accessStage is ssm-access as one look: it associates the forensic profile
// when the instance needs it, and says whether the node is online; the
// state machine waits and asks again until RegistrationTimeout has passed
// since the first look.
func (s SSMAccess) accessStage(ctx context.Context, env *Env) Result {
	if env.Clients.SSM == nil {
		return Failed(errors.New("no SSM client: OS-level collection is not configured"), nil)
	}
	var prev stagedAccess
	st := stagedAccess{Collection: env.Stage.Collection, WaitingSince: env.now()}
	if priorAfter(env, s.Name(), env.Stage.Collection, &prev) {
		st.WaitingSince, st.Looks = prev.WaitingSince, prev.Looks
	}
	st.Looks++
	id := env.Target.InstanceID()
	node, err := describeNode(ctx, env.Clients.SSM, id)
	if err != nil {
		return Result{Status: evidence.StatusFailed, Err: err, After: st}
	}
	st.Node = node
	if st.Profiles, err = associatedProfiles(ctx, env.Clients.EC2, id); err != nil {
		return Result{Status: evidence.StatusFailed, Err: err, After: st}
	}
	st.Online = node != nil && node.PingStatus == string(ssmtypes.PingStatusOnline)
	attach, err := s.mustAttach(env, st.ssmAccessState, st.Online)
	if err != nil {
		return Result{Status: evidence.StatusFailed, Err: err, After: st}
	}
	if attach {
		a, err := associateProfile(ctx, env.Clients.EC2, id, env.Collection.ForensicProfileARN)
		if err != nil {
			return Result{Status: evidence.StatusFailed, Err: err, After: st}
		}
		st.ForensicProfile, st.Profiles = a, []ProfileAssociation{*a}
	}
	bound := st.WaitingSince.Add(env.Collection.RegistrationTimeout.Or(DefaultRegistrationTimeout))
	if d := captureFirstDeadline(env, st.WaitingSince); !d.IsZero() && d.Before(bound) {
		bound = d
	}
	switch {
	case st.Online:
		return OK(fmt.Sprintf("%s is an online managed node (%s %s, agent %s), look %d", id, node.PlatformType, node.PlatformName, node.AgentVersion, st.Looks), nil, st)
	case !env.now().Before(bound):
		st.TimedOut = true
		return Result{Status: evidence.StatusFailed, After: st,
			Err: fmt.Errorf("%s did not come online in SSM by %s (last seen: %s; the forensic profile stays associated until forensic-access-close removes it)", id, bound.Format(time.RFC3339), nodeState(node))}
	}
	what := fmt.Sprintf("waiting for the SSM Agent of %s (%s), look %d, until %s", id, nodeState(node), st.Looks, bound.Format(time.RFC3339))
	if attach {
		what += "; associated forensic profile " + env.Collection.ForensicProfileARN
	}
	return OK(what, nil, st)
}

// captureFirstDeadline is, for a capture-first collection, when isolation
// stops waiting for it: the capture timeout after the collection's first
// look at the instance, as the CLI bounds it from ssm-access (the wait for
// the agent included). Zero for isolate-first.
func captureFirstDeadline(env *Env, started time.Time) time.Time {
	if env.Collection.Order != CaptureFirst || started.IsZero() {
		return time.Time{}
	}
	return started.Add(time.Duration(env.Collection.CaptureTimeout.Or(DefaultCaptureTimeout)))
}

// runStage runs one stage of the memory capture.
func (s MemoryCapture) runStage(ctx context.Context, env *Env) Result {
	var prev memoryState
	found := priorAfter(env, s.Name(), env.Stage.Collection, &prev) && prev.Staged != nil
	if env.Stage.Name == StagePrepare {
		if found && prev.Staged.CommandKey != "" {
			return OK("already prepared: upload "+prev.Upload.UploadID+" is open", nil, prev)
		}
		return s.prepareStage(ctx, env)
	}
	if !found {
		if env.Stage.Name == StageAbort {
			return Skipped("nothing to abort: the capture was not prepared", nil)
		}
		return Failed(fmt.Errorf("memory capture %s: no prepared capture in the case record", env.Stage.Collection), nil)
	}
	c, err := s.restore(env, prev)
	if err != nil {
		return Failed(err, nil)
	}
	c.st.Staged.Stage = env.Stage.Name
	switch env.Stage.Name {
	case StageSend:
		return c.sendStage(ctx)
	case StagePoll:
		return c.pollStage(ctx)
	case StageFinish:
		return c.finishStage(ctx)
	case StageAbort:
		return c.abortStage(ctx)
	}
	return Failed(fmt.Errorf("unknown collection stage %q", env.Stage.Name), nil)
}

// prepareStage plans and prepares the capture as Run does, then stages the
// sealed command parameters for the send stage.
func (s MemoryCapture) prepareStage(ctx context.Context, env *Env) Result {
	if err := stageNode(ctx, env); err != nil {
		return Failed(err, nil)
	}
	c, res := s.plan(ctx, env)
	if c == nil {
		return res
	}
	c.st.Staged = &stagedCapture{Collection: env.Stage.Collection, Stage: StagePrepare, Platform: c.platform}
	if why, err := c.prepare(ctx); err != nil {
		return c.fail(ctx, why, err)
	}
	st := c.st.Staged
	st.Bound, st.ImagePath, st.ReportPath = c.bound, c.imagePath, c.reportPath
	st.CommandKey = fmt.Sprintf("parts/%s/%s-%s-command.json", env.Target.CaseID, env.Target.InstanceID(), env.Stage.Collection)
	if err := stageCommand(ctx, env, st.CommandKey, c.params); err != nil {
		return c.fail(ctx, "the command could not be staged", err)
	}
	return OK(fmt.Sprintf("prepared %s: upload %s open for %d MiB of memory in up to %d parts of %d MiB, until %s",
		c.docName, c.st.Upload.UploadID, c.st.MemoryBytes>>20, c.st.PartURLs, c.st.PartSizeMiB, c.bound.Format(time.RFC3339)), nil, c.st)
}

// stageNode sets the managed node a prepare stage runs on, which the access
// stage found online, and the collection's deadline when it runs before
// isolation.
func stageNode(ctx context.Context, env *Env) error {
	if node, _ := env.ssmNode(); node != nil {
		return nil // an earlier step of this run set it
	}
	node, err := describeNode(ctx, env.Clients.SSM, env.Target.InstanceID())
	if err != nil {
		return err
	}
	if node == nil || node.PingStatus != string(ssmtypes.PingStatusOnline) {
		return fmt.Errorf("%s is %s: the collection cannot be prepared", env.Target.InstanceID(), nodeState(node))
	}
	env.setNode(node, "")
	var access stagedAccess
	if priorAfter(env, (SSMAccess{}).Name(), env.Stage.Collection, &access) {
		env.setCollectionDeadline(captureFirstDeadline(env, access.WaitingSince))
	}
	return nil
}

// stageCommand keeps a command's sealed parameters in the staging bucket
// from the prepare stage to the send stage (never in the record or the
// state machine's data).
func stageCommand(ctx context.Context, env *Env, key string, params map[string][]string) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("staged command: %w", err)
	}
	if _, err := env.Clients.Staging.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(env.Collection.StagingBucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentType: aws.String("application/json"),
	}); err != nil {
		return fmt.Errorf("stage the sealed command parameters in s3://%s: %w", env.Collection.StagingBucket, err)
	}
	return nil
}

// readStagedCommand reads what stageCommand kept.
func readStagedCommand(ctx context.Context, env *Env, key string) (map[string][]string, error) {
	out, err := env.Clients.Staging.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(env.Collection.StagingBucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("read the staged command s3://%s/%s: %w", env.Collection.StagingBucket, key, err)
	}
	defer out.Body.Close()
	var params map[string][]string
	if err := json.NewDecoder(io.LimitReader(out.Body, 1<<20)).Decode(&params); err != nil {
		return nil, fmt.Errorf("staged command: %w", err)
	}
	return params, nil
}

// beginUpload opens the capture's multipart upload. A staged collection
// first looks for one an earlier attempt of its prepare stage opened but
// could not record (the function died before the record was saved), and
// takes it over: its part URLs are signed again, and no second upload is
// opened. No command can have been sent for it (send needs the record).
func (c *memoryCapture) beginUpload(ctx context.Context) (*evidence.Upload, error) {
	env := c.env
	if o, ok := c.rcv.(uploadFinder); ok && env.Stage.Collection != "" {
		open, err := o.OpenUploads(ctx, env.Target.CaseID, c.imagePath)
		if err != nil {
			return nil, err
		}
		if n := len(open); n > 0 {
			c.st.Warnings = append(c.st.Warnings, fmt.Sprintf("took over upload %s, which an earlier attempt of the prepare stage opened", open[n-1].UploadID))
			return open[n-1], nil
		}
	}
	return c.rcv.BeginUpload(ctx, env.Target.CaseID, c.imagePath, "application/octet-stream")
}

// uploadFinder finds the uploads open at a case path (evidence.Bucket).
type uploadFinder interface {
	OpenUploads(ctx context.Context, caseID, path string) ([]*evidence.Upload, error)
}

// restore rebuilds the capture the prepare stage recorded.
func (s MemoryCapture) restore(env *Env, st memoryState) (*memoryCapture, error) {
	rcv, err := evidence.AsReceiver(env.Clients.Store)
	if err != nil {
		return nil, err
	}
	doc, ok := ssmdocuments.Lookup(st.Command.Document)
	if !ok {
		return nil, fmt.Errorf("memory capture: unknown document %q in the record", st.Command.Document)
	}
	return &memoryCapture{step: s, env: env, rcv: rcv, platform: st.Staged.Platform, docName: st.Command.Document, doc: doc,
		bound: st.Staged.Bound, imagePath: st.Staged.ImagePath, reportPath: st.Staged.ReportPath, st: st}, nil
}

// sendStage sends the staged command, once: a command the record already
// has, or that SSM lists for this collection, is not sent again.
func (c *memoryCapture) sendStage(ctx context.Context) Result {
	env := c.env
	if c.st.Command.CommandID != "" {
		return OK("already sent: command "+c.st.Command.CommandID, nil, c.st)
	}
	if env.volatilePending() {
		// As the CLI runs them: volatile data first, memory once it ended.
		return OK("waiting for volatile-data to end before the capture is sent", nil, c.st)
	}
	if id, err := findSentCommand(ctx, env, c.docName); err != nil {
		return c.fail(ctx, "the command could not be looked up", err)
	} else if id != "" {
		c.st.Command.CommandID, c.st.Command.SentAt = id, env.now()
		return OK("already sent (found in SSM): command "+id, nil, c.st)
	}
	params, err := readStagedCommand(ctx, env, c.st.Staged.CommandKey)
	if err != nil {
		return c.fail(ctx, "the staged command could not be read", err)
	}
	if err := sendCommand(ctx, env, env.Clients.SSM, &c.st.Command, params, c.bound); err != nil {
		return c.fail(ctx, "the command could not be sent", err)
	}
	return OK(fmt.Sprintf("sent %s version %s: command %s", c.docName, c.st.Command.DocumentVersion, c.st.Command.CommandID), nil, c.st)
}

// findSentCommand finds a command of this collection and document that an
// earlier attempt sent but did not record (ListCommands, by instance and
// document).
func findSentCommand(ctx context.Context, env *Env, docName string) (string, error) {
	lister, ok := env.Clients.SSM.(commandLister)
	if !ok {
		return "", nil
	}
	in := &ssm.ListCommandsInput{InstanceId: aws.String(env.Target.InstanceID()),
		Filters: []ssmtypes.CommandFilter{{Key: ssmtypes.CommandFilterKeyDocumentName, Value: aws.String(docName)}}}
	for {
		out, err := lister.ListCommands(ctx, in)
		if err != nil {
			return "", fmt.Errorf("list the commands sent to %s: %w", env.Target.InstanceID(), err)
		}
		for _, cmd := range out.Commands {
			// The sealing-key command of the same collection carries the
			// same comment: the document tells them apart (the filter
			// alone is not relied on).
			if aws.ToString(cmd.Comment) == commandComment(env) && aws.ToString(cmd.DocumentName) == docName {
				return aws.ToString(cmd.CommandId), nil
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return "", nil
		}
		in.NextToken = out.NextToken
	}
}

// pollStage looks once at the command and at the parts S3 holds.
func (c *memoryCapture) pollStage(ctx context.Context) Result {
	env, st := c.env, c.st.Staged
	if c.st.Command.CommandID == "" {
		// Not sent yet: volatile data ran first.
		if st.TimedOut = !env.now().Before(st.Bound); st.TimedOut {
			return OK("the capture was not sent before its bound "+st.Bound.Format(time.RFC3339), nil, c.st)
		}
		if res := c.sendStage(ctx); res.Status == evidence.StatusFailed || c.st.Command.CommandID == "" {
			return res
		}
	}
	id := env.Target.InstanceID()
	if err := c.st.Command.poll(ctx, env.Clients.SSM, id); err != nil {
		return Result{Status: evidence.StatusFailed, Err: err, After: c.st}
	}
	st.Polls++
	if parts, err := c.rcv.UploadedParts(ctx, c.st.Upload); err == nil {
		st.PartsUploaded, st.BytesUploaded = len(parts), 0
		for _, p := range parts {
			st.BytesUploaded += p.Size
		}
	}
	st.TimedOut = !terminalStatuses[c.st.Command.Status] && !env.now().Before(st.Bound)
	msg := fmt.Sprintf("%s %s at poll %d: %d parts, %d MiB uploaded", c.docName, c.st.Command.Status, st.Polls, st.PartsUploaded, st.BytesUploaded>>20)
	if st.TimedOut {
		msg += "; past the capture bound " + st.Bound.Format(time.RFC3339)
	}
	return OK(msg, nil, c.st)
}

// finishStage reads the command's end and concludes as Run does: every
// part checked, the upload completed, the image read back and hashed; or
// the upload aborted and why recorded.
func (c *memoryCapture) finishStage(ctx context.Context) Result {
	if c.st.Image != nil {
		return OK("already completed: "+c.st.Image.Path, nil, c.st)
	}
	id := c.env.Target.InstanceID()
	out, err := c.env.Clients.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: &c.st.Command.CommandID, InstanceId: &id})
	if err != nil {
		return c.conclude(ctx, fmt.Errorf("read command %s: %w", c.st.Command.CommandID, err))
	}
	c.st.Command.record(out)
	if !terminalStatuses[c.st.Command.Status] {
		return c.conclude(ctx, fmt.Errorf("command %s is still %s", c.st.Command.CommandID, c.st.Command.Status))
	}
	return c.conclude(ctx, nil)
}

// abortStage cancels the command if it may still run, and aborts the
// upload, recording why (Stage.Reason).
func (c *memoryCapture) abortStage(ctx context.Context) Result {
	if c.st.Image != nil {
		return Skipped("the image was completed: nothing to abort", nil)
	}
	if c.st.Aborted != "" {
		return Result{Status: evidence.StatusFailed, Err: errors.New(c.st.Aborted), After: c.st}
	}
	why := c.env.Stage.Reason
	if why == "" {
		why = "the collection was aborted"
	}
	err := errors.New(why)
	if cmd := &c.st.Command; cmd.CommandID != "" && !terminalStatuses[cmd.Status] {
		err = cancelCommand(ctx, c.env.Clients.SSM, cmd, c.env.Target.InstanceID(), why)
	}
	return c.fail(ctx, why, err)
}

// commandLister finds commands sent before (optional: without it, send
// trusts the record alone).
type commandLister interface {
	ListCommands(context.Context, *ssm.ListCommandsInput, ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

// StagedProgress is what a collection stage tells its caller, read from the
// step record it made: nothing in it is secret.
type StagedProgress struct {
	Online        bool   `json:"online"`
	TimedOut      bool   `json:"timed_out"`
	CommandID     string `json:"command_id"`
	CommandStatus string `json:"command_status"`
	Terminal      bool   `json:"terminal"`
	Polls         int    `json:"polls"`
	PartsUploaded int    `json:"parts_uploaded"`
	BytesUploaded int64  `json:"bytes_uploaded"`
	ImagePath     string `json:"image_path"`
	ImageSHA256   string `json:"image_sha256"`
	Aborted       string `json:"aborted"`
}

// ReadStagedProgress reads a stage's step record.
func ReadStagedProgress(after json.RawMessage) StagedProgress {
	var p StagedProgress
	var rec struct {
		Online   bool               `json:"online"`
		TimedOut bool               `json:"timed_out"`
		Command  CommandRun         `json:"command"`
		Aborted  string             `json:"aborted"`
		Image    *evidence.Artifact `json:"image"`
		Staged   *stagedCapture     `json:"staged"`
	}
	if json.Unmarshal(after, &rec) != nil {
		return p
	}
	p.Online, p.TimedOut, p.Aborted = rec.Online, rec.TimedOut, rec.Aborted
	p.CommandID, p.CommandStatus = rec.Command.CommandID, rec.Command.Status
	p.Terminal = terminalStatuses[rec.Command.Status]
	if rec.Staged != nil {
		p.Polls, p.PartsUploaded, p.BytesUploaded = rec.Staged.Polls, rec.Staged.PartsUploaded, rec.Staged.BytesUploaded
		p.TimedOut = p.TimedOut || rec.Staged.TimedOut
	}
	if rec.Image != nil {
		p.ImagePath, p.ImageSHA256 = rec.Image.Path, rec.Image.SHA256
	}
	return p
}

// CollectionSteps are the steps a staged collection runs itself; a plan
// that runs collection in stages leaves them out of its response runs.
var CollectionSteps = []string{"ssm-access", "volatile-data", "memory-capture"}

// IsCollectionStep says whether name is run by the collection stages.
func IsCollectionStep(name string) bool { return slices.Contains(CollectionSteps, name) }
