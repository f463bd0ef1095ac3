package evidence

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrSealMismatch is returned when manifest.json does not match the seal of
// its last run: the record was changed after the run that wrote it, and
// the before-states it holds cannot be trusted.
var ErrSealMismatch = errors.New("the case record does not match its seal")

// CheckSealed reads manifest.json and the seal of its last run, as
// responder verify does, and returns an error wrapping ErrSealMismatch when
// they differ or the seal is missing; ErrNotFound when the case has no
// record. It returns the record it checked.
func CheckSealed(ctx context.Context, store Store, caseID string) (*Manifest, error) {
	raw, err := store.Get(ctx, caseID, ManifestName)
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", caseID, err)
	}
	m, err := DecodeManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: case %s: %s does not decode: %w", ErrSealMismatch, caseID, ManifestName, err)
	}
	run := m.LastRun()
	seal, err := store.Get(ctx, caseID, SealName(run))
	switch {
	case errors.Is(err, ErrNotFound):
		return m, fmt.Errorf("%w: case %s: no seal for run %d (%s)", ErrSealMismatch, caseID, run, SealName(run))
	case err != nil:
		return m, fmt.Errorf("case %s: read the seal of run %d: %w", caseID, run, err)
	}
	if got, want := SHA256(raw), strings.TrimSpace(string(seal)); got != want {
		return m, fmt.Errorf("%w: case %s: %s has sha256 %s, sealed %s at the close of run %d: the record was changed",
			ErrSealMismatch, caseID, ManifestName, got, want, run)
	}
	return m, nil
}
