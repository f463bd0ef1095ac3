package trigger

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
)

// MaxFleetInstances is the most instances one POST /cases may name or its
// filters may match: the execution input of a fleet of that many stays
// under Step Functions' 256 KiB (TestFleetInputFitsTheExecutionInputLimit).
const MaxFleetInstances = 1000

// MaxFleetPlaces bounds accounts x Regions a filter is looked up in, within
// the API's 29 seconds.
const MaxFleetPlaces = 20

// MaxFleetFilters and MaxFilterValues are EC2's limits on a Describe call.
const (
	MaxFleetFilters = 50
	MaxFilterValues = 200
)

// fleetFilter is one EC2 filter, in the EC2 API's JSON shape.
type fleetFilter struct {
	Name   string   `json:"Name"`
	Values []string `json:"Values"`
}

// isFleet says whether a POST /cases body asks for a fleet: any fleet field
// given. A body with none keeps the one-instance shape exactly.
func (r caseRequest) isFleet() bool {
	return r.InstanceIDs != nil || r.Filters != nil || r.Accounts != nil || r.Regions != nil || r.FleetID != ""
}

// fleetSpec is a validated fleet request: Targets (instance IDs and ARNs),
// or Filters to look up in every account and Region of Places.
type fleetSpec struct {
	FleetID  string
	Playbook string
	Force    bool
	Targets  []Target
	Filters  []fleetFilter
	Places   []Target // AccountID and Region only
}

// validateFleet checks a fleet request without calling AWS.
func (h *Handler) validateFleet(r caseRequest) (fleetSpec, *apiError) {
	spec := fleetSpec{FleetID: r.FleetID, Playbook: r.Playbook, Force: r.Force}
	if e := fleetConflicts(r); e != nil {
		return spec, e
	}
	if r.FleetID != "" {
		if err := evidence.ValidateFleetID(r.FleetID); err != nil {
			return spec, badRequest("invalid_fleet_id", "invalid fleet ID %s: use 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", quote(r.FleetID), evidence.MaxFleetIDLength)
		}
	}
	if e := h.validateFleetDefaults(r); e != nil {
		return spec, e
	}
	if r.InstanceIDs != nil {
		targets, e := h.fleetTargets(r)
		spec.Targets = targets
		return spec, e
	}
	if e := checkFilters(r.Filters); e != nil {
		return spec, e
	}
	places, e := h.fleetPlaces(r)
	spec.Filters, spec.Places = r.Filters, places
	return spec, e
}

// validateFleetDefaults checks what applies to every instance of a fleet:
// the playbook, and account_id and region when given.
func (h *Handler) validateFleetDefaults(r caseRequest) *apiError {
	if r.AccountID != "" {
		if err := ValidateAccountID(r.AccountID); err != nil {
			return badRequest("invalid_account_id", "%v", err)
		}
	}
	if r.Region != "" {
		if err := ValidateRegionIn(r.Region, h.Config.partition()); err != nil {
			return badRequest("invalid_region", "%v", err)
		}
	}
	if _, err := h.Config.Playbook(r.Playbook); err != nil {
		var unsupported *UnsupportedPlaybookError
		if errors.As(err, &unsupported) {
			return badRequest("unsupported_playbook", "%v", err)
		}
		return badRequest("unknown_playbook", "%v", err)
	}
	return nil
}

// fleetConflicts refuses fields that do not go together.
func fleetConflicts(r caseRequest) *apiError {
	switch {
	case r.InstanceID != "":
		return badRequest("conflicting_fields", "instance_id names one instance: for a fleet give instance_ids (or filters), not both")
	case r.CaseID != "":
		return badRequest("conflicting_fields", "case_id names one case: the cases of a fleet are named <fleet_id>-<instance_id>; give fleet_id to continue a fleet")
	case r.InstanceIDs != nil && r.Filters != nil:
		return badRequest("conflicting_fields", "give instance_ids or filters, not both")
	case r.InstanceIDs == nil && r.Filters == nil:
		return badRequest("missing_targets", "a fleet needs instance_ids or filters")
	case r.InstanceIDs != nil && (r.Accounts != nil || r.Regions != nil):
		return badRequest("conflicting_fields", "accounts and regions go with filters; for instances in several accounts or Regions give their ARNs in instance_ids")
	case r.AccountID != "" && r.Accounts != nil:
		return badRequest("conflicting_fields", "give account_id or accounts, not both")
	case r.Region != "" && r.Regions != nil:
		return badRequest("conflicting_fields", "give region or regions, not both")
	}
	return nil
}

