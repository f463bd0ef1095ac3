package investigate

import (
	"strings"
	"testing"
)

// The quota the README and --help state: a workspace's policy, at its
// longest (a 64-character case ID, a 63-character bucket name, a 17-digit
// instance ID, the longest Region name), leaves room on one role for at
// least seven workspaces at once within IAM's 10,240 characters, and a
// typical one for eight.
func TestAccessPolicyFitsTheQuota(t *testing.T) {
	longest, err := accessDocument("aws-us-gov", "ap-southeast-5", "111122223333", strings.Repeat("b", 63), strings.Repeat("c", 64),
		"arn:aws-us-gov:ec2:ap-southeast-5:111122223333:instance/i-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	typical, err := accessDocument("aws", "eu-west-1", "111122223333", "responder-forensics-evidencebucket-1a2b3c4d5e6f", "case-20261123-104500-1a2b3c4d",
		"arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("policy characters: longest %d, typical %d", len(longest), len(typical))
	if n := MaxRolePolicyChars / len(longest); n < 7 {
		t.Errorf("only %d workspaces of the longest policy (%d characters) fit", n, len(longest))
	}
	if n := MaxRolePolicyChars / len(typical); n < 8 {
		t.Errorf("only %d typical workspaces (%d characters) fit", n, len(typical))
	}
}
