package cloudformation

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// SensitiveServices are the services on which no wildcard action is allowed
// at all (not even "svc:Describe*"), and on which an identity policy may grant
// on Resource "*" only Describe and List actions.
var SensitiveServices = map[string]bool{"ec2": true, "iam": true, "kms": true, "s3": true, "sts": true}

// Check runs every general check on a template and returns its findings,
// each "<logical ID>: <problem>", sorted. No finding means the template passes.
func Check(t *Template) []string {
	var out []string
	for _, check := range []func(*Template) []string{
		CheckWildcardActions,
		CheckOpenPrincipals,
		CheckResourceScope,
		CheckRolesSelfContained,
		CheckBuckets,
		CheckTopics,
		CheckLogGroups,
		CheckLambdaLogGroups,
		CheckActionTargets,
		CheckManagedPolicySizes,
	} {
		out = append(out, check(t)...)
	}
	sort.Strings(out)
	return out
}

// CheckWildcardActions reports Allow statements (in any policy document) with
// "*", "svc:*", any wildcard on a sensitive service, an action built by an
// intrinsic function (which cannot be checked), or NotAction.
func CheckWildcardActions(t *Template) []string {
	var out []string
	for _, d := range t.Documents() {
		for _, s := range d.Statements {
			if s.Effect != "Allow" {
				continue
			}
			if len(s.NotActions) > 0 {
				out = append(out, fmt.Sprintf("%s: statement %q allows NotAction %v (everything else)", d, s.Sid, s.NotActions))
			}
			for _, a := range s.Actions {
				if msg := wildcardProblem(a); msg != "" {
					out = append(out, fmt.Sprintf("%s: statement %q: %s", d, s.Sid, msg))
				}
			}
		}
	}
	return out
}

// CheckOpenPrincipals reports resource, key and trust policies that allow
// Principal "*" without any condition.
func CheckOpenPrincipals(t *Template) []string {
	var out []string
	for _, d := range t.Documents() {
		for _, s := range d.Statements {
			if s.Effect == "Allow" && everyone(s.Principal) && len(branches(s.Condition)) == 0 {
				out = append(out, fmt.Sprintf("%s: statement %q allows Principal \"*\" without a condition", d, s.Sid))
			}
		}
	}
	return out
}

func wildcardProblem(action string) string {
	if action == "<intrinsic>" {
		return "an action built by an intrinsic function cannot be checked"
	}
	if action == "*" {
		return `allows every action ("*")`
	}
	svc, op, ok := strings.Cut(action, ":")
	if !ok || svc == "" || op == "" {
		return fmt.Sprintf("malformed action %q", action)
	}
	if op == "*" {
		return fmt.Sprintf("allows every %s action (%q)", svc, action)
	}
	if SensitiveServices[strings.ToLower(svc)] && strings.ContainsAny(op, "*?") {
		return fmt.Sprintf("wildcard action %q on sensitive service %s: list the actions", action, svc)
	}
	return ""
}

// CheckResourceScope reports identity-policy Allow statements that grant a
// sensitive service's action other than Describe*/List* on Resource "*", or
// that use NotResource. (In a key policy, "*" means the key itself; resource
// policies are not identity grants.)
func CheckResourceScope(t *Template) []string {
	var out []string
	for _, d := range t.Documents() {
		if d.Kind != IdentityPolicy {
			continue
		}
		for _, s := range d.Statements {
			if s.Effect != "Allow" {
				continue
			}
			if s.NotResources {
				out = append(out, fmt.Sprintf("%s: statement %q allows NotResource", d, s.Sid))
			}
			if !hasStar(s.Resources) {
				continue
			}
			for _, a := range s.Actions {
				svc, op, _ := strings.Cut(a, ":")
				lop := strings.ToLower(op)
				if SensitiveServices[strings.ToLower(svc)] && !strings.HasPrefix(lop, "describe") && !strings.HasPrefix(lop, "list") {
					out = append(out, fmt.Sprintf("%s: statement %q grants %s on Resource \"*\": scope it to ARNs or conditions", d, s.Sid, a))
				}
			}
		}
	}
	return out
}

func hasStar(resources []any) bool {
	for _, r := range resources {
		if r == "*" {
			return true
		}
	}
	return false
}

