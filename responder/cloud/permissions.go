package cloud

import "sort"

// Permission is one IAM action that a role must be granted so that the
// toolkit's calls succeed.
type Permission struct {
	Action  string   // the IAM action, for example "iam:PassRole"
	Account string   // WorkloadAccount or EvidenceAccount
	For     []string // the API operations (service:Operation) that need it
}

// Permissions returns every IAM action the operations in the registry need,
// per account, sorted by account and action: each operation's own action
// (Operation.Action) plus the actions AWS authorises besides it (the
// "dependent actions" of the Service Authorization Reference, and the KMS
// actions that SSE-KMS needs). Operations that IAM does not authorise are
// left out. The CloudFormation tests check the deployed roles against this
// list, so it is derived from Operations and cannot drift from the code.
func Permissions() []Permission {
	type key struct{ account, action string }
	byKey := map[key]*Permission{}
	add := func(account, action, api string) {
		k := key{account, action}
		p, ok := byKey[k]
		if !ok {
			p = &Permission{Action: action, Account: account}
			byKey[k] = p
		}
		p.For = append(p.For, api)
	}
	for _, op := range Operations() {
		if _, free := RequiresNoPermission[op.API]; free {
			continue
		}
		add(op.Account, op.Action, op.API)
		for _, dep := range dependentActions[op.API] {
			add(op.Account, dep, op.API)
		}
	}
	out := make([]Permission, 0, len(byKey))
	for _, p := range byKey {
		sort.Strings(p.For)
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Action < out[j].Action
	})
	return out
}

// RequiresNoPermission lists the operations that IAM does not authorise, with
// the reason; no policy needs to grant them.
var RequiresNoPermission = map[string]string{
	// "No permissions are required to perform this operation" (STS API
	// reference); even an explicit deny does not stop it.
	"sts:GetCallerIdentity": "AWS STS answers it for every caller, whatever the policies say",
}

// dependentActions maps an operation (service:Operation, as in
// Operation.API) to the IAM actions AWS checks besides its own action.
// Keep each entry to what the toolkit's call actually sends.
var dependentActions = map[string][]string{
	// Reading an encrypted snapshot through the EBS direct APIs needs
	// kms:Decrypt on its key (EBS user guide, "Control access to EBS direct
	// APIs using IAM": encrypted snapshots).
	"ebs:GetSnapshotBlock": {"kms:Decrypt"},
	// The instance profile's role is passed to EC2.
	"ec2:AssociateIamInstanceProfile": {"iam:PassRole"},
	// Tags given in TagSpecifications are authorised as ec2:CreateTags with
	// ec2:CreateAction set to the creating call (every resource the toolkit
	// creates carries the case tags).
	"ec2:CreateSnapshots":     {"ec2:CreateTags"},
	"ec2:CreateSecurityGroup": {"ec2:CreateTags"},
	// responder investigate: the analysis instance is launched with the
	// analysis instance profile (its role is passed to EC2) and tagged in
	// the call; a working volume is restored from an encrypted snapshot
	// copy, encrypted with the forensics key, through EBS's grant on it
	// (EBS user guide, "Permissions for IAM users" of EBS encryption).
	"ec2:RunInstances": {"ec2:CreateTags", "iam:PassRole"},
	"ec2:CreateVolume": {"ec2:CreateTags", "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
		"kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"},
	// Copying an encrypted snapshot (a shared one, or one re-encrypted under
	// a customer managed key) uses the source and the destination key through
	// EC2, which holds a grant while it works (EBS user guide, sharing and
	// copying encrypted snapshots).
	"ec2:CopySnapshot": {"ec2:CreateTags", "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
		"kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"},
	// Without s3:ListBucket, S3 answers a request for a missing key with 403
	// instead of 404, and the evidence store cannot tell "not written yet"
	// from "access denied" (HeadObject before every write-once PUT).
	// The evidence store also reads an object's lock state with HeadObject:
	// S3 returns the Object Lock mode and retain-until date only to callers
	// with s3:GetObjectRetention, the legal hold status only with
	// s3:GetObjectLegalHold, and (ChecksumMode ENABLED) the checksum of an
	// SSE-KMS object only with kms:Decrypt.
	// Naming a version (VersionId: verify reads the version the record
	// names) is authorised by s3:GetObjectVersion instead of s3:GetObject.
	"s3:HeadObject": {"kms:Decrypt", "s3:GetObjectLegalHold", "s3:GetObjectRetention", "s3:GetObjectVersion", "s3:ListBucket"},
	// Reading back an object encrypted with SSE-KMS decrypts its data key;
	// a missing key must answer 404 as above; a version as above.
	"s3:GetObject": {"s3:ListBucket", "kms:Decrypt", "s3:GetObjectVersion"},
	// A PUT into a bucket whose default (or requested) encryption is SSE-KMS
	// asks KMS for a data key with the caller's permissions.
	"s3:PutObject": {"kms:GenerateDataKey"},
	// Publishing to a KMS-encrypted topic needs both (Amazon SNS developer
	// guide, "Encryption at rest": publishers need kms:GenerateDataKey* and
	// kms:Decrypt on the topic's key).
	"sns:Publish": {"kms:Decrypt", "kms:GenerateDataKey"},
}