// fleetTargets reads instance_ids: instance IDs (in account_id and region,
// or the function's) or instance ARNs; each instance once.
func (h *Handler) fleetTargets(r caseRequest) ([]Target, *apiError) {
	switch {
	case len(r.InstanceIDs) == 0:
		return nil, badRequest("missing_targets", "instance_ids is empty")
	case len(r.InstanceIDs) > MaxFleetInstances:
		return nil, badRequest("too_many_instances", "instance_ids has %d instances; at most %d a request", len(r.InstanceIDs), MaxFleetInstances)
	}
	seen := make(map[string]int, len(r.InstanceIDs))
	targets := make([]Target, 0, len(r.InstanceIDs))
	for i, v := range r.InstanceIDs {
		t, e := h.fleetTarget(i, v, r)
		if e != nil {
			return nil, e
		}
		if first, dup := seen[t.InstanceID]; dup {
			return nil, badRequest("duplicate_instance_id", "instance_ids[%d]: %s is given twice (also instance_ids[%d])", i, t.InstanceID, first)
		}
		seen[t.InstanceID] = i
		targets = append(targets, t)
	}
	return targets, h.checkFleetAccounts(targets)
}

// fleetTarget reads one entry of instance_ids.
func (h *Handler) fleetTarget(i int, v string, r caseRequest) (Target, *apiError) {
	if strings.HasPrefix(v, "arn:") {
		t, partition, err := parseInstanceARN(v)
		if err != nil {
			return t, badRequest("invalid_instance_id", "instance_ids[%d]: %v", i, err)
		}
		if partition != h.Config.partition() {
			return t, badRequest("invalid_instance_id", "instance_ids[%d]: %s is an ARN of partition %s, not %s", i, quote(v), partition, h.Config.partition())
		}
		if err := ValidateRegionIn(t.Region, h.Config.partition()); err != nil {
			return t, badRequest("invalid_region", "instance_ids[%d]: %v", i, err)
		}
		return t, nil
	}
	t, e := h.validate(caseRequest{InstanceID: v, AccountID: r.AccountID, Region: r.Region, Playbook: r.Playbook})
	if e != nil && e.Code == "invalid_instance_id" {
		e.Message = fmt.Sprintf("instance_ids[%d]: %s", i, e.Message)
	}
	if e != nil && e.Code == "missing_instance_id" {
		e = badRequest("invalid_instance_id", "instance_ids[%d] is empty", i)
	}
	return t, e
}

// checkFleetAccounts refuses an account not allowed, and a plan that would
// contain more instances of one account than its hour allows (the blast
// radius): nothing would start for the ones past the limit.
func (h *Handler) checkFleetAccounts(targets []Target) *apiError {
	perAccount := map[string]int{}
	for _, t := range targets {
		if !h.Config.AccountAllowed(t.AccountID) {
			return &apiError{Status: http.StatusForbidden, Code: "account_not_allowed",
				Message: fmt.Sprintf("account %s is not one this responder may act in", t.AccountID)}
		}
		perAccount[t.AccountID]++
	}
	limit := h.Config.BlastRadius
	if limit == 0 {
		limit = evidence.DefaultBlastRadius
	}
	accounts := make([]string, 0, len(perAccount))
	for a := range perAccount {
		accounts = append(accounts, a)
	}
	sort.Strings(accounts)
	for _, a := range accounts {
		if n := perAccount[a]; n > limit {
			return badRequest("blast_radius_exceeded", "the fleet has %d instances in account %s; at most %d instances are contained per account in any 60 minutes (RESPONDER_BLAST_RADIUS): split the fleet or raise the limit",
				n, a, limit)
		}
	}
	return nil
}

