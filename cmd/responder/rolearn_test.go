package main

import (
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/fakeaws"
)

// A --role-arn that is not an IAM role ARN is bad input: refused with exit
// 2 before any AWS call (it reached STS's AssumeRole, at the first call).
func TestRoleARNCheckedBeforeAnyCall(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := respondCase(t, c, s, "case-role")
	for _, arn := range []string{"responder-ir-member", "arn:aws:iam::111122223333:user/alice", "arn:aws:iam::1111:role/r"} {
		calls := c.CallCount("DescribeInstances")
		before := c.StateDigest()
		for _, args := range [][]string{
			{"release", "--case-id", "case-role", "--evidence-dir", dir, "--yes", "--role-arn", arn},
			{"respond", "-i", s.InstanceID, "--evidence-dir", dir, "--role-arn", arn},
		} {
			code, _, errOut := runReleaseCLI(t, c, "", false, args...)
			if code != exitUsage || !strings.Contains(errOut, "--role-arn") || c.CallCount("DescribeInstances") != calls || c.StateDigest() != before {
				t.Errorf("%s --role-arn %s: exit %d %q", args[0], arn, code, errOut)
			}
		}
	}
}
