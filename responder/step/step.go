// Package step holds the response steps, one file each, and the runner that
// orders them. A step is a small type with a name, a phase, the steps it waits
// for, and a Run that records what it found before changing anything (Before),
// what it left (After) and why. Containment steps also know how to undo
// themselves from the Before they recorded (Releaser).
//
// Steps never refer to each other: what one step prepares for another (the
// quarantine group of a VPC) goes through the Env, the runner orders them by
// Needs, and what two steps share lives in a helper file that declares no
// step (ec2util.go, ssm_run.go, collection.go, collect_receive.go, retry.go).
// internal/archtest fails when a step file uses another step file's names.
package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// Phase groups steps by what they do to the instance.
type Phase string

const (
	// Acquire steps read and store evidence; they change nothing.
	Acquire Phase = "acquire"
	// Contain steps change the instance or its surroundings to isolate it.
	Contain Phase = "contain"
	// Collect steps gather OS-level evidence through SSM; they change the
	// instance only as far as running the collection needs (a forensic
	// instance profile while it runs).
	Collect Phase = "collect"
	// Report steps run after every other step (notification).
	Report Phase = "report"
)

// Step is one named unit of a response.
type Step interface {
	Name() string
	Phase() Phase
	// Needs names the steps that must have finished (whatever their status)
	// before this one starts. Report steps wait for every other step.
	Needs() []string
	Run(ctx context.Context, env *Env) Result
}

// Milestoner is a step that reaches named milestones before it ends, so that
// other steps can wait for part of it: a need "metadata:read" is met when the
// metadata step has made its reads, before it stores them. A milestone the
// step never reaches is met when the step ends.
type Milestoner interface {
	Milestones() []string
}

// Releaser is a containment step that can restore what it found, from the
// Before it recorded the first time it changed something.
type Releaser interface {
	Release(ctx context.Context, env *Env, before json.RawMessage) Result
}

// Isolator is a containment step: its work isolates the instance (or closes
// what the collection opened), and its Run says in Result.Containment what it
// read back afterwards. The case status is made of these read-backs
// (evidence.CaseStatus), never of the absence of an error: an Isolator that
// reports none is recorded as unchecked, which is not contained.
type Isolator interface {
	Isolates() bool
}

// Awaiter is a step that starts before some steps it depends on have
// finished, and waits for them itself (Env.Await) at the point its work
// needs them: the quarantine step moves the interfaces through the
// untracking group, which restricts nothing, while the snapshots are
// requested, and awaits them only before the move that isolates. An awaited
// step is ordered like a need (Validate refuses a cycle through it).
type Awaiter interface {
	Awaits() []string
}

// ContainmentReporter is a step that reports the outcome of containment
// (case-tag writes it on the instance): the plan makes it wait for every
// Isolator it runs (PlanAfter), and, like a report step, it still runs when
// the response is cancelled, to say so.
type ContainmentReporter interface {
	ReportsContainment() bool
}

// Result is what a step reports.
type Result struct {
	Status string // evidence.StatusOK, StatusFailed or StatusSkipped
	Reason string
	Before any
	After  any
	Err    error
	// Containment is what an Isolator read back (evidence.ContainmentHeld,
	// ...); ignored for any other step.
	Containment string
}

// Held sets what a containment step read back: whether the instance is in
// the state the step is there for.
func (r Result) Held(held bool) Result {
	r.Containment = evidence.ContainmentNotHeld
	if held {
		r.Containment = evidence.ContainmentHeld
	}
	return r
}

// Unchecked says a containment step could not read its state back.
func (r Result) Unchecked() Result {
	r.Containment = evidence.ContainmentUnchecked
	return r
}

// OK reports a step that did its work; reason says what it changed.
func OK(reason string, before, after any) Result {
	return Result{Status: evidence.StatusOK, Reason: reason, Before: before, After: after}
}

// Skipped reports a step that had nothing to do, and why.
func Skipped(reason string, before any) Result {
	return Result{Status: evidence.StatusSkipped, Reason: reason, Before: before}
}

// Failed reports a step that could not do its work.
func Failed(err error, before any) Result {
	return Result{Status: evidence.StatusFailed, Err: err, Before: before}
}

