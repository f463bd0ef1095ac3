package testenv_test

import (
	"strings"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
)

// recorder is a testing.TB that records how the test ended.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.failed = format }
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = format }

func TestMissingFailsInCIAndSkipsElsewhere(t *testing.T) {
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		testenv.LookPath(r, "there is none", "responder-no-such-program")
		if got := r.failed != ""; got != (ci == "true") || (r.skipped != "") == got {
			t.Errorf("CI=%q: failed %q, skipped %q", ci, r.failed, r.skipped)
		}
	}
}

func TestLookPathFindsAProgram(t *testing.T) {
	if p := testenv.LookPath(t, "install the Debian package dash", "responder-no-such-program", "sh"); !strings.HasSuffix(p, "/sh") {
		t.Fatalf("LookPath = %q, want the path of sh", p)
	}
}
