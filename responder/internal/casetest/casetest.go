// Package casetest makes recorded cases for the tests of the engines that
// read them (preserve, custody) and of the respond engine itself: a
// Responder on the in-memory fake cloud, and one response run to its end.
package casetest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// CaseID is the case the helpers respond under when the request names none.
const CaseID = "case-test-0001"

// NewResponder returns a Responder on the fake cloud c that records into
// store and logs nowhere.
func NewResponder(c *fakeaws.Cloud, store evidence.Store) *responder.Responder {
	fakeaws.FastLookups(c)
	return &responder.Responder{
		Clients: responder.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), SNS: c.SNS(), Region: c.Region,
			AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB(),
			CloudTrail: c.CloudTrail(), GuardDuty: c.GuardDuty(), SecurityHub: c.SecurityHub()},
		Store: store,
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// Respond runs one response (under CaseID when req names no case) and fails
// the test when it could not start.
func Respond(t testing.TB, c *fakeaws.Cloud, store evidence.Store, req responder.Request) *responder.Result {
	t.Helper()
	if req.CaseID == "" {
		req.CaseID = CaseID
	}
	res, err := NewResponder(c, store).Respond(context.Background(), req)
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	return res
}
