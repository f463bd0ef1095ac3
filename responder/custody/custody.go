// Package custody keeps a case's evidence answerable: Verify proves it
// intact (seals, hashes, Object Lock, snapshots and their copies), Hold puts
// or lifts the S3 legal hold and records who did it, Cases lists the cases
// of a store. One Custodian serves the three, with the clients and the clock
// it is given.
package custody

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/preserve"
	"github.com/responder-ir/responder/responder/step"
)

// Verification statuses.
const (
	CheckOK       = "ok"
	CheckMismatch = "mismatch" // the evidence differs from its record
	CheckMissing  = "missing"  // the record names something that is not there
	CheckPending  = "pending"  // not complete yet (a snapshot in progress)
	CheckWarning  = "warning"  // weaker protection than expected, not a mismatch
	CheckError    = "error"    // could not be checked
	// CheckUnsigned: the run carries no signature (or predates the hash
	// chain); never a failure by itself, never "verified" either.
	CheckUnsigned = "unsigned"
)

// Check is one verification of one thing.
type Check struct {
	// Kind is manifest, seal, revision, unrecorded, versions, listing,
	// artifact, object-lock, snapshot or snapshot-copy.
	Kind    string `json:"kind"`
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

// Unsigned reports whether some run of the record is not signed (or not
// chained): the record is then proved by its seals only.
func (v *Verification) Unsigned() bool {
	for _, c := range v.Checks {
		if c.Status == CheckUnsigned {
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

// Custodian checks and guards the cases of one evidence store.
type Custodian struct {
	Store evidence.Store
	// Snapshots is EC2 in the workload account: Verify checks the case
	// snapshots through it (nil: they are not checked).
	Snapshots SnapshotReader
	// Copies is EC2 in the forensics account: Verify checks the snapshot
	// copies through it (nil: they are not checked).
	Copies SnapshotReader
	// Caller identifies who places or lifts a legal hold.
	Caller cloud.STS
	// PublicKey, when set, is the DER public key the caller trusts
	// (--public-key): every run must be signed with it.
	PublicKey []byte
	// Keys is KMS with the caller's credentials: Verify compares each
	// signing key's public key with the stored one through it (nil: not
	// checked; verify --online sets it).
	Keys KeyReader
	// MaxClockSkew is how far the local clock of a run may have been from
	// AWS's (the Date of its responses) before verify warns
	// (0: evidence.DefaultMaxClockSkew).
	MaxClockSkew time.Duration
	// Now is the clock (nil: the system clock).
	Now func() time.Time
}

// New builds a Custodian from the clients cloud.Load built: the case
// snapshots are checked in the workload account, the copies with the
// caller's own credentials in the forensics account, and a legal hold is
// recorded under the caller's identity (not the assumed role's).
func New(c *cloud.Clients, store evidence.Store) *Custodian {
	cu := &Custodian{Store: store, Caller: c.STS}
	if c.EC2 != nil {
		cu.Snapshots = c.EC2
	}
	if c.ForensicsEC2 != nil {
		cu.Copies = c.ForensicsEC2
	}
	if c.CallerSTS != nil {
		cu.Caller = c.CallerSTS
	}
	return cu
}

func (c *Custodian) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

// SnapshotReader is what Verify needs of EC2.
type SnapshotReader interface {
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// Verify proves a case intact: the manifest matches the seal written when its
// last run closed, every earlier version matches its own seal, no later run
// is in history (a manifest put back to an older record), the case folder
// holds nothing the record does not list, every artifact hashes to what the
// record says (re-read from the store, in the version the record names),
// the Object Lock retention and legal hold of every object (S3), in a
// versioned bucket that nothing was written twice or deleted and that every
// version of manifest.json is a sealed record, every snapshot exists and is
// completed (with Snapshots), and every copy in the forensics account
// (snapshot_copies) exists and completed (with Copies).
func (c *Custodian) Verify(ctx context.Context, caseID string) (*Verification, error) {
	if err := evidence.ValidateCaseID(caseID); err != nil {
		return nil, &responder.InputError{Err: err}
	}
	raw, err := c.Store.Get(ctx, caseID, evidence.ManifestName)
	if err != nil {
		return nil, err
	}
	now := c.now()
	v := &Verification{CaseID: caseID, Location: c.Store.Location(caseID, ""), VerifiedAt: now}
	m, err := evidence.DecodeManifest(raw)
	if err != nil {
		v.Checks = append(v.Checks, Check{Kind: "manifest", Subject: evidence.ManifestName, Status: CheckMismatch, Detail: err.Error()})
		return v, nil
	}
	sealChecks, seals, revs := verifySeals(ctx, c.Store, m, raw)
	v.Checks = append(v.Checks, sealChecks...)
	v.Checks = append(v.Checks, verifyChain(m, revs)...)
	sv := signatureVerifier{ctx: ctx, store: c.Store, caseID: caseID, pinned: c.PublicKey}
	v.Checks = append(v.Checks, sv.verifySignatures(m, revs)...)
	if c.Keys != nil {
		v.Checks = append(v.Checks, verifyKeysOnline(ctx, c.Keys, m)...)
	}
	v.Checks = append(v.Checks, verifyClocks(m, c.MaxClockSkew)...)
	v.Checks = append(v.Checks, c.verifyFolder(ctx, m, seals)...)
	v.Checks = append(v.Checks, verifyArtifacts(ctx, c.Store, m, now)...)
	if c.Snapshots != nil {
		v.Checks = append(v.Checks, verifySnapshots(ctx, c.Snapshots, m)...)
		v.Checks = append(v.Checks, verifyLocks(ctx, c.Snapshots, "snapshot-lock", caseSnapshotIDs(m), step.RecordedLocks(m), now)...)
	}
	if c.Copies != nil {
		v.Checks = append(v.Checks, verifySnapshotCopies(ctx, c.Copies, m)...)
		ids, recorded := copyLocks(m)
		v.Checks = append(v.Checks, verifyLocks(ctx, c.Copies, "copy-lock", ids, recorded, now)...)
	}
	return v, nil
}

// verifyFolder compares the case folder with the record: the newest
// revision, what the folder holds beyond the record, and (a versioned
// store) every version written.
func (c *Custodian) verifyFolder(ctx context.Context, m *evidence.Manifest, seals map[string]bool) []Check {
	files, err := c.Store.Files(ctx, m.CaseID)
	if err != nil {
		return []Check{{Kind: "listing", Subject: "(case folder)", Status: CheckError, Detail: err.Error()}}
	}
	checks := []Check{verifyRevision(m, files)}
	checks = append(checks, verifyListing(m, files)...)
	if vs, ok := c.Store.(versionStore); ok {
		checks = append(checks, verifyVersions(ctx, vs, m, seals)...)
	}
	return checks
}

// verifySeals checks manifest.json against the seal of the last run, and
// every history copy against its own seal. It returns the seals it read
// (the SHA-256 of each run's record) and the history copies.
func verifySeals(ctx context.Context, store evidence.Store, m *evidence.Manifest, raw []byte) ([]Check, map[string]bool, revisions) {
	var checks []Check
	seals := map[string]bool{}
	revs := revisions{}
	seal := func(run int) (string, error) {
		b, err := store.Get(ctx, m.CaseID, evidence.SealName(run))
		sum := strings.TrimSpace(string(b))
		if err == nil {
			seals[sum] = true
		}
		return sum, err
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
		revs[r.Number] = body
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
	return checks, seals, revs
}

// artifactsInFlight is how many artifacts Verify re-hashes at once.
const artifactsInFlight = 4

// verifyArtifacts re-hashes every artifact, a few at a time.
func verifyArtifacts(ctx context.Context, store evidence.Store, m *evidence.Manifest, now time.Time) []Check {
	holder, _ := store.(evidence.Holder)
	checks := make([][]Check, len(m.Artifacts))
	var g errgroup.Group
	g.SetLimit(artifactsInFlight)
	for i, a := range m.Artifacts {
		g.Go(func() error {
			checks[i] = verifyArtifact(ctx, store, holder, m.CaseID, a, now)
			return nil
		})
	}
	_ = g.Wait() // verifyArtifact reports failures as checks
	var out []Check
	for _, c := range checks {
		out = append(out, c...)
	}
	return out
}

// openRecorded opens the version of an artifact the record names, when the
// store keeps versions and the record names one; the current object
// otherwise.
func openRecorded(ctx context.Context, store evidence.Store, caseID string, a evidence.Artifact) (io.ReadCloser, error) {
	if vs, ok := store.(evidence.Versioned); ok && a.VersionID != "" {
		return vs.OpenVersion(ctx, caseID, a.Path, a.VersionID)
	}
	return store.Open(ctx, caseID, a.Path)
}

func verifyArtifact(ctx context.Context, store evidence.Store, holder evidence.Holder, caseID string, a evidence.Artifact, now time.Time) []Check {
	c := Check{Kind: "artifact", Subject: a.Path}
	body, err := openRecorded(ctx, store, caseID, a)
	if errors.Is(err, evidence.ErrNotFound) {
		c.Status, c.Detail = CheckMissing, "not in the evidence store"
		if a.VersionID != "" {
			c.Detail = "the recorded version " + a.VersionID + " is not in the evidence store"
		}
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
	st, err := holder.LockState(ctx, caseID, a.Path, a.VersionID)
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
		if st.RetainUntil != nil && st.RetainUntil.Before(now) && !st.LegalHold {
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

// verifySnapshotCopies checks that every recorded copy exists in the
// forensics account and is completed.
func verifySnapshotCopies(ctx context.Context, api SnapshotReader, m *evidence.Manifest) []Check {
	var checks []Check
	for _, cp := range m.SnapshotCopies {
		c := Check{Kind: "snapshot-copy", Subject: cp.SnapshotID + " (of " + cp.SourceSnapshotID + ")"}
		if cp.SnapshotID == "" {
			c.Subject = cp.SourceSnapshotID
			c.Status, c.Detail = CheckMissing, "never copied: "+cp.Error
			checks = append(checks, c)
			continue
		}
		out, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{cp.SnapshotID}})
		switch {
		case cloud.IsErrorCode(err, "InvalidSnapshot.NotFound") || (err == nil && len(out.Snapshots) == 0):
			c.Status, c.Detail = CheckMissing, "the copy is not in account "+cp.AccountID
		case err != nil:
			c.Status, c.Detail = CheckError, err.Error()
		default:
			s := out.Snapshots[0]
			switch s.State {
			case types.SnapshotStateCompleted:
				c.Status, c.Detail = CheckOK, "completed in account "+cp.AccountID
			case types.SnapshotStatePending:
				c.Status, c.Detail = CheckPending, "pending "+aws.ToString(s.Progress)
			default:
				c.Status, c.Detail = CheckMismatch, string(s.State)+": "+aws.ToString(s.StateMessage)
			}
			if want := cp.SourceSnapshotID; c.Status != CheckMismatch && !tagged(s.Tags, preserve.TagSourceSnapshotID, want) {
				c.Status, c.Detail = CheckMismatch, "not tagged as a copy of "+want
			}
		}
		checks = append(checks, c)
	}
	return checks
}

func tagged(tags []types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}

// verifyClocks compares, run by run, the local clock that stamped the
// record with AWS's Date on the responses: a skew above max makes the
// record's times (started_at, collected_at, ...) doubtful by that much.
func verifyClocks(m *evidence.Manifest, max time.Duration) []Check {
	if max <= 0 {
		max = evidence.DefaultMaxClockSkew
	}
	var checks []Check
	for _, rc := range m.RunClocks() {
		c := Check{Kind: "clock", Subject: fmt.Sprintf("run %d", rc.Run), Status: CheckOK,
			Detail: fmt.Sprintf("%s (threshold %s)", rc.Describe(), max)}
		if rc.Above(max) {
			c.Status = CheckWarning
			c.Detail = fmt.Sprintf("%s: above %s, so the times this run recorded are off by about that much; each call keeps AWS's Date (server_date)", rc.Describe(), max)
		}
		checks = append(checks, c)
	}
	return checks
}
