package trigger_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// releaseV1 is POST /cases/{id}/release (REST API, v1) with a body.
func (e *env) releaseV1(caseID, body string, edit ...func(*events.APIGatewayProxyRequest)) []byte {
	e.t.Helper()
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(e.event("apigw-v1-get-case.json"), &req); err != nil {
		e.t.Fatal(err)
	}
	req.HTTPMethod, req.Resource, req.Body = http.MethodPost, "/cases/{id}/release", body
	req.PathParameters = map[string]string{"id": caseID}
	req.Path = "/cases/" + caseID + "/release"
	req.RequestContext.Path = "/v1/cases/" + caseID + "/release"
	req.RequestContext.ResourcePath, req.RequestContext.HTTPMethod = req.Resource, http.MethodPost
	for _, f := range edit {
		f(&req)
	}
	return marshal(e.t, req)
}

// releaseV2 is POST /cases/{id}/release (HTTP API, v2).
func (e *env) releaseV2(caseID, body string) []byte {
	e.t.Helper()
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(e.event("apigw-v2-post-cases.json"), &req); err != nil {
		e.t.Fatal(err)
	}
	req.RouteKey, req.Body = "POST /cases/{id}/release", body
	req.RawPath = "/cases/" + caseID + "/release"
	req.PathParameters = map[string]string{"id": caseID}
	return marshal(e.t, req)
}

// respondedCase starts a case for the suspect through the API and runs its
// respond task: the suspect is contained.
func (e *env) respondedCase() string {
	e.t.Helper()
	ex := e.startCase()
	e.mustHandle(respondPayload(e.t, ex))
	return executionInput(e.t, ex).CaseID
}

func groupsOf(e *env) map[string][]string {
	out := map[string][]string{}
	for _, n := range e.cloud.Instance(e.suspect.InstanceID).NetworkInterfaces {
		var g []string
		for _, gr := range n.Groups {
			g = append(g, aws.ToString(gr.GroupId))
		}
		slices.Sort(g)
		out[aws.ToString(n.NetworkInterfaceId)] = g
	}
	return out
}

// The API's release restores what the member role can, leaves the instance
// profile (passing its role needs the release role), and says so: the
// answer, the record, the notification and the instance's tag say
// release-incomplete, never released, and the answer names the profile, the
// command and the release role. Once a person associated it, a second
// release is released.
func TestReleaseAPIRestoresAndNamesWhatNeedsTheReleaseRole(t *testing.T) {
	e := newEnv(t)
	original := groupsOf(e)
	caseID := e.respondedCase()
	if slices.Equal(mapValues(groupsOf(e)), mapValues(original)) {
		t.Fatal("the respond task did not contain the suspect")
	}

	a := decodeAPI(t, e.mustHandle(e.releaseV1(caseID, "")))
	if a.Status != http.StatusOK || a.Body["status"] != evidence.CaseReleaseIncomplete {
		t.Fatalf("release: %d %s", a.Status, a.Raw)
	}
	needs, _ := a.Body["needs_release_role"].(map[string]any)
	if needs["instance_profile_arn"] != e.suspect.ProfileArn ||
		!strings.Contains(needs["command"].(string), "--instance-id "+e.suspect.InstanceID) ||
		needs["release_role_arn"] != "arn:aws:iam::"+e.cloud.Account+":role/responder-ir-member-release" {
		t.Fatalf("needs_release_role %v", needs)
	}
	if got := groupsOf(e); !mapsEqual(got, original) {
		t.Errorf("groups after release %v, want %v", got, original)
	}
	if inst := e.cloud.Instance(e.suspect.InstanceID); inst.ProfileAssociation != nil || inst.DisableAPITermination {
		t.Errorf("profile %v (want none: the Lambda may not pass its role), termination protection %t", inst.ProfileAssociation, inst.DisableAPITermination)
	}
	m, err := evidence.LoadManifest(t.Context(), e.h.Store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	last := m.Runs[len(m.Runs)-1]
	if last.Playbook != "release" || last.Status != evidence.CaseReleaseIncomplete || m.Status != evidence.CaseReleaseIncomplete || last.Actor != actorV1 {
		t.Errorf("record: last run %+v, status %s", last, m.Status)
	}
	msgs := e.cloud.Published()
	n, err := step.ParseNotification(msgs[len(msgs)-1].Message)
	if err != nil || n.Status != m.Status || n.Run != "release" {
		t.Errorf("notification %+v (%v), want the record's %s", n, err, m.Status)
	}

	// A person with the release role associates the profile; the next
	// release finds it done.
	if _, err := e.cloud.EC2().AssociateIamInstanceProfile(context.Background(), &ec2.AssociateIamInstanceProfileInput{
		InstanceId: aws.String(e.suspect.InstanceID), IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(e.suspect.ProfileArn)},
	}); err != nil {
		t.Fatal(err)
	}
	a = decodeAPI(t, e.mustHandle(e.releaseV2(caseID, `{"instance_id": "`+e.suspect.InstanceID+`"}`)))
	if a.Status != http.StatusOK || a.Body["status"] != evidence.CaseReleased || a.Body["needs_release_role"] != nil {
		t.Fatalf("second release: %d %s", a.Status, a.Raw)
	}
	if m, _ := evidence.LoadManifest(t.Context(), e.h.Store, caseID); m.Status != evidence.CaseReleased {
		t.Errorf("record after the second release: %s", m.Status)
	}
}