// CheckRolesSelfContained reports roles with a managed policy that is not in
// the template (an AWS managed policy, for example): its content cannot be
// checked here.
func CheckRolesSelfContained(t *Template) []string {
	var out []string
	for _, r := range t.ResourcesOfType("AWS::IAM::Role") {
		_, unchecked, err := t.RoleDocuments(r.ID)
		if err != nil {
			out = append(out, err.Error())
		}
		out = append(out, unchecked...)
	}
	return out
}

// CheckBuckets reports S3 buckets without default encryption, without all
// four public access block settings, or without a TLS-only bucket policy.
func CheckBuckets(t *Template) []string {
	var out []string
	for _, b := range t.ResourcesOfType("AWS::S3::Bucket") {
		out = append(out, bucketBasics(t, b)...)
	}
	return out
}

func bucketBasics(t *Template, b Resource) []string {
	var out []string
	if bucketSSE(b) == "" {
		out = append(out, b.ID+": no default encryption (BucketEncryption)")
	}
	for _, setting := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if !isTrue(get(b.Properties, "PublicAccessBlockConfiguration", setting)) {
			out = append(out, fmt.Sprintf("%s: PublicAccessBlockConfiguration.%s is not true", b.ID, setting))
		}
	}
	if !tlsOnly(t, b.ID) {
		out = append(out, b.ID+`: no bucket policy denies s3:* on the bucket and its objects when aws:SecureTransport is "false"`)
	}
	return out
}

// bucketSSE is the bucket's default encryption algorithm, "" when none.
func bucketSSE(b Resource) string {
	rules, _ := get(b.Properties, "BucketEncryption", "ServerSideEncryptionConfiguration").([]any)
	for _, r := range rules {
		if alg, ok := get(r, "ServerSideEncryptionByDefault", "SSEAlgorithm").(string); ok && alg != "" {
			return alg
		}
	}
	return ""
}

// CheckEvidenceBucket reports what the evidence bucket lacks: Object Lock
// with a default retention, versioning, SSE-KMS with a key, server access
// logging, a policy that refuses PUTs asking for another encryption but not
// PUTs without an encryption header, a lifecycle that aborts incomplete
// multipart uploads and expires nothing, and what CheckBuckets asks of every
// bucket (public access block, TLS-only policy).
func CheckEvidenceBucket(t *Template, id string) []string {
	b, ok := t.Resources[id]
	if !ok || b.Type != "AWS::S3::Bucket" {
		return []string{id + ": no such AWS::S3::Bucket"}
	}
	var out []string
	if !isTrue(b.Properties["ObjectLockEnabled"]) {
		out = append(out, id+": ObjectLockEnabled is not true")
	}
	if get(b.Properties, "ObjectLockConfiguration", "ObjectLockEnabled") != "Enabled" {
		out = append(out, id+": ObjectLockConfiguration.ObjectLockEnabled is not Enabled")
	}
	retention := get(b.Properties, "ObjectLockConfiguration", "Rule", "DefaultRetention")
	if get(retention, "Mode") == nil || (get(retention, "Days") == nil && get(retention, "Years") == nil) {
		out = append(out, id+": no Object Lock default retention (Mode and Days or Years)")
	}
	if get(b.Properties, "VersioningConfiguration", "Status") != "Enabled" {
		out = append(out, id+": versioning is not Enabled")
	}
	if bucketSSE(b) != "aws:kms" {
		out = append(out, id+": default encryption is not aws:kms")
	} else {
		rules, _ := get(b.Properties, "BucketEncryption", "ServerSideEncryptionConfiguration").([]any)
		if len(rules) == 0 || get(rules[0], "ServerSideEncryptionByDefault", "KMSMasterKeyID") == nil {
			out = append(out, id+": SSE-KMS without KMSMasterKeyID (the AWS managed key cannot be shared or restricted)")
		}
	}
	if get(b.Properties, "LoggingConfiguration", "DestinationBucketName") == nil {
		out = append(out, id+": no server access logging")
	}
	if !deniesOtherEncryption(t, id) {
		out = append(out, id+": no bucket policy denies a PutObject that asks for an encryption other than aws:kms")
	}
	out = append(out, deniesHeaderlessPuts(t, id)...)
	out = append(out, deniesOverwrites(t, id)...)
	if abortIncompleteDays(b) == 0 {
		out = append(out, id+": no lifecycle rule aborts incomplete multipart uploads (their parts would stay, billed, forever)")
	}
	for _, r := range lifecycleRules(b) {
		for _, k := range []string{"ExpirationInDays", "ExpirationDate", "NoncurrentVersionExpiration", "NoncurrentVersionExpirationInDays", "Transitions", "Transition"} {
			if r[k] != nil {
				out = append(out, fmt.Sprintf("%s: lifecycle rule %v has %s: evidence is kept by Object Lock and the data custodian, not expired", id, r["Id"], k))
			}
		}
	}
	return append(out, bucketBasics(t, b)...)
}

