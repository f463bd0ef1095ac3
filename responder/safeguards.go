package responder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// DefaultProtectedTag is the key of the tag that protects an instance from
// a response: responder:protected=true.
const DefaultProtectedTag = "responder:protected"

func validTagKey(k string) bool {
	return len(k) <= 128 && strings.TrimSpace(k) != "" && !strings.HasPrefix(strings.ToLower(k), "aws:")
}

// checkProtected refuses a protected instance unless the request forces
// the response, from the tags of the DescribeInstances answer resolve has
// (no other call). It returns who forced it, for the record.
func (t *target) checkProtected(req Request) (*evidence.Forced, error) {
	key := req.ProtectedTag
	if key == "" {
		key = DefaultProtectedTag
	}
	for _, tag := range t.instance.Tags {
		if aws.ToString(tag.Key) != key || !strings.EqualFold(strings.TrimSpace(aws.ToString(tag.Value)), "true") {
			continue
		}
		label := key + "=" + aws.ToString(tag.Value)
		if !req.Force {
			return nil, fmt.Errorf("%w: %s is tagged %s; nothing was changed. Respond anyway with --force "+
				"(the API: \"force\": true); the case record names who forced it", ErrProtected, req.InstanceID, label)
		}
		return &evidence.Forced{By: t.actor, Tag: label}, nil
	}
	return nil, nil
}

// contains reports whether a plan changes the instance to contain it.
func contains(plan []step.Step) bool {
	for _, s := range plan {
		if s.Phase() == step.Contain {
			return true
		}
	}
	return false
}

// takeBlastSlot takes the slot of the blast radius a response that contains
// the instance needs (evidence.TakeBlastSlot), unless the case holds one
// already: an earlier run of the case took it. A dry run, or a plan that
// contains nothing, takes none. When the evidence store cannot be reached,
// containment goes on without a slot (it must not wait on the store), and
// the record says the limit was not checked.
func (r *Responder) takeBlastSlot(ctx context.Context, req Request, t *target, plan []step.Step, log *slog.Logger) (*evidence.BlastRadius, error) {
	if req.DryRun || !contains(plan) {
		return nil, nil
	}
	if t.prior != nil {
		for _, run := range t.prior.Runs {
			if run.BlastRadius != nil && run.BlastRadius.Slot > 0 {
				return nil, nil // the case took its slot in an earlier run
			}
		}
	}
	limit := req.BlastRadius
	if limit == 0 {
		limit = evidence.DefaultBlastRadius
	}
	now := r.now()
	rec := &evidence.BlastRadius{Limit: limit, Hour: evidence.BlastHour(now)}
	if req.BlastRadiusRaised {
		rec.RaisedBy = t.actor
	}
	want := evidence.BlastSlot{
		AccountID: t.accountID, Hour: rec.Hour, CaseID: req.CaseID, InstanceID: req.InstanceID, Holder: t.actor, Taken: now,
	}
	take := evidence.TakeBlastSlot
	if r.BlastLedger != nil {
		take = func(ctx context.Context, _ evidence.Store, want evidence.BlastSlot, limit int) (evidence.BlastSlot, bool, error) {
			return r.BlastLedger.Take(ctx, want, limit)
		}
	}
	slot, reused, err := take(ctx, r.Store, want, limit)
	var full *evidence.BlastRadiusError
	switch {
	case errors.As(err, &full):
		return nil, blastRefused{err}
	case err != nil:
		log.Warn("could not check the blast radius; containing without a slot", "error", err)
		rec.Unchecked = err.Error()
		return rec, nil
	}
	rec.Slot = slot.Slot
	if reused {
		rec.Hour, rec.Limit = slot.Hour, slot.Limit
	}
	log.Info("blast radius slot held", "slot", slot.Slot, "limit", limit, "hour", rec.Hour, "reused", reused)
	return rec, nil
}

// blastRefused is ErrBlastRadius with the refusal's own words.
type blastRefused struct{ err error }

func (e blastRefused) Error() string   { return e.err.Error() }
func (e blastRefused) Unwrap() []error { return []error{ErrBlastRadius, e.err} }
