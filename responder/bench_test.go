package responder_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// callLatency is added to every AWS call, the figure the issue asks for.
const callLatency = 100 * time.Millisecond

// BenchmarkRespondLatency measures, with 100 ms added to every AWS call, the
// wall time from the start of Respond to every interface moved into the
// quarantine group (moved), to the quarantine step's read-back proving it
// (isolation: the end of the step), and to the end of Respond, and derives
// the number of sequential round trips to each.
//
//	go test -run '^$' -bench BenchmarkRespondLatency -benchtime 5x ./responder/
func BenchmarkRespondLatency(b *testing.B) {
	for _, tc := range []struct {
		name        string
		groupExists bool
		// scaled puts the suspect in an Auto Scaling group, a target group
		// and a Classic Load Balancer: auto-scaling and load-balancers then
		// act, off the path to isolation.
		scaled bool
	}{
		{"quarantine-group-exists", true, false},
		{"quarantine-group-created", false, false},
		{"quarantine-group-exists-scaled", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var moved, isolation, revoked, total time.Duration
			for i := 0; i < b.N; i++ {
				c, s := fakeaws.NewSuspect()
				topic := c.AddTopic("responder")
				if tc.groupExists {
					// An earlier case made the VPC's quarantine group.
					other := c.AddInstance(fakeaws.InstanceSpec{VpcID: s.VpcID})
					res := run(b, c, &evidence.Folder{Root: b.TempDir()}, responder.Request{InstanceID: other, CaseID: "case-earlier", Plan: []string{"quarantine-group", "untracking-group"}})
					if res.Err != nil {
						b.Fatal(res.Err)
					}
				}
				if tc.scaled {
					tg := c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: "web", VpcID: s.VpcID})
					c.RegisterTarget(tg, s.InstanceID, 0, "")
					c.AddClassicLoadBalancer("web", s.InstanceID)
					c.AddAutoScalingGroup(fakeaws.AutoScalingGroupSpec{Name: "web", Min: 1, Max: 2, Instances: []string{s.InstanceID}, TargetGroupARNs: []string{tg}})
				}
				c.Latency = callLatency
				start := time.Now()
				res := run(b, c, &evidence.Folder{Root: b.TempDir()}, responder.Request{InstanceID: s.InstanceID, CaseID: "case-bench", TopicARN: topic})
				total += time.Since(start)
				if res.Status != evidence.CaseContained {
					b.Fatalf("status %s: %v", res.Status, res.Err)
				}
				for _, r := range res.Steps {
					if r.Name == (step.Quarantine{}).Name() {
						isolation += r.EndedAt.Sub(start)
						moved += r.EndedAt.Sub(start) - readBack(r.Calls)
					}
					if r.Name == (step.CredentialRevocation{}).Name() {
						revoked += r.EndedAt.Sub(start) // its read-back included
					}
				}
			}
			n := time.Duration(b.N)
			b.ReportMetric(float64((moved / n).Milliseconds()), "ms-to-moved")
			b.ReportMetric(math.Floor(float64(moved/n)/float64(callLatency)), "round-trips-to-moved")
			b.ReportMetric(float64((isolation / n).Milliseconds()), "ms-to-isolation")
			b.ReportMetric(float64((revoked / n).Milliseconds()), "ms-to-revoked")
			b.ReportMetric(float64((total / n).Milliseconds()), "ms-total")
			b.ReportMetric(math.Floor(float64(isolation/n)/float64(callLatency)), "round-trips-to-isolation")
		})
	}
}

// readBack is how long the quarantine step's read-back took: the calls it
// made after its last interface move, one after the other.
func readBack(calls []evidence.Call) time.Duration {
	var d time.Duration
	for i := len(calls) - 1; i >= 0 && calls[i].Operation != "ModifyNetworkInterfaceAttribute"; i-- {
		d += calls[i].Duration
	}
	return d
}

func run(b *testing.B, c *fakeaws.Cloud, store evidence.Store, req responder.Request) *responder.Result {
	b.Helper()
	r := &responder.Responder{
		Clients: responder.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), SNS: c.SNS(), Region: c.Region,
			AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB(),
			// The cloud's record, paced at the documented two LookupEvents a
			// second: off isolation's path, it bounds the end of Respond.
			CloudTrail: c.CloudTrail(), GuardDuty: c.GuardDuty(), SecurityHub: c.SecurityHub()},
		Store: store,
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	res, err := r.Respond(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	return res
}
