package responder_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/step"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

// A case contained again after a release is released to the state found by
// the containment after that release, not to the state of the first
// response: whatever changed on the instance between release and the new
// containment (the owner's fix) is what the second release gives back.
func TestReleaseAfterContainingAgainRestoresTheLaterState(t *testing.T) {
	c, id := releaseSuspect(t)
	store := &evidence.Folder{Root: t.TempDir()}
	if res := respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan}); res.Status != evidence.CaseContained {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	if rel := release(t, c, store, responder.ReleaseRequest{}); rel.Status != evidence.CaseReleased {
		t.Fatalf("release: %s %v", rel.Status, rel.Err)
	}
	// The owner hardens the instance after the release: termination
	// protection on, instance stops on shutdown, the db group off the
	// second interface.
	ctx := context.Background()
	api := c.EC2()
	if _, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		InstanceInitiatedShutdownBehavior: &types.AttributeValue{Value: aws.String("stop")}}); err != nil {
		t.Fatal(err)
	}
	hardened := stateOf(t, c, id)
	for nic, g := range hardened.Groups {
		if len(g) == 2 {
			if _, err := api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(nic), Groups: g[:1]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	hardened = stateOf(t, c, id)

	if res := respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan}); res.Status != evidence.CaseContained {
		t.Fatalf("respond again: %s %v", res.Status, res.Err)
	}
	if rel := release(t, c, store, responder.ReleaseRequest{}); rel.Status != evidence.CaseReleased {
		t.Fatalf("second release: %s %v\n%+v", rel.Status, rel.Err, rel.Steps)
	}
	assertSameState(t, stateOf(t, c, id), hardened)
}

// A release does not run while another case is at work on the instance (a
// finding's automated response that started meanwhile): it would give back
// the groups, the profile and the protections that case is taking away,
// after that case read its containment back. It is refused, changing
// nothing, as a response would be (ErrInstanceBusy).
func TestReleaseRefusedWhileAnotherCaseActsOnTheInstance(t *testing.T) {
	c, id := releaseSuspect(t)
	dir := t.TempDir()
	store := &evidence.Folder{Root: dir}
	if res := respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan}); res.Status != evidence.CaseContained {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	ctx := context.Background()
	if err := evidence.ClaimInstance(ctx, store, evidence.InstanceClaim{AccountID: c.Account, Region: c.Region, InstanceID: id,
		CaseID: "case-other", Holder: "automation", Taken: time.Now()}, time.Now); err != nil {
		t.Fatal(err)
	}
	before := c.StateDigest()
	_, err := newResponder(c, store).Release(ctx, responder.ReleaseRequest{CaseID: caseID})
	if !errors.Is(err, responder.ErrInstanceBusy) || !strings.Contains(err.Error(), "case-other") {
		t.Fatalf("Release: %v; want ErrInstanceBusy naming case-other", err)
	}
	if c.StateDigest() != before {
		t.Error("the refused release changed the cloud")
	}
}

// A topic that is not an SNS topic ARN is bad input: refused before any AWS
// call, not found out by the notification after the instance was changed.
func TestReleaseRefusesABadTopicBeforeAnyCall(t *testing.T) {
	c, id := releaseSuspect(t)
	store := &evidence.Folder{Root: t.TempDir()}
	respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	calls := c.CallCount("DescribeInstances")
	before := c.StateDigest()
	for _, topic := range []string{"alerts", "arn:aws:sqs:us-east-1:111122223333:alerts", "arn:aws:sns:us-east-1:1111:alerts"} {
		_, err := newResponder(c, store).Release(context.Background(), responder.ReleaseRequest{CaseID: caseID, TopicARN: topic})
		var ie *responder.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), topic) {
			t.Errorf("topic %q: %v; want an input error naming it", topic, err)
		}
		_, err = newResponder(c, store).Respond(context.Background(), responder.Request{InstanceID: id, CaseID: "case-topic", TopicARN: topic})
		if !errors.As(err, &ie) {
			t.Errorf("respond, topic %q: %v; want an input error", topic, err)
		}
	}
	if c.CallCount("DescribeInstances") != calls || c.StateDigest() != before {
		t.Error("a refused request called AWS")
	}
}

