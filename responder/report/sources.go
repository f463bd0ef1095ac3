package report

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
	steps "github.com/responder-ir/responder/responder/step"
)

// readChecked reads an artifact from the store and checks it against its
// recorded SHA-256 and size: the report draws nothing from bytes that
// changed after they were collected.
func readChecked(ctx context.Context, store evidence.Store, caseID string, a evidence.Artifact, limit int64) ([]byte, error) {
	if a.Size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the report reads (%d)", a.Path, a.Size, limit)
	}
	body, err := store.Get(ctx, caseID, a.Path)
	if err != nil {
		return nil, fmt.Errorf("the store did not return %s: %w", a.Path, err)
	}
	if got := evidence.SHA256(body); !strings.EqualFold(got, a.SHA256) || int64(len(body)) != a.Size {
		return nil, fmt.Errorf("%s does NOT match the record (stored SHA-256 %s, %d bytes; recorded %s, %d bytes): nothing is drawn from it; run responder verify",
			a.Path, got, len(body), a.SHA256, a.Size)
	}
	return body, nil
}

// maxMetadata bounds the metadata document the report reads.
const maxMetadata = 64 << 20

// metadataDoc reads the case's metadata artifact (the instance as found,
// before any change), checked against the record. It returns nil and a
// note when there is none to trust.
func metadataDoc(ctx context.Context, store evidence.Store, m *evidence.Manifest) (*steps.InstanceMetadata, *Source, string) {
	for _, a := range m.Artifacts {
		if a.Step != "metadata" || !strings.HasSuffix(a.Path, "metadata.json") {
			continue
		}
		body, err := readChecked(ctx, store, m.CaseID, a, maxMetadata)
		if err != nil {
			return nil, nil, "metadata: " + err.Error()
		}
		var doc steps.InstanceMetadata
		if err := json.Unmarshal(body, &doc); err != nil {
			return nil, nil, fmt.Sprintf("metadata: %s is not a metadata document: %v", a.Path, err)
		}
		return &doc, &Source{Path: a.Path, SHA256: a.SHA256}, ""
	}
	return nil, nil, ""
}

// volatileIndicators reads the newest Linux volatile data archive of the
// case, checked against the record, and draws the indicators from it.
func volatileIndicators(ctx context.Context, store evidence.Store, m *evidence.Manifest) Indicators {
	a, ok, windows := volatileArchive(m)
	if !ok {
		detail := "not collected: the case holds no volatile data (step volatile-data, playbook collect)"
		if windows {
			detail = "not drawn: the case holds Windows volatile data only, which this report does not read; see the archive in the evidence"
		}
		if rec, found := lastRecord(m, "volatile-data"); found && !windows {
			why := rec.Reason
			if rec.Status == evidence.StatusFailed {
				why = rec.Error
			}
			detail = fmt.Sprintf("not collected: step volatile-data %s in run %d: %s", rec.Status, rec.Run, why)
		}
		return noIndicators(IndicatorsNotCollected, detail)
	}
	body, err := readChecked(ctx, store, m.CaseID, a, maxArchive)
	if err != nil {
		in := noIndicators(IndicatorsUnreadable, err.Error())
		in.Source = &Source{Path: a.Path, SHA256: a.SHA256}
		return in
	}
	in := IndicatorsFromArchive(body, Source{Path: a.Path, SHA256: a.SHA256})
	var doubts []string
	if a.ReportedSHA256 != "" && !strings.EqualFold(a.ReportedSHA256, a.SHA256) {
		doubts = append(doubts, fmt.Sprintf("the instance reported SHA-256 %s for this archive, not the %s stored: what arrived is shown; do not rely on it without checking",
			a.ReportedSHA256, a.SHA256))
	}
	if rec, found := lastRecord(m, "volatile-data"); found && rec.Status == evidence.StatusFailed {
		doubts = append(doubts, fmt.Sprintf("step volatile-data FAILED in run %d (%s): what arrived is shown; do not rely on it without checking", rec.Run, rec.Error))
	}
	in.Notes = append(doubts, in.Notes...)
	return in
}
