package fakeaws

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// IAM is the account's AWS IAM service; it implements cloud.IAM. It models
// roles with their inline policies and instance profiles with their role,
// and answers as IAM does: NoSuchEntity for a role, profile or policy that
// does not exist, UnmodifiableEntity for a policy written on a service-linked
// role (path /aws-service-role/), MalformedPolicyDocument for a document
// that is not a JSON policy, LimitExceeded past the 10,240 characters a
// role's inline policies may hold together (IAM quotas: "Role policy size").
// SessionDenied evaluates the inline denies the way AWS would for one
// session of a role.
type IAM struct{ c *Cloud }

// IAM returns the account's AWS IAM service.
func (c *Cloud) IAM() *IAM { return c.iam }

// role is an IAM role and its inline policies (name -> document).
type role struct {
	Name     string
	Path     string
	ID       string
	Created  time.Time
	Policies map[string]string
	// Attached are the ARNs of the managed policies attached to it.
	Attached []string
}

// instanceProfile is an IAM instance profile; Roles holds at most one name.
type instanceProfile struct {
	Name    string
	Path    string
	ID      string
	Created time.Time
	Roles   []string
}

// ServiceLinkedRolePath is the path AWS gives every service-linked role: its
// policies belong to the service, and IAM refuses an inline policy on it.
const ServiceLinkedRolePath = "/aws-service-role/"

// MaxRolePolicyChars is how many characters a role's inline policies may
// hold together (IAM quota, whitespace excluded; the fake counts it all).
const MaxRolePolicyChars = 10240

func (c *Cloud) roleArnLocked(r *role) string {
	return fmt.Sprintf("arn:aws:iam::%s:role%s%s", c.Account, r.Path, r.Name)
}

func (c *Cloud) profileArnLocked(p *instanceProfile) string {
	return fmt.Sprintf("arn:aws:iam::%s:instance-profile%s%s", c.Account, p.Path, p.Name)
}

// AddRole adds a role with a path ("" is "/"; ServiceLinkedRolePath makes it
// service-linked) and returns its ARN. It panics when the role exists.
func (c *Cloud) AddRole(name, path string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.st.Roles[name]; ok {
		panic(fmt.Sprintf("fakeaws: AddRole: role %q exists", name))
	}
	return c.roleArnLocked(c.addRoleLocked(name, path))
}

func (c *Cloud) addRoleLocked(name, path string) *role {
	if path == "" {
		path = "/"
	}
	r := &role{Name: name, Path: path, ID: "AROA" + profileID(name)[4:], Created: c.now().Truncate(time.Second), Policies: map[string]string{}}
	c.st.Roles[name] = r
	return r
}

// AddInstanceProfile adds an instance profile holding the named role (none
// when roleName is "") and returns its ARN. It panics when the profile
// exists or the role does not.
func (c *Cloud) AddInstanceProfile(name, roleName string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.st.Profiles[name]; ok {
		panic(fmt.Sprintf("fakeaws: AddInstanceProfile: profile %q exists", name))
	}
	if _, ok := c.st.Roles[roleName]; roleName != "" && !ok {
		panic(fmt.Sprintf("fakeaws: AddInstanceProfile: no role %q", roleName))
	}
	return c.profileArnLocked(c.addProfileLocked(name, "/", roleName))
}

func (c *Cloud) addProfileLocked(name, path, roleName string) *instanceProfile {
	p := &instanceProfile{Name: name, Path: path, ID: profileID(fmt.Sprintf("arn:aws:iam::%s:instance-profile%s%s", c.Account, path, name)),
		Created: c.now().Truncate(time.Second)}
	if roleName != "" {
		p.Roles = []string{roleName}
	}
	c.st.Profiles[name] = p
	return p
}

