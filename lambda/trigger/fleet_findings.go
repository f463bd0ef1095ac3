package trigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// startFindingCases starts the cases of a custom action's instances: one
// case alone as before; several as one fleet, whose Map bounds how many of
// them respond at once per account and Region. The fleet's ID and input
// come from the event (its ID and time), so that EventBridge's retry of the
// event finds the same fleet. Instances the fleet cannot hold (one instance
// ID in two places, more than MaxFleetInstances) start one by one.
func (h *Handler) startFindingCases(ctx context.Context, log *slog.Logger, ev customActionEvent, targets []Target,
	findings map[Target][]FindingRef, actor, playbook string) (map[Target]outcome, string) {
	if len(targets) < 2 || len(targets) > MaxFleetInstances || !uniqueInstances(targets) {
		return h.startAll(ctx, log, targets, findings, actor, SourceSecurityHub, playbook), ""
	}
	at := h.now()
	if t, err := time.Parse(time.RFC3339, ev.Time); err == nil {
		at = t.UTC()
	}
	fleetID := findingsFleetID(ev.ID, at)
	in := h.fleetInput(fleetID, actor, SourceSecurityHub, playbook, false, targets, findings)
	in.RequestedAt = at.Format(time.RFC3339)
	arn, err := h.startFleet(ctx, in)
	if err != nil {
		err = startFailure(err)
		log.Error("fleet not started", "fleet_id", fleetID, "error", err)
	} else {
		log.Info("fleet started", "fleet_id", fleetID, "execution_arn", arn, "instances", len(targets))
	}
	out := make(map[Target]outcome, len(targets))
	for _, t := range targets {
		out[t] = outcome{Started: started{CaseID: evidence.FleetCaseID(fleetID, t.InstanceID), ExecutionARN: arn, Since: at}, Err: err}
	}
	return out, fleetID
}

func uniqueInstances(targets []Target) bool {
	seen := map[string]bool{}
	for _, t := range targets {
		if seen[t.InstanceID] {
			return false
		}
		seen[t.InstanceID] = true
	}
	return true
}

// findingsFleetID names the fleet of a custom action event:
// fleet-YYYYMMDD-HHMMSS-<8 hex of the event ID>.
func findingsFleetID(eventID string, at time.Time) string {
	sum := sha256.Sum256([]byte(eventID))
	return fmt.Sprintf("fleet-%s-%s", at.Format("20060102-150405"), hex.EncodeToString(sum[:4]))
}
