// Package preserve copies the snapshots of a case into the forensics
// account: re-encrypted under the forensics key, tagged with the case and the
// source, and recorded in the case record as a "preserve" run. It is one of
// the three engines (respond in package responder, preserve, custody).
package preserve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/semaphore"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// Tags the preserve run puts on the snapshots it makes.
const (
	TagCaseID           = "responder:case-id"
	TagSourceSnapshotID = "responder:source-snapshot-id"
	TagSourceAccountID  = "responder:source-account-id"
)

// Preserve defaults.
const (
	DefaultPoll    = 15 * time.Second
	DefaultTimeout = 2 * time.Hour
	// DefaultCopiesInFlight keeps well under EBS's quota of concurrent
	// snapshot copies per destination Region, which other work in the
	// account shares.
	DefaultCopiesInFlight = 5
)

// Playbook names the runs Preserve records.
const Playbook = "preserve"

// Statuses of a preserve run (evidence.Run.Status). A preserve run does not
// change the case status, which says how containment ended.
const (
	Completed = "preserved"        // every copy completed
	Pending   = "preserve-pending" // copies made, some not completed yet
	Failed    = "preserve-failed"  // some snapshot could not be copied
)

const (
	phasePreserve     = "preserve"           // its phase
	maxCopyBackoffMul = 16                   // ResourceLimitExceeded backoff cap, in poll intervals
	copyDescription   = "responder evidence" // prefix of the copies' descriptions
	// reusedReason starts the reason of a step that found the copy made
	// by an earlier run: the step is recorded as skipped.
	reusedReason = "already copied as "
)

// Request asks to copy every snapshot of a case into the forensics
// account.
type Request struct {
	CaseID string
	// ForensicsAccountID is the account the snapshots are copied into; the
	// Preserver's Forensics client must act in it.
	ForensicsAccountID string
	// ForensicsKMSKeyID encrypts the copies (a key of the forensics account).
	ForensicsKMSKeyID string
	// SourceKMSKeyID is a customer managed key of the workload account that
	// the forensics account may use. Snapshots encrypted with the AWS managed
	// key aws/ebs cannot be shared: they are first copied in the workload
	// account under this key. Without it such snapshots fail.
	SourceKMSKeyID string
	// Wait waits until the copies in the forensics account are completed.
	// Source snapshots and re-encrypted copies are always waited for: only
	// a completed snapshot can be copied.
	Wait bool
	// PollInterval is the time between two DescribeSnapshots of a snapshot
	// waited on (default DefaultPoll); Timeout bounds the whole run
	// (default DefaultTimeout).
	PollInterval time.Duration
	Timeout      time.Duration
	// CopiesInFlight is how many snapshots are copied at once (default
	// DefaultCopiesInFlight).
	CopiesInFlight int
	// Progress, when set, is told of every stage and every poll. Calls are
	// serialised.
	Progress func(Progress)
}

// Preserve stages, as Progress reports them.
const (
	StageSource    = "source"     // waiting for the case snapshot to complete
	StageReencrypt = "re-encrypt" // copying it under SourceKMSKeyID in the workload account
	StageShare     = "share"      // sharing it with the forensics account
	StageCopy      = "copy"       // copying it in the forensics account
	StageDone      = "done"
	StageFailed    = "failed"
)

// Progress is one progress report about one case snapshot.
type Progress struct {
	SourceSnapshotID string
	Stage            string
	// SnapshotID is the snapshot the stage works on or waits for.
	SnapshotID string
	// Percent is the progress DescribeSnapshots reports (0-100).
	Percent int
	Detail  string
}

// Result is the outcome of Preserve.
type Result struct {
	// Manifest is the case record after this run.
	Manifest *evidence.Manifest
	// Copies are this run's copy records, in the order of the case snapshots.
	Copies []evidence.SnapshotCopy
	Steps  []evidence.StepRecord
	Status string
	// Err aggregates every snapshot that failed and a failure to save.
	Err     error
	SaveErr error
	// Unchanged is true when nothing changed since the record: no run was
	// recorded.
	Unchanged bool
}

