package investigate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// The workspace's evidence access: an inline policy on the analysis role
// that lets the workspace's instance, and no other, read its case's
// evidence and write its analysis outputs. Instance-profile credentials
// carry no tag of the instance, but every request signed with them carries
// ec2:SourceInstanceARN (IAM, "AWS global condition context keys":
// cross-service keys such as ec2: ones are available to other services),
// so each statement is conditioned on the instance's ARN. The analysis role's
// permissions boundary (the forensics stack's AnalysisBoundary) caps what
// any such policy can grant.

// AccessPolicyPrefix begins the name of every workspace's evidence policy:
// responder-analysis-<case-id>-<workspace-id>.
const AccessPolicyPrefix = "responder-analysis-"

// MaxRolePolicyChars is IAM's quota on the inline policies of one role,
// together ("Role policy size": 10,240 characters, whitespace not counted);
// PutRolePolicy answers LimitExceeded past it. One workspace's policy takes
// about 1,200 of them (1,440 at most): eight workspaces at once per analysis
// role (seven with the longest names), whose stack policies are managed
// ones for that reason.
const MaxRolePolicyChars = 10240

// DefaultAccessSettle is how long after the policy is put the evidence is
// first fetched: IAM is eventually consistent, and a policy just put may
// not yet allow a request made elsewhere.
const DefaultAccessSettle = 10 * time.Second

// accessPolicyName names a workspace's evidence policy.
func accessPolicyName(caseID, workspaceID string) string {
	return AccessPolicyPrefix + caseID + "-" + workspaceID
}

// analysisRole is the analysis role's name: AnalysisRole when set, else the
// instance profile's name (the forensics stack names both AnalysisRoleName).
func (req *Request) analysisRole() string {
	if req.AnalysisRole != "" {
		return req.AnalysisRole
	}
	return path.Base(req.InstanceProfile)
}

// policyStatement is one statement of the evidence policy, without a Sid:
// the role's inline quota counts every character.
type policyStatement struct {
	Effect    string                       `json:"Effect"`
	Action    any                          `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition"`
}

// accessDocument is the evidence policy of one workspace's instance.
func accessDocument(partition, region, account, bucket, caseID, instanceARN string) ([]byte, error) {
	only := func(extra map[string]map[string]string) map[string]map[string]string {
		c := map[string]map[string]string{"ArnEquals": {"ec2:SourceInstanceARN": instanceARN}}
		for op, kv := range extra {
			c[op] = kv
		}
		return c
	}
	bucketARN := "arn:" + partition + ":s3:::" + bucket
	prefix := "cases/" + caseID + "/"
	doc := struct {
		Version   string            `json:"Version"`
		Statement []policyStatement `json:"Statement"`
	}{Version: "2012-10-17", Statement: []policyStatement{
		{Effect: "Allow", Action: "s3:GetObject", Resource: bucketARN + "/" + prefix + "*", Condition: only(nil)},
		{Effect: "Allow", Action: "s3:ListBucket", Resource: bucketARN,
			Condition: only(map[string]map[string]string{"StringLike": {"s3:prefix": prefix + "*"}})},
		{Effect: "Allow", Action: "s3:PutObject", Resource: bucketARN + "/" + prefix + "analysis/*", Condition: only(nil)},
		{Effect: "Allow", Action: []string{"kms:Decrypt", "kms:GenerateDataKey"},
			Resource:  "arn:" + partition + ":kms:" + region + ":" + account + ":key/*",
			Condition: only(map[string]map[string]string{"StringEquals": {"kms:ViaService": "s3." + region + ".amazonaws.com"}})},
	}}
	return json.Marshal(doc)
}

// grantAccess puts the workspace's evidence policy on the analysis role
// and reads it back; the workspace records it before the put. A case kept
// in a local folder needs none. A policy already there as wanted (a
// retried stage) is read back, not put again. False when the instance
// cannot read the case's evidence.
func (j *startJob) grantAccess(ctx context.Context) bool {
	bucket, _ := s3Location(j.iv.Store.Location(j.ws.CaseID, ""))
	if bucket == "" {
		return true
	}
	if a := j.ws.Access; a != nil && a.State == evidence.AccessGranted {
		return true
	}
	a, err := j.accessRecord(bucket)
	if err != nil {
		// Recorded failed, so that nothing is fetched without the policy.
		j.ws.Access = &evidence.EvidenceAccess{Role: j.req.analysisRole(), PolicyName: accessPolicyName(j.ws.CaseID, j.ws.ID),
			State: evidence.AccessFailed, Error: err.Error()}
		j.problem("evidence access: %v: the instance cannot read the case's evidence", err)
		return false
	}
	j.ws.Access = a
	if err := j.putAccess(ctx, a); err != nil {
		a.State, a.Error = evidence.AccessFailed, err.Error()
		j.problem("evidence access: %v: the instance cannot read the case's evidence", err)
		return false
	}
	t := j.iv.now()
	a.State, a.GrantedAt = evidence.AccessGranted, &t
	return true
}

