package fleet

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/responder-ir/responder/responder/evidence"
)

// Status is a fleet as the store holds it: its recorded plan, each case with
// the status its own record says now (a case's status is always its own
// record's), the reasons the fleet's last closed record gave, and the
// targets without a case that record listed. A case without a record yet
// is pending (or what the closed record said of it).
func Status(ctx context.Context, store evidence.Store, fleetID string) (*evidence.FleetRecord, error) {
	plan, err := evidence.LoadFleet(ctx, store, fleetID)
	if err != nil {
		return nil, err
	}
	out := *plan
	out.Counts = map[string]int{}
	last, err := evidence.LastFleetClose(ctx, store, fleetID)
	if err != nil && !errors.Is(err, evidence.ErrNotFound) {
		return nil, err
	}
	closed := map[string]evidence.FleetCase{}
	if last != nil {
		out.ClosedAt = last.ClosedAt
		for _, c := range last.Cases {
			closed[c.InstanceID] = c
		}
	}
	out.Cases = make([]evidence.FleetCase, len(plan.Cases))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, c := range plan.Cases {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if k, ok := closed[c.InstanceID]; ok {
				c = k
			}
			m, err := evidence.LoadManifest(ctx, store, c.CaseID)
			switch {
			case err == nil:
				c.Status = m.Status
			case c.Status == "":
				c.Status = Pending
			}
			out.Cases[i] = c
		})
	}
	wg.Wait()
	for _, c := range closed {
		if c.CaseID == "" {
			out.Cases = append(out.Cases, c)
		}
	}
	sort.SliceStable(out.Cases, func(i, j int) bool { return caseLess(out.Cases[i], out.Cases[j]) })
	for _, c := range out.Cases {
		out.Counts[c.Status]++
	}
	return &out, nil
}
