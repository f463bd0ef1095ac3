package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
)

// TestDemo runs `make demo`'s script as a newcomer would (its own moto, its
// own proxy, the real binary) with the case in a temporary folder, and
// checks the case it leaves: the demo must end with a contained instance,
// whatever the engine gained since it was written (a step moto lacks must
// be answered by the demo's proxy, or the demo stalls or fails).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("integration tier: skipped under -short")
	}
	if suite.motoErr != nil {
		testenv.Missing(t, "the demo: moto did not start: %v", suite.motoErr)
	}
	cases := t.TempDir()
	cmd := exec.Command("bash", "scripts/demo.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "DEMO_CASES_DIR="+cases)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, out)
	}
	manifests, _ := filepath.Glob(filepath.Join(cases, "demo-*", "manifest.json"))
	if len(manifests) != 1 {
		t.Fatalf("case records %v, want one\n%s", manifests, out)
	}
	raw, err := os.ReadFile(manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.Status != "contained" {
		t.Errorf("demo case status %q (%v), want contained\n%s", m.Status, err, out)
	}
}
