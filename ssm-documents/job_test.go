package ssmdocuments

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
)

// jobReport is responder.analysis-job/1.
type jobReport struct {
	Schema  string `json:"schema"`
	Status  string `json:"status"`
	Tool    string `json:"tool"`
	Reason  string `json:"reason"`
	Outputs []struct {
		Key    string `json:"key"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"outputs"`
}

// The analysis job, run for real with stand-ins for the aws CLI (which
// keeps each PUT in a folder, and refuses a second PUT of a key, as the
// bucket's If-None-Match does) and for Volatility 3: each plugin's output is
// stored once under the case's analysis prefix with the SHA-256 of what was
// stored; without the tool on the image the job says so and is skipped.
func TestAnalysisJobStoresOutputsOrSkips(t *testing.T) {
	requireTools(t, "openssl")
	bin, store := t.TempDir(), t.TempDir()
	mem := filepath.Join(t.TempDir(), "memory.lime")
	if err := os.WriteFile(mem, []byte("memory"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeScript(t, bin, "aws", `#!/bin/sh
# aws s3api put-object --bucket B --key K --body F --if-none-match * --checksum-algorithm SHA256
while [ $# -gt 0 ]; do case $1 in --key) key=$2; shift;; --body) body=$2; shift;; esac; shift; done
dest="`+store+`/$(printf %s "$key" | tr / _)"
[ -e "$dest" ] && { echo "PreconditionFailed" >&2; exit 1; }
cp "$body" "$dest"
`)
	params := map[string]string{"CaseId": "case-j", "Tool": "volatility", "Bucket": "evidence-bucket",
		"Prefix": "cases/case-j/analysis/ws-002/", "MemoryPath": "/analysis/x/memory.lime", "Plugins": "linux.pslist,linux.bash"}
	path := "PATH=" + bin + ":/usr/bin:/bin"

	res := runDocument(t, AnalysisJob, params, []string{path})
	var rep jobReport
	if err := json.Unmarshal(res.stdout, &rep); err != nil || res.exit != 0 || rep.Status != "skipped" || !strings.Contains(rep.Reason, "Volatility 3") {
		t.Fatalf("without vol: exit %d %+v %v\n%s%s", res.exit, rep, err, res.stdout, res.stderr)
	}

	// With vol: the memory path must exist; the job reads it through a
	// stand-in path the pattern admits, so point vol at the test file.
	writeScript(t, bin, "vol", `#!/bin/sh
for last; do :; done
printf '{"plugin":"%s","memory":"%s"}\n' "$last" "$(cat `+mem+`)"
`)
	// The document admits memory paths under /analysis only.
	_, statErr := os.Stat("/analysis")
	if err := os.MkdirAll("/analysis/x", 0o700); err != nil {
		testenv.Missing(t, "cannot make /analysis/x (run as root): %v", err)
	}
	t.Cleanup(func() {
		if os.IsNotExist(statErr) {
			os.RemoveAll("/analysis") // the job's work directories too
		} else {
			os.RemoveAll("/analysis/x")
		}
	})
	if err := os.WriteFile("/analysis/x/memory.lime", []byte("memory"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = runDocument(t, AnalysisJob, params, []string{path})
	rep = jobReport{}
	if err := json.Unmarshal(res.stdout, &rep); err != nil || res.exit != 0 || rep.Status != "ok" || len(rep.Outputs) != 2 {
		t.Fatalf("with vol: exit %d %+v %v\n%s%s", res.exit, rep, err, res.stdout, res.stderr)
	}
	for _, o := range rep.Outputs {
		b, err := os.ReadFile(filepath.Join(store, strings.ReplaceAll(o.Key, "/", "_")))
		if err != nil || sha256Hex(b) != o.SHA256 || int64(len(b)) != o.Size || !strings.HasPrefix(o.Key, "cases/case-j/analysis/ws-002/volatility/") {
			t.Errorf("output %+v: stored %q, %v", o, b, err)
		}
	}
	// A second run finds its outputs taken (write-once): it fails, and
	// says where.
	res = runDocument(t, AnalysisJob, params, []string{path})
	if err := json.Unmarshal(res.stdout, &rep); err != nil || res.exit != 1 || rep.Status != "failed" || !strings.Contains(rep.Reason, "PreconditionFailed") {
		t.Fatalf("second run: exit %d %+v\n%s", res.exit, rep, res.stdout)
	}
}

func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}