// Preserver copies case snapshots from the workload account into the
// forensics account.
type Preserver struct {
	// Source is EC2 in the workload account (the assumed role).
	Source cloud.EC2
	// KMS is KMS in the workload account. It tells the AWS managed key
	// aws/ebs from customer managed keys; when nil (or denied), a snapshot is
	// re-encrypted only after sharing it was refused.
	KMS cloud.KMS
	// Forensics is EC2 in the forensics account (the caller's credentials).
	Forensics cloud.ForensicsEC2
	// Caller identifies who runs it (optional); ActingAs the workload role.
	Caller   cloud.STS
	ActingAs cloud.STS
	// ForensicsIdentity is STS with the credentials Forensics acts with:
	// Preserve checks that they are of the forensics account it is told
	// before it copies anything (nil: not checked).
	ForensicsIdentity cloud.STS
	Store             evidence.Store
	// Signer, when set, signs the record the run saves (--signing-key).
	Signer evidence.Signer
	Region string
	Log    *slog.Logger
	Now    func() time.Time
}

// New builds the preserve engine from the workload-account clients
// cloud.Load built (the assumed role, when there is one), EC2 in the
// forensics account, and the evidence store. Log and Now default to
// slog.Default and the system clock.
func New(workload *cloud.Clients, forensics cloud.ForensicsEC2, store evidence.Store) *Preserver {
	p := &Preserver{
		Source: workload.EC2, KMS: workload.KMS, Forensics: forensics, Caller: workload.STS,
		ForensicsIdentity: workload.STS, Store: store, Region: workload.Region,
	}
	if workload.CallerSTS != nil {
		// A role is assumed in the workload account: the forensics
		// account is the caller's own.
		p.Caller, p.ActingAs, p.ForensicsIdentity = workload.CallerSTS, workload.STS, workload.CallerSTS
	}
	return p
}

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// Validate checks a request without calling AWS.
func (req *Request) Validate() error {
	var errs *multierror.Error
	if err := evidence.ValidateCaseID(req.CaseID); err != nil {
		errs = multierror.Append(errs, err)
	}
	if !accountIDPattern.MatchString(req.ForensicsAccountID) {
		errs = multierror.Append(errs, fmt.Errorf("invalid forensics account ID %q: want 12 digits", req.ForensicsAccountID))
	}
	if req.ForensicsKMSKeyID == "" {
		errs = multierror.Append(errs, errors.New("a forensics KMS key is required: the copies are always encrypted"))
	}
	if req.PollInterval < 0 || req.Timeout < 0 || req.CopiesInFlight < 0 {
		errs = multierror.Append(errs, errors.New("poll interval, timeout and copies in flight must not be negative"))
	}
	if err := errlist.OneLine(errs); err != nil {
		return &responder.InputError{Err: err}
	}
	return nil
}

func (p *Preserver) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