// fleetPlaces are the accounts x Regions a filter is looked up in.
func (h *Handler) fleetPlaces(r caseRequest) ([]Target, *apiError) {
	accounts, regions := r.Accounts, r.Regions
	if accounts == nil {
		accounts = []string{cmpOr(r.AccountID, h.Config.HomeAccount)}
	}
	if regions == nil {
		regions = []string{cmpOr(r.Region, h.Config.Region)}
	}
	if e := checkList("accounts", accounts, ValidateAccountID, "invalid_account_id", "duplicate_account"); e != nil {
		return nil, e
	}
	check := func(v string) error { return ValidateRegionIn(v, h.Config.partition()) }
	if e := checkList("regions", regions, check, "invalid_region", "duplicate_region"); e != nil {
		return nil, e
	}
	if n := len(accounts) * len(regions); n > MaxFleetPlaces {
		return nil, badRequest("too_many_places", "%d accounts x %d regions is %d places to look up; at most %d a request", len(accounts), len(regions), n, MaxFleetPlaces)
	}
	var places []Target
	for _, a := range accounts {
		if !h.Config.AccountAllowed(a) {
			return nil, &apiError{Status: http.StatusForbidden, Code: "account_not_allowed",
				Message: fmt.Sprintf("account %s is not one this responder may act in", a)}
		}
		for _, reg := range regions {
			places = append(places, Target{AccountID: a, Region: reg})
		}
	}
	return places, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// checkList validates a list field: not empty, each value valid, none twice.
func checkList(field string, values []string, valid func(string) error, invalidCode, duplicateCode string) *apiError {
	if len(values) == 0 {
		return badRequest(invalidCode, "%s is empty", field)
	}
	for i, v := range values {
		if err := valid(v); err != nil {
			return badRequest(invalidCode, "%s[%d]: %v", field, i, err)
		}
		if j := slices.Index(values[:i], v); j >= 0 {
			return badRequest(duplicateCode, "%s[%d]: %s is given twice (also %s[%d])", field, i, quote(v), field, j)
		}
	}
	return nil
}

// checkFilters validates EC2 filters as DescribeInstances takes them: known
// names, 1 to MaxFilterValues non-empty values each, each name once.
func checkFilters(filters []fleetFilter) *apiError {
	if len(filters) == 0 {
		return badRequest("missing_targets", "filters is empty")
	}
	if len(filters) > MaxFleetFilters {
		return badRequest("invalid_filter", "%d filters; at most %d", len(filters), MaxFleetFilters)
	}
	for i, f := range filters {
		if !KnownInstanceFilter(f.Name) {
			return badRequest("unknown_filter", "filters[%d]: %s is not a DescribeInstances filter name (such as tag:<key>, image-id, vpc-id, instance-type)", i, quote(f.Name))
		}
		if len(f.Values) == 0 || len(f.Values) > MaxFilterValues {
			return badRequest("invalid_filter", "filters[%d] (%s): give 1 to %d Values", i, f.Name, MaxFilterValues)
		}
		for j, v := range f.Values {
			if v == "" || len(v) > 255 {
				return badRequest("invalid_filter", "filters[%d] (%s): Values[%d] must be 1 to 255 characters", i, f.Name, j)
			}
		}
		for j := range i {
			if filters[j].Name == f.Name {
				return badRequest("duplicate_filter", "filters[%d]: %s is given twice (also filters[%d]); give its values in one filter", i, f.Name, j)
			}
		}
	}
	return nil
}

// instanceFilters are the DescribeInstances filter names (EC2 API
// reference), besides tag:<key>.
var instanceFilters = strings.Fields(`affinity architecture availability-zone
	block-device-mapping.attach-time block-device-mapping.delete-on-termination block-device-mapping.device-name
	block-device-mapping.status block-device-mapping.volume-id boot-mode capacity-reservation-id client-token
	dns-name hibernation-options.configured host-id hypervisor iam-instance-profile.arn iam-instance-profile.id
	iam-instance-profile.name image-id instance-id instance-lifecycle instance-state-code instance-state-name
	instance-type instance.group-id instance.group-name ip-address ipv6-address kernel-id key-name launch-index
	launch-time metadata-options.http-endpoint metadata-options.http-protocol-ipv6 metadata-options.http-put-response-hop-limit
	metadata-options.http-tokens metadata-options.instance-metadata-tags monitoring-state
	network-interface.addresses.association.public-ip network-interface.addresses.primary
	network-interface.addresses.private-ip-address network-interface.association.public-ip
	network-interface.attachment.attachment-id network-interface.availability-zone network-interface.group-id
	network-interface.group-name network-interface.mac-address network-interface.network-interface-id
	network-interface.owner-id network-interface.private-dns-name network-interface.private-ip-address
	network-interface.subnet-id network-interface.vpc-id outpost-arn owner-id placement-group-name
	placement-partition-number platform platform-details private-dns-name private-ip-address product-code
	product-code.type ramdisk-id reason requester-id reservation-id root-device-name root-device-type
	source-dest-check spot-instance-request-id state-reason-code state-reason-message subnet-id tag-key
	tag-value tenancy tpm-support usage-operation usage-operation-update-time virtualization-type vpc-id`)

// KnownInstanceFilter says whether name is a DescribeInstances filter:
// one of EC2's names, or tag:<key> with a key of 1 to 128 characters.
func KnownInstanceFilter(name string) bool {
	if key, ok := strings.CutPrefix(name, "tag:"); ok {
		return key != "" && len(key) <= 128
	}
	return slices.Contains(instanceFilters, name)
}
