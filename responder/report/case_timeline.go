package report

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// KindCloudTrail is a CloudTrail management event about the instance (from
// the cloudtrail-events artifact, after its SHA-256 matched the record).
const KindCloudTrail = "cloudtrail"

// cloudTrailEvents makes the timeline's events of the cloud's record: at
// most maxCloudRows, the newest ones when there are more (those nearest the
// response).
func cloudTrailEvents(cr *CloudRecord) []Event {
	if cr == nil {
		return nil
	}
	events := cr.Events
	if len(events) > maxCloudRows {
		events = events[len(events)-maxCloudRows:]
	}
	out := make([]Event, 0, len(events))
	for _, e := range events {
		detail := e.Source
		if len(e.Resources) > 0 {
			detail += " on " + strings.Join(e.Resources, ", ")
		}
		out = append(out, Event{
			At: e.At.UTC(), EndedAt: e.At.UTC(), Kind: KindCloudTrail, Actor: e.Username,
			Action: e.Name, Status: "recorded", Detail: detail, Record: cr.EventsArtifact,
		})
	}
	return out
}

// CaseMoment is one line of the case timeline: a CloudTrail event about the
// instance, or a moment of the response (a run's start, its isolation, its
// end), in one order, so that what happened on the instance's API before
// and during the response reads as one story.
type CaseMoment struct {
	At   time.Time
	What string // the event's name, or the response's moment
	Who  string
	Text string
	// Response marks the response's own moments.
	Response bool
}

// caseMoments merges the CloudTrail events of the timeline with each run's
// start, isolation and end; nil when the case holds no CloudTrail event.
func caseMoments(r *Report) []CaseMoment {
	var out []CaseMoment
	for _, e := range r.Timeline {
		if e.Kind == KindCloudTrail {
			out = append(out, CaseMoment{At: e.At, What: e.Action, Who: e.Actor, Text: e.Detail})
		}
	}
	if len(out) == 0 {
		return nil
	}
	for _, c := range r.Chart {
		out = append(out, CaseMoment{At: c.StartedAt, What: fmt.Sprintf("run %d started", c.Run), Who: c.Actor,
			Text: "responder, playbook " + c.Playbook, Response: true})
		if c.IsolatedAt != nil {
			out = append(out, CaseMoment{At: *c.IsolatedAt, What: fmt.Sprintf("run %d: ISOLATED", c.Run),
				Text: "every containment read-back of the run had held", Response: true})
		}
		out = append(out, CaseMoment{At: c.EndedAt, What: fmt.Sprintf("run %d ended", c.Run), Text: c.Status, Response: true})
	}
	sortMoments(out)
	return out
}

func sortMoments(m []CaseMoment) {
	sort.SliceStable(m, func(i, j int) bool { return m[i].At.Before(m[j].At) })
}
