package fakeaws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"golang.org/x/time/rate"
)

const serviceCloudTrail = "CloudTrail"

// CloudTrail is the account's CloudTrail Event history in the Region; it
// implements cloud.CloudTrail. LookupEvents answers as CloudTrail documents
// it: at most one lookup attribute, 1 to 50 results a page (default 50),
// newest first, a NextToken valid only with the same parameters, the
// InvalidTimeRange, InvalidLookupAttributes, InvalidMaxResults and
// InvalidNextToken errors, and ThrottlingException above two requests per
// second for the account and Region (LookupEventsRate, LookupEventsBurst).
type CloudTrail struct{ c *Cloud }

// Event history limits (CloudTrail API reference, LookupEvents).
const (
	// DefaultLookupEventsRate is the documented limit: two requests per
	// second, per account, per Region.
	DefaultLookupEventsRate = 2
	// DefaultLookupEventsBurst is how many requests the fake takes at once
	// before its rate applies. AWS documents no burst; two requests (one
	// second at the documented rate) is the fake's model.
	DefaultLookupEventsBurst = 2
	maxLookupResults         = 50
	eventHistoryDays         = 90
)

// trailState is the Event history: events are what AWS recorded, not what
// a call changes, so they live outside the state StateDigest hashes.
type trailState struct {
	events    map[string]cttypes.Event // by EventId
	limiter   *rate.Limiter
	throttled int
	service   *CloudTrail
}

// CloudTrail returns the account's CloudTrail service (one per Cloud: the
// step paces its lookups per client).
func (c *Cloud) CloudTrail() *CloudTrail {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trail.service == nil {
		c.trail.service = &CloudTrail{c}
	}
	return c.trail.service
}

// AddTrailEvents adds management events to the Event history. Each needs an
// EventId and an EventTime; an event with an EventId already there replaces
// it. Resources, Username and AccessKeyId are what the lookup attributes
// match.
func (c *Cloud) AddTrailEvents(events ...cttypes.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trail.events == nil {
		c.trail.events = map[string]cttypes.Event{}
	}
	for _, e := range events {
		if e.EventId == nil || e.EventTime == nil {
			panic("fakeaws: AddTrailEvents: an event needs EventId and EventTime")
		}
		c.trail.events[*e.EventId] = e
	}
}

// LookupEventsThrottled returns how many LookupEvents calls the fake
// answered with ThrottlingException because they came faster than its rate.
func (c *Cloud) LookupEventsThrottled() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trail.throttled
}

// LookupEventsRate is the rate the fake allows LookupEvents (requests per
// second): Cloud.LookupEventsRate, or the documented DefaultLookupEventsRate.
// The cloudtrail-events step paces itself to what its endpoint states, so a
// test that is not about pacing may raise both at once.
func (t *CloudTrail) LookupEventsRate() float64 {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.c.LookupEventsRate > 0 {
		return t.c.LookupEventsRate
	}
	return DefaultLookupEventsRate
}

// takeLookupTokenLocked applies the request rate of LookupEvents.
func (c *Cloud) takeLookupTokenLocked() error {
	if c.trail.limiter == nil {
		r, b := c.LookupEventsRate, c.LookupEventsBurst
		if r <= 0 {
			r = DefaultLookupEventsRate
		}
		if b <= 0 {
			b = DefaultLookupEventsBurst
		}
		c.trail.limiter = rate.NewLimiter(rate.Limit(r), b)
	}
	if !c.trail.limiter.Allow() {
		c.trail.throttled++
		return apiError("ThrottlingException", "Rate exceeded")
	}
	return nil
}

