package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/preserve"
)

// preservePayload is the payload of the preserve task.
type preservePayload struct {
	Task      string `json:"task"`
	CaseID    string `json:"case_id"`
	AccountID string `json:"account_id"`
	Region    string `json:"region"`
	// Polls is how many times the state machine asked before.
	Polls int `json:"polls"`
}

// preserveStatus is the answer of the preserve task.
type preserveStatus struct {
	CaseID string `json:"case_id"`
	// Configured is false when RESPONDER_FORENSICS_KMS_KEY is not set: the
	// task then copies nothing and answers complete.
	Configured bool `json:"configured"`
	// Complete: every copy is completed in the forensics account (or the
	// case has no snapshot). Failed: a snapshot could not be copied.
	Complete  bool     `json:"complete"`
	Failed    bool     `json:"failed"`
	Percent   int      `json:"percent"`
	Total     int      `json:"total"`
	Completed int      `json:"completed"`
	Pending   int      `json:"pending"`
	Problems  []string `json:"problems"`
	Polls     int      `json:"polls"`
	Note      string   `json:"note,omitempty"`
}

// preserve copies the case's snapshots into the forensics account (the
// function's own) with preserve.Preserver, as `responder preserve` does, and
// reports how far the copies are. It does not wait for the copies: the state
// machine asks again after a Wait state, and each call finds the copies the
// earlier ones made (Preserve is idempotent). It waits only for what must be
// completed before a copy can start (a re-encrypted intermediate copy), at
// most until shortly before the function's deadline; a snapshot still
// waiting then is pending, not failed.
func (h *Handler) preserve(ctx context.Context, log *slog.Logger, payload json.RawMessage) (any, error) {
	var p preservePayload
	if err := decodeStrict(payload, &p); err != nil {
		log.Error("preserve task rejected", "error", err)
		return nil, fail(ErrorInput, "preserve task payload: %v", err)
	}
	engineLog := log // the engine adds the case_id itself
	log = log.With("case_id", p.CaseID)
	if err := h.checkAccount(p.CaseID, p.AccountID, p.Region); err != nil {
		log.Error("preserve task rejected", "error", err)
		return nil, fail(ErrorInput, "preserve task: %v", err)
	}
	out := preserveStatus{CaseID: p.CaseID, Configured: h.Config.PreserveConfigured(), Problems: []string{}, Polls: p.Polls + 1}
	if !out.Configured {
		out.Complete, out.Percent = true, 100
		out.Note = "preservation not configured (" + EnvForensicsKMSKey + " is not set): the snapshots stay in account " + p.AccountID
		log.Info("preserve: not configured")
		return out, nil
	}
	if p.Region != h.Config.Region {
		// The forensics key and client are in the function's Region; a copy
		// across Regions is left to `responder preserve`.
		out.Failed = true
		out.Problems = append(out.Problems, fmt.Sprintf("the case is in %s and the function copies only within its Region %s: run responder preserve for it", p.Region, h.Config.Region))
		log.Warn("preserve: case in another Region", "region", p.Region)
		return out, nil
	}
	if h.Forensics == nil || h.Config.HomeAccount == "" {
		return nil, fail(ErrorInternal, "preserve task: no EC2 client or account for the forensics account")
	}
	clients, err := h.workload(ctx, Target{AccountID: p.AccountID, Region: p.Region}, p.CaseID)
	if err != nil {
		log.Error("preserve task: no clients for the target", "error", err)
		return nil, awsFailure(err)
	}
	pr := preserve.New(clients, h.Forensics, h.Store)
	pr.Region, pr.Log, pr.Now, pr.Signer = p.Region, engineLog, h.Now, h.Signer
	res, err := pr.Preserve(ctx, preserve.Request{
		CaseID: p.CaseID, ForensicsAccountID: h.Config.HomeAccount, ForensicsKMSKeyID: h.Config.ForensicsKMSKey,
		SourceKMSKeyID: h.Config.SourceKMSKeyARN(p.AccountID, p.Region), Wait: false, Timeout: stepTimeout(ctx), PollInterval: h.PreservePoll,
	})
	var inputErr *responder.InputError
	switch {
	case errors.As(err, &inputErr):
		return nil, &Failure{Type: ErrorInput, Err: err}
	case errors.Is(err, evidence.ErrNotFound):
		return nil, fail(ErrorInternal, "case %s has no record: the respond task must run first", p.CaseID)
	case err != nil:
		return nil, awsFailure(err)
	}
	if res.SaveErr != nil {
		// The copies are made (and tagged): a retry finds them.
		return nil, awsFailure(fmt.Errorf("store the case record: %w", res.SaveErr))
	}
	summarise(ctx, h.Forensics, log, res.Copies, &out)
	log.Info("preserve status", "complete", out.Complete, "failed", out.Failed, "percent", out.Percent,
		"completed", out.Completed, "total", out.Total, "polls", out.Polls)
	return out, nil
}

// checkAccount validates the case, account and Region of a task payload.
func (h *Handler) checkAccount(caseID, account, region string) error {
	if err := validateCaseID(caseID); err != nil {
		return err
	}
	if err := ValidateAccountID(account); err != nil {
		return err
	}
	if err := ValidateRegionIn(region, h.Config.partition()); err != nil {
		return err
	}
	if !h.Config.AccountAllowed(account) {
		return fmt.Errorf("account %s is not one this responder may act in", account)
	}
	return nil
}

// summarise fills the answer from this run's copies. A copy whose run ran
// out of time (waiting for a re-encrypted copy, or for a copy slot) is
// pending: the next call takes it up where it stopped. The progress of the
// pending copies is read in the forensics account; when it cannot be, they
// count as 0%.
func summarise(ctx context.Context, forensics snapshotsAPI, log *slog.Logger, copies []evidence.SnapshotCopy, out *preserveStatus) {
	out.Total = len(copies)
	if len(copies) == 0 {
		out.Complete, out.Percent = true, 100
		return
	}
	var pendingIDs []string
	for _, cp := range copies {
		if cp.State == evidence.CopyPending && cp.SnapshotID != "" {
			pendingIDs = append(pendingIDs, cp.SnapshotID)
		}
	}
	found := map[string]types.Snapshot{}
	if len(pendingIDs) > 0 {
		var err error
		if found, err = describeSnapshots(ctx, forensics, pendingIDs); err != nil {
			log.Warn("progress of the copies not read", "error", err)
		}
	}
	sum := 0
	for _, cp := range copies {
		switch {
		case cp.State == evidence.CopyCompleted:
			out.Completed++
			sum += 100
		case cp.State == evidence.CopyFailed && !timedOut(cp.Error):
			out.Failed = true
			out.Problems = append(out.Problems, cp.SourceSnapshotID+": "+cp.Error)
		default:
			out.Pending++
			if s, ok := found[cp.SnapshotID]; ok {
				sum += progress(aws.ToString(s.Progress))
			}
		}
	}
	out.Percent = sum / len(copies)
	out.Complete = out.Completed == len(copies)
}

// timedOut tells a copy record that failed because the run's time ran out
// (Preserve records the context's error) from a real failure.
func timedOut(msg string) bool {
	return strings.Contains(msg, context.DeadlineExceeded.Error())
}