// Bad input is refused before any AWS call; an unknown case is 404; a case
// of another instance or one another run holds is 409.
func TestReleaseAPIRefusals(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, caseID, body string
		status             int
		code               string
	}{
		{"bad case ID", "../x", "", 400, "invalid_case_id"},
		{"locks", "locks", "", 400, "invalid_case_id"},
		{"unknown field", "case-1", `{"keep": true}`, 400, "unknown_field"},
		{"case of a field", "case-1", `{"Instance_ID": "i-0123456789abcdef0"}`, 400, "unknown_field"},
		{"duplicate", "case-1", `{"dry_run": true, "dry_run": false}`, 400, "duplicate_field"},
		{"wrong type", "case-1", `{"dry_run": "yes"}`, 400, "wrong_type"},
		{"bad instance", "case-1", `{"instance_id": "i-xyz"}`, 400, "invalid_instance_id"},
		{"not JSON", "case-1", `{`, 400, "malformed_json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.cloud.TotalCalls()
			a := decodeAPI(t, e.mustHandle(e.releaseV1(tc.caseID, tc.body)))
			if a.Status != tc.status || a.Body["code"] != tc.code {
				t.Fatalf("%d %s, want %d %s", a.Status, a.Raw, tc.status, tc.code)
			}
			if e.cloud.TotalCalls() != before {
				t.Errorf("bad input reached AWS")
			}
		})
	}
	a := decodeAPI(t, e.mustHandle(e.releaseV1("case-unknown", "")))
	if a.Status != 404 || a.Body["code"] != "case_not_found" {
		t.Errorf("unknown case: %d %s", a.Status, a.Raw)
	}
	a = decodeAPI(t, e.mustHandle(e.releaseV1("case-1", "", func(r *events.APIGatewayProxyRequest) { r.RequestContext.Identity.UserArn = "" })))
	if a.Status != 403 || a.Body["code"] != "unauthenticated" {
		t.Errorf("unsigned: %d %s", a.Status, a.Raw)
	}

	caseID := e.respondedCase()
	contained := groupsOf(e)
	a = decodeAPI(t, e.mustHandle(e.releaseV1(caseID, `{"instance_id": "i-0fedcba9876543210"}`)))
	if a.Status != 409 || a.Body["code"] != "case_of_another_instance" {
		t.Errorf("another instance: %d %s", a.Status, a.Raw)
	}
	// Another run holds the case's run lock.
	rec, err := evidence.LoadRecord(t.Context(), e.h.Store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	lock, _, err := evidence.ClaimRun(t.Context(), e.h.Store, rec, caseID, "someone", e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.KeepAlive(t.Context(), e.h.Store, e.clock.Now)()
	a = decodeAPI(t, e.mustHandle(e.releaseV1(caseID, "")))
	if a.Status != 409 || a.Body["code"] != "case_busy" {
		t.Errorf("busy case: %d %s", a.Status, a.Raw)
	}
	if got := groupsOf(e); !mapsEqual(got, contained) {
		t.Errorf("a refused release changed the instance: %v, was %v", got, contained)
	}
	// GET is not a release.
	get := e.releaseV1(caseID, "", func(r *events.APIGatewayProxyRequest) { r.HTTPMethod = http.MethodGet })
	if a := decodeAPI(t, e.mustHandle(get)); a.Status != 405 || a.Headers["Allow"] != "POST" {
		t.Errorf("GET release: %d %v", a.Status, a.Headers)
	}
}

// A case started from Security Hub findings gets the release's status
// noted on them, the word of the record.
func TestReleaseAPINotesTheFindings(t *testing.T) {
	e := newEnv(t)
	findings := e.sampleFindings()
	e.addFindings(findings...)
	e.mustHandle(e.customActionEvent())
	ex := e.sfn.Executions()[0]
	e.mustHandle(respondPayload(t, ex))
	caseID := executionInput(t, ex).CaseID

	a := decodeAPI(t, e.mustHandle(e.releaseV1(caseID, "")))
	if a.Status != 200 {
		t.Fatalf("release: %d %s", a.Status, a.Raw)
	}
	m, err := evidence.LoadManifest(t.Context(), e.h.Store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := e.hub.Finding(findings[0]["Id"].(string))
	if m.Status != evidence.CaseReleaseIncomplete || !strings.Contains(f.Note, ": "+m.Status+": ") || !strings.Contains(f.Note, "instance-profile (not-held)") {
		t.Errorf("note %q, want the record's status %s and what is still open", f.Note, m.Status)
	}
}

func mapValues(m map[string][]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, strings.Join(m[k], ","))
	}
	return out
}

