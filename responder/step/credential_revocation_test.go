package step_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// revocationAt is the fixed clock of these tests: the response starts at
// 12:00:00.250, so the cut-off is the next whole second.
var (
	revocationAt     = time.Date(2026, 12, 4, 12, 0, 0, 250e6, time.UTC)
	revocationCutoff = time.Date(2026, 12, 4, 12, 0, 1, 0, time.UTC)
)

// twoInstancesOneRole is an account where two instances use the instance
// profile "app", whose role is "app".
func twoInstancesOneRole(t *testing.T) (c *fakeaws.Cloud, suspect, other string) {
	t.Helper()
	c = fakeaws.New()
	profile := "arn:aws:iam::" + c.Account + ":instance-profile/app"
	suspect = c.AddInstance(fakeaws.InstanceSpec{InstanceProfileArn: profile})
	other = c.AddInstance(fakeaws.InstanceSpec{InstanceProfileArn: profile})
	return c, suspect, other
}

func revocationEnv(t *testing.T, c *fakeaws.Cloud, id string) *step.Env {
	t.Helper()
	env := envFor(t, c, id)
	env.Now = func() time.Time { return revocationAt }
	return env
}

func arnOf(c *fakeaws.Cloud, id string) string {
	return "arn:aws:ec2:" + c.Region + ":" + c.Account + ":instance/" + id
}

func runRevocation(t *testing.T, env *step.Env) (step.Result, map[string]any, map[string]any) {
	t.Helper()
	res := step.CredentialRevocation{}.Run(context.Background(), env)
	return res, asMap(t, res.Before), asMap(t, res.After)
}

func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The policy on the role denies every action, on every resource, to the
// sessions issued before the response to this instance, and to nothing
// else: its exact conditions, read from the role, and the sessions of the
// other instance and of the role's other users still work.
func TestCredentialRevocationDeniesOnlyThisInstancesOlderSessions(t *testing.T) {
	c, suspect, other := twoInstancesOneRole(t)
	env := revocationEnv(t, c, suspect)
	res, before, after := runRevocation(t, env)
	if res.Status != evidence.StatusOK || res.Containment != evidence.ContainmentHeld {
		t.Fatalf("%s %s %v", res.Status, res.Containment, res.Err)
	}
	name := step.RevocationPolicyName("case-1")
	doc, ok := c.RolePolicy("app", name)
	if !ok {
		t.Fatalf("no policy %s on role app: %v", name, c.RolePolicyNames("app"))
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(doc), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid": "ResponderRevokeInstanceSessions", "Effect": "Deny", "Action": "*", "Resource": "*",
			"Condition": map[string]any{
				"DateLessThan": map[string]any{"aws:TokenIssueTime": "2026-12-04T12:00:01Z"},
				"ArnEquals":    map[string]any{"ec2:SourceInstanceARN": arnOf(c, suspect)},
			},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policy document\n%s\nwant\n%v", doc, want)
	}
	if before["role"] != "app" || before["policy_name"] != name || before["document"] != nil {
		t.Errorf("before %v: want role app, policy %s, no document", before, name)
	}
	if after["document"] != doc {
		t.Errorf("after document %v, want what the role holds", after["document"])
	}

	for _, tc := range []struct {
		name   string
		s      fakeaws.Session
		denied bool
	}{
		{"the suspect's session issued before the response", fakeaws.Session{Issued: revocationAt.Add(-time.Hour), InstanceARN: arnOf(c, suspect)}, true},
		{"the suspect's session issued in the response's first second", fakeaws.Session{Issued: revocationAt, InstanceARN: arnOf(c, suspect)}, true},
		{"the suspect's session issued after the cut-off", fakeaws.Session{Issued: revocationCutoff, InstanceARN: arnOf(c, suspect)}, false},
		{"the other instance's session issued before", fakeaws.Session{Issued: revocationAt.Add(-time.Hour), InstanceARN: arnOf(c, other)}, false},
		{"a session of the role not from an instance", fakeaws.Session{Issued: revocationAt.Add(-time.Hour)}, false},
	} {
		denied, err := c.SessionDenied("app", tc.s)
		if err != nil {
			t.Fatal(err)
		}
		if denied != tc.denied {
			t.Errorf("%s: denied %t, want %t", tc.name, denied, tc.denied)
		}
	}
}

