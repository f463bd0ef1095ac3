package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// TestCompletionScripts generates each script and checks its syntax with
// its shell: bash always (the tests need bash); zsh and fish when they are
// installed (apt-get install zsh fish), else the test says it did not; in
// CI (CI=true) a missing shell fails the test.
func TestCompletionScripts(t *testing.T) {
	c, _ := fakeaws.NewSuspect()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runCLI(t, c, "completion", sh)
		if code != exitOK || errOut != "" || !strings.Contains(out, "responder") {
			t.Fatalf("completion %s: exit %d, stderr %q", sh, code, errOut)
		}
		path := filepath.Join(t.TempDir(), "responder."+sh)
		if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		shell, err := exec.LookPath(sh)
		if err != nil {
			if sh == "bash" || testenv.InCI() {
				t.Fatalf("%s is not installed (.ci/run installs it: apt-get install %s): %v", sh, sh, err)
			}
			t.Logf("%s is not installed: the %s script was generated, its syntax not checked", sh, sh)
			continue
		}
		if msg, err := exec.Command(shell, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n on the %s script: %v\n%s", sh, sh, err, msg)
		}
	}
}

// TestCompletionWords: what the scripts ask the binary for: the commands,
// a command's flags, a group's subcommands. urfave/cli reads the words from
// os.Args, so the test sets it as the shell would.
func TestCompletionWords(t *testing.T) {
	c, _ := fakeaws.NewSuspect()
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--generate-bash-completion"}, []string{"respond", "release", "cases", "config", "completion"}},
		{[]string{"respond", "-", "--generate-bash-completion"}, []string{"--instance-id", "--env", "--output", "--query", "--dry-run"}},
		{[]string{"cases", "--generate-bash-completion"}, []string{"list"}},
	} {
		os.Args = append([]string{"responder"}, tc.args...)
		code, out, errOut := runCLI(t, c, tc.args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errOut)
		}
		words := strings.Fields(out)
		for _, w := range tc.want {
			if !contains(words, w) {
				t.Errorf("%v: %q not offered in %v", tc.args, w, words)
			}
		}
	}
	if code, _, errOut := runCLI(t, c, "completion", "bsh"); code != exitUsage || !strings.Contains(errOut, "did you mean bash?") {
		t.Errorf("completion bsh: exit %d, %q", code, errOut)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
