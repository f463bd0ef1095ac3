package integration

import (
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// StubLookupEvents answers CloudTrail LookupEvents, which moto does not
// implement, from a table of events the test adds (AddEvent): the events
// whose resources or user name match the request's one lookup attribute
// (ResourceName or Username) inside its time range, newest first, in one
// page. An empty table answers an empty Event history, the minimal valid
// answer. It does not page, pace or throttle (the in-memory fake does); it
// lets the real binaries' cloudtrail-events step complete against moto.
func (p *FaultProxy) StubLookupEvents() *TrailEvents {
	t := &TrailEvents{}
	p.Handle("LookupEvents", http.HandlerFunc(t.lookup))
	return t
}

// TrailEvents is the proxy's Event history.
type TrailEvents struct {
	mu     sync.Mutex
	events []trailStubEvent
}

type trailStubEvent struct {
	ID, Name, Username string
	Time               time.Time
	Resources          []string
}

// AddEvent adds an event made by username ("" for none) about resources.
func (t *TrailEvents) AddEvent(id, name, username string, at time.Time, resources ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, trailStubEvent{ID: id, Name: name, Username: username, Time: at.UTC(), Resources: resources})
}

type lookupRequest struct {
	LookupAttributes []struct{ AttributeKey, AttributeValue string }
	StartTime        float64
	EndTime          float64
}

func (t *TrailEvents) lookup(w http.ResponseWriter, r *http.Request) {
	var in lookupRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.LookupAttributes) > 1 {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"InvalidLookupAttributesException","message":"one lookup attribute at most"}`))
		return
	}
	t.mu.Lock()
	var out []map[string]any
	for _, e := range t.events {
		if in.matches(e) {
			out = append(out, e.wire())
		}
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i]["EventTime"].(float64) > out[j]["EventTime"].(float64) })
	body, _ := json.Marshal(map[string]any{"Events": append([]map[string]any{}, out...)})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_, _ = w.Write(body)
}

func (in lookupRequest) matches(e trailStubEvent) bool {
	at := float64(e.Time.Unix())
	if in.StartTime != 0 && at < in.StartTime || in.EndTime != 0 && at > in.EndTime {
		return false
	}
	if len(in.LookupAttributes) == 0 {
		return true
	}
	a := in.LookupAttributes[0]
	switch a.AttributeKey {
	case "Username":
		return e.Username == a.AttributeValue
	case "ResourceName":
		for _, r := range e.Resources {
			if r == a.AttributeValue {
				return true
			}
		}
	}
	return false
}

func (e trailStubEvent) wire() map[string]any {
	var res []map[string]string
	for _, r := range e.Resources {
		res = append(res, map[string]string{"ResourceName": r})
	}
	record, _ := json.Marshal(map[string]any{"eventID": e.ID, "eventName": e.Name, "eventTime": e.Time.Format(time.RFC3339)})
	return map[string]any{"EventId": e.ID, "EventName": e.Name, "EventTime": float64(e.Time.Unix()),
		"EventSource": "ec2.amazonaws.com", "Username": e.Username, "Resources": res, "CloudTrailEvent": string(record)}
}
