package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// CredentialRevocation revokes the role credentials already delivered to the
// instance: it puts on the role of the instance's profile an inline policy
// that denies every action to the sessions of that role issued to this
// instance (ec2:SourceInstanceARN) before the response (aws:TokenIssueTime),
// wherever they are used from. Other instances with the same role keep
// working, and so does this one once it gets new credentials (which it
// cannot while its profile is removed). This is the IAM console's "Revoke
// active sessions" (AWSRevokeOlderSessions), scoped to one instance.
//
// The role is taken from the profile the instance had when the response
// started (DescribeInstances), so the step waits for nothing: it runs beside
// isolation, on IAM, and removing the profile does not hide the role from it.
type CredentialRevocation struct{}

func (CredentialRevocation) Name() string    { return "credential-revocation" }
func (CredentialRevocation) Phase() Phase    { return Contain }
func (CredentialRevocation) Needs() []string { return nil }
func (CredentialRevocation) Isolates() bool  { return true }

// revocationState is what the step records: the role of the instance's
// profile, the policy name it writes, and the document found (before) or
// read back (after) under that name ("" for none).
type revocationState struct {
	InstanceProfileARN string `json:"instance_profile_arn,omitempty"`
	Role               string `json:"role,omitempty"`
	RoleARN            string `json:"role_arn,omitempty"`
	PolicyName         string `json:"policy_name,omitempty"`
	Document           string `json:"document,omitempty"`
	// Kept: a release left the policy in place (--keep-credential-revocation).
	Kept bool `json:"kept,omitempty"`
	// The role's policies, for the record and report, read beside the
	// revocation (never before it): the names of its inline policies (the
	// case's own revocation policy left out) and the ARNs of its managed
	// ones. PoliciesListed says they were read; PoliciesError why not.
	InlinePolicies  []string `json:"role_inline_policies,omitempty"`
	ManagedPolicies []string `json:"role_managed_policies,omitempty"`
	PoliciesListed  bool     `json:"role_policies_listed,omitempty"`
	PoliciesError   string   `json:"role_policies_error,omitempty"`
}

// RevocationPolicyName is the name of the inline policy a case puts on the
// role: one per case, so that a rerun replaces it and a release removes
// only its own.
func RevocationPolicyName(caseID string) string { return "responder-revoke-" + caseID }

// serviceLinkedPath is the path of every service-linked role: IAM refuses
// an inline policy on one ("You cannot revoke the session for a
// service-linked role", IAM User Guide).
const serviceLinkedPath = "/aws-service-role/"

func (s CredentialRevocation) Run(ctx context.Context, env *Env) Result {
	before, err := s.target(env)
	if err != nil {
		return Failed(err, nil).Unchecked()
	}
	if before.InstanceProfileARN == "" && before.Role == "" {
		return Skipped("no instance profile: the instance holds no role credentials to revoke", before).Held(true)
	}
	api := env.Clients.IAM
	if api == nil {
		return Failed(errors.New("no IAM client: the role's credentials cannot be revoked"), before).Unchecked()
	}
	if before.Role == "" {
		if res, ok := s.findRole(ctx, api, &before); !ok {
			return res
		}
	}
	withPolicies := s.listPolicies(ctx, env, api, before.Role, before.PolicyName)
	return withPolicies(s.revoke(ctx, env, api, before))
}

