// Package testenv says what a test does when the machine lacks something it
// needs (a program, moto): with CI=true, as .ci/run sets it, the test fails,
// so that no tier is skipped in silence; elsewhere it is skipped. Either way
// the message says what is missing and how to get it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends the test for want of something: a failure in CI, a skip
// elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CANNOT RUN IN CI (CI=true): %s", msg)
		return
	}
	t.Skipf("skipped: %s (with CI=true this fails)", msg)
}

// LookPath returns the path of the first of names found on PATH. When none
// is, Missing ends the test with install, which says how to get it (for
// example "install the Debian package zstd").
func LookPath(t testing.TB, install string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "%s: not on PATH; %s", strings.Join(names, " or "), install)
	return ""
}
