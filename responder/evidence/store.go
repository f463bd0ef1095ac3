// Package evidence keeps the case: the manifest format, hashing, and the
// write-once stores (a local folder or an S3 bucket) that hold it.
package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// LocksFolder is the folder beside the cases that holds the locks (lock.go):
// the Lambda's per-instance locks and the run locks of every case. It is not
// a case: ValidateCaseID refuses the name.
const LocksFolder = "locks"

// ErrExists is returned when an artifact is written twice: evidence is never
// overwritten.
var ErrExists = errors.New("artifact already exists")

// ErrNotFound is returned when a case or artifact is not in the store.
var ErrNotFound = errors.New("not found")

// Store keeps cases. Artifacts are write-once; the manifest is the one object
// that is replaced (by a cumulative version), and every version of it is kept
// under history/.
type Store interface {
	// Put writes an artifact of a case once. It returns ErrExists when the
	// path is taken.
	Put(ctx context.Context, caseID, path string, body []byte, contentType string) (Stored, error)
	// Get reads an artifact (or the manifest) of a case.
	Get(ctx context.Context, caseID, path string) ([]byte, error)
	// Open streams an artifact of a case; the caller closes it.
	Open(ctx context.Context, caseID, path string) (io.ReadCloser, error)
	// Files lists every path stored in a case folder, sorted.
	Files(ctx context.Context, caseID string) ([]string, error)
	// Cases lists the IDs of the cases that have a manifest, sorted.
	Cases(ctx context.Context) ([]string, error)
	// SaveManifest stores the case record: history/manifest-run-<N>.json and
	// its seal history/manifest-run-<N>.json.sha256 once, then manifest.json.
	SaveManifest(ctx context.Context, m *Manifest) error
	// Location says where a case or one of its files is, for people:
	// "s3://bucket/cases/<id>/" or a local path.
	Location(caseID, path string) string
}

// Holder is a store that can put S3 Object Lock legal holds and report the
// lock state of what it holds (the S3 bucket; a local folder cannot).
type Holder interface {
	SetLegalHold(ctx context.Context, caseID, path string, on bool) error
	// LockState reports the lock state of one version of an object (""
	// for the current one).
	LockState(ctx context.Context, caseID, path, versionID string) (LockState, error)
}

// Versioned is a store that keeps every version of what it holds (a
// versioned S3 bucket): what was written over or deleted stays readable,
// and a record can name the exact version it holds (Artifact.VersionID).
type Versioned interface {
	// Versions lists every version and delete marker of every object of a
	// case, by path, newest first within a path.
	Versions(ctx context.Context, caseID string) ([]ObjectVersion, error)
	// OpenVersion streams one version of an object of a case; ErrNotFound
	// when that version is gone.
	OpenVersion(ctx context.Context, caseID, path, versionID string) (io.ReadCloser, error)
}

// ObjectVersion is one version of an object of a case, or a delete marker.
type ObjectVersion struct {
	Path         string
	VersionID    string // "null" for an object written while versioning was off
	Latest       bool
	DeleteMarker bool
	LastModified time.Time
	Size         int64
}

// LockState is the Object Lock state of a stored object.
type LockState struct {
	VersionID   string
	Mode        string // GOVERNANCE, COMPLIANCE or "" (no retention)
	RetainUntil *time.Time
	LegalHold   bool
	// SHA256 is the checksum S3 keeps with the object (hex), when it has one.
	SHA256 string
}

// Stored is what the store reports about a written artifact.
type Stored struct {
	VersionID  string
	Encryption string
}

// LoadManifest reads a case's manifest; ErrNotFound when the case is new.
func LoadManifest(ctx context.Context, s Store, caseID string) (*Manifest, error) {
	b, err := s.Get(ctx, caseID, ManifestName)
	if err != nil {
		return nil, err
	}
	return DecodeManifest(b)
}

// SHA256 returns the hex SHA-256 of b.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

var (
	caseIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	pathPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)
)

// ValidateCaseID checks a case ID: 1 to 64 letters, digits, '.', '_' or '-',
// starting with a letter or digit, so that it is safe in S3 keys, folder
// names, tags, role session names and SSM parameters; and not the locks
// folder (in any case: a case-insensitive file system would share it).
func ValidateCaseID(id string) error {
	if !caseIDPattern.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("invalid case ID %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	if strings.EqualFold(id, LocksFolder) {
		return fmt.Errorf("invalid case ID %q: %q is reserved for the evidence store's locks", id, LocksFolder)
	}
	if strings.EqualFold(id, FleetsFolder) {
		return fmt.Errorf("invalid case ID %q: %q is reserved for the evidence store's fleet records", id, FleetsFolder)
	}
	return nil
}

// validateFolder checks the folder a store operation names: a case, or the
// locks folder (only the lock code in this package names it).
func validateFolder(id string) error {
	if id == LocksFolder || id == FleetsFolder {
		return nil
	}
	return ValidateCaseID(id)
}

// validatePath checks an artifact path relative to the case folder.
func validatePath(p string) error {
	if !pathPattern.MatchString(p) || strings.Contains(p, "..") {
		return fmt.Errorf("invalid artifact path %q", p)
	}
	return nil
}

// HistoryName is the path of the record as run N left it.
func HistoryName(run int) string {
	return fmt.Sprintf("history/manifest-run-%03d.json", run)
}

// SealName is the path of the SHA-256 of a history copy, written once when
// the run closes: a later edit of the record shows as a mismatch.
func SealName(run int) string {
	return HistoryName(run) + ".sha256"
}

// HashReader returns the hex SHA-256 and size of everything r yields.
func HashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(h, r, buf)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// sealBody is the content of a seal: the hex SHA-256 and a newline.
func sealBody(manifest []byte) []byte {
	return []byte(SHA256(manifest) + "\n")
}
