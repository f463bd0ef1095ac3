package responder_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// outcome is what a response left where people and systems look: the case
// record (read back from the store), the instance's status tag, and the
// status the SNS message announced.
type outcome struct {
	record  *evidence.Manifest
	tag     string
	sns     step.Notification
	message string
}

func observe(t *testing.T, c *fakeaws.Cloud, store evidence.Store, instanceID string) outcome {
	t.Helper()
	var o outcome
	m, err := responder.Status(context.Background(), store, caseID)
	if err != nil {
		t.Fatalf("read the case record: %v", err)
	}
	o.record = m
	for _, tag := range c.Instance(instanceID).Tags {
		if aws.ToString(tag.Key) == step.TagStatus {
			o.tag = aws.ToString(tag.Value)
		}
	}
	pub := c.Published()
	if len(pub) != 1 {
		t.Fatalf("%d messages published, want 1", len(pub))
	}
	o.message = pub[0].Message
	if o.sns, err = step.ParseNotification(o.message); err != nil {
		t.Fatalf("notification: %v", err)
	}
	return o
}

// assertWord checks that the record, its run, the tag and the SNS message
// all say the same word.
func (o outcome) assertWord(t *testing.T, want string) {
	t.Helper()
	if o.record.Status != want || o.record.Runs[len(o.record.Runs)-1].Status != want {
		t.Errorf("record status %s (run %s), want %s", o.record.Status, o.record.Runs[len(o.record.Runs)-1].Status, want)
	}
	if o.tag != want {
		t.Errorf("instance tag %s=%q, want %q", step.TagStatus, o.tag, want)
	}
	if o.sns.Status != want || !strings.Contains(o.message, "Result: "+evidence.StatusHeadline(want)+":") {
		t.Errorf("SNS message status %s, want %s:\n%s", o.sns.Status, want, o.message)
	}
}

// A plan without containment steps proves no isolation: it is acquired,
// and nothing says the instance is contained or isolated.
func TestPlanWithoutContainmentIsAcquired(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	topic := c.AddTopic("responder")
	store := &evidence.Folder{Root: t.TempDir()}
	res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID, TopicARN: topic,
		Plan: []string{"metadata", "snapshots", "case-tag", "notify"}})
	if res.Status != evidence.CaseAcquired || res.Err != nil {
		t.Fatalf("status %s, err %v", res.Status, res.Err)
	}
	o := observe(t, c, store, s.InstanceID)
	o.assertWord(t, evidence.CaseAcquired)
	if strings.Contains(o.message, "CONTAINED") || strings.Contains(o.message, "the instance isolated") {
		t.Errorf("the message claims containment:\n%s", o.message)
	}
	if v := c.Instance(s.InstanceID); len(v.NetworkInterfaces[0].Groups) != 1 || aws.ToString(v.NetworkInterfaces[0].Groups[0].GroupId) != s.GroupID {
		t.Errorf("an evidence-only plan changed the interfaces: %+v", v.NetworkInterfaces[0].Groups)
	}
}

