package responder_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

// A response to an instance another case is at work on does not start: it
// says ErrInstanceBusy, which callers that wait for a busy case (the
// Lambda's retry) treat as ErrCaseBusy.
func TestInstanceBusyIsCaseBusy(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	store := &evidence.Folder{Root: t.TempDir()}
	ctx := context.Background()
	if err := evidence.ClaimInstance(ctx, store, evidence.InstanceClaim{AccountID: c.Account, Region: c.Region, InstanceID: s.InstanceID,
		CaseID: "case-other", Holder: "someone", Taken: time.Now()}, time.Now); err != nil {
		t.Fatal(err)
	}
	r := newResponder(c, store)
	_, err := r.Respond(ctx, responder.Request{InstanceID: s.InstanceID, CaseID: "case-mine"})
	if !errors.Is(err, responder.ErrInstanceBusy) || !errors.Is(err, responder.ErrCaseBusy) || !strings.Contains(err.Error(), "case-other") {
		t.Fatalf("Respond: %v; want ErrInstanceBusy (and ErrCaseBusy) naming case-other", err)
	}
	if len(c.Snapshots()) != 0 {
		t.Error("refused, yet a snapshot was taken")
	}
}
