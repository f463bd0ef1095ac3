package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// A fleet is one response to many instances: one case per instance, plus the
// fleet record, under the store's fleets folder (cases/fleets/<fleet-id>/ in
// a bucket). The record is write-once like a case's evidence:
// fleets/<fleet-id>/fleet.json, the plan (every case, written when the fleet
// opens), and fleets/<fleet-id>/closed-NNN.json, the outcome of each run of
// the fleet as its cases' records said when it closed (a rerun of the fleet
// closes with the next number). A case's status is always its own record's;
// the fleet record only lists the cases.

// FleetsFolder is the folder beside the cases that holds the fleet records.
// ValidateCaseID refuses it as a case ID.
const FleetsFolder = "fleets"

// FleetRecordName is the plan of a fleet, in its folder.
const FleetRecordName = "fleet.json"

var fleetIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$`)

// MaxFleetIDLength leaves room in a case ID (64) for "-" and the longest
// instance ID (19).
const MaxFleetIDLength = 40

// ValidateFleetID checks a fleet ID: 1 to 40 letters, digits, '.', '_' or
// '-', starting with a letter or digit, so that <fleet-id>-<instance-id> is
// a valid case ID.
func ValidateFleetID(id string) error {
	if !fleetIDPattern.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("invalid fleet ID %q: use 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", id, MaxFleetIDLength)
	}
	return nil
}

// FleetCaseID is the case of an instance in a fleet: derived from both, so
// that a rerun of the fleet continues the same case.
func FleetCaseID(fleetID, instanceID string) string {
	return fleetID + "-" + instanceID
}

// FleetCase is one case of a fleet.
type FleetCase struct {
	CaseID     string `json:"case_id"`
	InstanceID string `json:"instance_id"`
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	// Status is the case's status word as its record said when the fleet
	// closed (only in a closed record).
	Status string `json:"status,omitempty"`
	// JoinedCaseID is the case that already held the instance when the
	// fleet reached it: that case responds, not CaseID.
	JoinedCaseID string `json:"joined_case_id,omitempty"`
	// Reason, EvidenceGaps and SecondsToIsolation say more of a case's
	// outcome, in the closed record of a CLI fleet run: why it is not
	// contained (or could not start), the evidence, record or notify steps
	// that failed, and the time from the start of the run to the
	// quarantine's read-back. A target of the run that has no case (not
	// found, terminated) is listed there with an empty CaseID.
	Reason             string   `json:"reason,omitempty"`
	EvidenceGaps       []string `json:"evidence_gaps,omitempty"`
	SecondsToIsolation float64  `json:"seconds_to_isolation,omitempty"`
}

// FleetRecord is the plan of a fleet (fleet.json) or, with ClosedAt and
// each case's Status, its outcome (closed-NNN.json).
type FleetRecord struct {
	FleetID     string      `json:"fleet_id"`
	Actor       string      `json:"actor"`
	Source      string      `json:"source"`
	Playbook    string      `json:"playbook"`
	RequestedAt string      `json:"requested_at"`
	OpenedAt    time.Time   `json:"opened_at"`
	ClosedAt    *time.Time  `json:"closed_at,omitempty"`
	Cases       []FleetCase `json:"cases"`
	// Counts are the cases by status (closed records only).
	Counts map[string]int `json:"counts,omitempty"`
}

// ErrFleetConflict: a fleet record with this ID exists and lists other cases.
var ErrFleetConflict = errors.New("fleet record exists with other cases")

// OpenFleet writes the plan of a fleet once. Writing the same plan again (a
// retried or rerun fleet) is no error; the stored plan is returned. A plan
// with other cases under the same ID is ErrFleetConflict.
func OpenFleet(ctx context.Context, s Store, rec FleetRecord) (*FleetRecord, error) {
	if err := ValidateFleetID(rec.FleetID); err != nil {
		return nil, err
	}
	body, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode fleet %s: %w", rec.FleetID, err)
	}
	_, err = s.Put(ctx, FleetsFolder, rec.FleetID+"/"+FleetRecordName, body, "application/json")
	if err == nil {
		return &rec, nil
	}
	if !errors.Is(err, ErrExists) {
		return nil, fmt.Errorf("write fleet %s: %w", rec.FleetID, err)
	}
	stored, err := LoadFleet(ctx, s, rec.FleetID)
	if err != nil {
		return nil, err
	}
	if !sameCases(stored.Cases, rec.Cases) {
		return stored, fmt.Errorf("fleet %s: %w", rec.FleetID, ErrFleetConflict)
	}
	return stored, nil
}

func sameCases(a, b []FleetCase) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// LoadFleet reads the plan of a fleet; ErrNotFound when there is none.
func LoadFleet(ctx context.Context, s Store, fleetID string) (*FleetRecord, error) {
	if err := ValidateFleetID(fleetID); err != nil {
		return nil, err
	}
	b, err := s.Get(ctx, FleetsFolder, fleetID+"/"+FleetRecordName)
	if err != nil {
		return nil, fmt.Errorf("read fleet %s: %w", fleetID, err)
	}
	var rec FleetRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("fleet %s: %w", fleetID, err)
	}
	return &rec, nil
}

// MaxFleetCloses bounds the runs of one fleet that may close it.
const MaxFleetCloses = 100

// CloseFleet writes the outcome of a run of the fleet, once, as the next
// closed-NNN.json; it returns its path in the fleet's folder.
func CloseFleet(ctx context.Context, s Store, rec FleetRecord) (string, error) {
	body, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode fleet %s: %w", rec.FleetID, err)
	}
	for n := 1; n <= MaxFleetCloses; n++ {
		path := fmt.Sprintf("%s/closed-%03d.json", rec.FleetID, n)
		_, err := s.Put(ctx, FleetsFolder, path, body, "application/json")
		switch {
		case err == nil:
			return path, nil
		case !errors.Is(err, ErrExists):
			return "", fmt.Errorf("close fleet %s: %w", rec.FleetID, err)
		}
	}
	return "", fmt.Errorf("close fleet %s: %d closed records already", rec.FleetID, MaxFleetCloses)
}

// LastFleetClose reads the newest closed record of a fleet; ErrNotFound when
// no run closed it yet.
func LastFleetClose(ctx context.Context, s Store, fleetID string) (*FleetRecord, error) {
	var last []byte
	for n := 1; n <= MaxFleetCloses; n++ {
		b, err := s.Get(ctx, FleetsFolder, fmt.Sprintf("%s/closed-%03d.json", fleetID, n))
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read fleet %s: %w", fleetID, err)
		}
		last = b
	}
	if last == nil {
		return nil, fmt.Errorf("fleet %s closed: %w", fleetID, ErrNotFound)
	}
	var rec FleetRecord
	if err := json.Unmarshal(last, &rec); err != nil {
		return nil, fmt.Errorf("fleet %s: %w", fleetID, err)
	}
	return &rec, nil
}