// Preserve copies every snapshot of the case into the forensics account,
// re-encrypted with the forensics key and tagged with the case and source,
// and records the copies and a "preserve" run in the case record. One
// snapshot failing does not stop the others. Running it again makes no
// second copy: a copy already recorded, or found by its tags in the
// forensics account, is kept (and its state refreshed). It returns an error
// only when it could not start (bad input, case not found).
func (p *Preserver) Preserve(ctx context.Context, req Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.PollInterval == 0 {
		req.PollInterval = DefaultPoll
	}
	if req.Timeout == 0 {
		req.Timeout = DefaultTimeout
	}
	if req.CopiesInFlight == 0 {
		req.CopiesInFlight = DefaultCopiesInFlight
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("case_id", req.CaseID)
	if err := p.checkForensicsAccount(ctx, req.ForensicsAccountID); err != nil {
		return nil, err
	}
	// The newest record, from history when the save of a run stopped
	// before manifest.json (RepairRecord completes it before this save).
	rec, err := evidence.LoadRecord(ctx, p.Store, req.CaseID)
	if err == nil && rec.Manifest == nil {
		err = fmt.Errorf("%s: %w", p.Store.Location(req.CaseID, evidence.ManifestName), evidence.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", req.CaseID, err)
	}
	prior := rec.Manifest
	started := p.now()
	actor, actingAs := p.identify(ctx, log)

	var progressMu sync.Mutex
	report := func(pr Progress) {
		if req.Progress != nil {
			progressMu.Lock()
			defer progressMu.Unlock()
			req.Progress(pr)
		}
	}
	runCtx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	job := &preserveJob{p: p, req: req, m: prior, run: rec.Run, log: log, report: report, lock: step.RecordedSnapshotLock(prior),
		keys: map[string]keyInfo{}, slots: semaphore.NewWeighted(int64(req.CopiesInFlight))}

	snaps := uniqueSnapshots(prior.Snapshots)
	copies := make([]evidence.SnapshotCopy, len(snaps))
	steps := make([]evidence.StepRecord, len(snaps))
	var wg sync.WaitGroup
	for i, s := range snaps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			copies[i], steps[i] = job.one(runCtx, s)
		}()
	}
	wg.Wait()

	res := &Result{Copies: copies, Steps: steps, Status: Completed}
	var errs *multierror.Error
	for _, c := range copies {
		if c.LockError != "" {
			errs = multierror.Append(errs, fmt.Errorf("copy %s: not locked: %s", c.SnapshotID, c.LockError))
		}
		switch c.State {
		case evidence.CopyFailed:
			res.Status = Failed
			errs = multierror.Append(errs, fmt.Errorf("snapshot %s: %s", c.SourceSnapshotID, c.Error))
		case evidence.CopyPending:
			if res.Status == Completed {
				res.Status = Pending
			}
		}
	}
	if unchangedCopies(prior, copies) {
		// A poll that found every copy as the record already has it (the
		// Lambda's wait loop polls until the copies complete) is not a new
		// run: the record is not rewritten.
		res.Manifest, res.Unchanged = prior, true
		res.Err = errlist.OneLine(errs)
		log.Info("preserve: nothing changed since the last record", "status", res.Status)
		return res, nil
	}
	res.Manifest = evidence.AppendRun(prior, *prior, evidence.Revision{
		Run: evidence.Run{
			Number: job.run, Actor: actor, ActingAs: actingAs, Playbook: Playbook,
			Status: res.Status, StartedAt: started, EndedAt: p.now(),
		},
		Steps: steps, Copies: copies,
		Tool: responder.Tool(), Location: p.Store.Location(req.CaseID, ""),
	})
	// The record is saved even when the run timed out or was cancelled.
	if err := evidence.RepairSignedRecord(ctx, p.Store, rec, p.Signer); err != nil {
		errs = multierror.Append(errs, err)
		log.Error("interrupted save not completed", "error", err)
	}
	if err := evidence.SaveSignedRun(ctx, p.Store, res.Manifest, p.Signer); errors.Is(err, evidence.ErrNotSigned) {
		errs = multierror.Append(errs, err)
		log.Error("case record saved unsigned", "error", err)
	} else if err != nil {
		res.SaveErr = err
		errs = multierror.Append(errs, fmt.Errorf("save case record: %w", err))
		log.Error("case record not saved", "error", err)
	}
	res.Err = errlist.OneLine(errs)
	log.Info("preserve finished", "status", res.Status, "snapshots", len(snaps))
	return res, nil
}

// ErrForensicsAccountMismatch: the credentials that would make the copies
// act in another account than the forensics account the request names.
var ErrForensicsAccountMismatch = errors.New("the forensics credentials are of another account")

// checkForensicsAccount makes sure the copies are made in the account the
// record will name: the credentials Forensics acts with must be of it. A
// mismatch is bad input (the wrong --forensics-account or profile), found
// before anything is copied.
func (p *Preserver) checkForensicsAccount(ctx context.Context, want string) error {
	if p.ForensicsIdentity == nil {
		return nil
	}
	out, err := p.ForensicsIdentity.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("identify the forensics credentials (sts:GetCallerIdentity): %w", err)
	}
	if got := aws.ToString(out.Account); got != want {
		return &responder.InputError{Err: fmt.Errorf("%w: they act in account %s (%s), not in the forensics account %s: the copies would be made, and recorded, in the wrong account",
			ErrForensicsAccountMismatch, got, aws.ToString(out.Arn), want)}
	}
	return nil
}

// identify returns who runs the preserve and, when a role is assumed in the
// workload account, as whom. Failures leave them empty: the copies matter
// more than the name on them.
func (p *Preserver) identify(ctx context.Context, log *slog.Logger) (actor, actingAs string) {
	if p.Caller != nil {
		if out, err := p.Caller.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
			actor = aws.ToString(out.Arn)
		} else {
			log.Warn("could not identify the caller", "error", err)
		}
	}
	if p.ActingAs != nil {
		if out, err := p.ActingAs.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
			actingAs = aws.ToString(out.Arn)
		}
	}
	return actor, actingAs
}

func uniqueSnapshots(in []evidence.Snapshot) []evidence.Snapshot {
	seen := map[string]bool{}
	var out []evidence.Snapshot
	for _, s := range in {
		if !seen[s.SnapshotID] {
			seen[s.SnapshotID] = true
			out = append(out, s)
		}
	}
	return out
}

