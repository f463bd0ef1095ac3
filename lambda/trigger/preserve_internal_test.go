package trigger

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
)

// A copy whose preserve run ran out of time (Preserve records the context's
// error) is pending: the next poll takes it up. Any other failure fails.
func TestSummariseTimeoutIsPending(t *testing.T) {
	timedOutCopy := evidence.SnapshotCopy{SourceSnapshotID: "snap-2", State: evidence.CopyFailed,
		Error: "re-encrypted copy snap-9: snapshot snap-9 still pending (40%): context deadline exceeded"}
	for _, tc := range []struct {
		name     string
		copies   []evidence.SnapshotCopy
		complete bool
		failed   bool
		pending  int
		percent  int
	}{
		{"no snapshot", nil, true, false, 0, 100},
		{"completed and timed out", []evidence.SnapshotCopy{
			{SourceSnapshotID: "snap-1", State: evidence.CopyCompleted}, timedOutCopy}, false, false, 1, 50},
		{"a real failure", []evidence.SnapshotCopy{
			{SourceSnapshotID: "snap-1", State: evidence.CopyFailed, Error: "share snap-1: OperationNotPermitted"}, timedOutCopy}, false, true, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := preserveStatus{Problems: []string{}}
			summarise(context.Background(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)), tc.copies, &out)
			if out.Complete != tc.complete || out.Failed != tc.failed || out.Pending != tc.pending || out.Percent != tc.percent {
				t.Errorf("%+v, want complete %v failed %v pending %d percent %d", out, tc.complete, tc.failed, tc.pending, tc.percent)
			}
			if tc.failed != (len(out.Problems) > 0) {
				t.Errorf("problems %q", out.Problems)
			}
		})
	}
}
