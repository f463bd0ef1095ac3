package responder_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// lastNotification is the JSON part of the last message published to the
// topic.
func lastNotification(t *testing.T, c *fakeaws.Cloud, topic string) step.Notification {
	t.Helper()
	var last *fakeaws.PublishedMessage
	for _, m := range c.Published() {
		if m.TopicArn == topic {
			last = &m
		}
	}
	if last == nil {
		t.Fatalf("nothing published to %s", topic)
	}
	n, err := step.ParseNotification(last.Message)
	if err != nil {
		t.Fatalf("notification: %v", err)
	}
	if got := aws.ToString(last.Attributes["status"].StringValue); got != n.Status {
		t.Errorf("status attribute %q, JSON %q", got, n.Status)
	}
	return n
}

// Without the network ACL path, the quarantine's record says it was not
// used.
func TestQuarantineRecordsTheNetworkACLPathUnused(t *testing.T) {
	c, id := releaseSuspect(t)
	res := respond(t, c, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: id, Plan: releasePlan})
	if rec := stepOf(t, res.Steps, "quarantine"); !strings.Contains(string(rec.After), `"network_acl_path":false`) {
		t.Errorf("quarantine after %s: want network_acl_path false", rec.After)
	}
}

// A release publishes to the topic with the status word of the record.
func TestReleaseNotifiesItsStatus(t *testing.T) {
	c, id := releaseSuspect(t)
	topic := c.AddTopic("responder")
	store := &evidence.Folder{Root: t.TempDir()}
	if res := respond(t, c, store, responder.Request{InstanceID: id, Plan: append(slices.Clone(releasePlan), "notify"), TopicARN: topic}); res.Status != evidence.CaseContained {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	rel := release(t, c, store, responder.ReleaseRequest{TopicARN: topic})
	n := lastNotification(t, c, topic)
	m, err := responder.Status(t.Context(), store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Status != evidence.CaseReleased || n.Status != m.Status || n.Status != m.Runs[len(m.Runs)-1].Status || n.Run != "release" {
		t.Fatalf("release %s, record %s, notification %s (run %q)", rel.Status, m.Status, n.Status, n.Run)
	}
	if stepOf(t, rel.Steps, "notify").Status != evidence.StatusOK {
		t.Errorf("notify: %+v", stepOf(t, rel.Steps, "notify"))
	}
}

// A release whose credentials may not pass the profile's role (the
// Lambda's) does not associate it: release-incomplete, the command for the
// release role in the record, and the same word in the notification.
func TestReleaseWithoutPassRoleIsIncompleteAndSaysWhatToRun(t *testing.T) {
	c, id := releaseSuspect(t)
	topic := c.AddTopic("responder")
	store := &evidence.Folder{Root: t.TempDir()}
	original := stateOf(t, c, id)
	respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})

	rel := release(t, c, store, responder.ReleaseRequest{TopicARN: topic, CannotPassRoles: true})
	if rel.Status != evidence.CaseReleaseIncomplete {
		t.Fatalf("release: %s, want release-incomplete", rel.Status)
	}
	got := stateOf(t, c, id)
	if got.Profile != "" {
		t.Fatalf("the profile was associated with credentials that may not pass its role: %q", got.Profile)
	}
	want := original
	want.Profile = ""
	assertSameState(t, got, want) // everything else is restored
	prof := stepOf(t, rel.Steps, "instance-profile")
	var after struct {
		Needs *step.ReleaseRoleAction `json:"needs_release_role"`
	}
	if err := json.Unmarshal(prof.After, &after); err != nil || after.Needs == nil ||
		after.Needs.InstanceProfileARN != original.Profile || !strings.Contains(after.Needs.Command, "--instance-id "+id) ||
		!strings.Contains(after.Needs.Command, "Arn="+original.Profile) {
		t.Fatalf("instance-profile after %s: want the command for the release role", prof.After)
	}
	if prof.Containment != evidence.ContainmentNotHeld || !strings.Contains(prof.Error, "release role") {
		t.Errorf("instance-profile: %s %s", prof.Containment, prof.Error)
	}
	n := lastNotification(t, c, topic)
	if n.Status != evidence.CaseReleaseIncomplete || tagOf(c, id, step.TagStatus) != evidence.CaseReleaseIncomplete {
		t.Errorf("notification %s, tag %s, want release-incomplete", n.Status, tagOf(c, id, step.TagStatus))
	}

	// A person associates the profile with the release role; the next
	// release (still without PassRole) finds it done: released.
	if _, err := c.EC2().AssociateIamInstanceProfile(t.Context(), associateInput(id, original.Profile)); err != nil {
		t.Fatal(err)
	}
	if again := release(t, c, store, responder.ReleaseRequest{TopicARN: topic, CannotPassRoles: true}); again.Status != evidence.CaseReleased {
		t.Fatalf("release after the person's association: %s %v", again.Status, again.Err)
	}
	if n := lastNotification(t, c, topic); n.Status != evidence.CaseReleased {
		t.Errorf("second notification %s", n.Status)
	}
}

// The network ACL path through the engine: a playbook that turns it on
// records the path, and the release gives back the ACL's entries.
func TestNetworkACLRespondThenRelease(t *testing.T) {
	c, id := releaseSuspect(t)
	acl := c.NetworkACLOf(aws.ToString(c.Instance(id).SubnetId))
	before := c.NACLEntries(acl)
	store := &evidence.Folder{Root: t.TempDir()}
	plan := append(slices.Clone(releasePlan), "network-acl")
	res := respond(t, c, store, responder.Request{InstanceID: id, Plan: plan})
	if res.Status != evidence.CaseContained {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	for _, name := range []string{"network-acl", "quarantine"} {
		if rec := stepOf(t, res.Steps, name); !strings.Contains(string(rec.After), `"network_acl_path":true`) {
			t.Errorf("%s after %s: want network_acl_path true", name, rec.After)
		}
	}
	if got := c.NACLEntries(acl); len(got) != len(before)+4 { // two addresses, two directions
		t.Fatalf("entries after respond: %v", got)
	}
	if rel := release(t, c, store, responder.ReleaseRequest{}); rel.Status != evidence.CaseReleased {
		t.Fatalf("release: %s %v", rel.Status, rel.Err)
	}
	if got := c.NACLEntries(acl); !slices.Equal(got, before) {
		t.Errorf("entries after release %v, want %v", got, before)
	}
}

func associateInput(id, arn string) *ec2.AssociateIamInstanceProfileInput {
	return &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(id), IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(arn)}}
}