// unchangedCopies reports whether every copy of this run is already in the
// record with the same snapshot, state and error.
func unchangedCopies(prior *evidence.Manifest, copies []evidence.SnapshotCopy) bool {
	if len(copies) == 0 {
		return false
	}
	for _, c := range copies {
		found := false
		for _, p := range prior.SnapshotCopies {
			if p.SourceSnapshotID == c.SourceSnapshotID {
				found = p.SnapshotID == c.SnapshotID && p.State == c.State && p.Error == c.Error &&
					(p.Lock == nil) == (c.Lock == nil) && p.LockError == c.LockError
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// keyInfo is what DescribeKey said of a key.
type keyInfo struct {
	awsManaged bool
}

// preserveJob is one Preserve call's shared state.
type preserveJob struct {
	p      *Preserver
	req    Request
	m      *evidence.Manifest
	run    int
	log    *slog.Logger
	report func(Progress)
	slots  *semaphore.Weighted // copies in flight
	// lock is how the copies are locked: as the case snapshots were.
	lock step.SnapshotLock

	keysMu sync.Mutex
	keys   map[string]keyInfo
}

// sourceState is what the step found of the case snapshot: its before.
type sourceState struct {
	SnapshotID    string `json:"snapshot_id"`
	OwnerID       string `json:"owner_id,omitempty"`
	State         string `json:"state,omitempty"`
	Encrypted     bool   `json:"encrypted"`
	KMSKeyID      string `json:"kms_key_id,omitempty"`
	AWSManagedKey bool   `json:"aws_managed_key,omitempty"`
	// PriorCopy is the copy an earlier run recorded, if any.
	PriorCopy *evidence.SnapshotCopy `json:"prior_copy,omitempty"`
}

// one preserves one case snapshot and returns its copy record and step.
func (j *preserveJob) one(ctx context.Context, s evidence.Snapshot) (evidence.SnapshotCopy, evidence.StepRecord) {
	calls := &cloud.CallLog{}
	ctx = cloud.WithCallLog(ctx, calls)
	rec := evidence.StepRecord{Run: j.run, Name: step.SnapshotCopyRecord, Phase: phasePreserve, StartedAt: j.p.now()}
	cp := evidence.SnapshotCopy{
		SourceSnapshotID: s.SnapshotID, SourceAccountID: j.m.AccountID,
		AccountID: j.req.ForensicsAccountID, Region: j.p.Region, KMSKeyID: j.req.ForensicsKMSKeyID,
		StartedAt: j.p.now(), Run: j.run,
	}
	before := sourceState{SnapshotID: s.SnapshotID}
	if prior, ok := j.m.SnapshotCopy(s.SnapshotID); ok {
		before.PriorCopy = &prior
	}
	reason, err := j.preserve(ctx, s, &cp, &before)
	if err != nil {
		cp.State, cp.Error = evidence.CopyFailed, err.Error()
		rec.Status, rec.Error = evidence.StatusFailed, err.Error()
		j.report(Progress{SourceSnapshotID: s.SnapshotID, Stage: StageFailed, SnapshotID: cp.SnapshotID, Detail: err.Error()})
		j.log.Warn("snapshot not preserved", "snapshot_id", s.SnapshotID, "error", err)
	} else {
		rec.Status = evidence.StatusOK
		if strings.HasPrefix(reason, reusedReason) {
			rec.Status = evidence.StatusSkipped
		}
		j.report(Progress{SourceSnapshotID: s.SnapshotID, Stage: StageDone, SnapshotID: cp.SnapshotID,
			Percent: percentOf(cp.State), Detail: cp.State})
	}
	rec.Reason = reason
	rec.Before, _ = json.Marshal(before)
	rec.After, _ = json.Marshal(cp)
	rec.Calls = calls.Calls()
	rec.EndedAt = j.p.now()
	return cp, rec
}

func percentOf(state string) int {
	if state == evidence.CopyCompleted {
		return 100
	}
	return 0
}

// preserve does the work for one snapshot, filling cp and before. It
// returns what it did, in words.
func (j *preserveJob) preserve(ctx context.Context, s evidence.Snapshot, cp *evidence.SnapshotCopy, before *sourceState) (string, error) {
	// A copy made earlier is kept: refresh its state, wait if asked.
	if prior := before.PriorCopy; prior != nil && prior.SnapshotID != "" && prior.State != evidence.CopyFailed {
		found, err := j.describeCopy(ctx, prior.SnapshotID)
		switch {
		case err != nil:
			return "", err
		case found != nil:
			*cp = *prior
			return reusedReason + prior.SnapshotID + " (run " + strconv.Itoa(prior.Run) + ")", j.settle(ctx, cp, *found)
		}
		j.log.Warn("the recorded copy no longer exists; copying again", "snapshot_id", s.SnapshotID, "copy", prior.SnapshotID)
	}
	if found, err := j.findByTags(ctx, j.p.Forensics, s.SnapshotID, true); err != nil {
		return "", fmt.Errorf("look for an earlier copy in account %s: %w", j.req.ForensicsAccountID, err)
	} else if found != nil {
		cp.SnapshotID = aws.ToString(found.SnapshotId)
		if found.StartTime != nil {
			cp.StartedAt = found.StartTime.UTC()
		}
		if prior := before.PriorCopy; prior != nil {
			cp.IntermediateSnapshotID, cp.IntermediateKMSKeyID = prior.IntermediateSnapshotID, prior.IntermediateKMSKeyID
			cp.SharedSnapshotID, cp.SourceKMSKeyID = prior.SharedSnapshotID, prior.SourceKMSKeyID
		}
		return reusedReason + cp.SnapshotID + " (found by its tags)", j.settle(ctx, cp, *found)
	}

	// The source must be completed before it can be copied.
	src, err := j.wait(ctx, j.p.Source, s.SnapshotID, s.SnapshotID, StageSource)
	if err != nil {
		return "", fmt.Errorf("source snapshot: %w", err)
	}
	before.OwnerID, before.State = aws.ToString(src.OwnerId), string(src.State)
	before.Encrypted, before.KMSKeyID = aws.ToBool(src.Encrypted), aws.ToString(src.KmsKeyId)
	if before.OwnerID != "" {
		cp.SourceAccountID = before.OwnerID
	}
	cp.SourceKMSKeyID = before.KMSKeyID
	var did []string

	shared := s.SnapshotID
	if before.Encrypted {
		before.AWSManagedKey = j.awsManaged(ctx, before.KMSKeyID)
	}
	if before.AWSManagedKey && cp.SourceAccountID != j.req.ForensicsAccountID {
		if shared, err = j.reencrypt(ctx, s.SnapshotID, cp, before); err != nil {
			return "", err
		}
		did = append(did, "re-encrypted as "+shared+" under "+j.req.SourceKMSKeyID)
	}
	cp.SharedSnapshotID = shared
	if cp.SourceAccountID == j.req.ForensicsAccountID {
		did = append(did, "same account: nothing to share")
	} else {
		err := j.share(ctx, s.SnapshotID, shared)
		if cloud.IsErrorCode(err, "OperationNotPermitted") && before.Encrypted && shared == s.SnapshotID {
			// DescribeKey could not tell; EC2 refused to share a snapshot
			// under the AWS managed key.
			before.AWSManagedKey = true
			if shared, err = j.reencrypt(ctx, s.SnapshotID, cp, before); err != nil {
				return "", err
			}
			did = append(did, "re-encrypted as "+shared+" under "+j.req.SourceKMSKeyID+" (sharing was refused)")
			cp.SharedSnapshotID = shared
			err = j.share(ctx, s.SnapshotID, shared)
		}
		if err != nil {
			return "", fmt.Errorf("share %s with account %s: %w", shared, j.req.ForensicsAccountID, err)
		}
		did = append(did, "shared "+shared+" with "+j.req.ForensicsAccountID)
	}

	if err := j.acquireSlot(ctx); err != nil {
		return "", fmt.Errorf("wait for a copy slot: %w", err)
	}
	defer j.releaseSlot()
	j.report(Progress{SourceSnapshotID: s.SnapshotID, Stage: StageCopy, SnapshotID: shared})
	cp.StartedAt = j.p.now()
	out, err := j.copy(ctx, j.p.Forensics, &ec2.CopySnapshotInput{
		SourceRegion:     aws.String(j.p.Region),
		SourceSnapshotId: aws.String(shared),
		Encrypted:        aws.Bool(true),
		KmsKeyId:         aws.String(j.req.ForensicsKMSKeyID),
		Description:      aws.String(fmt.Sprintf("%s: case %s, %s of account %s", copyDescription, j.req.CaseID, s.SnapshotID, cp.SourceAccountID)),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{
			{Key: aws.String(TagCaseID), Value: aws.String(j.req.CaseID)},
			{Key: aws.String(TagSourceSnapshotID), Value: aws.String(s.SnapshotID)},
			{Key: aws.String(TagSourceAccountID), Value: aws.String(cp.SourceAccountID)},
			{Key: aws.String("Name"), Value: aws.String(j.req.CaseID + " " + s.SnapshotID)},
		}}},
	})
	if err != nil {
		return "", fmt.Errorf("copy %s into account %s: %w", shared, j.req.ForensicsAccountID, err)
	}
	cp.SnapshotID, cp.State = aws.ToString(out.SnapshotId), evidence.CopyPending
	did = append(did, "copied as "+cp.SnapshotID+" in "+j.req.ForensicsAccountID+j.lockCopy(ctx, cp))
	if j.req.Wait {
		done, err := j.wait(ctx, j.p.Forensics, s.SnapshotID, cp.SnapshotID, StageCopy)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			did = append(did, "still pending when the wait ended")
		case err != nil:
			return strings.Join(did, "; "), fmt.Errorf("copy %s: %w", cp.SnapshotID, err)
		default:
			markCompleted(cp, done)
		}
	}
	return strings.Join(did, "; "), nil
}

// settle records the state of an existing copy, waiting for it when asked.
func (j *preserveJob) settle(ctx context.Context, cp *evidence.SnapshotCopy, found types.Snapshot) error {
	cp.Error = ""
	if found.State != types.SnapshotStateError {
		j.lockCopy(ctx, cp) // a copy made before locks existed, or whose lock failed
	}
	switch found.State {
	case types.SnapshotStateCompleted:
		markCompleted(cp, found)
		return nil
	case types.SnapshotStateError:
		return fmt.Errorf("copy %s failed: %s", cp.SnapshotID, aws.ToString(found.StateMessage))
	}
	cp.State = evidence.CopyPending
	if !j.req.Wait {
		return nil
	}
	done, err := j.wait(ctx, j.p.Forensics, cp.SourceSnapshotID, cp.SnapshotID, StageCopy)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // still pending: a later run or verify sees it complete
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", cp.SnapshotID, err)
	}
	markCompleted(cp, done)
	return nil
}

