package step_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// The console steps retry throttling and server errors until they get the
// evidence, and stop at once on an error no retry can fix.
func TestConsoleStepsRetryOnlyWhatRetryingFixes(t *testing.T) {
	for _, tc := range []struct {
		name, op, code string
		times          int
		s              step.Step
		artifact       string
		status         string
		calls          int // calls of op the step made, when not 0
	}{
		{"screenshot throttled", "GetConsoleScreenshot", "RequestLimitExceeded", 4, step.ConsoleScreenshot{}, "console-screenshot.jpg", evidence.StatusOK, 5},
		{"screenshot 5xx", "GetConsoleScreenshot", "InternalError", 3, step.ConsoleScreenshot{}, "console-screenshot.jpg", evidence.StatusOK, 4},
		{"screenshot denied", "GetConsoleScreenshot", "UnauthorizedOperation", -1, step.ConsoleScreenshot{}, "", evidence.StatusFailed, 1},
		{"screenshot unsupported", "GetConsoleScreenshot", "UnsupportedOperation", -1, step.ConsoleScreenshot{}, "", evidence.StatusSkipped, 1},
		{"output throttled", "GetConsoleOutput", "RequestLimitExceeded", 4, step.ConsoleOutput{}, "console-output.txt", evidence.StatusOK, 5},
		{"output unknown instance", "GetConsoleOutput", "InvalidInstanceID.NotFound", -1, step.ConsoleOutput{}, "", evidence.StatusFailed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeaws.New()
			id := c.AddInstance(fakeaws.InstanceSpec{ConsoleOutput: "boot"})
			env := envFor(t, c, id)
			root := t.TempDir()
			env.Clients.Store = &evidence.Folder{Root: root}
			c.Fail(tc.op, tc.code, tc.times)
			res := tc.s.Run(context.Background(), env)
			if res.Status != tc.status {
				t.Errorf("status %s (%s), want %s", res.Status, res.Reason, tc.status)
			}
			if got := c.CallCount(tc.op); got != tc.calls {
				t.Errorf("%d calls of %s, want %d", got, tc.op, tc.calls)
			}
			if tc.artifact != "" && !hasFile(t, root, tc.artifact) {
				t.Errorf("no %s stored", tc.artifact)
			}
		})
	}
}

func hasFile(t *testing.T, dir, name string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			found = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