// revoke writes the revocation on the role, unless the case wrote it
// already, and reads it back.
func (s CredentialRevocation) revoke(ctx context.Context, env *Env, api cloud.IAM, before revocationState) Result {
	if strings.Contains(before.RoleARN, ":role"+serviceLinkedPath) {
		return Failed(fmt.Errorf("role %s is service-linked: IAM refuses inline policies on it, so the credentials already on the instance "+
			"stay valid until they expire (containment is not complete)", before.RoleARN), before).Held(false)
	}
	doc, found, err := rolePolicy(ctx, api, before.Role, before.PolicyName)
	if err != nil {
		return Failed(fmt.Errorf("read policy %s of role %s: %w", before.PolicyName, before.Role, err), before).Unchecked()
	}
	if found {
		before.Document = doc
	}
	instanceARN, err := instanceARN(env)
	if err != nil {
		return Failed(err, before).Unchecked()
	}
	cutoff := env.now().Truncate(time.Second).Add(time.Second)
	if found && isRevocation(doc, instanceARN) && (revocationCutoff(doc) >= cutoff.UTC().Format(time.RFC3339) || !s.deliveredSince(env)) {
		// An earlier run of the case wrote it, and the instance received
		// no credentials since: leave it as it is.
		r := Skipped(fmt.Sprintf("already revoked: policy %s of role %s denies the sessions issued to %s before %s",
			before.PolicyName, before.Role, env.Target.InstanceID(), revocationCutoff(doc)), before)
		r.After = before
		return r.Held(true)
	}
	want := revocationDocument(instanceARN, cutoff)
	return s.put(ctx, env, api, before, want)
}

// deliveredSince reports whether the instance may have received role
// credentials after an earlier run of the case revoked the older ones: it
// has an instance profile of its own now (that run could not remove it, or
// someone associated one), or a release of the case gave it back. A rerun
// then moves the cut-off to now.
func (CredentialRevocation) deliveredSince(env *Env) bool {
	if p := env.Target.Instance.IamInstanceProfile; p != nil && aws.ToString(p.Arn) != "" && aws.ToString(p.Arn) != env.Collection.ForensicProfileARN {
		return true
	}
	if env.Target.Prior == nil {
		return false
	}
	return slices.ContainsFunc(env.Target.Prior.Runs, func(r evidence.Run) bool { return r.Playbook == evidence.ReleasePlaybook })
}

// target is the profile (and, from an earlier run of the case, the role)
// to revoke: the one an earlier run of the case recorded (the instance's
// own, before that run removed it or put the forensic profile in its
// place), else the profile the instance had when the response started,
// unless that is the forensic profile of the OS-level collection.
func (s CredentialRevocation) target(env *Env) (revocationState, error) {
	st := revocationState{PolicyName: RevocationPolicyName(env.Target.CaseID)}
	if env.Target.Prior != nil {
		for _, rec := range env.Target.Prior.Steps {
			var prev revocationState
			if rec.Name != s.Name() || len(rec.Before) == 0 || json.Unmarshal(rec.Before, &prev) != nil {
				continue
			}
			if prev.Role != "" || prev.InstanceProfileARN != "" {
				st.InstanceProfileARN, st.Role, st.RoleARN = prev.InstanceProfileARN, prev.Role, prev.RoleARN
				return st, nil
			}
		}
	}
	p := env.Target.Instance.IamInstanceProfile
	if p == nil || aws.ToString(p.Arn) == "" || aws.ToString(p.Arn) == env.Collection.ForensicProfileARN {
		return st, nil
	}
	st.InstanceProfileARN = aws.ToString(p.Arn)
	_, err := profileName(st.InstanceProfileARN)
	return st, err
}