func markCompleted(cp *evidence.SnapshotCopy, s types.Snapshot) {
	cp.State = evidence.CopyCompleted
	if s.CompletionTime != nil {
		t := s.CompletionTime.UTC()
		cp.CompletedAt = &t
	}
}

// describeCopy returns a recorded copy as the forensics account shows it,
// nil when it no longer exists.
func (j *preserveJob) describeCopy(ctx context.Context, id string) (*types.Snapshot, error) {
	out, err := j.p.Forensics.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	switch {
	case cloud.IsErrorCode(err, "InvalidSnapshot.NotFound"):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("describe copy %s: %w", id, err)
	case len(out.Snapshots) == 0:
		return nil, nil
	}
	return &out.Snapshots[0], nil
}

// findByTags finds a snapshot this toolkit made from the source for this
// case (not failed), in the account api acts in: a copy for the forensics
// account (tagged with the source account) when final is set, else a
// re-encrypted intermediate copy. Both carry the case and source tags, and
// may live in one account when the forensics account is the workload's.
func (j *preserveJob) findByTags(ctx context.Context, api cloud.ForensicsEC2, source string, final bool) (*types.Snapshot, error) {
	out, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []types.Filter{
			{Name: aws.String("tag:" + TagCaseID), Values: []string{j.req.CaseID}},
			{Name: aws.String("tag:" + TagSourceSnapshotID), Values: []string{source}},
		},
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out.Snapshots, func(a, b int) bool {
		return aws.ToTime(out.Snapshots[a].StartTime).Before(aws.ToTime(out.Snapshots[b].StartTime))
	})
	for _, s := range out.Snapshots {
		if s.State != types.SnapshotStateError && hasTagKey(s.Tags, TagSourceAccountID) == final {
			return &s, nil
		}
	}
	return nil, nil
}