// CheckStagingBucket reports what the staging bucket of OS-level collection
// lacks: it is no evidence store (no Object Lock, no versioning), the part
// lists under parts/ expire within a day and nothing else expires (tools/ is
// kept), incomplete multipart uploads are aborted, and what CheckBuckets asks
// of every bucket.
func CheckStagingBucket(t *Template, id string) []string {
	b, ok := t.Resources[id]
	if !ok || b.Type != "AWS::S3::Bucket" {
		return []string{id + ": no such AWS::S3::Bucket"}
	}
	var out []string
	if isTrue(b.Properties["ObjectLockEnabled"]) || get(b.Properties, "ObjectLockConfiguration") != nil {
		out = append(out, id+": Object Lock is configured: staged tools and part lists are not evidence")
	}
	if get(b.Properties, "VersioningConfiguration", "Status") == "Enabled" {
		out = append(out, id+": versioning is Enabled: expired part lists would stay as noncurrent versions")
	}
	partsExpire := false
	for _, r := range lifecycleRules(b) {
		if r["ExpirationInDays"] == nil && r["ExpirationDate"] == nil {
			continue
		}
		if rulePrefix(r) != "parts/" {
			out = append(out, fmt.Sprintf("%s: lifecycle rule %v expires objects outside parts/ (prefix %q): tools/ is kept", id, r["Id"], rulePrefix(r)))
			continue
		}
		if days, ok := r["ExpirationInDays"].(int); ok && days <= 1 {
			partsExpire = true
		}
	}
	if !partsExpire {
		out = append(out, id+": no lifecycle rule expires parts/ within 1 day")
	}
	if abortIncompleteDays(b) == 0 {
		out = append(out, id+": no lifecycle rule aborts incomplete multipart uploads")
	}
	return append(out, bucketBasics(t, b)...)
}

// lifecycleRules returns the enabled lifecycle rules of a bucket.
func lifecycleRules(b Resource) []map[string]any {
	var out []map[string]any
	rules, _ := get(b.Properties, "LifecycleConfiguration", "Rules").([]any)
	for _, r := range rules {
		if m, ok := r.(map[string]any); ok && m["Status"] == "Enabled" {
			out = append(out, m)
		}
	}
	return out
}

// rulePrefix is the key prefix a lifecycle rule applies to ("" = every key).
func rulePrefix(r map[string]any) string {
	if p, ok := r["Prefix"].(string); ok {
		return p
	}
	p, _ := get(r, "Filter", "Prefix").(string)
	return p
}

// abortIncompleteDays is the DaysAfterInitiation of an enabled rule that
// aborts incomplete multipart uploads on the whole bucket, 0 when none.
func abortIncompleteDays(b Resource) int {
	for _, r := range lifecycleRules(b) {
		if days, ok := get(r, "AbortIncompleteMultipartUpload", "DaysAfterInitiation").(int); ok && days > 0 && rulePrefix(r) == "" {
			return days
		}
	}
	return 0
}

// sseKeys are the condition keys of the encryption a PUT asks for.
var sseKeys = []string{"s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"}

