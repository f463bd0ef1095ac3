package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// A fleet response (responder respond with several targets) keeps, beside
// the one case per instance, a fleet record:
//
//	<store>/fleets/<fleet-id>/fleet.json                      the newest revision, replaced by each save
//	<store>/fleets/<fleet-id>/history/fleet-rev-NNN.json        every revision, write-once
//	<store>/fleets/<fleet-id>/history/fleet-rev-NNN.json.sha256 its seal, write-once
//
// It lists every target with its case and outcome; the cases hold the
// evidence. As for a case, a save writes its history copy, then the seal,
// then fleet.json, and LoadFleet finds a history copy newer than fleet.json
// (a save that stopped).

// FleetsFolder is the folder beside the cases that holds the fleet records:
// no case ID, in any letter case.
const FleetsFolder = "fleets"

// FleetName is the fleet record's path in its folder.
const FleetName = "fleet.json"

// FleetSchemaVersion is the version of the fleet record format.
const FleetSchemaVersion = "1.0"

// Outcomes of a fleet target that has no case status (the targets with a
// case carry its status word: contained, partially-contained...).
const (
	// FleetPending: planned, not started yet (a revision saved before the
	// run, or a run interrupted before it reached the target).
	FleetPending = "pending"
	// FleetNotFound: DescribeInstances does not know the instance in the
	// account and Region it was looked for in.
	FleetNotFound = "not-found"
	// FleetTerminated: the instance is shutting down or terminated; its
	// volumes and memory are gone.
	FleetTerminated = "terminated"
	// FleetNotStarted: the response could not start (Reason says why: the
	// case held by another run, a protected instance, the blast radius,
	// no access); nothing was changed by this run.
	FleetNotStarted = "not-started"
)

var fleetIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,43}$`)

// ValidateFleetID checks a fleet ID: 1 to 44 letters, digits, '.', '_' or
// '-', starting with a letter or digit, so that a case ID made of it and an
// instance ID (FleetCaseID) is a valid case ID.
func ValidateFleetID(id string) error {
	if !fleetIDPattern.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("invalid fleet ID %q: use 1-44 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// FleetCaseID is the case of an instance in a fleet: the same fleet and
// instance always give the same case, so a later run of the fleet
// continues the instance's case.
func FleetCaseID(fleetID, instanceID string) string {
	return fleetID + "-" + instanceID
}

// Fleet is the fleet record.
type Fleet struct {
	SchemaVersion string `json:"schema_version"`
	FleetID       string `json:"fleet_id"`
	// Revision numbers the saves of the record (1, 2, ...); each one is
	// kept under history/.
	Revision  int           `json:"revision"`
	Tool      string        `json:"tool"`
	Location  string        `json:"location"`
	Runs      []FleetRun    `json:"runs"`
	Targets   []FleetTarget `json:"targets"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// FleetRun is one run of the fleet (one respond command).
