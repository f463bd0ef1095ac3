package evidence

import (
	"fmt"
	"time"
)

// DefaultMaxClockSkew is how far the local clock may be from AWS's before
// verify and the report flag the record's times.
const DefaultMaxClockSkew = 5 * time.Second

// RunClock is how the local clock compared with AWS's during one run, from
// the Date header of every call that recorded one.
type RunClock struct {
	Run int `json:"run"`
	// Calls is how many calls of the run recorded AWS's Date.
	Calls int `json:"calls"`
	// Skew is the largest skew measured (Call.ClockSkew: positive when the
	// local clock was ahead), in nanoseconds, and the call it was seen on.
	Skew      time.Duration `json:"skew_ns"`
	Step      string        `json:"step,omitempty"`
	Operation string        `json:"operation,omitempty"`
}

// Above reports whether the skew is beyond max (either way).
func (rc RunClock) Above(max time.Duration) bool {
	return rc.Skew > max || rc.Skew < -max
}

// Describe says the skew in words.
func (rc RunClock) Describe() string {
	switch {
	case rc.Skew > 0:
		return fmt.Sprintf("the local clock was %s ahead of AWS's (%s %s)", rc.Skew, rc.Step, rc.Operation)
	case rc.Skew < 0:
		return fmt.Sprintf("the local clock was %s behind AWS's (%s %s)", -rc.Skew, rc.Step, rc.Operation)
	}
	return "the local clock agreed with AWS's Date"
}

// RunClocks measures, for each run whose calls recorded AWS's Date, the
// largest skew between the local clock and AWS's. Runs without such calls
// (records before 1.5) are left out.
func (m *Manifest) RunClocks() []RunClock {
	byRun := map[int]*RunClock{}
	var order []int
	for _, s := range m.Steps {
		for _, c := range s.Calls {
			skew, ok := c.ClockSkew()
			if !ok {
				continue
			}
			rc := byRun[s.Run]
			if rc == nil {
				rc = &RunClock{Run: s.Run}
				byRun[s.Run] = rc
				order = append(order, s.Run)
			}
			rc.Calls++
			if abs(skew) > abs(rc.Skew) {
				rc.Skew, rc.Step, rc.Operation = skew, s.Name, c.Service+" "+c.Operation
			}
		}
	}
	out := make([]RunClock, 0, len(order))
	for _, run := range order {
		out = append(out, *byRun[run])
	}
	return out
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
