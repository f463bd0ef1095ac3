package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"
	"golang.org/x/sync/errgroup"

	"github.com/responder-ir/responder/internal/errlist"
)

// customActionEvent is an EventBridge "Security Hub Findings - Custom Action"
// event: the findings an analyst selected, in ASFF, and the custom action.
type customActionEvent struct {
	ID        string   `json:"id"`
	Time      string   `json:"time"`
	Account   string   `json:"account"`
	Region    string   `json:"region"`
	Resources []string `json:"resources"` // the custom action's ARN
	Detail    struct {
		ActionName        string    `json:"actionName"`
		ActionDescription string    `json:"actionDescription"`
		Findings          []finding `json:"findings"`
	} `json:"detail"`
}

// finding is the part of an ASFF finding the responder reads.
type finding struct {
	ID           string            `json:"Id"`
	ProductArn   string            `json:"ProductArn"`
	AwsAccountID string            `json:"AwsAccountId"`
	Region       string            `json:"Region"`
	Title        string            `json:"Title"`
	Resources    []findingResource `json:"Resources"`
}

type findingResource struct {
	Type      string `json:"Type"`
	ID        string `json:"Id"`
	Partition string `json:"Partition"`
	Region    string `json:"Region"`
}

// ASFF resource type of an EC2 instance.
const resourceEC2Instance = "AwsEc2Instance"

// Concurrency bounds the cases started at once for one event.
const Concurrency = 8

// MaxFindingsPerUpdate is BatchUpdateFindings' limit.
const MaxFindingsPerUpdate = 100

// NoteAuthor is the UpdatedBy of the notes the responder writes.
const NoteAuthor = "responder"

// findingPlan is what one finding asks for.
type findingPlan struct {
	Finding  finding
	Targets  []Target
	Problems []string // EC2 instance resources that cannot be responded to, and why
	Others   []string // the types of the other resources
}

// outcome is how starting a case for one target ended.
type outcome struct {
	Started started
	Err     error
}

// caseRef names a case in the answer of an event.
type caseRef struct {
	CaseID       string `json:"case_id"`
	InstanceID   string `json:"instance_id"`
	AccountID    string `json:"account_id"`
	Region       string `json:"region"`
	ExecutionARN string `json:"execution_arn"`
	Joined       bool   `json:"joined,omitempty"`
}

// customActionResult is the answer to a custom action event.
type customActionResult struct {
	Action string `json:"action"`
	// FleetID is the fleet that runs the cases when the findings named
	// several instances (fleet_findings.go).
	FleetID                 string        `json:"fleet_id,omitempty"`
	Findings                int           `json:"findings"`
	Cases                   []caseRef     `json:"cases"`
	FindingsUpdated         int           `json:"findings_updated"`
	FindingsWithoutInstance int           `json:"findings_without_instance"`
	Unprocessed             []unprocessed `json:"unprocessed,omitempty"`
	Errors                  []string      `json:"errors,omitempty"`
}

type unprocessed struct {
	FindingID string `json:"finding_id"`
	ErrorCode string `json:"error_code"`
}

