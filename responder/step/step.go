// Package step holds the response steps, one file each, and the runner that
// orders them. A step is a small type with a name, a phase, the steps it waits
// for, and a Run that records what it found before changing anything (Before),
// what it left (After) and why. Containment steps also know how to undo
// themselves from the Before they recorded (Releaser).
//
// Steps never import or call each other: what one step prepares for another
// (the quarantine group of a VPC) goes through the Env, and the runner orders
// them by Needs.
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

// Result is what a step reports.
type Result struct {
	Status string // evidence.StatusOK, StatusFailed or StatusSkipped
	Reason string
	Before any
	After  any
	Err    error
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

// Env is what a step may use: the target, the clients, the evidence store and
// the facts steps share. One Env serves one response.
type Env struct {
	CaseID    string
	Instance  types.Instance // as DescribeInstances showed it at the start
	AccountID string
	Region    string
	Actor     string
	DryRun    bool
	// CaseIDGiven is true when the caller chose the case ID: a step then
	// checks AWS for work an earlier, unrecorded run of the case did.
	CaseIDGiven bool

	EC2      cloud.EC2
	SNS      cloud.SNS
	TopicARN string
	Store    evidence.Store
	// SSM and Presign serve the OS-level collection steps; Staging writes
	// to Collection.StagingBucket (nil: no OS-level collection).
	SSM        cloud.SSM
	Presign    cloud.Presigner
	Staging    StagingAPI
	Collection Collection
	// PresignValidUntil is when the credentials that sign presigned URLs
	// expire (zero: they do not, or it is unknown).
	PresignValidUntil time.Time
	// Progress, when set, receives progress of long steps, for people.
	Progress func(Progress)
	// Prior is the case record of earlier runs of this case; nil for a new case.
	Prior *evidence.Manifest
	Run   int
	Log   *slog.Logger
	Now   func() time.Time

	// CaseSnapshots are the snapshots tagged with this case and instance,
	// looked up beside DescribeInstances when CaseIDGiven (nil: not looked
	// up; CaseSnapshotsErr: the lookup failed).
	CaseSnapshots    []evidence.Snapshot
	CaseSnapshotsErr error

	mu               sync.Mutex
	milestones       map[string]*milestone
	quarantineGroups map[string]string // VPC ID -> quarantine group ID
	collection       collectionState
	artifacts        []evidence.Artifact
	snapshots        []evidence.Snapshot
	finished         []evidence.StepRecord
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

// InstanceID is the suspect instance's ID.
func (e *Env) InstanceID() string { return aws.ToString(e.Instance.InstanceId) }

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
	e.mu.Lock()
	m := e.milestones[step+":"+name]
	e.mu.Unlock()
	if m != nil {
		m.reach()
	}
}

// SetQuarantineGroup records the quarantine group prepared for a VPC.
func (e *Env) SetQuarantineGroup(vpcID, groupID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.quarantineGroups == nil {
		e.quarantineGroups = map[string]string{}
	}
	e.quarantineGroups[vpcID] = groupID
}

// QuarantineGroup returns the quarantine group prepared for a VPC.
func (e *Env) QuarantineGroup(vpcID string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.quarantineGroups[vpcID]
	return id, ok
}

// AddSnapshots records snapshots taken for the case.
func (e *Env) AddSnapshots(s ...evidence.Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.snapshots = append(e.snapshots, s...)
}

// Snapshots returns the snapshots recorded in this run.
func (e *Env) Snapshots() []evidence.Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]evidence.Snapshot(nil), e.snapshots...)
}

// Artifacts returns the artifacts stored in this run.
func (e *Env) Artifacts() []evidence.Artifact {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]evidence.Artifact(nil), e.artifacts...)
}

// Finished returns the records of the steps finished so far, in plan order.
func (e *Env) Finished() []evidence.StepRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]evidence.StepRecord(nil), e.finished...)
}

// ErrAlreadyCollected is returned by SaveArtifact when the case already holds
// the artifact: evidence is never overwritten.
var ErrAlreadyCollected = errors.New("already collected in this case")

// SaveArtifact stores one piece of evidence in the case folder and records it
// with its SHA-256. In a dry run it stores nothing. When the case already
// holds the path (an earlier run), nothing is written and the existing
// artifact is recorded again with ErrAlreadyCollected.
func (e *Env) SaveArtifact(ctx context.Context, stepName, path string, body []byte, contentType, source string) (evidence.Artifact, error) {
	fullPath := e.InstanceID() + "/" + path
	a := evidence.Artifact{
		Path:        fullPath,
		SHA256:      evidence.SHA256(body),
		Size:        int64(len(body)),
		ContentType: contentType,
		CollectedAt: e.now(),
		Step:        stepName,
		Source:      source,
	}
	if e.DryRun {
		return a, nil
	}
	if e.Prior != nil {
		if prev, ok := e.Prior.Artifact(fullPath); ok {
			return prev, ErrAlreadyCollected
		}
	}
	stored, err := e.Store.Put(ctx, e.CaseID, fullPath, body, contentType)
	if errors.Is(err, evidence.ErrExists) {
		// Stored by an earlier run that did not finish its record: keep the
		// stored object and record what it holds.
		prevBody, gerr := e.Store.Get(ctx, e.CaseID, fullPath)
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
	e.mu.Lock()
	defer e.mu.Unlock()
	e.artifacts = append(e.artifacts, a)
}

func (e *Env) addFinished(r evidence.StepRecord, order map[string]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.finished = append(e.finished, r)
	sort.SliceStable(e.finished, func(i, j int) bool {
		return order[e.finished[i].Name] < order[e.finished[j].Name]
	})
}

// caseTags are the tags every resource created for a case carries.
func (e *Env) caseTags(resource types.ResourceType, extra ...types.Tag) []types.TagSpecification {
	tags := append([]types.Tag{
		{Key: aws.String(TagCaseID), Value: aws.String(e.CaseID)},
		{Key: aws.String(TagSourceInstance), Value: aws.String(e.InstanceID())},
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
)