// deniesHeaderlessPuts reports bucket policy statements that deny a PUT
// which carries no encryption header. UploadPart cannot carry one, and the
// presigned PUTs and parts a suspect instance uploads carry none: the
// bucket's default encryption (applied to every new object since 2023)
// encrypts them. A deny on another encryption must apply only when the
// header is present ("Null": {key: "false"} beside the comparison), and
// nothing may deny its absence ("Null": {key: "true"}).
func deniesHeaderlessPuts(t *Template, bucketID string) []string {
	var out []string
	for _, s := range bucketPolicyStatements(t, bucketID) {
		if s.Effect != "Deny" || !coversObjects(s.Resources, bucketID) ||
			(!contains(s.Actions, "s3:PutObject") && !contains(s.Actions, "s3:*")) {
			continue
		}
		for _, c := range branches(s.Condition) {
			for _, key := range sseKeys {
				if matchesAbsentKey(c, key) && !isFalse(get(c, "Null", key)) {
					out = append(out, fmt.Sprintf("%s: bucket policy statement %q denies a PutObject without the %s header "+
						"(UploadPart and presigned PUTs carry none): add \"Null\": {%q: \"false\"}", bucketID, s.Sid, key, key))
				}
			}
		}
	}
	return out
}

// OverwriteExemptions are the keys of the evidence bucket that may be
// written without If-None-Match (relative to the bucket ARN):
// manifest.json, which every run replaces (Object Lock keeps every version),
// and the objects the suspect instance PUTs itself through presigned URLs,
// whose scripts send no If-None-Match.
var OverwriteExemptions = []string{"cases/*/manifest.json", "cases/*/volatile/run-*", "cases/*/memory/run-*/report.json"}

// deniesOverwrites reports what the evidence bucket's policy lacks to keep
// evidence write-once: a Deny, to everyone, of s3:PutObject without the
// If-None-Match header ("Null": {"s3:if-none-match": "true"}), limited to
// the creating operations ("Bool": {"s3:ObjectCreationOperation": "true"},
// else every multipart upload fails at its first part), on every object
// but manifest.json (which the toolkit replaces: not exempt, every save
// fails) and the instance's presigned uploads (OverwriteExemptions).
func deniesOverwrites(t *Template, bucketID string) []string {
	var out []string
	found := false
	for _, s := range bucketPolicyStatements(t, bucketID) {
		if s.Effect != "Deny" || !everyone(s.Principal) || !contains(s.Actions, "s3:PutObject") || !requiresIfNoneMatch(s.Condition) {
			continue
		}
		found = true
		if !limitedToCreation(s.Condition) {
			out = append(out, fmt.Sprintf("%s: bucket policy statement %q denies PUTs without If-None-Match but not only object creations "+
				"(add \"Bool\": {\"s3:ObjectCreationOperation\": \"true\"}): every multipart upload would fail at its first part", bucketID, s.Sid))
		}
		out = append(out, overwriteScope(s, bucketID)...)
	}
	if !found {
		out = append(out, bucketID+": no bucket policy statement denies a PutObject without If-None-Match (s3:if-none-match): evidence can be written over")
	}
	return out
}

// overwriteScope checks what a write-once deny leaves out: manifest.json,
// and nothing beyond OverwriteExemptions.
func overwriteScope(s Statement, bucketID string) []string {
	if !s.NotResources {
		return []string{fmt.Sprintf("%s: bucket policy statement %q denies PUTs without If-None-Match on every object: "+
			"exempt cases/*/manifest.json (NotResource), which every run replaces", bucketID, s.Sid)}
	}
	var out []string
	exempt := map[string]bool{}
	for _, r := range s.Excluded {
		key, ok := objectKeyPattern(r, bucketID)
		if !ok || !contains(OverwriteExemptions, key) {
			out = append(out, fmt.Sprintf("%s: bucket policy statement %q exempts %v from the write-once deny (allowed: %v)", bucketID, s.Sid, r, OverwriteExemptions))
			continue
		}
		exempt[key] = true
	}
	if !exempt["cases/*/manifest.json"] {
		out = append(out, fmt.Sprintf("%s: bucket policy statement %q does not exempt cases/*/manifest.json, which every run replaces", bucketID, s.Sid))
	}
	return out
}

// objectKeyPattern returns the key part of an object ARN of the bucket
// ("${Bucket.Arn}/<key>").
func objectKeyPattern(r any, bucketID string) (string, bool) {
	sub, ok := get(r, "Fn::Sub").(string)
	if !ok {
		return "", false
	}
	return strings.CutPrefix(sub, "${"+bucketID+".Arn}/")
}

