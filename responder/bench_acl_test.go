package responder_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// BenchmarkNetworkACLPathLatency measures, with 100 ms added to every AWS
// call, the default plan with the network ACL path (step network-acl) on:
// the time to isolation (the quarantine step's end, which the path must not
// delay), to the end of the network-acl step, and the whole response; then
// the release of that case with a notification (what POST
// /cases/{id}/release does within API Gateway's 29 s).
//
//	go test -run '^$' -bench BenchmarkNetworkACLPathLatency -benchtime 5x ./responder/
func BenchmarkNetworkACLPathLatency(b *testing.B) {
	var isolation, nacl, total, release time.Duration
	for i := 0; i < b.N; i++ {
		c, s := fakeaws.NewSuspect()
		topic := c.AddTopic("responder")
		other := c.AddInstance(fakeaws.InstanceSpec{VpcID: s.VpcID})
		store := &evidence.Folder{Root: b.TempDir()}
		if res := run(b, c, store, responder.Request{InstanceID: other, CaseID: "case-earlier", Plan: []string{"quarantine-group", "untracking-group"}}); res.Err != nil {
			b.Fatal(res.Err)
		}
		c.Latency = callLatency
		plan := append(slices.Clone(step.DefaultPlan), "network-acl")
		start := time.Now()
		res := run(b, c, store, responder.Request{InstanceID: s.InstanceID, CaseID: "case-bench", TopicARN: topic, Plan: plan})
		total += time.Since(start)
		if res.Status != evidence.CaseContained {
			b.Fatalf("status %s: %v", res.Status, res.Err)
		}
		for _, r := range res.Steps {
			switch r.Name {
			case "quarantine":
				isolation += r.EndedAt.Sub(start)
			case "network-acl":
				nacl += r.EndedAt.Sub(start)
			}
		}
		r := &responder.Responder{Clients: responder.Clients{EC2: c.EC2(), STS: c.STS(), SNS: c.SNS(), Region: c.Region},
			Store: store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		start = time.Now()
		rel, err := r.Release(context.Background(), responder.ReleaseRequest{CaseID: "case-bench", TopicARN: topic, CannotPassRoles: true})
		release += time.Since(start)
		if err != nil || rel.Status != evidence.CaseReleaseIncomplete {
			b.Fatalf("release: %v %v", err, rel)
		}
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64((isolation / n).Milliseconds()), "ms-to-isolation")
	b.ReportMetric(float64((nacl / n).Milliseconds()), "ms-to-nacl-held")
	b.ReportMetric(float64((total / n).Milliseconds()), "ms-total")
	b.ReportMetric(float64((release / n).Milliseconds()), "ms-release")
}
