package responder_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// A response given the instance as its caller described it (a fleet's
// batched DescribeInstances) starts from that description: the record names
// the account of that description's reservation.
func TestDescribedInstanceIsUsed(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	out, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{s.InstanceID}})
	if err != nil {
		t.Fatal(err)
	}
	const owner = "999988887777" // not the fake's account: only the description says it
	store := &evidence.Folder{Root: t.TempDir()}
	res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID,
		Described: &responder.DescribedInstance{Instance: out.Reservations[0].Instances[0], AccountID: owner}})
	if res.Manifest.AccountID != owner || res.Status != evidence.CaseContained {
		t.Errorf("case of account %s, %s: want %s (the description's), contained", res.Manifest.AccountID, res.Status, owner)
	}
	assertQuarantined(t, c, s.InstanceID)
}