func hasTagKey(tags []types.Tag, key string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return true
		}
	}
	return false
}

// awsManaged reports whether a key is AWS managed (aws/ebs). When KMS cannot
// tell, it answers false and sharing decides.
func (j *preserveJob) awsManaged(ctx context.Context, keyID string) bool {
	if j.p.KMS == nil || keyID == "" {
		return false
	}
	j.keysMu.Lock()
	info, ok := j.keys[keyID]
	j.keysMu.Unlock()
	if ok {
		return info.awsManaged
	}
	out, err := j.p.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		j.log.Warn("could not describe the snapshot's KMS key; trying to share it as it is", "kms_key_id", keyID, "error", err)
		return false
	}
	info = keyInfo{awsManaged: out.KeyMetadata != nil && out.KeyMetadata.KeyManager == kmstypes.KeyManagerTypeAws}
	j.keysMu.Lock()
	j.keys[keyID] = info
	j.keysMu.Unlock()
	return info.awsManaged
}

// reencrypt copies a snapshot under the AWS managed key in the workload
// account, under SourceKMSKeyID, and waits for the copy: it is what is
// shared. An earlier re-encrypted copy (recorded, or found by its tags) is
// reused.
func (j *preserveJob) reencrypt(ctx context.Context, source string, cp *evidence.SnapshotCopy, before *sourceState) (string, error) {
	if j.req.SourceKMSKeyID == "" {
		return "", fmt.Errorf("encrypted with the AWS managed key %s, which cannot be shared: give a customer managed key of account %s that account %s may use (--source-kms-key)",
			before.KMSKeyID, cp.SourceAccountID, j.req.ForensicsAccountID)
	}
	id := ""
	if prior := before.PriorCopy; prior != nil && prior.IntermediateSnapshotID != "" {
		id = prior.IntermediateSnapshotID
	} else if found, err := j.findByTags(ctx, j.p.Source, source, false); err != nil {
		return "", fmt.Errorf("look for an earlier re-encrypted copy: %w", err)
	} else if found != nil {
		id = aws.ToString(found.SnapshotId)
	}
	if id == "" {
		// The re-encrypted copy holds a copy slot until it completes.
		if err := j.acquireSlot(ctx); err != nil {
			return "", fmt.Errorf("wait for a copy slot: %w", err)
		}
		defer j.releaseSlot()
		j.report(Progress{SourceSnapshotID: source, Stage: StageReencrypt, SnapshotID: source})
		out, err := j.copy(ctx, j.p.Source, &ec2.CopySnapshotInput{
			SourceRegion:     aws.String(j.p.Region),
			SourceSnapshotId: aws.String(source),
			Encrypted:        aws.Bool(true),
			KmsKeyId:         aws.String(j.req.SourceKMSKeyID),
			Description:      aws.String(fmt.Sprintf("%s: case %s, %s re-encrypted for sharing", copyDescription, j.req.CaseID, source)),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{
				{Key: aws.String(TagCaseID), Value: aws.String(j.req.CaseID)},
				{Key: aws.String(TagSourceSnapshotID), Value: aws.String(source)},
			}}},
		})
		if err != nil {
			return "", fmt.Errorf("re-encrypt %s under %s: %w", source, j.req.SourceKMSKeyID, err)
		}
		id = aws.ToString(out.SnapshotId)
	}
	cp.IntermediateSnapshotID, cp.IntermediateKMSKeyID = id, j.req.SourceKMSKeyID
	if _, err := j.wait(ctx, j.p.Source, source, id, StageReencrypt); err != nil {
		return "", fmt.Errorf("re-encrypted copy %s: %w", id, err)
	}
	return id, nil
}