// listPolicies reads the names of the role's inline and managed policies
// beside the revocation, two lists at once, and returns what puts them into
// the result's before: it waits for them only once the revocation is done.
// A failed list is recorded, and fails nothing.
func (CredentialRevocation) listPolicies(ctx context.Context, env *Env, api cloud.IAM, role, own string) func(Result) Result {
	if env.Target.DryRun {
		return func(r Result) Result { return r }
	}
	var (
		wg                sync.WaitGroup
		inline, managed   []string
		inlineE, managedE error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		p := iam.NewListRolePoliciesPaginator(api, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
		for p.HasMorePages() && inlineE == nil {
			out, err := p.NextPage(ctx)
			if err != nil {
				inlineE = fmt.Errorf("list the inline policies of role %s: %w", role, err)
				break
			}
			inline = append(inline, slices.DeleteFunc(out.PolicyNames, func(n string) bool { return n == own })...)
		}
	}()
	go func() {
		defer wg.Done()
		p := iam.NewListAttachedRolePoliciesPaginator(api, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
		for p.HasMorePages() && managedE == nil {
			out, err := p.NextPage(ctx)
			if err != nil {
				managedE = fmt.Errorf("list the managed policies of role %s: %w", role, err)
				break
			}
			for _, a := range out.AttachedPolicies {
				managed = append(managed, aws.ToString(a.PolicyArn))
			}
		}
	}()
	return func(r Result) Result {
		wg.Wait()
		st, ok := r.Before.(revocationState)
		if !ok {
			return r
		}
		if err := errors.Join(inlineE, managedE); err != nil {
			st.PoliciesError = err.Error()
		} else {
			st.InlinePolicies, st.ManagedPolicies, st.PoliciesListed = inline, managed, true
		}
		r.Before = st
		return r
	}
}

// findRole reads the role of the instance profile into st. When it cannot,
// the result says why the credentials stay valid.
func (CredentialRevocation) findRole(ctx context.Context, api cloud.IAM, st *revocationState) (Result, bool) {
	name, _ := profileName(st.InstanceProfileARN)
	out, err := api.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	switch {
	case cloud.IsErrorCode(err, "NoSuchEntity"):
		return Failed(fmt.Errorf("instance profile %s no longer exists: its role, whose credentials the instance holds, cannot be found "+
			"(containment is not complete: revoke the role's sessions by hand)", st.InstanceProfileARN), *st).Held(false), false
	case err != nil:
		return Failed(fmt.Errorf("read instance profile %s: %w", st.InstanceProfileARN, err), *st).Unchecked(), false
	case out.InstanceProfile == nil || len(out.InstanceProfile.Roles) == 0:
		return Failed(fmt.Errorf("instance profile %s holds no role now: the role whose credentials the instance holds cannot be found "+
			"(containment is not complete: revoke the role's sessions by hand)", st.InstanceProfileARN), *st).Held(false), false
	}
	r := out.InstanceProfile.Roles[0]
	st.Role, st.RoleARN = aws.ToString(r.RoleName), aws.ToString(r.Arn)
	return Result{}, true
}

// put writes the revocation and reads it back.
func (s CredentialRevocation) put(ctx context.Context, env *Env, api cloud.IAM, before revocationState, want string) Result {
	what := fmt.Sprintf("every action to the sessions of role %s issued to %s before %s (inline policy %s)",
		before.Role, env.Target.InstanceID(), revocationCutoff(want), before.PolicyName)
	if env.Target.DryRun {
		return Skipped("dry run: would deny "+what+" (PutRolePolicy has no DryRun permission check)", before).Unchecked()
	}
	_, err := api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(before.Role), PolicyName: aws.String(before.PolicyName), PolicyDocument: aws.String(want),
	})
	if err != nil {
		err = fmt.Errorf("put policy %s on role %s: %w", before.PolicyName, before.Role, err)
		if cloud.IsErrorCode(err, "AccessDenied", "UnmodifiableEntity") {
			err = fmt.Errorf("%w; the role cannot be changed, so the credentials already on the instance stay valid until they expire "+
				"(containment is not complete; see cloudformation/README.md, RevocableInstanceRoles)", err)
		}
		return Failed(err, before).Held(false)
	}
	after := before
	after.Document = ""
	got, found, err := readBackPolicy(ctx, api, before.Role, before.PolicyName, want)
	if err != nil {
		return Failed(fmt.Errorf("read back policy %s of role %s: %w", before.PolicyName, before.Role, err), before).Unchecked()
	}
	if found {
		after.Document = got
	}
	res := OK("revoked: denied "+what+"; other instances with the role keep theirs", before, after)
	if !found || !samePolicy(got, want) {
		return failWith(res, fmt.Errorf("accepted, but read back: policy %s of role %s is %q, not the revocation written",
			before.PolicyName, before.Role, got)).Held(false)
	}
	return res.Held(true)
}

// revocationDocument is the inline policy: deny everything to the sessions
// issued to the instance before cutoff.
func revocationDocument(instanceARN string, cutoff time.Time) string {
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":      "ResponderRevokeInstanceSessions",
			"Effect":   "Deny",
			"Action":   "*",
			"Resource": "*",
			"Condition": map[string]any{
				"DateLessThan": map[string]any{"aws:TokenIssueTime": cutoff.UTC().Format(time.RFC3339)},
				"ArnEquals":    map[string]any{"ec2:SourceInstanceARN": instanceARN},
			},
		}},
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