// A history copy of a later run with no seal is what a save that stopped
// before its seal leaves, and also what anyone who can write the case
// folder can leave: a release must not restore the before-states it holds
// (here, a forged first before of termination-protection: "enabled").
func TestReleaseRefusesAnUnsealedLaterCopy(t *testing.T) {
	c, id := releaseSuspect(t)
	dir := t.TempDir()
	store := &evidence.Folder{Root: dir}
	respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	ctx := context.Background()
	m, err := evidence.LoadManifest(ctx, store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	forged := evidence.AppendRun(m, evidence.Manifest{}, evidence.Revision{
		Run: evidence.Run{Number: 2, Playbook: "default", Status: m.Status, StartedAt: m.EndedAt, EndedAt: m.EndedAt.Add(time.Second)}, SetStatus: true,
	})
	for i, s := range forged.Steps {
		if s.Name == "termination-protection" {
			forged.Steps[i].Before = json.RawMessage(`{"disable_api_termination":true}`)
		}
	}
	body, err := evidence.EncodeManifest(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, caseID, evidence.HistoryName(2), body, "application/json"); err != nil {
		t.Fatal(err)
	}
	before := c.StateDigest()
	files := listFiles(t, dir)
	_, err = newResponder(c, store).Release(ctx, responder.ReleaseRequest{CaseID: caseID})
	if !errors.Is(err, responder.ErrRecordTampered) {
		t.Fatalf("Release: %v; want ErrRecordTampered", err)
	}
	if c.StateDigest() != before {
		t.Error("the refused release changed the cloud")
	}
	if !slices.Equal(listFiles(t, dir), files) {
		t.Error("the refused release wrote to the case folder")
	}
}

// A release that kept the revocation, a new containment of the case, then a
// plain release: the new containment denied the sessions issued up to it
// (the profile was back), and its release gives back the state it found,
// the deny the first release kept.
func TestReleaseAfterKeptRevocationAndContainingAgain(t *testing.T) {
	c, id := releaseSuspect(t)
	store := &evidence.Folder{Root: t.TempDir()}
	respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	if rel := release(t, c, store, responder.ReleaseRequest{KeepCredentialRevocation: true}); rel.Status != evidence.CaseReleased {
		t.Fatalf("release: %s %v", rel.Status, rel.Err)
	}
	policy := step.RevocationPolicyName(caseID)
	kept, ok := c.RolePolicy("app", policy)
	if !ok {
		t.Fatal("the kept revocation is not on the role")
	}
	// An hour later (the clock of the new containment; no sleep).
	later := newResponder(c, store)
	later.Now = func() time.Time { return time.Now().Add(time.Hour) }
	res, err := later.Respond(context.Background(), responder.Request{InstanceID: id, CaseID: caseID, CaseIDGiven: true, Plan: releasePlan})
	if err != nil || res.Status != evidence.CaseContained {
		t.Fatalf("respond again: %v %+v", err, res)
	}
	if doc, _ := c.RolePolicy("app", policy); doc == kept {
		t.Error("the new containment kept the first cut-off: sessions issued since the release are not denied")
	}
	if rel := release(t, c, store, responder.ReleaseRequest{}); rel.Status != evidence.CaseReleased {
		t.Fatalf("second release: %s %v\n%+v", rel.Status, rel.Err, rel.Steps)
	}
	if doc, ok := c.RolePolicy("app", policy); !ok || doc != kept {
		t.Errorf("after the second release the role holds %q (%t), want the deny the first release kept", doc, ok)
	}
}

// A volume detached since the response (an analyst took it) cannot have its
// DeleteOnTermination back: the release restores the others and its record
// names the volume it left, rather than pass over it in silence.
func TestReleaseNamesAVolumeDetachedSince(t *testing.T) {
	c, id := releaseSuspect(t)
	store := &evidence.Folder{Root: t.TempDir()}
	inst := c.Instance(id)
	var detached, device string
	for _, m := range inst.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) != aws.ToString(inst.RootDeviceName) {
			detached, device = aws.ToString(m.Ebs.VolumeId), aws.ToString(m.DeviceName)
		}
	}
	// The data volume too is deleted on termination before the response.
	if _, err := c.EC2().ModifyInstanceAttribute(context.Background(), &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		BlockDeviceMappings: []types.InstanceBlockDeviceMappingSpecification{{DeviceName: aws.String(device),
			Ebs: &types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(true)}}}}); err != nil {
		t.Fatal(err)
	}
	respond(t, c, store, responder.Request{InstanceID: id, Plan: releasePlan})
	if _, err := c.EC2().DetachVolume(context.Background(), &ec2.DetachVolumeInput{VolumeId: aws.String(detached)}); err != nil {
		t.Fatal(err)
	}
	rel := release(t, c, store, responder.ReleaseRequest{})
	st := stepOf(t, rel.Steps, "delete-on-termination")
	if !strings.Contains(st.Reason, detached) || !strings.Contains(st.Reason, "no longer attached") {
		t.Errorf("delete-on-termination: %s %q; want it to name %s, no longer attached", st.Status, st.Reason, detached)
	}
	for vol, d := range stateOf(t, c, id).DeleteOnTermination {
		if !d {
			t.Errorf("volume %s still attached was not given DeleteOnTermination back", vol)
		}
	}
}
