package integration

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestPreserve copies the case snapshots into the forensics account, through
// the binary, against moto, then checks the copies with the
// AWS API and runs it again to check that no second copy is made.
//
// moto keeps accounts apart (an assumed role in another account sees its own,
// empty state), so the copy is made with the same credentials in the same
// account, which is then the forensics account (preserve refuses a
// --forensics-account its credentials are not of): it shows the calls, the
// tags, the record and idempotency. It cannot show, and the fake-based tests
// in responder/preserve_test.go cover instead: the share with another
// account, and that the forensics account sees only what was shared with it; that a snapshot under the AWS managed
// key aws/ebs cannot be shared (OperationNotPermitted) and is re-encrypted
// first; the encryption of the copies (moto's CopySnapshot ignores Encrypted
// and KmsKeyId); key policies; progress while pending (moto completes
// snapshots at once); and the concurrent copy quota (ResourceLimitExceeded).
func TestPreserve(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	ctx := context.Background()
	caseID := "case-preserve"
	if res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-dir", f.caseDir,
		"--steps", "snapshots"); res.Code != exitOK {
		t.Fatalf("respond: want exit %d:\n%s", exitOK, res)
	}
	sources := assertSnapshots(t, f.aws, l, caseID) // before any copy carries the case tag
	key := "arn:aws:kms:" + l.Region + ":" + l.AccountID + ":key/11111111-2222-3333-4444-555555555555"
	preserveArgs := func(account string) []string {
		return []string{"preserve", "--case-id", caseID, "--forensics-account", account, "--forensics-kms-key", key,
			"--evidence-dir", f.caseDir, "--wait", "--poll-interval", "200ms", "--timeout", "1m", "--output", "json"}
	}

	// Credentials of another account than --forensics-account: refused
	// before anything is copied.
	if res := f.run(preserveArgs("444455556666")...); res.Code != exitUsage || !strings.Contains(res.Stderr, "not in the forensics account 444455556666") {
		t.Fatalf("preserve into an account the credentials are not of: want exit %d:\n%s", exitUsage, res)
	}
	for _, src := range sources {
		out, err := f.aws.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("tag:responder:source-snapshot-id"), Values: []string{src}}}})
		must(t, err)
		if len(out.Snapshots) != 0 {
			t.Fatalf("a refused preserve copied %s", src)
		}
	}

	forensicsAccount := l.AccountID
	args := preserveArgs(forensicsAccount)

	copies := map[string]string{} // source -> copy
	for attempt := 1; attempt <= 2; attempt++ {
		res := f.run(args...)
		if res.Code != exitOK {
			t.Fatalf("preserve (run %d): want exit %d:\n%s", attempt, exitOK, res)
		}
		var printed struct {
			Status         string `json:"status"`
			SnapshotCopies []struct {
				Source   string `json:"source_snapshot_id"`
				Shared   string `json:"shared_snapshot_id"`
				Snapshot string `json:"snapshot_id"`
				State    string `json:"state"`
			} `json:"snapshot_copies"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &printed); err != nil || printed.Status != "preserved" || len(printed.SnapshotCopies) != len(sources) {
			t.Fatalf("preserve (run %d) printed %v:\n%s", attempt, err, res.Stdout)
		}
		for _, cp := range printed.SnapshotCopies {
			if cp.State != "completed" || cp.Shared != cp.Source {
				t.Errorf("run %d: copy %+v", attempt, cp)
			}
			if prev, ok := copies[cp.Source]; ok && prev != cp.Snapshot {
				t.Errorf("run %d copied %s again: %s, first %s", attempt, cp.Source, cp.Snapshot, prev)
			}
			copies[cp.Source] = cp.Snapshot
		}

		for _, src := range sources {
			attr, err := f.aws.EC2.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{
				SnapshotId: aws.String(src), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
			must(t, err)
			var users []string
			for _, p := range attr.CreateVolumePermissions {
				users = append(users, aws.ToString(p.UserId))
			}
			if len(users) != 0 {
				t.Errorf("%s is shared with %v, want with no account (the copy is made where it is)", src, users)
			}
			out, err := f.aws.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
				Filters: []ec2types.Filter{{Name: aws.String("tag:responder:source-snapshot-id"), Values: []string{src}}}})
			must(t, err)
			if len(out.Snapshots) != 1 {
				t.Fatalf("run %d: %d copies of %s, want 1", attempt, len(out.Snapshots), src)
			}
			got := out.Snapshots[0]
			tags := map[string]string{}
			for _, tag := range got.Tags {
				tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			if aws.ToString(got.SnapshotId) != copies[src] || got.State != ec2types.SnapshotStateCompleted ||
				tags[tagCase] != caseID || tags["responder:source-account-id"] != l.AccountID {
				t.Errorf("copy of %s: %s %s tags %v; recorded %s", src, aws.ToString(got.SnapshotId), got.State, tags, copies[src])
			}
		}
	}

	var m struct {
		Runs []struct {
			Playbook string `json:"playbook"`
		} `json:"runs"`
		SnapshotCopies []struct {
			Source   string `json:"source_snapshot_id"`
			Snapshot string `json:"snapshot_id"`
			Account  string `json:"account_id"`
			State    string `json:"state"`
		} `json:"snapshot_copies"`
	}
	must(t, json.Unmarshal(dirStore(f.caseDir, caseID)(t, "manifest.json"), &m))
	// The second preserve found everything as recorded: no run was added.
	if len(m.Runs) != 2 || m.Runs[1].Playbook != "preserve" {
		t.Errorf("runs %+v, want respond then one preserve run", m.Runs)
	}
	for _, cp := range m.SnapshotCopies {
		if cp.Snapshot != copies[cp.Source] || cp.Account != forensicsAccount || cp.State != "completed" {
			t.Errorf("recorded copy %+v", cp)
		}
	}
	if len(m.SnapshotCopies) != len(sources) {
		t.Errorf("recorded %d copies, want %d", len(m.SnapshotCopies), len(sources))
	}

	// verify finds every copy, completed.
	res := f.run("verify", "--case-id", caseID, "--evidence-dir", f.caseDir, "--output", "json")
	var v struct {
		Checks []struct {
			Kind   string `json:"kind"`
			Status string `json:"status"`
		} `json:"checks"`
	}
	if res.Code != exitOK || json.Unmarshal([]byte(res.Stdout), &v) != nil {
		t.Fatalf("verify: want exit %d:\n%s", exitOK, res)
	}
	okCopies := 0
	for _, c := range v.Checks {
		if c.Kind == "snapshot-copy" && c.Status == "ok" {
			okCopies++
		}
	}
	if okCopies != len(sources) {
		t.Errorf("verify checked %d copies ok, want %d:\n%s", okCopies, len(sources), res.Stdout)
	}
}
