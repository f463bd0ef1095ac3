package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/time/rate"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// CloudTrailEvents stores the CloudTrail management events about the
// instance from the Region's Event history (LookupEvents): those naming the
// instance, its network interfaces or its volumes as a resource, and those
// made with its instance-profile role's credentials (their role session name
// is the instance ID, which Event history shows as the user name), over the
// playbook's cloud_record.window before the response (default 24 hours). The
// events are deduplicated by EventId, sorted by time, and stored as
// cloudtrail-events.json with the lookups that found each.
//
// LookupEvents is limited to two requests per second per account and Region
// (CloudTrail API reference): the step paces itself to that, beside any
// other response in this process for the same account and Region, and
// retries throttling with backoff. Nothing isolating waits for it.
type CloudTrailEvents struct{}

func (CloudTrailEvents) Name() string    { return "cloudtrail-events" }
func (CloudTrailEvents) Phase() Phase    { return Acquire }
func (CloudTrailEvents) Needs() []string { return nil }

// LookupEventsRate is the documented limit of LookupEvents: two requests per
// second, per account, per Region.
const LookupEventsRate = 2

// maxTrailPages bounds the pages one response reads (50 events each, 200 s
// at the documented rate): within the step's time bound, a busy instance's
// window is stored as far as it was read, and said to be truncated.
const maxTrailPages = 400

// trailPacers pace LookupEvents per client, account and Region: the
// responses of one process that share a client (a fleet) share the limit.
// Responses in other processes (other Lambda execution environments) are
// not seen: their throttling is retried (retryThrottled, and the SDK).
var trailPacers = struct {
	sync.Mutex
	m map[trailPacerKey]*rate.Limiter
}{m: map[trailPacerKey]*rate.Limiter{}}

type trailPacerKey struct {
	client          any // the client, when its type is comparable (SDK clients and fakes are pointers)
	account, region string
}

// lookupRater is an endpoint that states its own LookupEvents rate (the
// in-memory fake, whose rate a test may raise); any other is paced at
// LookupEventsRate.
type lookupRater interface{ LookupEventsRate() float64 }

func trailPacer(api cloud.CloudTrail, account, region string) *rate.Limiter {
	trailPacers.Lock()
	defer trailPacers.Unlock()
	key := trailPacerKey{account: account, region: region}
	if t := reflect.TypeOf(api); t != nil && t.Comparable() {
		key.client = api
	}
	l := trailPacers.m[key]
	if l == nil {
		// Burst 1: one request at a time, evenly spaced.
		limit := rate.Limit(LookupEventsRate)
		if r, ok := api.(lookupRater); ok && r.LookupEventsRate() > 0 {
			limit = rate.Limit(r.LookupEventsRate())
		}
		l = rate.NewLimiter(limit, 1)
		trailPacers.m[key] = l
	}
	return l
}

// trailEvent is one event of cloudtrail-events.json.
type trailEvent struct {
	EventID     string          `json:"event_id"`
	EventTime   time.Time       `json:"event_time"`
	EventName   string          `json:"event_name"`
	EventSource string          `json:"event_source"`
	Username    string          `json:"username,omitempty"`
	AccessKeyID string          `json:"access_key_id,omitempty"`
	ReadOnly    string          `json:"read_only,omitempty"`
	Resources   []trailResource `json:"resources,omitempty"`
	// MatchedBy are the lookups that returned it ("ResourceName=i-...").
	MatchedBy []string `json:"matched_by"`
	// CloudTrailEvent is the event record exactly as LookupEvents returned it.
	CloudTrailEvent string `json:"cloudtrail_event"`
}

type trailResource struct {
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
}

// trailLookupRecord is one lookup (one attribute) and what it returned.
type trailLookupRecord struct {
	Attribute string `json:"attribute"`
	Value     string `json:"value"`
	Pages     int    `json:"pages"`
	Events    int    `json:"events"`
	Truncated bool   `json:"truncated,omitempty"`
	Error     string `json:"error,omitempty"`
}

// trailDocument is cloudtrail-events.json.
type trailDocument struct {
	CaseID      string              `json:"case_id"`
	AccountID   string              `json:"account_id"`
	Region      string              `json:"region"`
	InstanceID  string              `json:"instance_id"`
	WindowStart time.Time           `json:"window_start"`
	WindowEnd   time.Time           `json:"window_end"`
	Lookups     []trailLookupRecord `json:"lookups"`
	Events      []trailEvent        `json:"events"`
}

