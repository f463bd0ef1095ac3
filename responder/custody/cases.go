package custody

import (
	"context"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/responder-ir/responder/responder/evidence"
)

// casesInFlight is how many case records Cases reads at once.
const casesInFlight = 8

// CaseSummary is one line of Cases.
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

// Cases reads the record of every case in the store, newest first. A record
// that cannot be read is listed as "unreadable", with the reason.
func (c *Custodian) Cases(ctx context.Context) ([]CaseSummary, error) {
	ids, err := c.Store.Cases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]CaseSummary, len(ids))
	var g errgroup.Group
	g.SetLimit(casesInFlight)
	for i, id := range ids {
		g.Go(func() error {
			out[i] = summarize(ctx, c.Store, id)
			return nil
		})
	}
	_ = g.Wait() // summarize reports failures in the summary
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].CaseID > out[j].CaseID
	})
	return out, nil
}

func summarize(ctx context.Context, store evidence.Store, id string) CaseSummary {
	s := CaseSummary{CaseID: id}
	m, err := evidence.LoadManifest(ctx, store, id)
	if err != nil {
		s.Status, s.Error = "unreadable", err.Error()
		return s
	}
	s.InstanceID, s.AccountID, s.Region, s.Status = m.InstanceID, m.AccountID, m.Region, m.Status
	s.Runs, s.StartedAt, s.EndedAt = len(m.Runs), m.StartedAt, m.EndedAt
	return s
}