// Containment is not complete when the role cannot be changed: the step
// fails, says why, holds nothing, and the case is partially contained.
func TestCredentialRevocationThatCannotHold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(c *fakeaws.Cloud) fakeaws.InstanceSpec
		want    string // in the error
		role    string // the role that must hold no policy ("" none)
	}{
		{"AccessDenied", func(c *fakeaws.Cloud) fakeaws.InstanceSpec {
			c.Deny("PutRolePolicy")
			return fakeaws.InstanceSpec{InstanceProfileArn: "arn:aws:iam::" + c.Account + ":instance-profile/app"}
		}, "AccessDenied", "app"},
		{"service-linked role", func(c *fakeaws.Cloud) fakeaws.InstanceSpec {
			c.AddRole("AWSServiceRoleForExample", fakeaws.ServiceLinkedRolePath)
			return fakeaws.InstanceSpec{InstanceProfileArn: c.AddInstanceProfile("linked", "AWSServiceRoleForExample")}
		}, "service-linked", "AWSServiceRoleForExample"},
		{"profile deleted since", func(c *fakeaws.Cloud) fakeaws.InstanceSpec {
			return fakeaws.InstanceSpec{InstanceProfileArn: c.AddInstanceProfile("gone", "")}
		}, "no longer exists", ""},
		{"profile without a role", func(c *fakeaws.Cloud) fakeaws.InstanceSpec {
			c.AddRole("app", "")
			return fakeaws.InstanceSpec{InstanceProfileArn: c.AddInstanceProfile("empty", "")}
		}, "holds no role", "app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeaws.New()
			vpc := c.AddVPC()
			spec := tc.prepare(c)
			spec.VpcID = vpc
			id := c.AddInstance(spec)
			if tc.name == "profile deleted since" {
				c.RemoveInstanceProfile("gone")
			}
			plan, err := step.Plan([]string{"quarantine-group", "quarantine", "credential-revocation"})
			if err != nil {
				t.Fatal(err)
			}
			recs := step.Execute(context.Background(), revocationEnv(t, c, id), plan, 0)
			rec := recs[2]
			if rec.Status != evidence.StatusFailed || rec.Containment == evidence.ContainmentHeld || !strings.Contains(rec.Error, tc.want) {
				t.Errorf("credential-revocation %s (%s): %s; want failed, not held, saying %q", rec.Status, rec.Containment, rec.Error, tc.want)
			}
			if got := evidence.CaseStatus(recs, evidence.Outcome{}); got != evidence.CasePartiallyContained {
				t.Errorf("case %s, want %s (quarantine %s %s)", got, evidence.CasePartiallyContained, recs[1].Status, recs[1].Containment)
			}
			if tc.role != "" && len(c.RolePolicyNames(tc.role)) > 0 {
				t.Errorf("role %s holds %v", tc.role, c.RolePolicyNames(tc.role))
			}
		})
	}
}

// An instance without a profile holds no role credentials: nothing to
// revoke, and this aspect of containment holds.
func TestCredentialRevocationWithoutProfile(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	res, _, _ := runRevocation(t, revocationEnv(t, c, id))
	if res.Status != evidence.StatusSkipped || res.Containment != evidence.ContainmentHeld || c.CallCount("PutRolePolicy") != 0 {
		t.Errorf("%s %s %s; want skipped and held", res.Status, res.Containment, res.Reason)
	}

	// The forensic profile a collection put in place (a rerun after an
	// interrupted collection) is not the instance's own: its role is left
	// alone.
	forensic := "arn:aws:iam::" + c.Account + ":instance-profile/responder-forensic-ssm"
	id = c.AddInstance(fakeaws.InstanceSpec{InstanceProfileArn: forensic})
	env := revocationEnv(t, c, id)
	env.Collection.ForensicProfileARN = forensic
	res, _, _ = runRevocation(t, env)
	if res.Status != evidence.StatusSkipped || res.Containment != evidence.ContainmentHeld || len(c.RolePolicyNames("responder-forensic-ssm")) != 0 {
		t.Errorf("forensic profile: %s %s %s; role holds %v", res.Status, res.Containment, res.Reason, c.RolePolicyNames("responder-forensic-ssm"))
	}
}

