package main

import (
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/fakeaws"
)

// The locks folder of the evidence store is no case: every command that
// takes a case ID refuses it (in any letter case) as bad input, before any
// AWS call and before anything is written.
func TestEveryCommandRefusesTheLocksFolder(t *testing.T) {
	for _, id := range []string{"locks", "LOCKS"} {
		for name, args := range map[string]func(instance, dir string) []string{
			"respond": func(i, d string) []string {
				return []string{"respond", "--instance-id", i, "--case-id", id, "--evidence-dir", d}
			},
			"status": func(_, d string) []string { return []string{"status", "--case-id", id, "--evidence-dir", d} },
			"verify": func(_, d string) []string {
				return []string{"verify", "--case-id", id, "--evidence-dir", d, "--no-snapshots"}
			},
			"report": func(_, d string) []string { return []string{"report", "--case-id", id, "--evidence-dir", d} },
			"release": func(_, d string) []string {
				return []string{"release", "--case-id", id, "--evidence-dir", d, "--yes"}
			},
			"hold": func(_, _ string) []string { return []string{"hold", "--case-id", id, "--evidence-bucket", "evidence"} },
			"unhold": func(_, _ string) []string {
				return []string{"unhold", "--case-id", id, "--evidence-bucket", "evidence"}
			},
			"preserve": func(_, d string) []string {
				return []string{"preserve", "--case-id", id, "--evidence-dir", d, "--forensics-account", "444455556666", "--forensics-kms-key", "alias/k"}
			},
		} {
			t.Run(name+" "+id, func(t *testing.T) {
				c, s := fakeaws.NewSuspect()
				c.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
				dir := t.TempDir()
				code, _, errOut := runCLI(t, c, args(s.InstanceID, dir)...)
				if code != exitUsage || !strings.Contains(errOut, "reserved") {
					t.Fatalf("exit %d, stderr %q; want %d and the ID refused as reserved", code, errOut, exitUsage)
				}
				if n := c.CallCount("DescribeInstances") + c.CallCount("GetCallerIdentity") + c.CallCount("PutObject"); n != 0 {
					t.Errorf("%d AWS calls for a refused case ID", n)
				}
			})
		}
	}
}