func requiresIfNoneMatch(condition any) bool {
	for _, c := range branches(condition) {
		if isTrue(get(c, "Null", "s3:if-none-match")) {
			return true
		}
	}
	return false
}

func limitedToCreation(condition any) bool {
	for _, c := range branches(condition) {
		if !isTrue(get(c, "Bool", "s3:ObjectCreationOperation")) {
			return false
		}
	}
	return true
}

// matchesAbsentKey reports whether a condition block tests key with an
// operator that matches when the request lacks the key: a negated operator
// without IfExists, or Null "true".
func matchesAbsentKey(condition any, key string) bool {
	m, _ := condition.(map[string]any)
	for op, keys := range m {
		v := get(keys, key)
		if v == nil {
			continue
		}
		switch {
		case op == "Null":
			if isTrue(v) {
				return true
			}
		case strings.HasSuffix(op, "IfExists"):
		case strings.Contains(op, "Not"):
			return true
		}
	}
	return false
}

// bucketPolicyStatements returns the statements of the bucket policies of a
// bucket of the template.
func bucketPolicyStatements(t *Template, bucketID string) []Statement {
	var out []Statement
	for _, p := range t.ResourcesOfType("AWS::S3::BucketPolicy") {
		if !refersTo(p.Properties["Bucket"], bucketID) {
			continue
		}
		for _, d := range t.Documents() {
			if d.Resource == p.ID {
				out = append(out, d.Statements...)
			}
		}
	}
	return out
}

func tlsOnly(t *Template, bucketID string) bool {
	for _, s := range bucketPolicyStatements(t, bucketID) {
		if s.Effect != "Deny" || !everyone(s.Principal) || !contains(s.Actions, "s3:*") {
			continue
		}
		if !coversBucket(s.Resources, bucketID) || !coversObjects(s.Resources, bucketID) {
			continue
		}
		for _, c := range branches(s.Condition) {
			if isFalse(get(c, "Bool", "aws:SecureTransport")) {
				return true
			}
		}
	}
	return false
}

func deniesOtherEncryption(t *Template, bucketID string) bool {
	for _, s := range bucketPolicyStatements(t, bucketID) {
		if s.Effect != "Deny" || !everyone(s.Principal) || !contains(s.Actions, "s3:PutObject") || !coversObjects(s.Resources, bucketID) {
			continue
		}
		for _, c := range branches(s.Condition) {
			if get(c, "StringNotEquals", "s3:x-amz-server-side-encryption") == "aws:kms" {
				return true
			}
		}
	}
	return false
}

func everyone(principal any) bool {
	return principal == "*" || get(principal, "AWS") == "*"
}

// coversBucket reports whether resources name the bucket itself.
func coversBucket(resources []any, bucketID string) bool {
	for _, r := range resources {
		if ga, ok := get(r, "Fn::GetAtt").([]any); ok && len(ga) == 2 && ga[0] == bucketID && ga[1] == "Arn" {
			return true
		}
		if sub, ok := get(r, "Fn::Sub").(string); ok && strings.HasSuffix(sub, ":::${"+bucketID+"}") {
			return true
		}
	}
	return false
}

// coversObjects reports whether resources name every object of the bucket.
func coversObjects(resources []any, bucketID string) bool {
	for _, r := range resources {
		sub, ok := get(r, "Fn::Sub").(string)
		if ok && (sub == "${"+bucketID+".Arn}/*" || strings.HasSuffix(sub, ":::${"+bucketID+"}/*")) {
			return true
		}
	}
	return false
}

// CheckTopics reports SNS topics without a KMS key.
func CheckTopics(t *Template) []string {
	var out []string
	for _, r := range t.ResourcesOfType("AWS::SNS::Topic") {
		if v := r.Properties["KmsMasterKeyId"]; v == nil || v == "" {
			out = append(out, r.ID+": no KmsMasterKeyId (topic not encrypted)")
		}
	}
	return out
}

// CheckLogGroups reports log groups without a retention.
func CheckLogGroups(t *Template) []string {
	var out []string
	for _, r := range t.ResourcesOfType("AWS::Logs::LogGroup") {
		if r.Properties["RetentionInDays"] == nil {
			out = append(out, r.ID+": no RetentionInDays (logs kept forever)")
		}
	}
	return out
}

