package trigger

import "strconv"

// Environment variables of a fleet's fan-out.
const (
	EnvFleetConcurrency     = "RESPONDER_FLEET_CONCURRENCY"
	EnvFleetDistributedFrom = "RESPONDER_FLEET_DISTRIBUTED_FROM"
)

// Defaults and bounds of the fleet settings.
const (
	// DefaultFleetConcurrency cases of one account and Region are in their
	// containment at once.
	DefaultFleetConcurrency = 10
	// MaxFleetConcurrency is the inline Map's limit of 40 concurrent
	// iterations (the lanes of every account and Region share it).
	MaxFleetConcurrency = 40
	// DefaultFleetDistributedFrom: a fleet of this many cases or more runs
	// its lanes in a distributed Map (each lane a child execution with its
	// own history), since an inline Map's iterations all write into the
	// fleet execution's history (25,000 events at most; a case's iteration
	// takes about 5 + 10 per 10-second poll).
	DefaultFleetDistributedFrom = 100
)

// FleetConfig configures a fleet's fan-out.
type FleetConfig struct {
	// Concurrency is how many cases of one account and Region run their
	// containment at once: the lanes of that account and Region.
	Concurrency int
	// DistributedFrom is the number of cases from which the lanes run in a
	// distributed Map rather than an inline one.
	DistributedFrom int
}

func (c *Config) loadFleet(get func(string) string, bad func(name, format string, args ...any)) {
	c.Fleet = FleetConfig{Concurrency: DefaultFleetConcurrency, DistributedFrom: DefaultFleetDistributedFrom}
	if v := get(EnvFleetConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxFleetConcurrency {
			bad(EnvFleetConcurrency, "%q is not a number of cases from 1 to %d", v, MaxFleetConcurrency)
		}
		c.Fleet.Concurrency = n
	}
	if v := get(EnvFleetDistributedFrom); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > MaxFleetInstances+1 {
			bad(EnvFleetDistributedFrom, "%q is not a number of cases from 2 to %d (%d: never)", v, MaxFleetInstances+1, MaxFleetInstances+1)
		}
		c.Fleet.DistributedFrom = n
	}
}

// fleetSettings are the settings in effect (a zero Config, as tests build
// it, takes the defaults).
func (c Config) fleetSettings() FleetConfig {
	f := c.Fleet
	if f.Concurrency == 0 {
		f.Concurrency = DefaultFleetConcurrency
	}
	if f.DistributedFrom == 0 {
		f.DistributedFrom = DefaultFleetDistributedFrom
	}
	return f
}
