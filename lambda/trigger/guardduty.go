package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
)

// guardDutyEvent is an EventBridge "GuardDuty Finding" event.
type guardDutyEvent struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	Detail struct {
		ID        string  `json:"id"`
		Arn       string  `json:"arn"`
		Type      string  `json:"type"`
		AccountID string  `json:"accountId"`
		Region    string  `json:"region"`
		Severity  float64 `json:"severity"`
		Title     string  `json:"title"`
		Resource  struct {
			ResourceType    string `json:"resourceType"`
			InstanceDetails struct {
				InstanceID string `json:"instanceId"`
			} `json:"instanceDetails"`
		} `json:"resource"`
		Service struct {
			AdditionalInfo struct {
				Sample bool `json:"sample"`
			} `json:"additionalInfo"`
		} `json:"service"`
	} `json:"detail"`
}

// guardDutyResult is the answer to a GuardDuty finding event.
type guardDutyResult struct {
	FindingID string   `json:"finding_id"`
	Ignored   string   `json:"ignored,omitempty"` // why no response was started
	Case      *caseRef `json:"case,omitempty"`
}

// guardDuty starts a case for the EC2 instance of a GuardDuty finding, when
// GuardDuty responses are enabled and the finding is at least as severe as
// the threshold. Anything else is answered (not failed) with the reason it
// was ignored: EventBridge must not retry it.
func (h *Handler) guardDuty(ctx context.Context, log *slog.Logger, event json.RawMessage) (any, error) {
	var ev guardDutyEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		log.Error("GuardDuty event rejected", "error", err)
		return nil, fail(ErrorInput, "the GuardDuty finding event cannot be read: %v", err)
	}
	d := ev.Detail
	log = log.With("finding_id", d.ID, "finding_type", d.Type, "severity", d.Severity)
	res := guardDutyResult{FindingID: d.ID}
	ignore := func(why string) (any, error) {
		log.Info("GuardDuty finding ignored", "reason", why)
		res.Ignored = why
		return res, nil
	}
	switch {
	case !h.Config.GuardDutyEnabled:
		return ignore("responses to GuardDuty findings are off (" + EnvGuardDutyEnabled + ")")
	case d.Service.AdditionalInfo.Sample:
		return ignore("sample finding")
	case d.Severity < h.Config.GuardDutyMinSeverity:
		return ignore(fmt.Sprintf("severity %.1f is below the threshold %.1f", d.Severity, h.Config.GuardDutyMinSeverity))
	case d.Resource.ResourceType != "Instance" || d.Resource.InstanceDetails.InstanceID == "":
		return ignore(fmt.Sprintf("the finding is about a resource of type %s, not an EC2 instance", quote(d.Resource.ResourceType)))
	}
	region := d.Region
	if region == "" {
		region = ev.Region
	}
	t := Target{AccountID: d.AccountID, Region: region, InstanceID: d.Resource.InstanceDetails.InstanceID}
	if err := t.Validate(); err != nil {
		log.Error("GuardDuty finding rejected", "error", err)
		return nil, fail(ErrorInput, "GuardDuty finding %s: %v", quote(d.ID), err)
	}
	if err := ValidateRegionIn(t.Region, h.Config.partition()); err != nil {
		log.Error("GuardDuty finding rejected", "error", err)
		return nil, fail(ErrorInput, "GuardDuty finding %s: %v", quote(d.ID), err)
	}
	if !h.Config.AccountAllowed(t.AccountID) {
		return ignore("account " + t.AccountID + " is not one this responder may act in")
	}
	actor := "guardduty:" + d.Arn
	if d.Arn == "" {
		actor = "guardduty:" + d.ID
	}
	s, err := h.start(ctx, log, startRequest{Target: t, Actor: actor, Source: SourceGuardDuty})
	if err != nil {
		return nil, startFailure(err)
	}
	res.Case = &caseRef{CaseID: s.CaseID, InstanceID: t.InstanceID, AccountID: t.AccountID, Region: t.Region,
		ExecutionARN: s.ExecutionARN, Joined: s.Joined}
	return res, nil
}