// share adds the forensics account to a snapshot's createVolumePermission.
// It uses the OperationType + UserIds form of ModifySnapshotAttribute.
func (j *preserveJob) share(ctx context.Context, source, id string) error {
	j.report(Progress{SourceSnapshotID: source, Stage: StageShare, SnapshotID: id, Percent: 100})
	_, err := j.p.Source.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
		SnapshotId:    aws.String(id),
		Attribute:     types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: types.OperationTypeAdd,
		UserIds:       []string{j.req.ForensicsAccountID},
	})
	return err
}

// copy calls CopySnapshot, retrying while the Region's quota of concurrent
// copies is reached (ResourceLimitExceeded), with a growing wait.
func (j *preserveJob) copy(ctx context.Context, api cloud.ForensicsEC2, in *ec2.CopySnapshotInput) (*ec2.CopySnapshotOutput, error) {
	backoff := j.req.PollInterval
	for {
		out, err := api.CopySnapshot(ctx, in)
		if !cloud.IsErrorCode(err, "ResourceLimitExceeded") {
			return out, err
		}
		j.log.Info("too many snapshot copies in progress; waiting", "source", aws.ToString(in.SourceSnapshotId), "wait", backoff)
		if err := sleep(ctx, backoff); err != nil {
			return nil, fmt.Errorf("still at the concurrent copy limit: %w", err)
		}
		backoff = min(backoff*2, j.req.PollInterval*maxCopyBackoffMul)
	}
}

