package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// Lanes of the visual timeline: what a step did for the response.
const (
	LaneAcquisition = "acquisition"
	LaneContainment = "containment"
	LaneCollection  = "collection"
	LanePreserve    = "preserve"
	LaneRelease     = "release"
	LaneRecord      = "record"
)

// RunChart is one run on the visual timeline: its steps as bars, each in
// the lane of what it did, and, for the run whose read-backs proved the
// instance isolated, that moment.
type RunChart struct {
	Run       int       `json:"run"`
	Playbook  string    `json:"playbook"`
	Actor     string    `json:"actor"`
	ActingAs  string    `json:"acting_as,omitempty"`
	Status    string    `json:"status"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Bars      []Bar     `json:"bars"`
	// IsolatedAt is set on the run that proved isolation (Headline).
	IsolatedAt *time.Time `json:"isolated_at,omitempty"`
}

// Bar is one step of a run on the timeline.
type Bar struct {
	Lane   string    `json:"lane"`
	Step   string    `json:"step"`
	Status string    `json:"status"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Change: a containment step that changed something (ok); a skipped one
	// found its state already so.
	Change bool `json:"change,omitempty"`
}

// laneOrder is the order of the lanes on the timeline.
var laneOrder = []string{LaneAcquisition, LaneContainment, LaneCollection, LanePreserve, LaneRelease, LaneRecord}

// lane says what a step did for the response.
func lane(run evidence.Run, s evidence.StepRecord) string {
	switch {
	case run.Playbook == "preserve" || s.Name == "snapshot-copy":
		return LanePreserve
	case run.Playbook == "release":
		return LaneRelease
	case s.Phase == "acquire":
		return LaneAcquisition
	case s.Phase == "contain":
		return LaneContainment
	case s.Phase == "collect":
		return LaneCollection
	}
	return LaneRecord
}

// buildChart makes the visual timeline: one chart per run, in run order.
func buildChart(m *evidence.Manifest, h Headline) []RunChart {
	charts := []RunChart{}
	for _, run := range m.Runs {
		c := RunChart{Run: run.Number, Playbook: run.Playbook, Actor: run.Actor, ActingAs: run.ActingAs, Status: run.Status,
			StartedAt: run.StartedAt.UTC(), EndedAt: run.EndedAt.UTC(), Bars: []Bar{}}
		for _, s := range m.Steps {
			if s.Run != run.Number {
				continue
			}
			b := Bar{Lane: lane(run, s), Step: s.Name, Status: s.Status, Start: s.StartedAt.UTC(), End: s.EndedAt.UTC()}
			b.Change = b.Lane == LaneContainment && s.Status == evidence.StatusOK
			c.Bars = append(c.Bars, b)
		}
		slices.SortStableFunc(c.Bars, func(a, b Bar) int {
			return cmp.Or(cmp.Compare(slices.Index(laneOrder, a.Lane), slices.Index(laneOrder, b.Lane)), a.Start.Compare(b.Start))
		})
		if h.IsolationRun == run.Number {
			c.IsolatedAt = h.IsolatedAt
		}
		charts = append(charts, c)
	}
	return charts
}
