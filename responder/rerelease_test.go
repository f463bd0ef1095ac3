package responder_test

import (
	"context"
	"testing"

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
