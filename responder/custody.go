package responder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// Verification statuses.
const (
	CheckOK       = "ok"
	CheckMismatch = "mismatch" // the evidence differs from its record
	CheckMissing  = "missing"  // the record names something that is not there
	CheckPending  = "pending"  // not complete yet (a snapshot in progress)
	CheckWarning  = "warning"  // weaker protection than expected, not a mismatch
	CheckError    = "error"    // could not be checked
)

// Check is one verification of one thing.
type Check struct {
	Kind    string `json:"kind"` // manifest, seal, artifact, object-lock, snapshot, snapshot-copy
	Subject string `json:"subject"`
	Status  string `json:"status"`
	Detail  string `json:"detail,omitempty"`
}

// Verification is the result of Verify.
type Verification struct {
	CaseID     string    `json:"case_id"`
	Location   string    `json:"location"`
	VerifiedAt time.Time `json:"verified_at"`
	Checks     []Check   `json:"checks"`
}

// Failed reports whether any check found a mismatch, something missing, or
// could not be made.
func (v *Verification) Failed() bool {
	for _, c := range v.Checks {
		if c.Status == CheckMismatch || c.Status == CheckMissing || c.Status == CheckError {
			return true
		}
	}
	return false
}

// Pending reports whether some evidence is not complete yet.
func (v *Verification) Pending() bool {
	for _, c := range v.Checks {
		if c.Status == CheckPending {
			return true
		}
	}
	return false
}

// SnapshotReader is what Verify needs of EC2.
type SnapshotReader interface {
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// Verify proves a case intact: the manifest matches the seal written when its
// last run closed, every earlier version matches its own seal, every artifact
// hashes to what the record says (re-read from the store), the Object Lock
// retention and legal hold of every object (S3), and every snapshot exists
// and is completed (when snapshots is not nil).
//
// With WithSnapshotCopies, it also checks that every copy in the forensics
// account (snapshot_copies) exists and completed.
func Verify(ctx context.Context, store evidence.Store, snapshots SnapshotReader, caseID string, opts ...VerifyOption) (*Verification, error) {
	var o verifyOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := evidence.ValidateCaseID(caseID); err != nil {
		return nil, &InputError{Err: err}
	}
	raw, err := store.Get(ctx, caseID, evidence.ManifestName)
	if err != nil {
		return nil, err
	}
	v := &Verification{CaseID: caseID, Location: store.Location(caseID, ""), VerifiedAt: time.Now().UTC()}
	m, err := evidence.DecodeManifest(raw)
	if err != nil {
		v.Checks = append(v.Checks, Check{Kind: "manifest", Subject: evidence.ManifestName, Status: CheckMismatch, Detail: err.Error()})
		return v, nil
	}
	v.Checks = append(v.Checks, verifySeals(ctx, store, m, raw)...)
	v.Checks = append(v.Checks, verifyArtifacts(ctx, store, m)...)
	if snapshots != nil {
		v.Checks = append(v.Checks, verifySnapshots(ctx, snapshots, m)...)
	}
	if o.copies != nil {
		v.Checks = append(v.Checks, verifySnapshotCopies(ctx, o.copies, m)...)
	}
	return v, nil
}

// verifySeals checks manifest.json against the seal of the last run, and
// every history copy against its own seal.
func verifySeals(ctx context.Context, store evidence.Store, m *evidence.Manifest, raw []byte) []Check {
	var checks []Check
	seal := func(run int) (string, error) {
		b, err := store.Get(ctx, m.CaseID, evidence.SealName(run))
		return strings.TrimSpace(string(b)), err
	}
	last := m.LastRun()
	want, err := seal(last)
	switch {
	case err != nil:
		checks = append(checks, Check{Kind: "manifest", Subject: evidence.ManifestName, Status: CheckMissing, Detail: "no seal for run " + fmt.Sprint(last) + ": " + err.Error()})
	case evidence.SHA256(raw) != want:
		checks = append(checks, Check{Kind: "manifest", Subject: evidence.ManifestName, Status: CheckMismatch,
			Detail: fmt.Sprintf("sha256 %s, sealed %s at the close of run %d: the record was changed", evidence.SHA256(raw), want, last)})
	default:
		checks = append(checks, Check{Kind: "manifest", Subject: evidence.ManifestName, Status: CheckOK, Detail: "matches the seal of run " + fmt.Sprint(last)})
	}
	for _, r := range m.Runs {
		name := evidence.HistoryName(r.Number)
		body, err := store.Get(ctx, m.CaseID, name)
		if err != nil {
			checks = append(checks, Check{Kind: "seal", Subject: name, Status: CheckMissing, Detail: err.Error()})
			continue
		}
		want, err := seal(r.Number)
		switch {
		case err != nil:
			checks = append(checks, Check{Kind: "seal", Subject: name, Status: CheckMissing, Detail: "no seal: " + err.Error()})
		case evidence.SHA256(body) != want:
			checks = append(checks, Check{Kind: "seal", Subject: name, Status: CheckMismatch, Detail: "the record of run " + fmt.Sprint(r.Number) + " was changed"})
		default:
			checks = append(checks, Check{Kind: "seal", Subject: name, Status: CheckOK})
		}
	}
	return checks
}

// verifyArtifacts re-hashes every artifact, a few at a time.
func verifyArtifacts(ctx context.Context, store evidence.Store, m *evidence.Manifest) []Check {
	holder, _ := store.(evidence.Holder)
	checks := make([][]Check, len(m.Artifacts))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, a := range m.Artifacts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			checks[i] = verifyArtifact(ctx, store, holder, m.CaseID, a)
		}()
	}
	wg.Wait()
	var out []Check
	for _, c := range checks {
		out = append(out, c...)
	}
	return out
}

