package step

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// collectionBound returns when a collection command must have ended: its
// own timeout from now, or the collection deadline of a capture-first order,
// whichever comes first.
func (e *Env) collectionBound(own time.Duration) time.Time {
	bound := e.now().Add(own)
	if d := e.collectionDeadline(); !d.IsZero() && d.Before(bound) {
		bound = d
	}
	return bound
}

// minPresignLife is the least a presigned URL must live for a command to be
// worth sending.
const minPresignLife = 2 * time.Minute

// presignTTL is how long the URLs for a command ending by bound must live:
// until the bound and a margin for the last upload, but never past the
// expiry of the credentials that sign them (a presigned URL dies with them).
func (e *Env) presignTTL(bound time.Time) (time.Duration, string, error) {
	ttl := bound.Sub(e.now()) + 5*time.Minute
	if e.Clients.PresignValidUntil.IsZero() {
		return ttl, "", nil
	}
	left := e.Clients.PresignValidUntil.Sub(e.now())
	if left >= ttl {
		return ttl, "", nil
	}
	if left < minPresignLife {
		return 0, "", fmt.Errorf("the credentials that sign the upload URLs expire at %s: too soon to send the command (refresh them, or use credentials that outlast the capture)",
			e.Clients.PresignValidUntil.Format(time.RFC3339))
	}
	return left, fmt.Sprintf("upload URLs live only until %s, when the signing credentials expire, before the command's bound %s",
		e.Clients.PresignValidUntil.Format(time.RFC3339), bound.Format(time.RFC3339)), nil
}

// recordReceived hashes an object the instance uploaded, through the store,
// and records it as an artifact of the step. In a versioned store it reads
// the version it records, so that what verify reads later is what was
// hashed here.
func (e *Env) recordReceived(ctx context.Context, rcv evidence.Receiver, a evidence.Artifact) (evidence.Artifact, error) {
	got, err := rcv.Received(ctx, e.Target.CaseID, a.Path)
	if err != nil {
		return a, err
	}
	var body io.ReadCloser
	if vs, ok := e.Clients.Store.(evidence.Versioned); ok && got.VersionID != "" {
		body, err = vs.OpenVersion(ctx, e.Target.CaseID, a.Path, got.VersionID)
	} else {
		body, err = e.Clients.Store.Open(ctx, e.Target.CaseID, a.Path)
	}
	if err != nil {
		return a, err
	}
	defer body.Close()
	sum, size, err := evidence.HashReader(body)
	if err != nil {
		return a, fmt.Errorf("hash %s: %w", e.Clients.Store.Location(e.Target.CaseID, a.Path), err)
	}
	a.SHA256, a.Size = sum, size
	a.VersionID, a.Encryption = got.VersionID, got.Encryption
	if a.CollectedAt.IsZero() {
		a.CollectedAt = e.now()
	}
	e.addArtifact(a)
	return a, nil
}

// receiveReport records the report an instance uploaded (a, with its path)
// and parses it: the artifact is nil when nothing arrived, the report nil
// when it did not arrive or cannot be read.
func receiveReport[R any](ctx context.Context, env *Env, rcv evidence.Receiver, a evidence.Artifact, parse func([]byte) (R, error)) (*evidence.Artifact, *R) {
	a, err := env.recordReceived(ctx, rcv, a)
	if err != nil {
		return nil, nil
	}
	body, err := env.Clients.Store.Get(ctx, env.Target.CaseID, a.Path)
	if err != nil {
		return &a, nil
	}
	r, err := parse(body)
	if err != nil {
		return &a, nil
	}
	return &a, &r
}

// mismatches collects what the instance reported that the stored evidence
// contradicts.
type mismatches []string

func (m *mismatches) check(what, reported, stored string) {
	r, s := strings.Trim(strings.ToLower(reported), `"`), strings.Trim(strings.ToLower(stored), `"`)
	if r != s {
		*m = append(*m, fmt.Sprintf("%s: the instance reported %s, the store holds %s", what, orNone(reported), orNone(stored)))
	}
}

func (m mismatches) err() error {
	if len(m) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrEvidenceMismatch, strings.Join(m, "; "))
}

// ErrEvidenceMismatch is returned when what arrived in the evidence store
// differs from what the instance reported sending.
var ErrEvidenceMismatch = errors.New("stored evidence does not match the instance's report")

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