// customAction starts one case per EC2 instance named by the findings (an
// instance named by several findings gets one case), then notes on every
// finding what was done for it: the case ID and where its evidence is, or why
// nothing was. A finding that names an instance gets workflow status
// NOTIFIED. The event fails (and EventBridge retries it) when a case could not
// be started or a finding could not be updated; the lock makes the retry join
// the cases already started.
func (h *Handler) customAction(ctx context.Context, log *slog.Logger, event json.RawMessage) (any, error) {
	var ev customActionEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		log.Error("custom action event rejected", "error", err)
		return nil, fail(ErrorInput, "the Security Hub custom action event cannot be read: %v", err)
	}
	if ev.Region != "" && ValidateRegion(ev.Region) != nil {
		return nil, fail(ErrorInput, "the custom action event's region %s is not a Region", quote(ev.Region))
	}
	log = log.With("event_id", ev.ID, "action", ev.Detail.ActionName)
	actor := customActionActor(ev)
	plans, skipped := h.planFindings(ev.Detail.Findings)
	for _, f := range skipped {
		log.Warn("finding without Id or ProductArn: it cannot be updated", "title", f.Title)
	}

	var targets []Target
	asking := map[Target][]FindingRef{} // the findings that name each target
	for _, p := range plans {
		for _, t := range p.Targets {
			if _, seen := asking[t]; !seen {
				targets = append(targets, t)
			}
			asking[t] = append(asking[t], FindingRef{ID: p.Finding.ID, ProductArn: p.Finding.ProductArn, Region: ev.Region})
		}
	}
	// The playbook is the action's (RESPONDER_ACTION_PLAYBOOKS), per target
	// ARN: an "Isolate" and an "Isolate and capture memory" action.
	playbook := DefaultPlaybook
	if len(ev.Resources) > 0 {
		playbook = h.Config.actionPlaybook(ev.Resources[0])
	}
	outcomes, fleetID := h.startFindingCases(ctx, log, ev, targets, asking, actor, playbook)

	res := customActionResult{Action: ev.Detail.ActionName, Findings: len(ev.Detail.Findings), Cases: []caseRef{}, FleetID: fleetID}
	var failures []error
	for _, t := range targets {
		o := outcomes[t]
		if o.Err != nil {
			failures = append(failures, fmt.Errorf("%s: %w", t, o.Err))
			res.Errors = append(res.Errors, "no case for "+t.String())
			continue
		}
		res.Cases = append(res.Cases, caseRef{CaseID: o.Started.CaseID, InstanceID: t.InstanceID, AccountID: t.AccountID,
			Region: t.Region, ExecutionARN: o.Started.ExecutionARN, Joined: o.Started.Joined})
	}

	notes := make([]findingNote, 0, len(plans))
	for _, p := range plans {
		if len(p.Targets) == 0 && len(p.Problems) == 0 {
			res.FindingsWithoutInstance++
		}
		notes = append(notes, noteFor(p, outcomes, h.Store.Location))
	}
	updated, unproc, err := h.noteFindings(ctx, log, ev.Region, notes)
	res.FindingsUpdated, res.Unprocessed = updated, unproc
	if err != nil {
		failures = append(failures, err)
		res.Errors = append(res.Errors, "findings not updated: "+err.Error())
	}
	for _, u := range unproc {
		failures = append(failures, fmt.Errorf("finding %s not updated: %s", u.FindingID, u.ErrorCode))
	}

	caseIDs := make([]string, len(res.Cases))
	for i, c := range res.Cases {
		caseIDs[i] = c.CaseID
	}
	log.Info("custom action handled", "case_ids", caseIDs, "findings", res.Findings,
		"findings_updated", res.FindingsUpdated, "findings_without_instance", res.FindingsWithoutInstance, "failures", len(failures))
	if len(failures) > 0 {
		err := errlist.Join(failures...)
		log.Error("custom action incomplete", "case_ids", caseIDs, "error", err)
		return nil, awsFailure(err)
	}
	return res, nil
}

// customActionActor is who asked, as far as the event says: the custom
// action (the event does not name the analyst who chose it; CloudTrail does).
func customActionActor(ev customActionEvent) string {
	action := ev.Detail.ActionName
	if len(ev.Resources) > 0 {
		action = ev.Resources[0]
	}
	return "securityhub-custom-action:" + action
}

