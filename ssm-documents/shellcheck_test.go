package ssmdocuments

import (
	"path/filepath"
	"testing"
)

// TestShellcheck runs shellcheck over every Linux script (and the test stand-ins). CI installs it
// (apt-get install shellcheck) and fails without it; locally the test skips.
func TestShellcheck(t *testing.T) {
	t.Parallel()
	requireTools(t, "shellcheck")
	scripts, err := filepath.Glob("scripts/*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	// The stand-in device-mapper of the LVM mount test too.
	scripts = append(scripts, "testdata/fakedm/vgchange", "testdata/fakedm/dmsetup")
	args := append([]string{"--external-sources", "--source-path=SCRIPTDIR", "--severity=style"}, scripts...)
	if res := run(t, nil, "shellcheck", args...); res.exit != 0 {
		t.Fatalf("shellcheck:\n%s%s", res.stdout, res.stderr)
	}
}
