package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Exit codes of the responder command.
const (
	exitOK             = 0 // contained, evidence taken, notified
	exitContainFailed  = 1
	exitUsage          = 2
	exitEvidenceFailed = 3
	exitCouldNotStart  = 4
	exitDryRun         = 5 // would-contain, would-acquire
)

// TestRespond contains the lab instance with each evidence store, checks the
// result on AWS and in the store, then runs the same case again and checks
// that nothing more changed.
func TestRespond(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store string // "bucket" or "dir"
		extra []string
	}{
		{name: "bucket", store: "bucket"},
		{name: "dir", store: "dir"},
		// moto's AssumeRole does not check that the role exists or trusts the
		// caller; this covers the wiring of the assumed-role clients only.
		{name: "assumed role", store: "bucket", extra: []string{
			"--role-arn", "arn:aws:iam::123456789012:role/responder-member", "--external-id", "lab-external-id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t)
			l := f.buildLab()
			caseID := "case-" + slug(tc.name) + "-1"
			args := []string{"respond", "--instance-id", l.InstanceID, "--case-id", caseID,
				"--topic-arn", l.TopicARN, "--output", "json"}
			var get evidenceStore
			var storeArgs []string
			if tc.store == "bucket" {
				storeArgs = []string{"--evidence-bucket", l.Bucket}
				get = bucketStore(f.aws, l.Bucket, caseID)
			} else {
				storeArgs = []string{"--evidence-dir", f.caseDir}
				get = dirStore(f.caseDir, caseID)
			}
			args = append(append(args, storeArgs...), tc.extra...)

			res := f.run(args...)
			if res.Code != exitOK {
				t.Fatalf("want exit %d:\n%s", exitOK, res)
			}
			var printed struct {
				CaseID string `json:"case_id"`
			}
			if err := json.Unmarshal([]byte(res.Stdout), &printed); err != nil || printed.CaseID != caseID {
				t.Errorf("--output json printed case_id %q (%v), want %q:\n%s", printed.CaseID, err, caseID, res.Stdout)
			}
			assertContained(t, f.aws, l, caseID)
			snaps := assertSnapshots(t, f.aws, l, caseID)
			locked := f.locks.Locked()
			for _, id := range snaps {
				if locked[id] != "governance" {
					t.Errorf("snapshot %s: lock %q, want governance (the default)", id, locked[id])
				}
			}
			m := assertManifest(t, get, l, caseID, snaps)
			if failed := failedSteps(m); len(failed) > 0 {
				t.Errorf("exit 0 but steps failed: %v", failed)
			}
			assertNotified(t, f.aws, l, caseID)

			// The same case again: already contained, nothing new to take.
			before := observe(t, f.aws, l)
			res = f.run(args...)
			if res.Code != exitOK {
				t.Fatalf("second run: want exit %d:\n%s", exitOK, res)
			}
			if after := observe(t, f.aws, l); !reflect.DeepEqual(after, before) {
				t.Errorf("second run changed the instance:\nbefore %+v\nafter  %+v", before, after)
			}
			assertContained(t, f.aws, l, caseID)
			assertManifest(t, get, l, caseID, assertSnapshots(t, f.aws, l, caseID))

			status := f.run(append([]string{"status", "--case-id", caseID, "--output", "json"}, storeArgs...)...)
			if status.Code != exitOK {
				t.Errorf("status: want exit %d:\n%s", exitOK, status)
			}
		})
	}
}