// trailSummary is the step's after.
type trailSummary struct {
	Artifact    string         `json:"artifact,omitempty"`
	Events      int            `json:"events"`
	ByEventName map[string]int `json:"by_event_name"`
	WindowStart time.Time      `json:"window_start"`
	WindowEnd   time.Time      `json:"window_end"`
	Lookups     int            `json:"lookups"`
	Pages       int            `json:"pages"`
	// AccessKeyIDs are the access keys of the instance's role sessions seen
	// in the window (events whose user name is the instance ID).
	AccessKeyIDs []string `json:"access_key_ids,omitempty"`
	Truncated    bool     `json:"truncated,omitempty"`
}

// trailReader runs the lookups of one response.
type trailReader struct {
	api        cloud.CloudTrail
	pace       *rate.Limiter
	start, end time.Time
	pages      int // read so far, all lookups
	events     map[string]*trailEvent
}

func (s CloudTrailEvents) Run(ctx context.Context, env *Env) Result {
	api := env.Clients.CloudTrail
	if api == nil {
		return Skipped("no CloudTrail client in this run's configuration: no event looked up", nil)
	}
	end := env.now()
	r := &trailReader{api: api, pace: trailPacer(api, env.Target.AccountID, env.Target.Region),
		start: end.Add(-env.CloudRecord.WindowOrDefault()), end: end, events: map[string]*trailEvent{}}
	doc := trailDocument{CaseID: env.Target.CaseID, AccountID: env.Target.AccountID, Region: env.Target.Region,
		InstanceID: env.Target.InstanceID(), WindowStart: r.start, WindowEnd: r.end}
	if env.Target.DryRun {
		_, err := r.page(ctx, trailLookups(env.Target.Instance)[0], nil, 1)
		if cloud.IsErrorCode(err, accessDeniedCodes...) {
			return Skipped("dry run: CloudTrail denied LookupEvents ("+cloud.ErrorCode(err)+")", nil)
		}
		if err != nil {
			return Failed(fmt.Errorf("dry run: look up CloudTrail events: %w", err), nil)
		}
		return OK(fmt.Sprintf("dry run: would store the CloudTrail events of %s from %s (LookupEvents answered)", doc.InstanceID, r.start.Format(time.RFC3339)), nil, nil)
	}
	var errs []error
	for _, a := range trailLookups(env.Target.Instance) {
		rec, err := r.lookup(ctx, a)
		if cloud.IsErrorCode(err, accessDeniedCodes...) {
			return Skipped(fmt.Sprintf("CloudTrail denied LookupEvents (%s): no event looked up; grant cloudtrail:LookupEvents to the member role", cloud.ErrorCode(err)), nil)
		}
		if err != nil {
			rec.Error = err.Error()
			errs = append(errs, fmt.Errorf("lookup %s=%s: %w", rec.Attribute, rec.Value, err))
		}
		doc.Lookups = append(doc.Lookups, rec)
	}
	doc.Events = r.sorted()
	return s.store(ctx, env, doc, joinErrs(errs...))
}

// trailLookups are the lookup attributes about the instance: its ID, its
// interfaces and volumes as resource names, and its ID as the user name of
// its role sessions (instance-profile credentials use the instance ID as
// their role session name). Every event signed with one of those sessions'
// access keys carries that user name, so a lookup by access key would find
// the same events again: the keys are recorded instead.
func trailLookups(inst types.Instance) []cttypes.LookupAttribute {
	id := aws.ToString(inst.InstanceId)
	names := []string{id}
	for _, n := range inst.NetworkInterfaces {
		if n.NetworkInterfaceId != nil {
			names = append(names, *n.NetworkInterfaceId)
		}
	}
	names = append(names, attachedVolumes(inst)...)
	var out []cttypes.LookupAttribute
	for _, n := range names {
		out = append(out, cttypes.LookupAttribute{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: aws.String(n)})
	}
	return append(out, cttypes.LookupAttribute{AttributeKey: cttypes.LookupAttributeKeyUsername, AttributeValue: aws.String(id)})
}

// lookup reads every page of one attribute, within the response's page
// budget.
func (r *trailReader) lookup(ctx context.Context, a cttypes.LookupAttribute) (trailLookupRecord, error) {
	rec := trailLookupRecord{Attribute: string(a.AttributeKey), Value: aws.ToString(a.AttributeValue)}
	var token *string
	for {
		if r.pages >= maxTrailPages {
			rec.Truncated = true
			return rec, nil
		}
		out, err := r.page(ctx, a, token, 50)
		if err != nil {
			return rec, err
		}
		r.pages++
		rec.Pages++
		rec.Events += len(out.Events)
		r.add(out.Events, rec.Attribute+"="+rec.Value)
		if token = out.NextToken; aws.ToString(token) == "" {
			return rec, nil
		}
	}
}