// Env is what a step may use during one response, in four parts that change
// for different reasons:
//
//   - Target: what the response acts on and for whom (the case, the
//     instance, the run). The engine sets it before the first step; steps
//     only read it.
//   - Clients: what the steps act through (AWS clients and the evidence
//     store). Tests swap them for fakes without touching the rest.
//   - Collection: how the OS-level collection runs (a playbook's settings).
//   - the facts the steps of this run tell each other (the quarantine group
//     of a VPC, the managed node, the artifacts stored): unexported, guarded
//     by a mutex, reached only through Env's methods, because steps run
//     concurrently.
//
// One Env serves one response.
type Env struct {
	Target     Target
	Clients    Clients
	Collection Collection
	// SnapshotLock is how snapshot-lock locks the case snapshots (a
	// playbook's preserve.snapshot_lock; zero: the defaults).
	SnapshotLock SnapshotLock
	// Progress, when set, receives progress of long steps, for people.
	Progress func(Progress)
	// StepDone, when set, receives each step's record as the step ends (a
	// fleet's live count of isolated instances and snapshot sets).
	StepDone func(evidence.StepRecord)
	Log      *slog.Logger
	Now      func() time.Time
	// Stage, when named, runs one stage of an OS-level collection split
	// across invocations (the Lambda's state machine); see CollectStage.
	Stage CollectStage

	facts facts
}

// Target is what one response acts on, on whose behalf, and what is known of
// the case before this run.
type Target struct {
	CaseID string
	// CaseIDGiven is true when the caller chose the case ID: a step then
	// checks AWS for work an earlier, unrecorded run of the case did.
	CaseIDGiven bool
	Instance    types.Instance // as DescribeInstances showed it at the start
	AccountID   string
	Region      string
	Actor       string
	DryRun      bool

	// Prior is the case record of earlier runs of this case; nil for a new
	// case. Run is this run's number in it.
	Prior *evidence.Manifest
	Run   int
	// CaseSnapshots are the snapshots tagged with this case and instance,
	// looked up beside DescribeInstances when CaseIDGiven (nil: not looked
	// up; CaseSnapshotsErr: the lookup failed).
	CaseSnapshots    []evidence.Snapshot
	CaseSnapshotsErr error
	// TaggedGroups are the toolkit's security groups in every VPC, read
	// beside DescribeInstances (ReadTaggedGroups); nil when they were not
	// read, and the group steps look them up themselves.
	TaggedGroups *[]types.SecurityGroup
	// KeepCredentialRevocation: a release leaves the credential
	// revocation on the role (responder release
	// --keep-credential-revocation), and its record says so.
	KeepCredentialRevocation bool

	// Release says this run releases the case (responder.Release): its
	// status is evidence.ReleaseStatus, not CaseStatus.
	Release bool
	// CannotPassRoles says the credentials of this run may not pass an
	// instance role (iam:PassRole): the Lambda's automation, whose member
	// role passes none but the forensic one. A release then does not try to
	// associate the instance profile the case removed; it records what a
	// person runs with the release role instead.
	CannotPassRoles bool
}

// InstanceID is the suspect instance's ID.
func (t *Target) InstanceID() string { return aws.ToString(t.Instance.InstanceId) }

// Clients are what the steps act through.
type Clients struct {
	EC2 cloud.EC2
	SNS cloud.SNS
	// IAM revokes the role credentials delivered to the instance (nil: the
	// credential-revocation step fails, saying so).
	IAM cloud.IAM
	// TopicARN is the SNS topic notify publishes to ("": no notification).
	TopicARN string
	Store    evidence.Store
	// SSM and Presign serve the OS-level collection steps; Staging writes
	// to Collection.StagingBucket (nil: no OS-level collection).
	SSM     cloud.SSM
	Presign cloud.Presigner
	Staging StagingAPI
	// AutoScaling, ELBv2 and ELB serve the auto-scaling and load-balancers
	// steps (nil: the step fails, saying which client is missing).
	AutoScaling cloud.AutoScaling
	ELBv2       cloud.ELBv2
	ELB         cloud.ELB
	// PresignValidUntil is when the credentials that sign presigned URLs
	// expire (zero: they do not, or it is unknown).
	PresignValidUntil time.Time
}

// facts are what the steps of one run tell each other. Env's methods are
// the only way in: steps run concurrently, and mu guards every field.
type facts struct {
	mu         sync.Mutex
	milestones map[string]*milestone
	done       map[string]chan struct{} // step name -> closed when it ends
	gates      map[string]bool          // steps a containment step needs or awaits
	// attributes are the instance attributes the metadata step read at the
	// start of the response, before any change.
	attributes       map[types.InstanceAttributeName]*ec2.DescribeInstanceAttributeOutput
	quarantineGroups map[string]string // VPC ID -> quarantine group ID
	untrackingGroups map[string]string // VPC ID -> untracking group ID
	collection       collectionState
	artifacts        []evidence.Artifact
	snapshots        []evidence.Snapshot
	finished         []evidence.StepRecord
	// interrupted: a step ended after the response was cancelled.
	interrupted bool
}

