package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/responder-ir/responder/responder/evidence"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// The volatile-data collection as stages of the Lambda's state machine
// (CollectStage), beside the memory capture's: prepare (document, sealing
// key, the archive and report URLs sealed and staged in the staging
// bucket), send, then each poll looks once at the command until it ends and
// concludes as the CLI's step does (the report and the archive received,
// hashed in the forensics account and checked against the instance's
// report). The memory capture is sent only once it has ended (the CLI runs
// memory-capture after volatile-data). Its failure ends only itself.

// stagedVolatile is what the volatile-data stages keep for each other.
type stagedVolatile struct {
	Collection  string    `json:"collection"`
	Stage       string    `json:"stage"`
	Platform    string    `json:"platform,omitempty"`
	Bound       time.Time `json:"bound,omitzero"`
	ArchivePath string    `json:"archive_path,omitempty"`
	ReportPath  string    `json:"report_path,omitempty"`
	Ext         string    `json:"ext,omitempty"`
	// CommandKey is the staging object that holds the command's sealed
	// parameters, from prepare to send.
	CommandKey string `json:"command_key,omitempty"`
	Polls      int    `json:"polls,omitempty"`
	// Ended: the collection concluded (Error says why it failed, if it
	// did); later stages leave it out.
	Ended bool   `json:"ended,omitempty"`
	Error string `json:"error,omitempty"`
}

// runStage runs one stage of a staged volatile-data collection and tells
// the memory capture of the same run whether it has ended.
func (s VolatileData) runStage(ctx context.Context, env *Env) Result {
	var prev volatileState
	found := priorAfter(env, s.Name(), env.Stage.Collection, &prev) && prev.Staged != nil
	var res Result
	pending := false
	switch {
	case env.Stage.Name == StageAccess:
		res = Skipped("volatile data is collected from the prepare stage on", nil)
	case !found && env.Stage.Name == StagePrepare:
		var c *volatileCollection
		c, res = s.prepareStage(ctx, env)
		pending = c != nil && !c.st.Staged.Ended
	case !found:
		res = Skipped("volatile data was not prepared for collection "+env.Stage.Collection, nil)
	default:
		c, err := s.restore(env, prev)
		if err != nil {
			res = Failed(err, nil)
			break
		}
		c.st.Staged.Stage = env.Stage.Name
		res = c.stage(ctx)
		pending = !c.st.Staged.Ended
	}
	env.setVolatilePending(pending)
	return res
}

// VolatileOpen says whether the case record holds a staged volatile-data
// collection of this collection that has not ended: the stages after
// prepare run volatile-data only then.
func VolatileOpen(m *evidence.Manifest, collection string) bool {
	for i := len(m.Steps) - 1; i >= 0; i-- {
		r := m.Steps[i]
		if r.Name != (VolatileData{}).Name() || len(r.After) == 0 {
			continue
		}
		var st volatileState
		if json.Unmarshal(r.After, &st) != nil || st.Staged == nil || st.Staged.Collection != collection {
			continue
		}
		return !st.Staged.Ended
	}
	return false
}

// prepareStage plans and prepares the collection as Run does, then stages
// the sealed command parameters for the send stage.
func (s VolatileData) prepareStage(ctx context.Context, env *Env) (*volatileCollection, Result) {
	if err := stageNode(ctx, env); err != nil {
		return nil, Failed(err, nil)
	}
	c, res := s.plan(env)
	if c == nil {
		return nil, res
	}
	c.st.Staged = &stagedVolatile{Collection: env.Stage.Collection, Stage: StagePrepare, Platform: c.platform, Ext: c.ext}
	if err := c.prepare(ctx); err != nil {
		return c, c.end(err)
	}
	st := c.st.Staged
	st.Bound, st.ArchivePath, st.ReportPath = c.bound, c.archivePath, c.reportPath
	st.CommandKey = fmt.Sprintf("parts/%s/%s-%s-volatile-command.json", env.Target.CaseID, env.Target.InstanceID(), env.Stage.Collection)
	if err := stageCommand(ctx, env, st.CommandKey, c.params); err != nil {
		return c, c.end(err)
	}
	return c, OK(fmt.Sprintf("prepared %s: archive and report URLs sealed for the instance, until %s", c.docName, c.bound.Format(time.RFC3339)), nil, c.st)
}

// restore rebuilds the collection the prepare stage recorded.
func (s VolatileData) restore(env *Env, st volatileState) (*volatileCollection, error) {
	rcv, err := evidence.AsReceiver(env.Clients.Store)
	if err != nil {
		return nil, err
	}
	doc, ok := ssmdocuments.Lookup(st.Command.Document)
	if !ok {
		return nil, fmt.Errorf("volatile data: unknown document %q in the record", st.Command.Document)
	}
	staged := st.Staged
	return &volatileCollection{step: s, env: env, rcv: rcv, platform: staged.Platform, docName: st.Command.Document, ext: staged.Ext, doc: doc,
		bound: staged.Bound, archivePath: staged.ArchivePath, reportPath: staged.ReportPath, sent: st.Command.CommandID != "", st: st}, nil
}