// planFindings reads the instances of every finding. Findings without an
// identifier (they cannot be updated) are returned apart; a finding given
// twice is planned once.
func (h *Handler) planFindings(findings []finding) (plans []findingPlan, skipped []finding) {
	type key struct{ id, product string }
	seen := map[key]bool{}
	for _, f := range findings {
		if f.ID == "" || f.ProductArn == "" {
			skipped = append(skipped, f)
			continue
		}
		k := key{f.ID, f.ProductArn}
		if seen[k] {
			continue
		}
		seen[k] = true
		p := findingPlan{Finding: f}
		inFinding := map[Target]bool{}
		for _, r := range f.Resources {
			if r.Type != resourceEC2Instance {
				p.Others = append(p.Others, r.Type)
				continue
			}
			t, err := h.instanceOf(r, f)
			switch {
			case err != nil:
				p.Problems = append(p.Problems, err.Error())
			case !h.Config.AccountAllowed(t.AccountID):
				p.Problems = append(p.Problems, fmt.Sprintf("%s in account %s: not an account this responder may act in", t.InstanceID, t.AccountID))
			case !inFinding[t]:
				inFinding[t] = true
				p.Targets = append(p.Targets, t)
			}
		}
		plans = append(plans, p)
	}
	return plans, skipped
}

// instanceOf reads the instance of an AwsEc2Instance resource: its Id is the
// instance ARN; a bare instance ID takes the finding's account and Region.
// The account comes from the ARN, and the ARN must agree with the finding:
// a finding is about a resource of its own account (AwsAccountId) in the
// function's partition. An ARN naming another account or partition (an
// event crafted or garbled, or a product that reports resources it does not
// own) starts nothing: the finding's note says why. So does a Region of
// another partition, however the resource names it.
func (h *Handler) instanceOf(r findingResource, f finding) (Target, error) {
	t, err := h.findingInstance(r, f)
	if err != nil {
		return Target{}, err
	}
	if err := ValidateRegionIn(t.Region, h.Config.partition()); err != nil {
		return Target{}, fmt.Errorf("%s: %v, so no response was started", t.InstanceID, err)
	}
	return t, nil
}

// findingInstance reads the instance of an AwsEc2Instance resource, by ARN
// or by ID (see instanceOf).
func (h *Handler) findingInstance(r findingResource, f finding) (Target, error) {
	if strings.HasPrefix(r.ID, "arn:") {
		t, partition, err := parseInstanceARN(r.ID)
		if err != nil {
			return Target{}, err
		}
		return t, h.checkFindingARN(t, partition, r, f)
	}
	region := r.Region
	if region == "" {
		region = f.Region
	}
	t := Target{AccountID: f.AwsAccountID, Region: region, InstanceID: r.ID}
	if err := t.Validate(); err != nil {
		return Target{}, fmt.Errorf("resource %s: %w", quote(r.ID), err)
	}
	return t, nil
}