// Progress is how far a long step has got.
type Progress struct {
	Step    string
	Message string
	// Done and Total count bytes or parts when known (Total 0: unknown).
	Done, Total int64
}

func (e *Env) progress(ctx context.Context, msg string, done, total int64) {
	if e.Progress == nil {
		return
	}
	step, _ := ctx.Value(stepNameKey{}).(string)
	e.Progress(Progress{Step: step, Message: msg, Done: done, Total: total})
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

type milestone struct {
	ch   chan struct{}
	once sync.Once
}

func (m *milestone) reach() { m.once.Do(func() { close(m.ch) }) }

type stepNameKey struct{}

// Reach marks a milestone of the running step (see Milestoner).
func (e *Env) Reach(ctx context.Context, name string) {
	step, _ := ctx.Value(stepNameKey{}).(string)
	e.facts.mu.Lock()
	m := e.facts.milestones[step+":"+name]
	e.facts.mu.Unlock()
	if m != nil {
		m.reach()
	}
}

// Planned reports whether the plan of this run has the named step.
func (e *Env) Planned(name string) bool {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return e.facts.done[name] != nil
}

// gatesIsolation reports whether a containment step of the plan needs or
// awaits the named step.
func (e *Env) gatesIsolation(name string) bool {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return e.facts.gates[name]
}

// Await waits until the named step of the plan has finished, whatever its
// outcome (a step the plan does not run is not waited for), or until ctx
// ends. Only a step that declares the name in Awaits may await it.
func (e *Env) Await(ctx context.Context, name string) error {
	e.facts.mu.Lock()
	ch := e.facts.done[name]
	e.facts.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for step %s: %w", name, ctx.Err())
	}
}

// setAttribute keeps an instance attribute as read before any change.
func (e *Env) setAttribute(name types.InstanceAttributeName, out *ec2.DescribeInstanceAttributeOutput) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	if e.facts.attributes == nil {
		e.facts.attributes = map[types.InstanceAttributeName]*ec2.DescribeInstanceAttributeOutput{}
	}
	e.facts.attributes[name] = out
}

// describeAttribute is the instance attribute as the metadata step read it
// at the start of this response, or, when it did not, as EC2 says now. The
// steps that change an attribute record it as found: they wait for
// metadata:read, so that they read it once.
func (e *Env) describeAttribute(ctx context.Context, api instanceAttributeAPI, name types.InstanceAttributeName) (*ec2.DescribeInstanceAttributeOutput, error) {
	e.facts.mu.Lock()
	out := e.facts.attributes[name]
	e.facts.mu.Unlock()
	if out != nil {
		return out, nil
	}
	id := e.Target.InstanceID()
	return api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: &id, Attribute: name})
}

// SetQuarantineGroup records the quarantine group prepared for a VPC.
func (e *Env) SetQuarantineGroup(vpcID, groupID string) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	if e.facts.quarantineGroups == nil {
		e.facts.quarantineGroups = map[string]string{}
	}
	e.facts.quarantineGroups[vpcID] = groupID
}

// QuarantineGroup returns the quarantine group prepared for a VPC.
func (e *Env) QuarantineGroup(vpcID string) (string, bool) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	id, ok := e.facts.quarantineGroups[vpcID]
	return id, ok
}

// SetUntrackingGroup records the untracking group prepared for a VPC: the
// quarantine step moves each interface of that VPC through it first. An
// empty groupID says the plan wanted one and it could not be prepared.
func (e *Env) SetUntrackingGroup(vpcID, groupID string) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	if e.facts.untrackingGroups == nil {
		e.facts.untrackingGroups = map[string]string{}
	}
	e.facts.untrackingGroups[vpcID] = groupID
}

// UntrackingGroup returns the untracking group prepared for a VPC ("" when
// it could not be), and whether the plan's untracking-group step prepared
// one for it at all.
func (e *Env) UntrackingGroup(vpcID string) (string, bool) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	id, ok := e.facts.untrackingGroups[vpcID]
	return id, ok
}

// AddSnapshots records snapshots taken for the case.
func (e *Env) AddSnapshots(s ...evidence.Snapshot) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	e.facts.snapshots = append(e.facts.snapshots, s...)
}

// Snapshots returns the snapshots recorded in this run.
func (e *Env) Snapshots() []evidence.Snapshot {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return append([]evidence.Snapshot(nil), e.facts.snapshots...)
}