func verifyArtifact(ctx context.Context, store evidence.Store, holder evidence.Holder, caseID string, a evidence.Artifact) []Check {
	c := Check{Kind: "artifact", Subject: a.Path}
	body, err := store.Open(ctx, caseID, a.Path)
	if errors.Is(err, evidence.ErrNotFound) {
		c.Status, c.Detail = CheckMissing, "not in the evidence store"
		return []Check{c}
	}
	if err != nil {
		c.Status, c.Detail = CheckError, err.Error()
		return []Check{c}
	}
	sum, size, err := evidence.HashReader(body)
	body.Close()
	switch {
	case err != nil:
		c.Status, c.Detail = CheckError, "read: "+err.Error()
	case sum != a.SHA256 || size != a.Size:
		c.Status, c.Detail = CheckMismatch, fmt.Sprintf("sha256 %s (%d bytes), recorded %s (%d bytes)", sum, size, a.SHA256, a.Size)
	default:
		c.Status, c.Detail = CheckOK, "sha256 "+sum
	}
	checks := []Check{c}
	if holder == nil {
		return checks
	}
	lock := Check{Kind: "object-lock", Subject: a.Path}
	st, err := holder.LockState(ctx, caseID, a.Path)
	switch {
	case err != nil:
		lock.Status, lock.Detail = CheckError, err.Error()
	case st.SHA256 != "" && st.SHA256 != a.SHA256:
		lock.Status, lock.Detail = CheckMismatch, "the S3 checksum "+st.SHA256+" differs from the record"
	case st.Mode == "" && !st.LegalHold:
		lock.Status, lock.Detail = CheckWarning, "no Object Lock retention and no legal hold: the object can be deleted"
	default:
		var parts []string
		if st.Mode != "" && st.RetainUntil != nil {
			parts = append(parts, fmt.Sprintf("%s retention until %s", st.Mode, st.RetainUntil.UTC().Format(time.RFC3339)))
		}
		if st.LegalHold {
			parts = append(parts, "legal hold on")
		}
		lock.Status, lock.Detail = CheckOK, strings.Join(parts, "; ")
		if st.RetainUntil != nil && st.RetainUntil.Before(time.Now()) && !st.LegalHold {
			lock.Status, lock.Detail = CheckWarning, "retention ended "+st.RetainUntil.UTC().Format(time.RFC3339)
		}
	}
	return append(checks, lock)
}