func mapsEqual(a, b map[string][]string) bool {
	return slices.Equal(sortedKeys(a), sortedKeys(b)) && slices.Equal(mapValues(a), mapValues(b))
}

func sortedKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// POST /cases/{id}/release with keep_credential_revocation leaves the deny
// on the instance's role, as the CLI's --keep-credential-revocation does,
// and the record says it was kept; without it the deny is removed.
func TestReleaseAPIKeepsTheCredentialRevocation(t *testing.T) {
	for _, keep := range []bool{true, false} {
		e := newEnv(t)
		caseID := e.respondedCase()
		policy := step.RevocationPolicyName(caseID)
		if !slices.Contains(e.cloud.RolePolicyNames("web-server"), policy) {
			t.Fatalf("the respond task did not revoke the role's credentials: %v", e.cloud.RolePolicyNames("web-server"))
		}
		body := `{"keep_credential_revocation": true}`
		if !keep {
			body = `{"keep_credential_revocation": false}`
		}
		a := decodeAPI(t, e.mustHandle(e.releaseV1(caseID, body)))
		if a.Status != http.StatusOK {
			t.Fatalf("release (keep %t): %d %s", keep, a.Status, a.Raw)
		}
		if got := slices.Contains(e.cloud.RolePolicyNames("web-server"), policy); got != keep {
			t.Errorf("keep %t: the revocation is on the role: %t", keep, got)
		}
		m, err := evidence.LoadManifest(t.Context(), e.h.Store, caseID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m.Steps {
			var after struct{ Kept bool }
			if s.Run == m.LastRun() && s.Name == "credential-revocation" && (json.Unmarshal(s.After, &after) != nil || after.Kept != keep) {
				t.Errorf("keep %t: the release's record of credential-revocation: %s (%s)", keep, s.After, s.Reason)
			}
		}
	}
}
