package evidence

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"golang.org/x/sync/errgroup"
)

// Record is the case record a new run continues, as the store holds it.
//
// A run's save writes its history copy, then the copy's seal, then
// manifest.json. A save that stopped between two of these writes (the
// process killed, the Lambda timed out) leaves a history copy newer than
// manifest.json: that copy is the case's newest record, and the next run
// continues it instead of starting again from manifest.json (whose run
// number is taken).
type Record struct {
	// Manifest is the newest record; nil for a new case.
	Manifest *Manifest
	// Run is the number the next run takes: after the newest run recorded,
	// and after every run number history already holds (a history copy
	// that cannot be used keeps its number, and verify reports it).
	Run int
	// Interrupted is the run whose save stopped before manifest.json (its
	// history copy is Manifest): RepairRecord completes that save. 0 when
	// manifest.json is the newest record.
	Interrupted int
}

// historyName matches a history copy or its seal, and gives its run.
var historyName = regexp.MustCompile(`^history/manifest-run-([0-9]+)\.json(?:\.sha256)?$`)

// HistoryRun returns the run of a history copy or seal path
// (HistoryName, SealName); false for any other path.
func HistoryRun(path string) (int, bool) {
	m := historyName.FindStringSubmatch(path)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// LoadRecord reads the record of a case as the next run must continue it:
// manifest.json, or the newest history copy when the save of a later run
// stopped before manifest.json (or manifest.json cannot be decoded). It
// reads only; RepairRecord completes the interrupted save. A new case is a
// Record with no Manifest and Run 1.
func LoadRecord(ctx context.Context, store Store, caseID string) (*Record, error) {
	var m *Manifest
	var files []string
	var decodeErr error
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		body, err := store.Get(gctx, caseID, ManifestName)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		m, decodeErr = DecodeManifest(body)
		return nil
	})
	g.Go(func() error {
		var err error
		files, err = store.Files(gctx, caseID)
		if errors.Is(err, ErrNotFound) {
			files, err = nil, nil
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("case %s: %w", caseID, err)
	}
	newest := newestHistoryRun(files)
	rec := &Record{Manifest: m, Run: max(m.LastRun(), newest) + 1}
	for n := newest; n > m.LastRun(); n-- {
		later, ok := readRevision(ctx, store, caseID, n, m)
		if ok {
			rec.Manifest, rec.Interrupted = later, n
			break
		}
	}
	if decodeErr != nil && rec.Interrupted == 0 {
		return nil, fmt.Errorf("case %s: %w", caseID, decodeErr)
	}
	return rec, nil
}

// newestHistoryRun is the highest run number of the history copies and
// seals among a case's files, 0 when there is none.
func newestHistoryRun(files []string) int {
	newest := 0
	for _, f := range files {
		if n, ok := HistoryRun(f); ok && n > newest {
			newest = n
		}
	}
	return newest
}

// readRevision reads the history copy of run n and reports whether it can
// continue the case: it decodes, is the record of this case at run n,
// continues the runs of older (when there is one), and matches its seal
// when the seal was written (a save stopped before the seal leaves none).
func readRevision(ctx context.Context, store Store, caseID string, n int, older *Manifest) (*Manifest, bool) {
	body, err := store.Get(ctx, caseID, HistoryName(n))
	if err != nil {
		return nil, false
	}
	m, err := DecodeManifest(body)
	if err != nil || m.CaseID != caseID || m.LastRun() != n || !continues(m, older) {
		return nil, false
	}
	seal, err := store.Get(ctx, caseID, SealName(n))
	switch {
	case errors.Is(err, ErrNotFound):
		return m, true
	case err != nil:
		return nil, false
	}
	return m, string(seal) == string(sealBody(body))
}

// continues reports whether m holds every run of older, in order.
func continues(m, older *Manifest) bool {
	if older == nil {
		return true
	}
	if len(m.Runs) < len(older.Runs) {
		return false
	}
	return slices.EqualFunc(m.Runs[:len(older.Runs)], older.Runs, func(a, b Run) bool { return a.Number == b.Number })
}

// RepairRecord completes the save a run did not finish (Record.Interrupted):
// it writes the missing seal, then manifest.json, so that the store holds
// the newest record where every reader looks. Nothing is written when no
// save was interrupted.
func RepairRecord(ctx context.Context, store Store, rec *Record) error {
	return RepairSignedRecord(ctx, store, rec, nil)
}

// RepairSignedRecord is RepairRecord that also writes the signature of the
// interrupted run when its history copy names a signing key and signer is
// given. The history copy is saved as it is: it is neither chained nor
// signed anew.
func RepairSignedRecord(ctx context.Context, store Store, rec *Record, signer Signer) error {
	if rec == nil || rec.Interrupted == 0 {
		return nil
	}
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SaveTimeout)
	defer cancel()
	err := store.SaveManifest(saveCtx, rec.Manifest)
	if err == nil && signer != nil {
		err = writeSignature(saveCtx, store, rec.Manifest, signer)
	}
	if err != nil {
		return fmt.Errorf("case %s: complete the save of run %d: %w", rec.Manifest.CaseID, rec.Interrupted, err)
	}
	return nil
}