// startAll starts a case per target, Concurrency at a time; findings are,
// per target, those that asked for it (the respond task notes the outcome
// on them).
func (h *Handler) startAll(ctx context.Context, log *slog.Logger, targets []Target, findings map[Target][]FindingRef, actor, source, playbook string) map[Target]outcome {
	var (
		mu  sync.Mutex
		g   errgroup.Group
		out = make(map[Target]outcome, len(targets))
	)
	g.SetLimit(Concurrency)
	for _, t := range targets {
		// Each outcome carries its own error: one failure stops no other case.
		g.Go(func() error {
			s, err := h.start(ctx, log, startRequest{Target: t, Actor: actor, Source: source, Findings: findings[t], Playbook: playbook})
			mu.Lock()
			out[t] = outcome{Started: s, Err: err}
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// noteFindings writes the notes: one BatchUpdateFindings per distinct note,
// at most MaxFindingsPerUpdate findings each, in the event's Region. Findings
// that Security Hub reports as concurrently updated are tried once more.
func (h *Handler) noteFindings(ctx context.Context, log *slog.Logger, region string, notes []findingNote) (int, []unprocessed, error) {
	type group struct {
		text     string
		notified bool
		ids      []shtypes.AwsSecurityFindingIdentifier
	}
	var groups []*group
	byNote := map[string]*group{}
	for _, n := range notes {
		k := fmt.Sprintf("%t|%s", n.Notified, n.Text)
		g, ok := byNote[k]
		if !ok {
			g = &group{text: n.Text, notified: n.Notified}
			byNote[k] = g
			groups = append(groups, g)
		}
		g.ids = append(g.ids, shtypes.AwsSecurityFindingIdentifier{Id: aws.String(n.FindingID), ProductArn: aws.String(n.ProductArn)})
	}
	var opts []func(*securityhub.Options)
	if region != "" && region != h.Config.Region {
		opts = append(opts, func(o *securityhub.Options) { o.Region = region })
	}
	var (
		updated int
		unproc  []unprocessed
		errs    []error
	)
	for _, g := range groups {
		for start := 0; start < len(g.ids); start += MaxFindingsPerUpdate {
			ids := g.ids[start:min(start+MaxFindingsPerUpdate, len(g.ids))]
			in := &securityhub.BatchUpdateFindingsInput{
				FindingIdentifiers: ids,
				Note:               &shtypes.NoteUpdate{Text: aws.String(g.text), UpdatedBy: aws.String(NoteAuthor)},
			}
			if g.notified {
				in.Workflow = &shtypes.WorkflowUpdate{Status: shtypes.WorkflowStatusNotified}
			}
			n, u, err := h.batchUpdate(ctx, in, opts)
			updated += n
			unproc = append(unproc, u...)
			if err != nil {
				log.Error("BatchUpdateFindings failed", "findings", len(ids), "error", err)
				errs = append(errs, err)
			}
		}
	}
	return updated, unproc, errlist.Join(errs...)
}

// batchUpdate calls BatchUpdateFindings, and once more for the findings it
// could not process because of a concurrent update or an internal failure.
func (h *Handler) batchUpdate(ctx context.Context, in *securityhub.BatchUpdateFindingsInput, opts []func(*securityhub.Options)) (int, []unprocessed, error) {
	updated := 0
	var failed []unprocessed
	for attempt := 0; ; attempt++ {
		out, err := h.Findings.BatchUpdateFindings(ctx, in, opts...)
		if err != nil {
			return updated, failed, fmt.Errorf("BatchUpdateFindings of %d finding(s): %w", len(in.FindingIdentifiers), err)
		}
		updated += len(out.ProcessedFindings)
		var retry []shtypes.AwsSecurityFindingIdentifier
		for _, u := range out.UnprocessedFindings {
			code := aws.ToString(u.ErrorCode)
			if (code == "ConcurrentUpdateError" || code == "InternalFailure") && attempt == 0 && u.FindingIdentifier != nil {
				retry = append(retry, *u.FindingIdentifier)
				continue
			}
			id := ""
			if u.FindingIdentifier != nil {
				id = aws.ToString(u.FindingIdentifier.Id)
			}
			failed = append(failed, unprocessed{FindingID: id, ErrorCode: code})
		}
		if len(retry) == 0 {
			sort.Slice(failed, func(i, j int) bool { return failed[i].FindingID < failed[j].FindingID })
			return updated, failed, nil
		}
		next := *in
		next.FindingIdentifiers = retry
		in = &next
	}
}

// checkFindingARN says why an instance ARN of a finding is not acted upon:
// its partition is not the function's (or not the one the resource gives),
// or its account is not the finding's AwsAccountId. ASFF resources carry a
// Partition and a Region but no account of their own: the finding's
// AwsAccountId is the account the finding, and its resource, belong to.
func (h *Handler) checkFindingARN(t Target, partition string, r findingResource, f finding) error {
	home := h.Config.partition()
	switch {
	case partition != home:
		return fmt.Errorf("%s: its ARN is in partition %s, not this responder's (%s), so no response was started", t.InstanceID, quote(partition), home)
	case r.Partition != "" && r.Partition != partition:
		return fmt.Errorf("%s: its ARN is in partition %s but the resource says %s, so no response was started", t.InstanceID, quote(partition), quote(r.Partition))
	case f.AwsAccountID == "":
		return fmt.Errorf("%s in account %s: the finding gives no AwsAccountId to check it against, so no response was started", t.InstanceID, t.AccountID)
	case t.AccountID != f.AwsAccountID:
		return fmt.Errorf("%s: its ARN names account %s but the finding is from account %s, so no response was started", t.InstanceID, t.AccountID, quote(f.AwsAccountID))
	}
	return nil
}