var profileArnParts = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:instance-profile(/(?:[\w+=,.@-]+/)*)([\w+=,.@-]+)$`)

// ensureProfileLocked gives an instance profile named by an ARN of this
// account a role of the same name when IAM does not know it yet, so that an
// instance made with InstanceProfileArn has a role to revoke. A profile of
// another account is left alone.
func (c *Cloud) ensureProfileLocked(arn string) {
	m := profileArnParts.FindStringSubmatch(arn)
	if m == nil || !strings.Contains(arn, ":"+c.Account+":") {
		return
	}
	if _, ok := c.st.Profiles[m[2]]; ok {
		return
	}
	if _, ok := c.st.Roles[m[2]]; !ok {
		c.addRoleLocked(m[2], "/")
	}
	c.addProfileLocked(m[2], m[1], m[2])
}

// RemoveInstanceProfile deletes an instance profile (its role stays), as
// if it were deleted after the instance got its credentials.
func (c *Cloud) RemoveInstanceProfile(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.st.Profiles, name)
}

// RemoveRoleFromProfile empties an instance profile.
func (c *Cloud) RemoveRoleFromProfile(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.st.Profiles[name]; ok {
		p.Roles = nil
	}
}

// RolePolicy returns a role's inline policy document, as it was put.
func (c *Cloud) RolePolicy(roleName, policyName string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.st.Roles[roleName]
	if !ok {
		return "", false
	}
	doc, ok := r.Policies[policyName]
	return doc, ok
}

// RolePolicyNames lists a role's inline policies, sorted.
func (c *Cloud) RolePolicyNames(roleName string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.st.Roles[roleName]
	if !ok {
		return nil
	}
	names := make([]string, 0, len(r.Policies))
	for n := range r.Policies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SetRolePolicy puts an inline policy on a role directly (test setup: a
// policy someone else wrote).
func (c *Cloud) SetRolePolicy(roleName, policyName, doc string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.st.Roles[roleName]
	if !ok {
		panic(fmt.Sprintf("fakeaws: SetRolePolicy: no role %q", roleName))
	}
	r.Policies[policyName] = doc
}

// GetInstanceProfile describes an instance profile by name, with its role.
func (s *IAM) GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, _ ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error) {
	c := s.c
	out := &iam.GetInstanceProfileOutput{}
	err := c.call(ctx, serviceIAM, "GetInstanceProfile", false, &out.ResultMetadata, func() (func(), error) {
		if in == nil || in.InstanceProfileName == nil {
			return nil, apiError("ValidationError", "1 validation error detected: Value null at 'instanceProfileName' failed to satisfy constraint: Member must not be null")
		}
		p, ok := c.st.Profiles[aws.ToString(in.InstanceProfileName)]
		if !ok {
			return nil, apiError("NoSuchEntity", "Instance Profile %s cannot be found.", aws.ToString(in.InstanceProfileName))
		}
		rendered := &iamtypes.InstanceProfile{
			InstanceProfileName: aws.String(p.Name), InstanceProfileId: aws.String(p.ID),
			Arn: aws.String(c.profileArnLocked(p)), Path: aws.String(p.Path), CreateDate: aws.Time(p.Created),
			Roles: []iamtypes.Role{},
		}
		for _, name := range p.Roles {
			if r, ok := c.st.Roles[name]; ok {
				rendered.Roles = append(rendered.Roles, iamtypes.Role{
					RoleName: aws.String(r.Name), RoleId: aws.String(r.ID), Path: aws.String(r.Path),
					Arn: aws.String(c.roleArnLocked(r)), CreateDate: aws.Time(r.Created),
				})
			}
		}
		return func() { out.InstanceProfile = rendered }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetRolePolicy returns an inline policy of a role, its document URL-encoded
// as IAM answers it (RFC 3986).
func (s *IAM) GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, _ ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	c := s.c
	out := &iam.GetRolePolicyOutput{}
	err := c.call(ctx, serviceIAM, "GetRolePolicy", false, &out.ResultMetadata, func() (func(), error) {
		r, name, err := c.rolePolicyInputLocked(in.RoleName, in.PolicyName)
		if err != nil {
			return nil, err
		}
		doc, ok := r.Policies[name]
		if !ok {
			return nil, apiError("NoSuchEntity", "The role policy with name %s cannot be found.", name)
		}
		return func() {
			out.RoleName, out.PolicyName = aws.String(r.Name), aws.String(name)
			out.PolicyDocument = aws.String(url.PathEscape(doc))
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutRolePolicy adds or replaces an inline policy of a role.
func (s *IAM) PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, _ ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	c := s.c
	out := &iam.PutRolePolicyOutput{}
	err := c.call(ctx, serviceIAM, "PutRolePolicy", false, &out.ResultMetadata, func() (func(), error) {
		r, name, err := c.rolePolicyInputLocked(in.RoleName, in.PolicyName)
		if err != nil {
			return nil, err
		}
		doc := aws.ToString(in.PolicyDocument)
		var parsed policyDocument
		if err := json.Unmarshal([]byte(doc), &parsed); err != nil || parsed.Version == "" || len(parsed.Statement) == 0 {
			return nil, apiError("MalformedPolicyDocument", "Syntax errors in policy.")
		}
		if r.Path == ServiceLinkedRolePath {
			return nil, apiError("UnmodifiableEntity", "Cannot perform the operation on the protected role '%s' - this role is only modifiable by AWS", r.Name)
		}
		total := len(doc)
		for n, d := range r.Policies {
			if n != name {
				total += len(d)
			}
		}
		if total > MaxRolePolicyChars {
			return nil, apiError("LimitExceeded", "Maximum policy size of %d bytes exceeded for role %s", MaxRolePolicyChars, r.Name)
		}
		return func() { r.Policies[name] = doc }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteRolePolicy removes an inline policy of a role.
func (s *IAM) DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, _ ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error) {
	c := s.c
	out := &iam.DeleteRolePolicyOutput{}
	err := c.call(ctx, serviceIAM, "DeleteRolePolicy", false, &out.ResultMetadata, func() (func(), error) {
		r, name, err := c.rolePolicyInputLocked(in.RoleName, in.PolicyName)
		if err != nil {
			return nil, err
		}
		if _, ok := r.Policies[name]; !ok {
			return nil, apiError("NoSuchEntity", "The role policy with name %s cannot be found.", name)
		}
		if r.Path == ServiceLinkedRolePath {
			return nil, apiError("UnmodifiableEntity", "Cannot perform the operation on the protected role '%s' - this role is only modifiable by AWS", r.Name)
		}
		return func() { delete(r.Policies, name) }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var iamNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

// rolePolicyInputLocked checks a role name and a policy name and finds the
// role.
func (c *Cloud) rolePolicyInputLocked(roleName, policyName *string) (*role, string, error) {
	rn, pn := aws.ToString(roleName), aws.ToString(policyName)
	switch {
	case roleName == nil || policyName == nil:
		return nil, "", apiError("ValidationError", "1 validation error detected: roleName and policyName must not be null")
	case !iamNamePattern.MatchString(rn) || !iamNamePattern.MatchString(pn):
		return nil, "", apiError("ValidationError", "1 validation error detected: Value at 'roleName' or 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+")
	}
	r, ok := c.st.Roles[rn]
	if !ok {
		return nil, "", apiError("NoSuchEntity", "The role with name %s cannot be found.", rn)
	}
	return r, pn, nil
}

// policyDocument is the part of an IAM policy the fake reads.
type policyDocument struct {
	Version   string
	Statement statements
}

type policyStatement struct {
	Effect    string
	Action    any
	Resource  any
	Condition map[string]map[string]any
}

// statements reads a Statement given as one object or as a list.
type statements []policyStatement

func (s *statements) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var one policyStatement
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = statements{one}
		return nil
	}
	var many []policyStatement
	err := json.Unmarshal(b, &many)
	*s = many
	return err
}

// Session is one set of role credentials, as a request signed with them
// carries it: when they were issued (aws:TokenIssueTime) and, for
// credentials EC2 delivered to an instance, that instance's ARN
// (ec2:SourceInstanceARN; "" for any other session of the role).
type Session struct {
	Issued      time.Time
	InstanceARN string
}

// SessionDenied reports whether the role's inline policies deny every
// action to a session: some Deny statement for Action "*" and Resource "*"
// whose every condition holds for it. It evaluates the operators the
// toolkit writes (DateLessThan on aws:TokenIssueTime, ArnEquals and
// StringEquals on ec2:SourceInstanceARN); a condition key absent from the
// session does not hold (a Deny under StringEquals does not apply), as in
// IAM. An operator or key it cannot evaluate is an error, so that a test
// never passes on a condition the fake ignored.
func (c *Cloud) SessionDenied(roleName string, s Session) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.st.Roles[roleName]
	if !ok {
		return false, fmt.Errorf("no role %q", roleName)
	}
	for name, doc := range r.Policies {
		var p policyDocument
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			return false, fmt.Errorf("policy %s: %w", name, err)
		}
		for _, st := range p.Statement {
			if st.Effect != "Deny" || !isStar(st.Action) || !isStar(st.Resource) {
				continue
			}
			holds, err := conditionsHold(st.Condition, s)
			if err != nil {
				return false, fmt.Errorf("policy %s: %w", name, err)
			}
			if holds {
				return true, nil
			}
		}
	}
	return false, nil
}

func isStar(v any) bool {
	switch x := v.(type) {
	case string:
		return x == "*"
	case []any:
		return len(x) == 1 && x[0] == "*"
	}
	return false
}

func conditionsHold(cond map[string]map[string]any, s Session) (bool, error) {
	for op, keys := range cond {
		for key, want := range keys {
			holds, err := conditionHolds(op, key, want, s)
			if err != nil || !holds {
				return false, err
			}
		}
	}
	return true, nil
}

func conditionHolds(op, key string, want any, s Session) (bool, error) {
	value, ok := want.(string)
	if !ok {
		return false, fmt.Errorf("condition %s %s: the fake evaluates one value, got %v", op, key, want)
	}
	switch {
	case op == "DateLessThan" && strings.EqualFold(key, "aws:TokenIssueTime"):
		t, err := time.Parse(time.RFC3339, value)
		if err != nil {
			return false, fmt.Errorf("condition %s %s: %w", op, key, err)
		}
		return s.Issued.Before(t), nil
	case (op == "ArnEquals" || op == "StringEquals") && strings.EqualFold(key, "ec2:SourceInstanceARN"):
		return s.InstanceARN != "" && s.InstanceARN == value, nil
	}
	return false, fmt.Errorf("condition %s %s: not evaluated by the fake", op, key)
}