// verifySnapshots checks that every recorded snapshot exists and completed.
func verifySnapshots(ctx context.Context, api SnapshotReader, m *evidence.Manifest) []Check {
	var checks []Check
	for _, s := range m.Snapshots {
		c := Check{Kind: "snapshot", Subject: s.SnapshotID + " (" + s.VolumeID + ")"}
		out, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{s.SnapshotID}})
		switch {
		case cloud.IsErrorCode(err, "InvalidSnapshot.NotFound"):
			c.Status, c.Detail = CheckMissing, "the snapshot no longer exists"
		case err != nil:
			c.Status, c.Detail = CheckError, err.Error()
		case len(out.Snapshots) == 0:
			c.Status, c.Detail = CheckMissing, "the snapshot no longer exists"
		default:
			sn := out.Snapshots[0]
			switch sn.State {
			case "completed":
				c.Status, c.Detail = CheckOK, "completed"
			case "pending":
				c.Status, c.Detail = CheckPending, "pending "+aws.ToString(sn.Progress)
			default:
				c.Status, c.Detail = CheckMismatch, string(sn.State)+": "+aws.ToString(sn.StateMessage)
			}
			if aws.ToString(sn.VolumeId) != s.VolumeID {
				c.Status, c.Detail = CheckMismatch, "of volume "+aws.ToString(sn.VolumeId)+", recorded "+s.VolumeID
			}
		}
		checks = append(checks, c)
	}
	return checks
}

// HoldRecord is what a hold or unhold leaves in the case folder, under
// custody/: who did it, when, and to which objects.
type HoldRecord struct {
	CaseID   string    `json:"case_id"`
	Action   string    `json:"action"` // legal-hold-on or legal-hold-off
	Actor    string    `json:"actor"`
	At       time.Time `json:"at"`
	Objects  []string  `json:"objects"`
	Failures []string  `json:"failures,omitempty"`
	Record   string    `json:"record"`
}

// ErrNoLegalHold is returned when the store cannot hold objects.
var ErrNoLegalHold = errors.New("legal holds need an S3 evidence bucket with Object Lock (--evidence-bucket)")

// Hold puts (on) or lifts (off) the S3 legal hold on every object of a case,
// and records who did it in a write-once custody record (itself held).
func Hold(ctx context.Context, store evidence.Store, caller cloud.STS, caseID string, on bool) (*HoldRecord, error) {
	if err := evidence.ValidateCaseID(caseID); err != nil {
		return nil, &InputError{Err: err}
	}
	holder, ok := store.(evidence.Holder)
	if !ok {
		return nil, ErrNoLegalHold
	}
	files, err := store.Files(ctx, caseID)
	if err != nil {
		return nil, err
	}
	who, err := caller.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("identify the caller: %w", err)
	}
	now := time.Now().UTC()
	rec := &HoldRecord{CaseID: caseID, Action: "legal-hold-off", Actor: aws.ToString(who.Arn), At: now}
	if on {
		rec.Action = "legal-hold-on"
	}
	rec.Record = fmt.Sprintf("custody/%s-%s.json", now.Format("20060102T150405.000000000Z"), rec.Action)
	for _, f := range files {
		if err := holder.SetLegalHold(ctx, caseID, f, on); err != nil {
			rec.Failures = append(rec.Failures, err.Error())
			continue
		}
		rec.Objects = append(rec.Objects, f)
	}
	body, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return rec, err
	}
	if _, err := store.Put(ctx, caseID, rec.Record, body, "application/json"); err != nil {
		return rec, fmt.Errorf("store the custody record: %w", err)
	}
	if on {
		if err := holder.SetLegalHold(ctx, caseID, rec.Record, true); err != nil {
			rec.Failures = append(rec.Failures, err.Error())
		}
	}
	if len(rec.Failures) > 0 {
		return rec, fmt.Errorf("%d of %d objects failed: %s", len(rec.Failures), len(files), strings.Join(rec.Failures, "; "))
	}
	return rec, nil
}

// CaseSummary is one line of ListCases.
type CaseSummary struct {
	CaseID     string    `json:"case_id"`
	InstanceID string    `json:"instance_id,omitempty"`
	AccountID  string    `json:"account_id,omitempty"`
	Region     string    `json:"region,omitempty"`
	Status     string    `json:"status"`
	Runs       int       `json:"runs"`
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at"`
	Error      string    `json:"error,omitempty"`
}

// ListCases reads the record of every case in the store, newest first.
func ListCases(ctx context.Context, store evidence.Store) ([]CaseSummary, error) {
	ids, err := store.Cases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]CaseSummary, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := CaseSummary{CaseID: id}
			m, err := evidence.LoadManifest(ctx, store, id)
			if err != nil {
				s.Status, s.Error = "unreadable", err.Error()
			} else {
				s.InstanceID, s.AccountID, s.Region, s.Status = m.InstanceID, m.AccountID, m.Region, m.Status
				s.Runs, s.StartedAt, s.EndedAt = len(m.Runs), m.StartedAt, m.EndedAt
			}
			out[i] = s
		}()
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].CaseID > out[j].CaseID
	})
	return out, nil
}