type FleetRun struct {
	Number    int       `json:"number"`
	Actor     string    `json:"actor,omitempty"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// Interrupted: the run was cancelled (Ctrl-C, SIGTERM) before every
	// target was done; the targets it did not finish say interrupted or
	// pending.
	Interrupted bool `json:"interrupted,omitempty"`
}

// FleetTarget is one instance of the fleet and its outcome.
type FleetTarget struct {
	InstanceID string `json:"instance_id"`
	AccountID  string `json:"account_id,omitempty"`
	Region     string `json:"region"`
	CaseID     string `json:"case_id,omitempty"`
	// Status is the case status (the word the case record carries), or a
	// fleet outcome: pending, not-found, terminated, not-started.
	Status string `json:"status"`
	// Reason says why a target is not contained or has evidence gaps.
	Reason string `json:"reason,omitempty"`
	// EvidenceGaps names the evidence, record or notify steps that failed
	// in a case whose containment held.
	EvidenceGaps []string `json:"evidence_gaps,omitempty"`
	// Run is the fleet run that last acted on the target.
	Run int `json:"run,omitempty"`
	// SecondsToIsolation is, for a run that isolated the instance, the time
	// from the start of the fleet run until its last interface was read
	// back in the quarantine group.
	SecondsToIsolation float64 `json:"seconds_to_isolation,omitempty"`
}

// Target returns the target of an instance, and whether the fleet has it.
func (f *Fleet) Target(instanceID string) (FleetTarget, bool) {
	for _, t := range f.Targets {
		if t.InstanceID == instanceID {
			return t, true
		}
	}
	return FleetTarget{}, false
}

// FleetHistoryName is the path of revision n of a fleet record.
func FleetHistoryName(fleetID string, n int) string {
	return fmt.Sprintf("%s/history/fleet-rev-%03d.json", fleetID, n)
}

// FleetReplacer is a store that can replace a fleet's fleet.json (the one
// object of the fleets folder that is not write-once).
type FleetReplacer interface {
	ReplaceFleet(ctx context.Context, fleetID string, body []byte) error
}

// SaveFleet saves f as its next revision: the history copy and its seal
// once, then fleet.json. When another save took the revision number, the
// next free one is taken. It sets f.Revision.
func SaveFleet(ctx context.Context, store Store, f *Fleet) error {
	if err := ValidateFleetID(f.FleetID); err != nil {
		return err
	}
	f.SchemaVersion = FleetSchemaVersion
	f.Location = store.Location(FleetsFolder, f.FleetID+"/")
	for range 16 {
		f.Revision++
		body, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			return fmt.Errorf("encode fleet %s: %w", f.FleetID, err)
		}
		_, err = store.Put(ctx, FleetsFolder, FleetHistoryName(f.FleetID, f.Revision), body, "application/json")
		if errors.Is(err, ErrExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store fleet %s revision %d: %w", f.FleetID, f.Revision, err)
		}
		if _, err := store.Put(ctx, FleetsFolder, FleetHistoryName(f.FleetID, f.Revision)+".sha256", sealBody(body), "text/plain"); err != nil {
			return fmt.Errorf("store the seal of fleet %s revision %d: %w", f.FleetID, f.Revision, err)
		}
		r, ok := store.(FleetReplacer)
		if !ok {
			return fmt.Errorf("fleet %s: revision %d is stored, but this store cannot replace %s", f.FleetID, f.Revision, FleetName)
		}
		return r.ReplaceFleet(ctx, f.FleetID, body)
	}
	return fmt.Errorf("fleet %s: 16 revisions in a row were taken by other saves", f.FleetID)
}

// LoadFleet reads the newest revision of a fleet record: fleet.json, or a
// history copy newer than it (a save that stopped before fleet.json).
// ErrNotFound for a fleet never saved.
func LoadFleet(ctx context.Context, store Store, fleetID string) (*Fleet, error) {
	if err := ValidateFleetID(fleetID); err != nil {
		return nil, err
	}
	var newest *Fleet
	body, err := store.Get(ctx, FleetsFolder, fleetID+"/"+FleetName)
	switch {
	case err == nil:
		if newest, err = decodeFleet(body); err != nil {
			return nil, fmt.Errorf("fleet %s: %w", fleetID, err)
		}
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("read fleet %s: %w", fleetID, err)
	}
	n := 0
	if newest != nil {
		n = newest.Revision
	}
	for {
		body, err := store.Get(ctx, FleetsFolder, FleetHistoryName(fleetID, n+1))
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read fleet %s revision %d: %w", fleetID, n+1, err)
		}
		f, err := decodeFleet(body)
		if err != nil {
			return nil, fmt.Errorf("fleet %s revision %d: %w", fleetID, n+1, err)
		}
		newest, n = f, n+1
	}
	if newest == nil {
		return nil, fmt.Errorf("fleet %s: %w", fleetID, ErrNotFound)
	}
	return newest, nil
}

func decodeFleet(body []byte) (*Fleet, error) {
	var f Fleet
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, fmt.Errorf("decode fleet record: %w", err)
	}
	if f.FleetID == "" || f.Revision < 1 {
		return nil, errors.New("decode fleet record: no fleet ID or revision")
	}
	return &f, nil
}
