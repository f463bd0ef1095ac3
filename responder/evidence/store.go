// Package evidence keeps the case: the manifest format, hashing, and the
// write-once stores (a local folder or an S3 bucket) that hold it.
package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

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
	// SaveManifest stores the case record: history/manifest-run-<N>.json once,
	// then manifest.json.
	SaveManifest(ctx context.Context, m *Manifest) error
	// Location says where a case or one of its files is, for people:
	// "s3://bucket/cases/<id>/" or a local path.
	Location(caseID, path string) string
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
// names, tags, role session names and SSM parameters.
func ValidateCaseID(id string) error {
	if !caseIDPattern.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("invalid case ID %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// validatePath checks an artifact path relative to the case folder.
func validatePath(p string) error {
	if !pathPattern.MatchString(p) || strings.Contains(p, "..") {
		return fmt.Errorf("invalid artifact path %q", p)
	}
	return nil
}

func historyName(run int) string {
	return fmt.Sprintf("history/manifest-run-%03d.json", run)
}