// wait waits until a snapshot is completed, with the SDK's SnapshotCompleted
// waiter polling every PollInterval, and reports its progress at each poll.
// An error wraps context.DeadlineExceeded when the run's time ran out first.
func (j *preserveJob) wait(ctx context.Context, api cloud.ForensicsEC2, source, id, stage string) (types.Snapshot, error) {
	var (
		last    types.Snapshot
		stopped bool // the snapshot's own state (or a failed describe) ended the wait
	)
	poll := func(_ context.Context, _ *ec2.DescribeSnapshotsInput, out *ec2.DescribeSnapshotsOutput, err error) (bool, error) {
		retry, err := j.polled(source, id, stage, out, err, &last)
		stopped = err != nil
		return retry, err
	}
	w := ec2.NewSnapshotCompletedWaiter(api, func(o *ec2.SnapshotCompletedWaiterOptions) {
		o.MinDelay, o.MaxDelay, o.Retryable = j.req.PollInterval, j.req.PollInterval, poll
	})
	_, err := w.WaitForOutput(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}}, timeLeft(ctx))
	if err != nil && !stopped {
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded // the waiter's bound is the run's deadline
		}
		return last, fmt.Errorf("snapshot %s still %s (%d%%): %w", id, last.State, parsePercent(aws.ToString(last.Progress)), cause)
	}
	return last, err
}

// polled judges one DescribeSnapshots answer for wait: retry (still
// pending), done (completed), or an error (gone, or in a state it cannot
// complete from).
func (j *preserveJob) polled(source, id, stage string, out *ec2.DescribeSnapshotsOutput, err error, last *types.Snapshot) (bool, error) {
	switch {
	case err != nil:
		return false, fmt.Errorf("describe %s: %w", id, err)
	case len(out.Snapshots) == 0:
		return false, fmt.Errorf("snapshot %s not found", id)
	}
	*last = out.Snapshots[0]
	switch last.State {
	case types.SnapshotStateCompleted:
		j.report(Progress{SourceSnapshotID: source, Stage: stage, SnapshotID: id, Percent: 100, Detail: "completed"})
		return false, nil
	case types.SnapshotStateError, types.SnapshotStateRecoverable, types.SnapshotStateRecovering:
		return false, fmt.Errorf("snapshot %s is %s: %s", id, last.State, aws.ToString(last.StateMessage))
	}
	j.report(Progress{SourceSnapshotID: source, Stage: stage, SnapshotID: id,
		Percent: parsePercent(aws.ToString(last.Progress)), Detail: string(last.State)})
	return true, nil
}

// timeLeft is how long a wait may last: until ctx's deadline (at least a
// moment, so that the waiter makes one call and reports ctx's error).
func timeLeft(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return DefaultTimeout
	}
	return max(time.Until(d), time.Nanosecond)
}

func (j *preserveJob) acquireSlot(ctx context.Context) error { return j.slots.Acquire(ctx, 1) }

func (j *preserveJob) releaseSlot() { j.slots.Release(1) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func parsePercent(s string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil || n < 0 {
		return 0
	}
	return min(n, 100)
}

// lockCopy locks a copy with EBS snapshot lock as the case snapshots were
// (step.RecordedSnapshotLock), unless it is locked already, and records the
// lock read back. EBS locks a pending copy, so it runs as soon as the copy
// is requested. It returns what to add to the step's reason.
func (j *preserveJob) lockCopy(ctx context.Context, cp *evidence.SnapshotCopy) string {
	locks, failed := step.LockSnapshotsOnce(ctx, j.p.Forensics, []string{cp.SnapshotID}, j.lock, nil)
	if len(locks) == 1 {
		cp.Lock, cp.LockError = &locks[0], ""
		return "; locked (" + locks[0].State + ")"
	}
	cp.Lock, cp.LockError = nil, failed[cp.SnapshotID].Error()
	j.log.Warn("snapshot copy not locked", "snapshot_id", cp.SnapshotID, "error", cp.LockError)
	return "; NOT locked: " + cp.LockError
}