// page reads one page, paced and retried while throttled.
func (r *trailReader) page(ctx context.Context, a cttypes.LookupAttribute, token *string, max int32) (*cloudtrail.LookupEventsOutput, error) {
	in := &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{a}, StartTime: aws.Time(r.start),
		EndTime: aws.Time(r.end), MaxResults: aws.Int32(max), NextToken: token}
	var out *cloudtrail.LookupEventsOutput
	err := retryThrottled(ctx, func() error {
		if err := r.pace.Wait(ctx); err != nil {
			return err
		}
		var err error
		out, err = r.api.LookupEvents(ctx, in)
		return err
	})
	return out, err
}

// add keeps each event once, noting every lookup that returned it.
func (r *trailReader) add(events []cttypes.Event, matchedBy string) {
	for _, e := range events {
		id := aws.ToString(e.EventId)
		if prev, ok := r.events[id]; ok {
			if prev.MatchedBy[len(prev.MatchedBy)-1] != matchedBy {
				prev.MatchedBy = append(prev.MatchedBy, matchedBy)
			}
			continue
		}
		te := &trailEvent{EventID: id, EventTime: aws.ToTime(e.EventTime).UTC(), EventName: aws.ToString(e.EventName),
			EventSource: aws.ToString(e.EventSource), Username: aws.ToString(e.Username), AccessKeyID: aws.ToString(e.AccessKeyId),
			ReadOnly: aws.ToString(e.ReadOnly), MatchedBy: []string{matchedBy}, CloudTrailEvent: aws.ToString(e.CloudTrailEvent)}
		for _, res := range e.Resources {
			te.Resources = append(te.Resources, trailResource{Type: aws.ToString(res.ResourceType), Name: aws.ToString(res.ResourceName)})
		}
		r.events[id] = te
	}
}

// sorted lists the events oldest first (ties by EventId).
func (r *trailReader) sorted() []trailEvent {
	out := make([]trailEvent, 0, len(r.events))
	for _, e := range r.events {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].EventTime.Equal(out[j].EventTime) {
			return out[i].EventTime.Before(out[j].EventTime)
		}
		return out[i].EventID < out[j].EventID
	})
	return out
}

// store writes cloudtrail-events.json once and summarises it.
func (s CloudTrailEvents) store(ctx context.Context, env *Env, doc trailDocument, lookupErr error) Result {
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return Failed(fmt.Errorf("encode CloudTrail events: %w", err), nil)
	}
	a, err := env.SaveArtifact(ctx, s.Name(), "cloudtrail-events.json", body, "application/json", "cloudtrail:LookupEvents")
	sum := summarizeTrail(doc)
	sum.Artifact = a.Path
	switch {
	case errors.Is(err, ErrAlreadyCollected):
		return Skipped("CloudTrail events already collected in this case ("+a.Path+")", nil)
	case err != nil:
		return Failed(joinErrs(lookupErr, err), nil)
	case lookupErr != nil:
		return Result{Status: evidence.StatusFailed, Err: lookupErr, After: sum}
	}
	reason := fmt.Sprintf("stored %s: %d event(s) from %s to %s", a.Path, sum.Events,
		doc.WindowStart.Format(time.RFC3339), doc.WindowEnd.Format(time.RFC3339))
	if sum.Truncated {
		reason += fmt.Sprintf(" (truncated after %d pages: the window holds more)", maxTrailPages)
	}
	return OK(reason, nil, sum)
}

func summarizeTrail(doc trailDocument) trailSummary {
	sum := trailSummary{Events: len(doc.Events), ByEventName: map[string]int{}, WindowStart: doc.WindowStart,
		WindowEnd: doc.WindowEnd, Lookups: len(doc.Lookups)}
	keys := map[string]bool{}
	for _, e := range doc.Events {
		sum.ByEventName[e.EventName]++
		if e.Username == doc.InstanceID && e.AccessKeyID != "" && !keys[e.AccessKeyID] {
			keys[e.AccessKeyID] = true
			sum.AccessKeyIDs = append(sum.AccessKeyIDs, e.AccessKeyID)
		}
	}
	sort.Strings(sum.AccessKeyIDs)
	for _, l := range doc.Lookups {
		sum.Pages += l.Pages
		sum.Truncated = sum.Truncated || l.Truncated
	}
	return sum
}

// Describe: the after summarises the stored events, not a state.
func (CloudTrailEvents) Describe() Description {
	return Description{
		NoState: true,
		OnFailure: "Part of the CloudTrail record of the instance was not stored (see which lookup failed). " +
			"The Event history keeps 90 days: respond again with the same case ID, or look the events up in the " +
			"account's trail, before they age out.",
		OnSkip: "No CloudTrail events were stored for this case (see the reason). The Event history keeps " +
			"90 days of management events; a trail, if the account has one, keeps them longer.",
	}
}