// The status comes from what each containment step read back: a change the
// API accepted but that did not take effect is not containment, and the
// tag, the record and the message say what was proved.
func TestStatusComesFromReadBacks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(c *fakeaws.Cloud)
		want    string
		open    []string // containment steps that must not hold
	}{
		{"every read-back holds", nil, evidence.CaseContained, nil},
		{"interfaces not moved though the calls were accepted",
			func(c *fakeaws.Cloud) { c.Ignore("ModifyNetworkInterfaceAttribute", -1) },
			evidence.CasePartiallyContained, []string{"quarantine"}},
		{"instance profile not removed though the call was accepted",
			func(c *fakeaws.Cloud) { c.Ignore("DisassociateIamInstanceProfile", -1) },
			evidence.CasePartiallyContained, []string{"instance-profile"}},
		{"termination protection not set though the call was accepted",
			func(c *fakeaws.Cloud) { c.Ignore("ModifyInstanceAttribute", -1) },
			evidence.CasePartiallyContained, []string{"termination-protection"}},
		{"quarantine refused",
			func(c *fakeaws.Cloud) { c.Deny("ModifyNetworkInterfaceAttribute") },
			evidence.CasePartiallyContained, []string{"quarantine"}},
		{"every containment change refused",
			func(c *fakeaws.Cloud) {
				c.Deny("ModifyNetworkInterfaceAttribute")
				c.Deny("ModifyInstanceAttribute")
				c.Deny("DisassociateIamInstanceProfile")
				c.Deny("PutRolePolicy")
				// shutdown-behavior would find "stop" already set: held.
				c.Deny("DescribeInstanceAttribute")
				// auto-scaling and load-balancers would find nothing to
				// do: held.
				c.Deny("DescribeAutoScalingInstances")
				c.Deny("DescribeTargetGroups")
			},
			evidence.CaseContainmentFailed, []string{"quarantine", "termination-protection", "shutdown-behavior", "instance-profile", "credential-revocation"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := fakeaws.NewSuspect()
			topic := c.AddTopic("responder")
			if tc.prepare != nil {
				tc.prepare(c)
			}
			store := &evidence.Folder{Root: t.TempDir()}
			res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID, TopicARN: topic})
			if res.Status != tc.want {
				t.Errorf("status %s, want %s (err %v)", res.Status, tc.want, res.Err)
			}
			o := observe(t, c, store, s.InstanceID)
			o.assertWord(t, tc.want)
			for _, name := range []string{"quarantine", "termination-protection", "shutdown-behavior", "instance-profile", "credential-revocation"} {
				rec := stepOf(t, o.record.Steps, name)
				wantHeld := !contains(tc.open, name)
				if held := rec.Containment == evidence.ContainmentHeld; held != wantHeld {
					t.Errorf("%s: containment %q (%s %s), want held=%t", name, rec.Containment, rec.Status, rec.Error, wantHeld)
				}
				if !wantHeld && !strings.Contains(o.message, name+" (") {
					t.Errorf("the message does not say %s is still open:\n%s", name, o.message)
				}
			}
		})
	}
}

// A run cancelled midway (Ctrl-C, a deadline) is recorded as interrupted,
// tells its subscribers so, and tags the instance so; running the same case
// again resumes it to contained.
func TestInterruptedRunIsRecordedAndResumes(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	topic := c.AddTopic("responder")
	store := &evidence.Folder{Root: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.OnCall = func(op string) {
		if op == "ModifyNetworkInterfaceAttribute" {
			cancel()
		}
	}
	r := newResponder(c, store)
	res, err := r.Respond(ctx, responder.Request{InstanceID: s.InstanceID, CaseID: caseID, TopicARN: topic})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != evidence.CaseInterrupted || !res.Interrupted || res.SaveErr != nil {
		t.Fatalf("status %s, interrupted %t, save error %v", res.Status, res.Interrupted, res.SaveErr)
	}
	o := observe(t, c, store, s.InstanceID)
	o.assertWord(t, evidence.CaseInterrupted)
	if rec := stepOf(t, o.record.Steps, "quarantine"); rec.Containment == evidence.ContainmentHeld {
		t.Errorf("quarantine recorded as held in an interrupted run: %+v", rec)
	}

	c.OnCall = nil
	res = respond(t, c, store, responder.Request{InstanceID: s.InstanceID, CaseID: caseID, CaseIDGiven: true, TopicARN: topic})
	if res.Status != evidence.CaseContained {
		t.Fatalf("resumed: status %s (err %v)", res.Status, res.Err)
	}
	assertQuarantined(t, c, s.InstanceID)
	m, err := responder.Status(context.Background(), store, caseID)
	if err != nil || m.Status != evidence.CaseContained || len(m.Runs) != 2 || m.Runs[0].Status != evidence.CaseInterrupted {
		t.Fatalf("record after resuming: %+v (%v)", m, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