// accessRecord is what the workspace records before the put.
func (j *startJob) accessRecord(bucket string) (*evidence.EvidenceAccess, error) {
	if j.iv.IAM == nil {
		return nil, fmt.Errorf("no IAM client for the analysis role")
	}
	partition, err := cloud.RegionPartition(j.iv.Region)
	if err != nil {
		return nil, err
	}
	if j.ws.AccountID == "" {
		return nil, fmt.Errorf("the forensics account is unknown (STS did not answer): the instance's ARN cannot be named")
	}
	arn := fmt.Sprintf("arn:%s:ec2:%s:%s:instance/%s", partition, j.iv.Region, j.ws.AccountID, j.ws.InstanceID)
	doc, err := accessDocument(partition, j.iv.Region, j.ws.AccountID, bucket, j.ws.CaseID, arn)
	if err != nil {
		return nil, err
	}
	return &evidence.EvidenceAccess{Role: j.req.analysisRole(), PolicyName: accessPolicyName(j.ws.CaseID, j.ws.ID),
		InstanceARN: arn, Document: doc}, nil
}

// putAccess writes the policy unless it is already there as wanted, then
// reads it back.
func (j *startJob) putAccess(ctx context.Context, a *evidence.EvidenceAccess) error {
	if doc, found, err := j.iv.rolePolicy(ctx, a.Role, a.PolicyName); err == nil && found && samePolicy(doc, string(a.Document)) {
		return nil
	}
	_, err := j.iv.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(a.Role), PolicyName: aws.String(a.PolicyName),
		PolicyDocument: aws.String(string(a.Document))})
	switch {
	case cloud.IsErrorCode(err, "LimitExceeded"):
		return fmt.Errorf("role %s: IAM refused policy %s (LimitExceeded: a role's inline policies hold at most %d characters together, "+
			"some eight workspaces): stop a workspace of another case (responder investigate --stop) and start again: %w",
			a.Role, a.PolicyName, MaxRolePolicyChars, err)
	case err != nil:
		return fmt.Errorf("put policy %s on role %s: %w", a.PolicyName, a.Role, err)
	}
	doc, found, err := j.iv.readBackPolicy(ctx, a.Role, a.PolicyName, string(a.Document))
	switch {
	case err != nil:
		return fmt.Errorf("read back policy %s on role %s: %w", a.PolicyName, a.Role, err)
	case !found || !samePolicy(doc, string(a.Document)):
		return fmt.Errorf("policy %s on role %s not read back as put", a.PolicyName, a.Role)
	}
	return nil
}

// accessSettled is when the evidence may be fetched: the settle time after
// the put (the zero time when nothing was put).
func (iv *Investigator) accessSettled(ws *evidence.Workspace) time.Time {
	if ws.Access == nil || ws.Access.GrantedAt == nil {
		return time.Time{}
	}
	settle := iv.AccessSettle
	if settle == 0 {
		settle = DefaultAccessSettle
	}
	return ws.Access.GrantedAt.Add(settle)
}

// accessReady tells whether the instance may read the evidence: a case in
// a folder needs no policy; a case in a bucket needs the policy granted.
func accessReady(ws *evidence.Workspace) (bool, string) {
	if ws.Access == nil || ws.Access.State == evidence.AccessGranted {
		return true, ""
	}
	return false, "the workspace's evidence policy is not in place (" + ws.Access.Error + ")"
}

// revokeAccess deletes the workspace's evidence policy and reads it back
// gone; a policy already gone is revoked.
func (j *stopJob) revokeAccess(ctx context.Context) {
	a := j.ws.Access
	if a == nil || a.State == evidence.AccessRevoked || a.PolicyName == "" {
		return
	}
	if j.iv.IAM == nil {
		j.problem("evidence policy %s on role %s: no IAM client to delete it", a.PolicyName, a.Role)
		return
	}
	_, err := j.iv.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(a.Role), PolicyName: aws.String(a.PolicyName)})
	if err != nil && !cloud.IsErrorCode(err, "NoSuchEntity") {
		a.Error = err.Error()
		j.problem("delete evidence policy %s on role %s: %v", a.PolicyName, a.Role, err)
		return
	}
	if _, found, err := j.iv.readBackPolicy(ctx, a.Role, a.PolicyName, ""); err != nil || found {
		a.Error = fmt.Sprintf("still on the role after DeleteRolePolicy (%v)", err)
		j.problem("evidence policy %s on role %s: %s", a.PolicyName, a.Role, a.Error)
		return
	}
	t := j.iv.now()
	a.State, a.RevokedAt, a.Error = evidence.AccessRevoked, &t, ""
}

// rolePolicy reads an inline policy, decoded (IAM answers it URL-encoded);
// found is false when the role has none of that name.
func (iv *Investigator) rolePolicy(ctx context.Context, role, name string) (string, bool, error) {
	out, err := iv.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
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
// few times within about a second: a change may not show in the very next
// read.
func (iv *Investigator) readBackPolicy(ctx context.Context, role, name, want string) (string, bool, error) {
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		doc, found, err := iv.rolePolicy(ctx, role, name)
		if err != nil || attempt == 3 || (want == "" && !found) || (want != "" && found && samePolicy(doc, want)) {
			return doc, found, err
		}
		if sleep(ctx, delay) != nil {
			return doc, found, nil
		}
		delay *= 2
	}
}

// samePolicy compares two policy documents as JSON values.
func samePolicy(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// unrecordedAccess names the evidence policy of a workspace the record
// does not hold: the role is the instance profile's name (as the stack
// names them), the policy the workspace's.
func unrecordedAccess(profileARN, caseID, workspaceID string) *evidence.EvidenceAccess {
	if profileARN == "" {
		return nil
	}
	role := profileARN[strings.LastIndex(profileARN, "/")+1:]
	return &evidence.EvidenceAccess{Role: role, PolicyName: accessPolicyName(caseID, workspaceID), State: "unknown"}
}
