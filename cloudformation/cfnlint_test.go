package cloudformation

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/internal/testenv"
)

// cfn-lint (the maintained Python linter, 1.51 on the CI machines) finds no
// error, warning or informational problem in any template. Rules that
// cannot be satisfied are ignored explicitly, with the reason, in .cfnlintrc
// or on the resource (Metadata cfn-lint config). A missing cfn-lint fails
// the test in CI (see testenv).
func TestCfnLint(t *testing.T) {
	bin := testenv.LookPath(t, "install it with pip install cfn-lint", "cfn-lint")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput(); err == nil {
		t.Logf("%s", strings.TrimSpace(string(out)))
	}
	// Run in this directory so that .cfnlintrc applies; name the templates so
	// that a change to .cfnlintrc cannot silently lint nothing.
	cmd := exec.CommandContext(ctx, bin, "--include-checks", "I", "--", forensicsTemplate, memberTemplate, documentsTemplate)
	out, err := cmd.CombinedOutput()
	if err != nil {
		// Exit status is a bit mask: 2 error, 4 warning, 8 informational.
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}
