package fleet_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fleet"
)

// BenchmarkFleet runs a fleet of N single-interface instances on the fake
// (no latency, no throttle: the engine's own cost) and reports the AWS calls
// per instance and the DescribeInstances calls of the plan.
//
//	go test ./responder/fleet -run '^$' -bench BenchmarkFleet -benchtime 1x
func BenchmarkFleet(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				c, ids := region(&testing.T{}, "us-east-1", n)
				store := &evidence.Folder{Root: b.TempDir()}
				b.StartTimer()
				targets, err := fleet.Spec{InstanceIDs: ids}.Resolve()
				if err != nil {
					b.Fatal(err)
				}
				p := fleet.NewPlan(context.Background(), targets, connectTo(store, c))
				planCalls := c.CallCount("DescribeInstances")
				res := runFleet(b, context.Background(), p, fleet.Options{FleetID: "fleet-bench", Store: store,
					Request: responder.Request{BlastRadius: n, BlastRadiusRaised: true}})
				b.StopTimer()
				for _, tg := range res.Record.Cases {
					if tg.Status != evidence.CaseContained {
						b.Fatalf("%s: %s (%s)", tg.InstanceID, tg.Status, tg.Reason)
					}
				}
				b.ReportMetric(float64(planCalls), "plan-describes")
				b.ReportMetric(float64(c.TotalCalls())/float64(n), "calls/instance")
				b.ReportMetric(float64(c.CallCount("DescribeInstances")-planCalls)/float64(n), "describes/instance")
			}
		})
	}
}
