package investigate_test

import (
	"context"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/internal/casetest"
	"github.com/responder-ir/responder/responder/investigate"
)

// BenchmarkWorkspaceLatency builds and tears down a workspace for a case
// with two snapshot copies on the fake cloud, with 100 ms added to every
// AWS call (the SSM stand-in answers at once): the control-plane cost of
// responder investigate and --stop. On AWS the instance's boot and the
// agent's registration (minutes) come on top.
func BenchmarkWorkspaceLatency(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		l := newLab(b, true)
		l.dst.Latency = 100 * time.Millisecond
		req := l.request()
		req.PollInterval = 100 * time.Millisecond
		b.StartTimer()
		start := time.Now()
		res, err := l.investigator().Start(context.Background(), req)
		if err != nil || res.Workspace.State != evidence.WorkspaceReady {
			b.Fatalf("start: %v %+v", err, res)
		}
		ready := time.Since(start)
		stop, err := l.investigator().Stop(context.Background(), investigate.StopRequest{CaseID: casetest.CaseID, PollInterval: 100 * time.Millisecond})
		if err != nil || stop.Workspace.State != evidence.WorkspaceStopped {
			b.Fatalf("stop: %v %+v", err, stop)
		}
		b.ReportMetric(float64(ready.Milliseconds()), "ms-to-ready")
		b.ReportMetric(float64(time.Since(start).Milliseconds()-ready.Milliseconds()), "ms-to-stopped")
	}
}
