package trigger

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
)

// Every entry point starts its cases through start, so a playbook the Lambda
// does not run is refused there too (the Security Hub and GuardDuty paths name
// none today, and get the default). The handler has no store, clock or Step
// Functions client: a refusal must touch none of them.
func TestStartRefusesPlaybooksTheLambdaDoesNotRun(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	target := Target{AccountID: "111122223333", Region: "us-east-1", InstanceID: "i-0123456789abcdef0"}
	for _, tc := range []struct {
		playbook, source string
		unsupported      bool
	}{
		{"collect", SourceSecurityHub, true},
		{"collect-before-isolate", SourceGuardDuty, true},
		{"nuke", SourceSecurityHub, false},
	} {
		t.Run(tc.playbook, func(t *testing.T) {
			h := &Handler{}
			_, err := h.start(context.Background(), log, startRequest{Target: target, Playbook: tc.playbook, Source: tc.source})
			var unsupported *UnsupportedPlaybookError
			if errors.As(err, &unsupported) != tc.unsupported || (!tc.unsupported && !errors.Is(err, ErrUnknownPlaybook)) {
				t.Fatalf("error %v (%T)", err, err)
			}
			if f := startFailure(err); f.Type != ErrorInput {
				t.Errorf("classified %s, want %s (a retry cannot help)", f.Type, ErrorInput)
			}
		})
	}
}
