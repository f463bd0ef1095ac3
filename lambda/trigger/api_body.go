package trigger

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
)

// MaxBodyBytes caps the body of POST /cases. A one-instance body is a few
// hundred bytes, a fleet of MaxFleetInstances instance IDs about 23 KiB;
// anything larger is refused before it is parsed.
const MaxBodyBytes = 64 << 10

// caseRequest is the body of POST /cases.
type caseRequest struct {
	InstanceID string `json:"instance_id"`
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	Playbook   string `json:"playbook"`
	CaseID     string `json:"case_id"`
	// Force responds to an instance tagged as protected (the case record
	// names who forced it).
	Force bool `json:"force"`
	// A fleet (fleet_request.go): instance IDs or ARNs, or EC2 filters in
	// accounts and Regions; fleet_id names (or continues) the fleet.
	InstanceIDs []string      `json:"instance_ids"`
	Filters     []fleetFilter `json:"filters"`
	Accounts    []string      `json:"accounts"`
	Regions     []string      `json:"regions"`
	FleetID     string        `json:"fleet_id"`
}

// apiError is an error answer of the API: an HTTP status, a stable code for
// programs and a message for people. It never carries an internal error.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// checkContentType accepts a body declared as JSON, or not declared at all.
func checkContentType(headers map[string]string) *apiError {
	ct, ok := headers["content-type"]
	if !ok || strings.TrimSpace(ct) == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "the body must be JSON (Content-Type: application/json)"}
	}
	return nil
}

// readBody returns the raw body, refusing it when it is larger than
// MaxBodyBytes (checked on the encoded size first, so a huge body is never
// decoded).
func readBody(body string, isBase64 bool) ([]byte, *apiError) {
	tooLarge := &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Message: fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes)}
	if !isBase64 {
		if len(body) > MaxBodyBytes {
			return nil, tooLarge
		}
		return []byte(body), nil
	}
	if len(body) > base64.StdEncoding.EncodedLen(MaxBodyBytes) {
		return nil, tooLarge
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, badRequest("malformed_body", "the body is marked base64 but is not valid base64")
	}
	if len(b) > MaxBodyBytes {
		return nil, tooLarge
	}
	return b, nil
}

// decodeCaseRequest parses a POST /cases body strictly: one JSON object, no
// unknown field, every key spelt exactly and given once (checkKeys), every
// field a string, nothing after the object.
func decodeCaseRequest(b []byte) (caseRequest, *apiError) {
	var req caseRequest
	if len(bytes.TrimSpace(b)) == 0 {
		return req, badRequest("empty_body", `the body is empty: send {"instance_id": "i-..."}`)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, jsonError(err, caseRequestFields)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, badRequest("malformed_json", "the body holds more than one JSON value")
	}
	if e := checkKeys(b, caseRequestFields); e != nil {
		return caseRequest{}, e
	}
	return req, nil
}

// caseRequestFields are the keys of a POST /cases body, spelt exactly.
var caseRequestFields = jsonFields(reflect.TypeFor[caseRequest]())

// checkKeys refuses what encoding/json lets through: a key given twice (it
// keeps the last value) and a key that matches a field only when case is
// ignored ("Instance_ID", or "inſtance_id" with a long s, which it folds to
// "s"). b is one JSON value that decoded into the body's type without
// error: an object, or null; fields are that type's keys.
func checkKeys(b []byte, fields []string) *apiError {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return badRequest("wrong_type", "the body must be a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		if err != nil || !isKey {
			return badRequest("malformed_json", "the body is not valid JSON")
		}
		if !slices.Contains(fields, key) {
			return unknownField(key, fields)
		}
		if seen[key] {
			return badRequest("duplicate_field", "field %q is given more than once", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return badRequest("malformed_json", "the body is not valid JSON")
		}
	}
	return nil
}

// unknownField answers a key that is not a field, saying which field it
// resembles when it differs from one only by case.
func unknownField(key string, fields []string) *apiError {
	known := strings.Join(fields, ", ")
	for _, f := range fields {
		if strings.EqualFold(key, f) {
			return badRequest("unknown_field", "unknown field %s: field names are case-sensitive (did you mean %s?)", quote(key), f)
		}
	}
	return badRequest("unknown_field", "unknown field %s (known: %s)", quote(key), known)
}

// jsonFields lists the JSON names of a struct's fields, in order.
func jsonFields(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

// jsonError turns a decoding error into an answer that says what is wrong
// and where, without echoing the body; fields are the body's keys.
func jsonError(err error, fields []string) *apiError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return badRequest("malformed_json", "the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed_json", "the body is truncated JSON")
	case errors.As(err, &typ) && typ.Field == "":
		return badRequest("wrong_type", "the body must be a JSON object, not %s", typ.Value)
	case errors.As(err, &typ):
		return badRequest("wrong_type", "field %q must be a %s, not %s", typ.Field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			field = "?"
		}
		return unknownField(field, fields)
	default:
		return badRequest("malformed_json", "the body is not valid JSON")
	}
}

// validate checks a request and returns its target. Defaults: the function's
// own account and Region.
func (h *Handler) validate(req caseRequest) (Target, *apiError) {
	t := Target{InstanceID: req.InstanceID, AccountID: req.AccountID, Region: req.Region}
	if t.AccountID == "" {
		t.AccountID = h.Config.HomeAccount
	}
	if t.Region == "" {
		t.Region = h.Config.Region
	}
	if t.InstanceID == "" {
		return t, badRequest("missing_instance_id", `instance_id is required`)
	}
	if err := ValidateInstanceID(t.InstanceID); err != nil {
		return t, badRequest("invalid_instance_id", "%v", err)
	}
	if err := ValidateAccountID(t.AccountID); err != nil {
		return t, badRequest("invalid_account_id", "%v", err)
	}
	if err := ValidateRegionIn(t.Region, h.Config.partition()); err != nil {
		return t, badRequest("invalid_region", "%v", err)
	}
	if _, err := h.Config.Playbook(req.Playbook); err != nil {
		var unsupported *UnsupportedPlaybookError
		if errors.As(err, &unsupported) {
			return t, badRequest("unsupported_playbook", "%v", err)
		}
		return t, badRequest("unknown_playbook", "%v", err)
	}
	if req.CaseID != "" {
		if err := validateCaseID(req.CaseID); err != nil {
			return t, badRequest("invalid_case_id", "%v", err)
		}
	}
	if !h.Config.AccountAllowed(t.AccountID) {
		return t, &apiError{Status: http.StatusForbidden, Code: "account_not_allowed",
			Message: fmt.Sprintf("account %s is not one this responder may act in", t.AccountID)}
	}
	return t, nil
}

// validateCaseID checks a case ID given by a caller: the store's rule,
// which refuses the reserved locks folder too.
func validateCaseID(id string) error {
	if err := evidence.ValidateCaseID(id); err != nil {
		if strings.EqualFold(id, evidence.LocksFolder) {
			return fmt.Errorf("case ID %s is reserved for the evidence store's locks", quote(id))
		}
		return fmt.Errorf("invalid case ID %s: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", quote(id))
	}
	return nil
}