// TestDryRunChangesNothing: a dry run reads, plans and reports, but leaves
// the instance as it was.
func TestDryRunChangesNothing(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	before := observe(t, f.aws, l)
	res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", "case-dry-run",
		"--evidence-dir", f.caseDir, "--topic-arn", l.TopicARN, "--dry-run")
	if res.Code != exitDryRun || !strings.Contains(res.Stdout, "WOULD CONTAIN") {
		t.Fatalf("want exit %d and would-contain:\n%s", exitDryRun, res)
	}
	if after := observe(t, f.aws, l); !reflect.DeepEqual(after, before) {
		t.Errorf("dry run changed the instance:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestRejectsBadInput: usage errors exit 2 before any AWS call.
func TestRejectsBadInput(t *testing.T) {
	f := setup(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"malformed instance ID", []string{"respond", "--instance-id", "not-an-instance", "--evidence-dir", f.caseDir}},
		{"no instance ID", []string{"respond", "--evidence-dir", f.caseDir}},
		{"two evidence stores", []string{"respond", "--instance-id", "i-0123456789abcdef0", "--evidence-dir", f.caseDir, "--evidence-bucket", "b"}},
		{"unknown output", []string{"respond", "--instance-id", "i-0123456789abcdef0", "--evidence-dir", f.caseDir, "--output", "yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.proxy.Reset()
			res := f.run(tc.args...)
			if res.Code != exitUsage {
				t.Errorf("want exit %d:\n%s", exitUsage, res)
			}
			if n := f.proxy.Requests("*"); n != 0 {
				t.Errorf("made %d AWS requests before rejecting the input", n)
			}
		})
	}
}

// TestCannotStart: an instance that is not there (or no longer running)
// exits 4 without changing anything.
func TestCannotStart(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	_, err := f.aws.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{l.InstanceID}})
	must(t, err)
	for _, tc := range []struct{ name, instance string }{
		{"nonexistent", "i-0123456789abcdef0"},
		{"terminated", l.InstanceID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.run("respond", "--instance-id", tc.instance, "--case-id", "case-"+slug(tc.name),
				"--evidence-dir", f.caseDir, "--topic-arn", l.TopicARN)
			if res.Code != exitCouldNotStart {
				t.Errorf("want exit %d:\n%s", exitCouldNotStart, res)
			}
		})
	}
}

// TestRespondUnderThrottling: EC2 throttles the calls on the containment
// path; the SDK's retryer must absorb it and the response still succeed.
func TestRespondUnderThrottling(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	throttled := map[string]int{"DescribeInstances": 1, "ModifyNetworkInterfaceAttribute": 2, "CreateSnapshots": 2}
	for action, n := range throttled {
		f.proxy.Throttle(action, n)
	}
	caseID := "case-throttled"
	res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", caseID,
		"--evidence-bucket", l.Bucket, "--topic-arn", l.TopicARN)
	if res.Code != exitOK {
		t.Fatalf("want exit %d under throttling:\n%s", exitOK, res)
	}
	for action, n := range throttled {
		if got := f.proxy.Injected(action); got != n {
			t.Errorf("%s was throttled %d times, want %d (was it called?)", action, got, n)
		}
	}
	assertContained(t, f.aws, l, caseID)
	assertManifest(t, bucketStore(f.aws, l.Bucket, caseID), l, caseID, assertSnapshots(t, f.aws, l, caseID))
}

// TestScreenshotUnsupported: EC2 refuses screenshots on some instance types;
// that is a recorded skip, not a failure.
func TestScreenshotUnsupported(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	f.proxy.Stub("GetConsoleScreenshot", http.StatusBadRequest,
		EC2Error("UnsupportedOperation", "This instance type does not support console screenshots."))
	caseID := "case-no-screenshot"
	res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-dir", f.caseDir)
	if res.Code != exitOK {
		t.Fatalf("want exit %d:\n%s", exitOK, res)
	}
	m := assertManifest(t, dirStore(f.caseDir, caseID), l, caseID, assertSnapshots(t, f.aws, l, caseID))
	if failed := failedSteps(m); len(failed) > 0 {
		t.Errorf("steps failed: %v", failed)
	}
	assertContained(t, f.aws, l, caseID)
	// No topic was given: nothing may be published.
	out, err := f.aws.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(l.QueueURL), WaitTimeSeconds: 1})
	must(t, err)
	if len(out.Messages) != 0 {
		t.Errorf("published %d messages without --topic-arn", len(out.Messages))
	}
}
