package trigger

import (
	"slices"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
)

// fleetErrorCodes are the error codes of a fleet's POST /cases body besides
// apiErrorCodes (lambda/README.md lists them).
var fleetErrorCodes = []string{
	"conflicting_fields", "missing_targets", "too_many_instances", "duplicate_instance_id", "unknown_filter",
	"invalid_filter", "duplicate_filter", "duplicate_account", "duplicate_region", "too_many_places",
	"invalid_fleet_id", "blast_radius_exceeded",
}

// FuzzFleetRequest fuzzes the parsing and validation of a fleet's POST
// /cases body. Properties: no panic; every refusal is a documented 4xx with
// a short, valid UTF-8 message; a fleet that validates has 1 to
// MaxFleetInstances targets, each valid, of the function's partition and an
// allowed account, no instance twice, within the blast radius per account,
// a valid fleet ID when one is given, case IDs that are valid; or known
// filters, each name once, to look up in at most MaxFleetPlaces allowed
// places.
func FuzzFleetRequest(f *testing.F) {
	for _, seed := range []string{
		`{"instance_ids": ["i-0123456789abcdef0", "i-0123456789abcdef1"]}`,
		`{"instance_ids": ["arn:aws:ec2:eu-west-3:444455556666:instance/i-0123456789abcdef0", "i-01234567"], "fleet_id": "fleet-INC-42", "playbook": "default"}`,
		`{"instance_ids": ["i-0123456789abcdef0", "i-0123456789abcdef0"]}`,
		`{"instance_ids": ["arn:aws-cn:ec2:cn-north-1:111122223333:instance/i-0123456789abcdef0"]}`,
		`{"filters": [{"Name": "tag:app", "Values": ["web"]}, {"Name": "image-id", "Values": ["ami-0123"]}], "accounts": ["111122223333", "444455556666"], "regions": ["us-east-1", "eu-west-3"]}`,
		`{"filters": [{"Name": "colour", "Values": ["red"]}]}`,
		`{"filters": [{"Name": "tag:", "Values": []}], "account_id": "111122223333", "accounts": []}`,
		`{"instance_ids": [], "filters": null, "fleet_id": "../x"}`,
		`{"instance_id": "i-0123456789abcdef0", "instance_ids": ["i-0123456789abcdef0"], "case_id": "x"}`,
		`{"filters": [{"Name": "vpc-id", "Values": ["vpc-1"], "Extra": 1}]}`,
		`{"instance_ids": [null, 1]}`,
	} {
		f.Add([]byte(seed))
	}
	h := &Handler{Config: Config{
		Region: "us-east-1", HomePartition: "aws", HomeAccount: "111122223333",
		AllowedAccounts: []string{"111122223333", "444455556666"}, BlastRadius: 5,
	}}
	codes := append(slices.Clone(apiErrorCodes), fleetErrorCodes...)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := decodeCaseRequest(body)
		if e != nil || !req.isFleet() {
			return // FuzzCaseRequest's ground
		}
		spec, e := h.validateFleet(req)
		if e != nil {
			if !slices.Contains(codes, e.Code) {
				t.Fatalf("undocumented code %q (%s)", e.Code, e.Message)
			}
			checkAPIError(t, &apiError{Status: e.Status, Code: "wrong_type", Message: e.Message})
			return
		}
		checkFleetSpec(t, h, spec)
	})
}

// checkFleetSpec checks a fleet that validated.
func checkFleetSpec(t *testing.T, h *Handler, spec fleetSpec) {
	t.Helper()
	if spec.FleetID != "" && evidence.ValidateFleetID(spec.FleetID) != nil {
		t.Fatalf("validated a bad fleet ID %q", spec.FleetID)
	}
	if (spec.Targets == nil) == (spec.Filters == nil) {
		t.Fatalf("validated %d targets and %d filters", len(spec.Targets), len(spec.Filters))
	}
	perAccount := map[string]int{}
	seen := map[string]bool{}
	for _, target := range spec.Targets {
		if err := target.Validate(); err != nil || ValidateRegionIn(target.Region, "aws") != nil || !h.Config.AccountAllowed(target.AccountID) {
			t.Fatalf("validated a bad target %+v: %v", target, err)
		}
		if seen[target.InstanceID] {
			t.Fatalf("validated %s twice", target.InstanceID)
		}
		seen[target.InstanceID] = true
		perAccount[target.AccountID]++
		if validateCaseID(evidence.FleetCaseID(strings.Repeat("f", evidence.MaxFleetIDLength), target.InstanceID)) != nil {
			t.Fatalf("%s makes an invalid case ID", target.InstanceID)
		}
	}
	if spec.Targets != nil && (len(spec.Targets) == 0 || len(spec.Targets) > MaxFleetInstances) {
		t.Fatalf("validated %d targets", len(spec.Targets))
	}
	for a, n := range perAccount {
		if n > h.Config.BlastRadius {
			t.Fatalf("validated %d instances in %s, past the blast radius %d", n, a, h.Config.BlastRadius)
		}
	}
	names := map[string]bool{}
	for _, fl := range spec.Filters {
		if !KnownInstanceFilter(fl.Name) || names[fl.Name] || len(fl.Values) == 0 {
			t.Fatalf("validated filter %+v", fl)
		}
		names[fl.Name] = true
	}
	if spec.Filters != nil && (len(spec.Places) == 0 || len(spec.Places) > MaxFleetPlaces) {
		t.Fatalf("validated %d places", len(spec.Places))
	}
	for _, p := range spec.Places {
		if !h.Config.AccountAllowed(p.AccountID) || ValidateRegionIn(p.Region, "aws") != nil {
			t.Fatalf("validated place %+v", p)
		}
	}
}