// isRevocation reports whether a document is a revocation the toolkit wrote
// for this instance (any cutoff): the only document a release removes.
func isRevocation(doc, instanceARN string) bool {
	cutoff := revocationCutoff(doc)
	if cutoff == "" {
		return false
	}
	t, err := time.Parse(time.RFC3339, cutoff)
	return err == nil && samePolicy(doc, revocationDocument(instanceARN, t))
}

// revocationCutoff is the aws:TokenIssueTime of a revocation document, ""
// when it has none.
func revocationCutoff(doc string) string {
	var p struct {
		Statement []struct {
			Condition struct {
				DateLessThan map[string]string
			}
		}
	}
	if json.Unmarshal([]byte(doc), &p) != nil || len(p.Statement) != 1 {
		return ""
	}
	return p.Statement[0].Condition.DateLessThan["aws:TokenIssueTime"]
}

// samePolicy compares two policy documents as JSON values: IAM may give a
// document back with other spacing or key order.
func samePolicy(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// rolePolicy reads an inline policy of a role, decoded (IAM answers it
// URL-encoded); found is false when the role has none of that name.
func rolePolicy(ctx context.Context, api cloud.IAM, role, name string) (doc string, found bool, err error) {
	out, err := api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	if cloud.IsErrorCode(err, "NoSuchEntity") {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	raw := aws.ToString(out.PolicyDocument)
	if decoded, derr := url.PathUnescape(raw); derr == nil {
		raw = decoded
	}
	return raw, true, nil
}

// readBackPolicy reads a policy until it is as wanted ("" wanted: gone), a
// few times within about a second: IAM is eventually consistent, and a
// change may not show in the very next read.
func readBackPolicy(ctx context.Context, api cloud.IAM, role, name, want string) (string, bool, error) {
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		doc, found, err := rolePolicy(ctx, api, role, name)
		if err != nil || attempt == 3 || (want == "" && !found) || (want != "" && found && samePolicy(doc, want)) {
			return doc, found, err
		}
		select {
		case <-ctx.Done():
			return doc, found, nil
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// profileName is the name of an instance profile, the last part of its ARN
// (arn:aws:iam::111122223333:instance-profile/path/name).
func profileName(arn string) (string, error) {
	_, rest, ok := strings.Cut(arn, ":instance-profile/")
	if !ok || rest == "" || strings.HasSuffix(rest, "/") {
		return "", fmt.Errorf("instance profile ARN %q: want arn:<partition>:iam::<account>:instance-profile/<name>", arn)
	}
	return rest[strings.LastIndex(rest, "/")+1:], nil
}

// instanceARN is the suspect instance's ARN, the value of
// ec2:SourceInstanceARN in requests signed with its role credentials.
func instanceARN(env *Env) (string, error) {
	partition, err := cloud.RegionPartition(env.Target.Region)
	if err != nil {
		return "", fmt.Errorf("instance ARN: %w", err)
	}
	return fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", partition, env.Target.Region, env.Target.AccountID, env.Target.InstanceID()), nil
}

// Release removes the revocation the case put on the role, or puts back
// the document found under its name before, and reads the role back. It
// removes only a revocation of this instance: a document changed since is
// refused, named. With Target.KeepCredentialRevocation it leaves the
// revocation in place and says so.
func (s CredentialRevocation) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var before revocationState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	if before.Role == "" {
		return Skipped("no role credentials were revoked", before)
	}
	api := env.Clients.IAM
	if api == nil {
		return Failed(errors.New("no IAM client: the revocation cannot be removed"), before).Unchecked()
	}
	now, found, err := rolePolicy(ctx, api, before.Role, before.PolicyName)
	if err != nil {
		return Failed(fmt.Errorf("read policy %s of role %s: %w", before.PolicyName, before.Role, err), before).Unchecked()
	}
	current := before
	current.Document = now
	if env.Target.KeepCredentialRevocation {
		current.Kept = true
		r := Skipped("kept (--keep-credential-revocation): policy "+before.PolicyName+" stays on role "+before.Role+
			", and the sessions it revokes stay revoked", before)
		r.After = current
		return r
	}
	if (found && before.Document != "" && samePolicy(now, before.Document)) || (!found && before.Document == "") {
		r := Skipped("policy "+before.PolicyName+" of role "+before.Role+" is as it was before the response already", before)
		r.After = current
		return r.Held(true)
	}
	arn, err := instanceARN(env)
	if err != nil {
		return Failed(err, before).Unchecked()
	}
	if found && !isRevocation(now, arn) {
		return Failed(fmt.Errorf("refused: policy %s of role %s changed since the response (it is not the revocation this case wrote): %s",
			before.PolicyName, before.Role, now), before).Held(false)
	}
	return s.restore(ctx, env, api, before)
}

// restore deletes the revocation (or puts back the document it replaced)
// and reads the policy back.
func (CredentialRevocation) restore(ctx context.Context, env *Env, api cloud.IAM, before revocationState) Result {
	what := "remove policy " + before.PolicyName + " from role " + before.Role
	if before.Document != "" {
		what = "put back the policy " + before.PolicyName + " found on role " + before.Role + " before the response"
	}
	if env.Target.DryRun {
		return Skipped("dry run: would "+what+" (this call has no DryRun permission check)", before)
	}
	var err error
	if before.Document == "" {
		_, err = api.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(before.Role), PolicyName: aws.String(before.PolicyName)})
		if cloud.IsErrorCode(err, "NoSuchEntity") {
			err = nil
		}
	} else {
		_, err = api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(before.Role),
			PolicyName: aws.String(before.PolicyName), PolicyDocument: aws.String(before.Document)})
	}
	if err != nil {
		return Failed(fmt.Errorf("%s: %w", what, err), before).Held(false)
	}
	got, found, err := readBackPolicy(ctx, api, before.Role, before.PolicyName, before.Document)
	if err != nil {
		return Failed(fmt.Errorf("read back: %w", err), before).Unchecked()
	}
	after := before
	after.Document = got
	res := OK(what, before, after)
	if found != (before.Document != "") || (found && !samePolicy(got, before.Document)) {
		return failWith(res, fmt.Errorf("accepted, but read back: policy %s of role %s is %q", before.PolicyName, before.Role, got)).Held(false)
	}
	return res.Held(true)
}