// Respond then release gives the role back as it was (no policy); a
// release that keeps the revocation leaves it and says so; a rerun of the
// case, after the profile was removed, finds its revocation and changes
// nothing.
func TestCredentialRevocationRoundTrip(t *testing.T) {
	c, suspect, _ := twoInstancesOneRole(t)
	env := revocationEnv(t, c, suspect)
	res, _, _ := runRevocation(t, env)
	if res.Containment != evidence.ContainmentHeld {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	before, _ := json.Marshal(res.Before)
	first := evidence.StepRecord{Name: "credential-revocation", Status: res.Status, Before: before}

	// Rerun: the instance profile is gone; the role comes from the record.
	rerun := revocationEnv(t, c, suspect)
	rerun.Target.Instance.IamInstanceProfile = nil
	rerun.Target.Prior = &evidence.Manifest{Steps: []evidence.StepRecord{first}}
	rerun.Now = func() time.Time { return revocationAt.Add(time.Hour) }
	digest := c.StateDigest()
	again, _, _ := runRevocation(t, rerun)
	if again.Status != evidence.StatusSkipped || again.Containment != evidence.ContainmentHeld || c.StateDigest() != digest {
		t.Errorf("rerun: %s %s %s, changed the cloud: %t", again.Status, again.Containment, again.Reason, c.StateDigest() != digest)
	}

	// Release, keeping the revocation.
	keep := revocationEnv(t, c, suspect)
	keep.Target.KeepCredentialRevocation = true
	kept := step.CredentialRevocation{}.Release(context.Background(), keep, before)
	if _, ok := c.RolePolicy("app", step.RevocationPolicyName("case-1")); !ok || kept.Status != evidence.StatusSkipped {
		t.Errorf("kept release: %s %s, policy on the role: %t", kept.Status, kept.Reason, ok)
	}
	if asMap(t, kept.After)["kept"] != true {
		t.Errorf("the kept release's after does not say kept: %v", asMap(t, kept.After))
	}

	// Release: the role as before the response.
	rel := step.CredentialRevocation{}.Release(context.Background(), revocationEnv(t, c, suspect), before)
	if rel.Status != evidence.StatusOK || rel.Containment != evidence.ContainmentHeld {
		t.Fatalf("release: %s %s %v", rel.Status, rel.Containment, rel.Err)
	}
	if names := c.RolePolicyNames("app"); len(names) != 0 {
		t.Errorf("role app holds %v after the release, want no policy", names)
	}
}

// A release removes only the revocation it wrote: a document changed since
// under its name is refused, named, and left as it is; a document found
// under that name before the response is put back.
func TestCredentialRevocationReleaseRestoresOnlyItsOwn(t *testing.T) {
	c, suspect, _ := twoInstancesOneRole(t)
	name := step.RevocationPolicyName("case-1")
	const earlier = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`
	c.SetRolePolicy("app", name, earlier)
	res, before, _ := runRevocation(t, revocationEnv(t, c, suspect))
	if res.Containment != evidence.ContainmentHeld || before["document"] != earlier {
		t.Fatalf("respond: %s %v; before %v", res.Status, res.Err, before)
	}
	raw, _ := json.Marshal(res.Before)

	changed := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	doc, _ := c.RolePolicy("app", name)
	c.SetRolePolicy("app", name, changed)
	refused := step.CredentialRevocation{}.Release(context.Background(), revocationEnv(t, c, suspect), raw)
	if got, _ := c.RolePolicy("app", name); refused.Status != evidence.StatusFailed || !strings.Contains(refused.Err.Error(), "refused") || got != changed {
		t.Errorf("release of a changed policy: %s %v; policy now %s", refused.Status, refused.Err, got)
	}

	c.SetRolePolicy("app", name, doc)
	rel := step.CredentialRevocation{}.Release(context.Background(), revocationEnv(t, c, suspect), raw)
	if got, _ := c.RolePolicy("app", name); rel.Containment != evidence.ContainmentHeld || got != earlier {
		t.Errorf("release: %s %v; policy now %s, want the earlier one", rel.Status, rel.Err, got)
	}
}

// A dry run reads the role and changes nothing.
func TestCredentialRevocationDryRun(t *testing.T) {
	c, suspect, _ := twoInstancesOneRole(t)
	env := revocationEnv(t, c, suspect)
	env.Target.DryRun = true
	digest := c.StateDigest()
	res, _, _ := runRevocation(t, env)
	if res.Status != evidence.StatusSkipped || !strings.HasPrefix(res.Reason, "dry run: would deny") || c.StateDigest() != digest {
		t.Errorf("dry run: %s %s, changed the cloud: %t", res.Status, res.Reason, c.StateDigest() != digest)
	}
}

// The record names the role's policies (inline, the case's own left out,
// and managed), read beside the revocation; a list that is refused is
// recorded and fails nothing.
func TestCredentialRevocationRecordsRolePolicies(t *testing.T) {
	c, suspect, _ := twoInstancesOneRole(t)
	c.SetRolePolicy("app", "read-config", `{"Version":"2012-10-17","Statement":[]}`)
	c.AttachRolePolicy("app", "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
	res, before, _ := runRevocation(t, revocationEnv(t, c, suspect))
	if res.Status != evidence.StatusOK || res.Containment != evidence.ContainmentHeld {
		t.Fatalf("%s %s %v", res.Status, res.Containment, res.Err)
	}
	if !reflect.DeepEqual(before["role_inline_policies"], []any{"read-config"}) ||
		!reflect.DeepEqual(before["role_managed_policies"], []any{"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}) ||
		before["role_policies_listed"] != true {
		t.Errorf("before %v", before)
	}
	// A second run finds its own revocation on the role: it is not listed
	// as one of the role's policies.
	res, before, _ = runRevocation(t, revocationEnv(t, c, suspect))
	if res.Status != evidence.StatusSkipped || !reflect.DeepEqual(before["role_inline_policies"], []any{"read-config"}) {
		t.Errorf("second run %s: before %v", res.Status, before)
	}

	c2, suspect2, _ := twoInstancesOneRole(t)
	c2.Deny("ListRolePolicies")
	res, before, _ = runRevocation(t, revocationEnv(t, c2, suspect2))
	if res.Status != evidence.StatusOK || res.Containment != evidence.ContainmentHeld {
		t.Fatalf("with the list refused: %s %s %v", res.Status, res.Containment, res.Err)
	}
	if e, _ := before["role_policies_error"].(string); !strings.Contains(e, "ListRolePolicies") && !strings.Contains(e, "inline policies") || before["role_policies_listed"] != nil {
		t.Errorf("with the list refused: before %v", before)
	}
}

// A rerun of the case while the instance still had its profile since the
// first revocation (the profile's removal failed, or a release gave it
// back) denies the sessions issued up to the rerun too: the instance may
// have received new credentials after the first cut-off, which an attacker
// on it can take. Without the profile and without a release since, the
// first revocation stands (TestCredentialRevocationRoundTrip).
func TestCredentialRevocationRerunDeniesSessionsIssuedSince(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile bool
		prior   func(first evidence.StepRecord) *evidence.Manifest
	}{
		{"profile still associated", true, func(first evidence.StepRecord) *evidence.Manifest {
			return &evidence.Manifest{Runs: []evidence.Run{{Number: 1, Playbook: "default"}}, Steps: []evidence.StepRecord{first}}
		}},
		{"released since, profile removed by hand", false, func(first evidence.StepRecord) *evidence.Manifest {
			return &evidence.Manifest{Runs: []evidence.Run{{Number: 1, Playbook: "default"}, {Number: 2, Playbook: evidence.ReleasePlaybook}},
				Steps: []evidence.StepRecord{first}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, suspect, _ := twoInstancesOneRole(t)
			res, _, _ := runRevocation(t, revocationEnv(t, c, suspect))
			if res.Containment != evidence.ContainmentHeld {
				t.Fatalf("respond: %s %v", res.Status, res.Err)
			}
			before, _ := json.Marshal(res.Before)
			first := evidence.StepRecord{Run: 1, Name: "credential-revocation", Status: res.Status, Before: before}

			rerunAt := revocationAt.Add(time.Hour)
			rerun := revocationEnv(t, c, suspect)
			if !tc.profile {
				rerun.Target.Instance.IamInstanceProfile = nil
			}
			rerun.Target.Prior = tc.prior(first)
			rerun.Now = func() time.Time { return rerunAt }
			again, _, _ := runRevocation(t, rerun)
			if again.Containment != evidence.ContainmentHeld {
				t.Fatalf("rerun: %s %s %v", again.Status, again.Containment, again.Err)
			}
			issuedSince := fakeaws.Session{Issued: rerunAt.Add(-time.Minute), InstanceARN: arnOf(c, suspect)}
			if denied, err := c.SessionDenied("app", issuedSince); err != nil || !denied {
				t.Errorf("a session issued to the suspect between the two runs is not denied (%v): rerun %s %q", err, again.Status, again.Reason)
			}
		})
	}
}