// Artifacts returns the artifacts stored in this run.
func (e *Env) Artifacts() []evidence.Artifact {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return append([]evidence.Artifact(nil), e.facts.artifacts...)
}

// Finished returns the records of the steps finished so far, in plan order.
func (e *Env) Finished() []evidence.StepRecord {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return append([]evidence.StepRecord(nil), e.facts.finished...)
}

// Interrupted reports whether the response was cancelled (Ctrl-C, SIGTERM, a
// deadline) while a step still ran or waited: the run did not finish.
func (e *Env) Interrupted() bool {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return e.facts.interrupted
}

func (e *Env) markInterrupted() {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	e.facts.interrupted = true
}

// Status is the case status the steps finished so far prove
// (evidence.CaseStatus). Report steps and containment reporters, which run
// after the steps they speak of, use it: one word everywhere.
func (e *Env) Status() string {
	o := evidence.Outcome{DryRun: e.Target.DryRun, Interrupted: e.Interrupted()}
	if e.Target.Release {
		return evidence.ReleaseStatus(e.Finished(), o)
	}
	return evidence.CaseStatus(e.Finished(), o)
}

// ErrAlreadyCollected is returned by SaveArtifact when the case already holds
// the artifact: evidence is never overwritten.
var ErrAlreadyCollected = errors.New("already collected in this case")

// SaveArtifact stores one piece of evidence in the case folder and records it
// with its SHA-256. In a dry run it stores nothing. When the case already
// holds the path (an earlier run), nothing is written and the existing
// artifact is recorded again with ErrAlreadyCollected.
func (e *Env) SaveArtifact(ctx context.Context, stepName, path string, body []byte, contentType, source string) (evidence.Artifact, error) {
	fullPath := e.Target.InstanceID() + "/" + path
	a := evidence.Artifact{
		Path:        fullPath,
		SHA256:      evidence.SHA256(body),
		Size:        int64(len(body)),
		ContentType: contentType,
		CollectedAt: e.now(),
		Step:        stepName,
		Source:      source,
	}
	if e.Target.DryRun {
		return a, nil
	}
	if e.Target.Prior != nil {
		if prev, ok := e.Target.Prior.Artifact(fullPath); ok {
			return prev, ErrAlreadyCollected
		}
	}
	stored, err := e.Clients.Store.Put(ctx, e.Target.CaseID, fullPath, body, contentType)
	if errors.Is(err, evidence.ErrExists) {
		// Stored by an earlier run that did not finish its record: keep the
		// stored object and record what it holds.
		prevBody, gerr := e.Clients.Store.Get(ctx, e.Target.CaseID, fullPath)
		if gerr != nil {
			return a, fmt.Errorf("%s exists but cannot be read back: %w", fullPath, gerr)
		}
		a.SHA256, a.Size = evidence.SHA256(prevBody), int64(len(prevBody))
		e.addArtifact(a)
		return a, ErrAlreadyCollected
	}
	if err != nil {
		return a, err
	}
	a.VersionID, a.Encryption = stored.VersionID, stored.Encryption
	e.addArtifact(a)
	return a, nil
}

func (e *Env) addArtifact(a evidence.Artifact) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	e.facts.artifacts = append(e.facts.artifacts, a)
}

func (e *Env) addFinished(r evidence.StepRecord, order map[string]int) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	e.facts.finished = append(e.facts.finished, r)
	sort.SliceStable(e.facts.finished, func(i, j int) bool {
		return order[e.facts.finished[i].Name] < order[e.facts.finished[j].Name]
	})
}

// caseTags are the tags every resource created for a case carries.
func (e *Env) caseTags(resource types.ResourceType, extra ...types.Tag) []types.TagSpecification {
	tags := append([]types.Tag{
		{Key: aws.String(TagCaseID), Value: aws.String(e.Target.CaseID)},
		{Key: aws.String(TagSourceInstance), Value: aws.String(e.Target.InstanceID())},
	}, extra...)
	return []types.TagSpecification{{ResourceType: resource, Tags: tags}}
}

// Tag keys the toolkit writes.
const (
	TagCaseID         = "responder:case-id"
	TagSourceInstance = "responder:source-instance-id"
	TagQuarantine     = "responder:quarantine"
	TagStatus         = "responder:status"
	// TagQuarantine's value on a forensic access group.
	ForensicAccessTagValue = "forensic-access"
	// TagQuarantine's value on an untracking group (all traffic in and out:
	// see untracking_group.go).
	UntrackingTagValue = "untracking"
)