// Describe: the revocation policy on the role of the instance's profile.
func (CredentialRevocation) Describe() Description {
	return Description{
		Aspect: "Role credentials already on the instance",
		View:   viewRevocation,
		Order:  35,
		OnFailure: "The role credentials already delivered to the instance (and any copy an attacker took) may still be valid: " +
			"they work, with the role's permissions, from anywhere, until they expire. Revoke the role's older sessions by hand " +
			"(IAM console, the role, \"Revoke active sessions\"), knowing that this also cuts every other instance using the role.",
	}
}

// viewRevocation reads a revocationState: the role and whether the
// revocation policy is on it.
func viewRevocation(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	var v revocationState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	subject := v.Role
	if subject == "" {
		subject = instanceID
	}
	var text string
	switch {
	case v.Role == "" && v.InstanceProfileARN == "":
		text = "no instance profile: no role credentials"
	case v.Role == "":
		text = "role of " + v.InstanceProfileARN + " not found"
	case v.Document == "":
		text = "no policy " + v.PolicyName + ": sessions issued to " + instanceID + " are valid until they expire"
	case revocationCutoff(v.Document) != "":
		text = "policy " + v.PolicyName + ": sessions issued to " + instanceID + " before " + revocationCutoff(v.Document) + " denied"
	default:
		text = "policy " + v.PolicyName + " (not a revocation): " + v.Document
	}
	if v.Kept {
		text += " (kept by the release)"
	}
	return []SubjectState{{Subject: subject, Text: text}}, nil
}