// LookupEvents serves cloudtrail:LookupEvents.
func (t *CloudTrail) LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, _ ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error) {
	out := &cloudtrail.LookupEventsOutput{}
	c := t.c
	err := c.call(ctx, serviceCloudTrail, "LookupEvents", false, &out.ResultMetadata, func() (func(), error) {
		if err := c.takeLookupTokenLocked(); err != nil {
			return nil, err
		}
		q, err := c.lookupQuery(in)
		if err != nil {
			return nil, err
		}
		matched := c.matchEventsLocked(q)
		start, err := lookupOffset(in.NextToken, q.key)
		if err != nil || start > len(matched) {
			return nil, apiError("InvalidNextTokenException", "Invalid NextToken.")
		}
		end := min(start+q.max, len(matched))
		return func() {
			out.Events = matched[start:end]
			if end < len(matched) {
				out.NextToken = aws.String(fmt.Sprintf("%d.%s", end, q.key))
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lookupQuery is a validated LookupEvents request.
type lookupQuery struct {
	attr       *cttypes.LookupAttribute
	start, end time.Time
	max        int
	key        string // binds a NextToken to the parameters
}

func (c *Cloud) lookupQuery(in *cloudtrail.LookupEventsInput) (lookupQuery, error) {
	now := c.now()
	q := lookupQuery{start: now.AddDate(0, 0, -eventHistoryDays), end: now, max: maxLookupResults}
	if in.StartTime != nil {
		q.start = in.StartTime.UTC()
	}
	if in.EndTime != nil {
		q.end = in.EndTime.UTC()
	}
	if q.start.After(q.end) {
		return q, apiError("InvalidTimeRangeException", "Start time must be before end time.")
	}
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxLookupResults {
			return q, apiError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
		}
		q.max = int(*in.MaxResults)
	}
	switch len(in.LookupAttributes) {
	case 0:
	case 1:
		a := in.LookupAttributes[0]
		if !knownLookupKey(a.AttributeKey) || aws.ToString(a.AttributeValue) == "" {
			return q, apiError("InvalidLookupAttributesException", "Invalid lookup attribute key or value.")
		}
		q.attr = &a
	default:
		return q, apiError("InvalidLookupAttributesException", "You can specify only one lookup attribute.")
	}
	// The token binds to the parameters as given (an unset time is not
	// the moving default).
	sum := sha256.Sum256(fmt.Appendf(nil, "%v|%v|%v|%v", timeKey(in.StartTime), timeKey(in.EndTime), q.max, lookupAttrString(q.attr)))
	q.key = hex.EncodeToString(sum[:8])
	return q, nil
}

func timeKey(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

func knownLookupKey(k cttypes.LookupAttributeKey) bool {
	for _, v := range k.Values() {
		if v == k {
			return true
		}
	}
	return false
}

func lookupAttrString(a *cttypes.LookupAttribute) string {
	if a == nil {
		return ""
	}
	return string(a.AttributeKey) + "=" + aws.ToString(a.AttributeValue)
}

// lookupOffset decodes a NextToken made for the same parameters.
func lookupOffset(token *string, key string) (int, error) {
	if token == nil {
		return 0, nil
	}
	n, k, ok := strings.Cut(*token, ".")
	off, err := strconv.Atoi(n)
	if !ok || err != nil || k != key || off < 0 {
		return 0, fmt.Errorf("bad token")
	}
	return off, nil
}

// matchEventsLocked lists the events of the query, newest first.
func (c *Cloud) matchEventsLocked(q lookupQuery) []cttypes.Event {
	var out []cttypes.Event
	for _, e := range c.trail.events {
		at := e.EventTime.UTC()
		if at.Before(q.start) || at.After(q.end) || !eventMatches(e, q.attr) {
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].EventTime.Equal(*out[j].EventTime) {
			return out[i].EventTime.After(*out[j].EventTime)
		}
		return *out[i].EventId < *out[j].EventId
	})
	return out
}

func eventMatches(e cttypes.Event, a *cttypes.LookupAttribute) bool {
	if a == nil {
		return true
	}
	v := aws.ToString(a.AttributeValue)
	switch a.AttributeKey {
	case cttypes.LookupAttributeKeyEventId:
		return aws.ToString(e.EventId) == v
	case cttypes.LookupAttributeKeyEventName:
		return aws.ToString(e.EventName) == v
	case cttypes.LookupAttributeKeyEventSource:
		return aws.ToString(e.EventSource) == v
	case cttypes.LookupAttributeKeyReadOnly:
		return aws.ToString(e.ReadOnly) == v
	case cttypes.LookupAttributeKeyUsername:
		return aws.ToString(e.Username) == v
	case cttypes.LookupAttributeKeyAccessKeyId:
		return aws.ToString(e.AccessKeyId) == v
	case cttypes.LookupAttributeKeyResourceName, cttypes.LookupAttributeKeyResourceType:
		for _, r := range e.Resources {
			field := r.ResourceName
			if a.AttributeKey == cttypes.LookupAttributeKeyResourceType {
				field = r.ResourceType
			}
			if aws.ToString(field) == v {
				return true
			}
		}
	}
	return false
}

// FastLookups raises the LookupEvents rate of c (100 a second, bursts of
// 10), unless the test set one, for tests that run whole responses and are
// not about pacing: the cloudtrail-events step paces itself to the rate its
// endpoint states, so each response does not wait seconds for the
// documented two a second.
func FastLookups(c *Cloud) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.LookupEventsRate == 0 {
		c.LookupEventsRate, c.LookupEventsBurst = 100, 10
	}
}