// stage runs the current stage of a prepared collection.
func (c *volatileCollection) stage(ctx context.Context) Result {
	if st := c.st.Staged; st.Ended {
		if st.Error != "" {
			return Result{Status: evidence.StatusFailed, Err: errors.New(st.Error), After: c.st}
		}
		return OK("already ended: archive "+c.archivePath, nil, c.st)
	}
	switch c.env.Stage.Name {
	case StagePrepare:
		return OK("already prepared", nil, c.st)
	case StageSend:
		return c.sendStage(ctx)
	case StagePoll:
		return c.pollStage(ctx)
	case StageFinish:
		return c.finishStage(ctx)
	case StageAbort:
		return c.abortStage(ctx)
	}
	return Failed(fmt.Errorf("unknown collection stage %q", c.env.Stage.Name), nil)
}

// sendStage sends the staged command, once.
func (c *volatileCollection) sendStage(ctx context.Context) Result {
	env := c.env
	if c.st.Command.CommandID != "" {
		return OK("already sent: command "+c.st.Command.CommandID, nil, c.st)
	}
	id, err := findSentCommand(ctx, env, c.docName)
	if err != nil {
		// Not ended: the next poll tries again, within the bound.
		return Result{Status: evidence.StatusFailed, Err: err, After: c.st}
	}
	if id != "" {
		c.st.Command.CommandID, c.st.Command.SentAt, c.sent = id, env.now(), true
		return OK("already sent (found in SSM): command "+id, nil, c.st)
	}
	params, err := readStagedCommand(ctx, env, c.st.Staged.CommandKey)
	if err != nil {
		return c.end(err)
	}
	if err := sendCommand(ctx, env, env.Clients.SSM, &c.st.Command, params, c.bound); err != nil {
		return c.end(err)
	}
	c.sent = true
	return OK(fmt.Sprintf("sent %s version %s: command %s", c.docName, c.st.Command.DocumentVersion, c.st.Command.CommandID), nil, c.st)
}

// pollStage looks once at the command (sending it if an earlier send did
// not), and concludes when it has ended or cancels it past its bound.
func (c *volatileCollection) pollStage(ctx context.Context) Result {
	st, env := c.staged(), c.env
	if c.st.Command.CommandID == "" {
		if !env.now().Before(st.Bound) {
			return c.end(fmt.Errorf("%s was not sent before its bound %s", c.docName, st.Bound.Format(time.RFC3339)))
		}
		return c.sendStage(ctx)
	}
	st.Polls++
	id := env.Target.InstanceID()
	if err := c.st.Command.poll(ctx, env.Clients.SSM, id); err != nil {
		return Result{Status: evidence.StatusFailed, Err: err, After: c.st}
	}
	switch {
	case terminalStatuses[c.st.Command.Status]:
		return c.concludeStage(ctx, nil)
	case !env.now().Before(st.Bound):
		return c.concludeStage(ctx, cancelCommand(ctx, env.Clients.SSM, &c.st.Command, id,
			"the volatile data collection did not end within the playbook's capture timeout"))
	}
	return OK(fmt.Sprintf("%s %s at poll %d", c.docName, c.st.Command.Status, st.Polls), nil, c.st)
}

// finishStage concludes a collection still open when the memory capture
// finishes: as it is if its command ended, else cancelled.
func (c *volatileCollection) finishStage(ctx context.Context) Result {
	if !c.sent {
		return c.end(fmt.Errorf("%s was never sent", c.docName))
	}
	id := c.env.Target.InstanceID()
	out, err := c.env.Clients.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: &c.st.Command.CommandID, InstanceId: &id})
	if err == nil {
		c.st.Command.record(out)
	}
	if terminalStatuses[c.st.Command.Status] {
		return c.concludeStage(ctx, nil)
	}
	return c.concludeStage(ctx, cancelCommand(ctx, c.env.Clients.SSM, &c.st.Command, id, "still running when the collection finished"))
}

// abortStage cancels the command if it may still run, and keeps what
// arrived, recording why (Stage.Reason).
func (c *volatileCollection) abortStage(ctx context.Context) Result {
	why := c.env.Stage.Reason
	if why == "" {
		why = "the collection was aborted"
	}
	if !c.sent {
		return c.end(errors.New(why))
	}
	var runErr error
	if cmd := &c.st.Command; !terminalStatuses[cmd.Status] {
		runErr = cancelCommand(ctx, c.env.Clients.SSM, cmd, c.env.Target.InstanceID(), why)
	}
	return c.concludeStage(ctx, runErr)
}

// concludeStage concludes as the CLI's step does (report and archive
// received, hashed and checked) and marks the collection ended.
func (c *volatileCollection) concludeStage(ctx context.Context, runErr error) Result {
	st := c.staged()
	st.Ended = true
	res := c.conclude(ctx, runErr)
	if res.Err != nil {
		st.Error = res.Err.Error()
	}
	return res
}

// end ends the collection with err, keeping the record of what it did.
func (c *volatileCollection) end(err error) Result {
	st := c.staged()
	st.Ended, st.Error = true, err.Error()
	return Result{Status: evidence.StatusFailed, Err: err, After: c.st}
}

func (c *volatileCollection) staged() *stagedVolatile { return c.st.Staged }