// CheckLambdaLogGroups reports functions that do not log to a log group of
// the template: Lambda would create one itself, without retention.
func CheckLambdaLogGroups(t *Template) []string {
	var out []string
	for _, f := range t.ResourcesOfType("AWS::Lambda::Function") {
		m, _ := get(f.Properties, "LoggingConfig", "LogGroup").(map[string]any)
		id, _ := m["Ref"].(string)
		if t.Resources[id].Type != "AWS::Logs::LogGroup" {
			out = append(out, f.ID+": LoggingConfig.LogGroup does not refer to a log group of the template")
		}
	}
	return out
}

var actionTargetID = regexp.MustCompile(`^[A-Za-z0-9]{1,20}$`)

// CheckActionTargets checks Security Hub custom actions against the
// CreateActionTarget limits (Id: up to 20 alphanumeric characters; Name: up
// to 20 characters). cfn-lint 1.51 has no schema for this resource type.
func CheckActionTargets(t *Template) []string {
	var out []string
	for _, r := range t.ResourcesOfType("AWS::SecurityHub::ActionTarget") {
		if id, ok := r.Properties["Id"].(string); !ok || !actionTargetID.MatchString(id) {
			out = append(out, fmt.Sprintf("%s: Id %v is not 1-20 alphanumeric characters", r.ID, r.Properties["Id"]))
		}
		if name, ok := r.Properties["Name"].(string); !ok || strings.TrimSpace(name) == "" || len([]rune(name)) > 20 {
			out = append(out, fmt.Sprintf("%s: Name %v is not 1-20 characters", r.ID, r.Properties["Name"]))
		}
		if d, ok := r.Properties["Description"].(string); !ok || strings.TrimSpace(d) == "" {
			out = append(out, r.ID+": no Description")
		}
	}
	return out
}

// ManagedPolicyMaxChars is the IAM quota on a managed policy's size: 6,144
// characters, white space not counted.
const ManagedPolicyMaxChars = 6144

// CheckManagedPolicySizes reports managed policies whose document, once
// deployed, may exceed ManagedPolicyMaxChars: CloudFormation would fail the
// stack at deployment. Intrinsic functions are counted at a generous size of
// their result (each ${...} of an Fn::Sub and each Ref as 20 characters, each
// GetAtt as 100).
func CheckManagedPolicySizes(t *Template) []string {
	var out []string
	for _, r := range t.ResourcesOfType("AWS::IAM::ManagedPolicy") {
		data, err := json.Marshal(estimateDeployed(r.Properties["PolicyDocument"]))
		if err != nil {
			out = append(out, fmt.Sprintf("%s: policy document: %v", r.ID, err))
			continue
		}
		n := 0
		for _, c := range string(data) {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				n++
			}
		}
		if n > ManagedPolicyMaxChars {
			out = append(out, fmt.Sprintf("%s: the policy document is about %d characters, over the IAM quota of %d for a managed policy: split it",
				r.ID, n, ManagedPolicyMaxChars))
		}
	}
	return out
}

// estimateDeployed replaces the intrinsic functions of a value with strings
// of about the length CloudFormation would put in their place.
func estimateDeployed(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			switch {
			case x["Fn::Sub"] != nil:
				if sub, ok := x["Fn::Sub"].(string); ok {
					return subVariable.ReplaceAllString(sub, strings.Repeat("x", 20))
				}
			case x["Ref"] != nil:
				return strings.Repeat("x", 20)
			case x["Fn::GetAtt"] != nil:
				return strings.Repeat("x", 100)
			case x["Fn::If"] != nil:
				// The larger branch counts.
				var largest any
				size := -1
				for _, b := range branches(x) {
					data, _ := json.Marshal(estimateDeployed(b))
					if len(data) > size {
						largest, size = estimateDeployed(b), len(data)
					}
				}
				return largest
			}
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = estimateDeployed(e)
		}
		return m
	case []any:
		l := make([]any, 0, len(x))
		for _, e := range x {
			if e := estimateDeployed(e); e != nil {
				l = append(l, e)
			}
		}
		return l
	}
	return v
}

var subVariable = regexp.MustCompile(`\$\{[^}!]+\}`)

func contains(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}

func isTrue(v any) bool  { return v == true || v == "true" }
func isFalse(v any) bool { return v == false || v == "false" }
