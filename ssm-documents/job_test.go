package ssmdocuments

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
)

// jobReport is responder.analysis-job/1.
type jobReport struct {
	Schema     string `json:"schema"`
	Status     string `json:"status"`
	Tool       string `json:"tool"`
	Version    string `json:"version"`
	SymbolDirs string `json:"symbol_dirs"`
	Reason     string `json:"reason"`
	Runs       []struct {
		Name       string `json:"name"`
		ExitStatus int    `json:"exit_status"`
		Status     string `json:"status"`
		Output     string `json:"output"`
		Log        string `json:"log"`
	} `json:"runs"`
	Outputs []struct {
		Key    string `json:"key"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"outputs"`
}

// jobStore is the stand-in for the evidence bucket: a folder the stand-in
// aws CLI writes each PUT into, refusing a second PUT of a key as the
// bucket's If-None-Match does.
type jobStore struct{ dir string }

// jobBin makes a folder of stand-in programs with the aws CLI in it.
func jobBin(t *testing.T) (bin string, store jobStore) {
	t.Helper()
	bin, store = t.TempDir(), jobStore{t.TempDir()}
	writeScript(t, bin, "aws", `#!/bin/sh
# aws s3api put-object --bucket B --key K --body F --if-none-match * --checksum-algorithm SHA256
while [ $# -gt 0 ]; do case $1 in --key) key=$2; shift;; --body) body=$2; shift;; esac; shift; done
dest="`+store.dir+`/$(printf %s "$key" | tr / _)"
[ -e "$dest" ] && { echo "PreconditionFailed" >&2; exit 1; }
cp "$body" "$dest"
`)
	return bin, store
}

// read returns the stored object at key, or nil.
func (s jobStore) read(key string) []byte {
	b, err := os.ReadFile(filepath.Join(s.dir, strings.ReplaceAll(key, "/", "_")))
	if err != nil {
		return nil
	}
	return b
}

// checkOutputs asserts that every output the report lists is stored under
// prefix with the SHA-256 and size the report gives, and that every run's
// output and log are among them; it returns the outputs by key.
func (s jobStore) checkOutputs(t *testing.T, rep jobReport, prefix string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	for _, o := range rep.Outputs {
		b := s.read(o.Key)
		if b == nil || sha256Hex(b) != o.SHA256 || int64(len(b)) != o.Size || !strings.HasPrefix(o.Key, prefix) {
			t.Errorf("output %+v: stored %d bytes (SHA-256 %s)", o, len(b), sha256Hex(b))
		}
		got[o.Key] = b
	}
	for _, r := range rep.Runs {
		if _, ok := got[r.Log]; !ok {
			t.Errorf("run %s: log %q is not among the stored outputs", r.Name, r.Log)
		}
		if _, ok := got[r.Output]; r.Output != "" && !ok {
			t.Errorf("run %s: output %q is not among the stored outputs", r.Name, r.Output)
		}
	}
	return got
}

// analysisDir makes /analysis/<name> (the only place the document admits a
// memory image) and removes what the test made there afterwards.
func analysisDir(t *testing.T, name string) string {
	t.Helper()
	_, statErr := os.Stat("/analysis")
	dir := "/analysis/" + name
	if err := os.MkdirAll(dir, 0o700); err != nil {
		testenv.Missing(t, "cannot make %s (run as root): %v", dir, err)
	}
	t.Cleanup(func() {
		if os.IsNotExist(statErr) {
			os.RemoveAll("/analysis") // the job's work directories too
		} else {
			os.RemoveAll(dir)
		}
	})
	return dir
}

// mntDir makes a directory under /mnt (the only place the document admits
// a mount root), removed afterwards.
func mntDir(t *testing.T) string {
	t.Helper()
	sum := sha256.Sum256([]byte(t.TempDir()))
	dir := "/mnt/responder-job-" + hex.EncodeToString(sum[:6])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		testenv.Missing(t, "cannot make %s (run as root): %v", dir, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func decodeJob(t *testing.T, res runResult) jobReport {
	t.Helper()
	var rep jobReport
	if err := json.Unmarshal(res.stdout, &rep); err != nil || rep.Schema != JobSchema {
		t.Fatalf("report: %v (exit %d)\nstdout: %s\nstderr: %s", err, res.exit, res.stdout, res.stderr)
	}
	return rep
}

// standInVol behaves as vol 2.28 does where it matters here: the banner
// line on stderr, JSON on stdout; banners.Banners runs on any image; a
// linux plugin needs a symbol table under -s DIR/linux and otherwise exits
// 1 ("Unable to validate the plugin requirements"); without --offline it
// fails as a symbol download (Microsoft's symbol server, a remote ISF) does
// in a VPC with no internet; -o must name an existing directory.
const standInVol = `#!/bin/bash
echo "Volatility 3 Framework 2.28.2" >&2
offline=0 symbols= outdir= file= plugin=
while [ $# -gt 0 ]; do
	case $1 in
	--offline) offline=1 ;;
	-s) symbols=$2; shift ;;
	-o) outdir=$2; shift ;;
	-f) file=$2; shift ;;
	-q|-r|json|--cache-path) [ "$1" = --cache-path ] && shift ;;
	*) plugin=$1 ;;
	esac
	shift
done
[ -d "$outdir" ] || { echo "The output directory specified does not exist" >&2; exit 2; }
[ "$offline" = 1 ] || { echo "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>" >&2; exit 1; }
case $plugin in
banners.Banners) printf '[{"Offset": 4096, "Banner": "%s"}]\n' "$(grep -a -o -m1 'Linux version [^#]*#1 SMP' "$file")" ;;
linux.*)
	if ls "$symbols"/linux/*.json >/dev/null 2>&1; then printf '[{"plugin": "%s"}]\n' "$plugin"
	else echo "Unable to validate the plugin requirements: ['plugins.${plugin##*.}.kernel.symbol_table_name']" >&2; exit 1; fi ;;
*) echo "invalid choice $plugin" >&2; exit 2 ;;
esac
`

// The Volatility 3 job, run for real with stand-ins for the aws CLI and for
// vol (standInVol): without the kernel's symbol tables banners.Banners runs
// and the linux plugins fail, and the job reports exactly that: failed, each
// plugin's exit status, its stderr stored, the banner's JSON stored, all
// with the SHA-256 of what was stored; with a symbol directory every plugin
// runs and the job is ok. A second run finds its outputs taken (write-once).
// Without vol the job is skipped and says why.
func TestAnalysisJobVolatilityRecordsEachRun(t *testing.T) {
	requireTools(t, "openssl")
	bin, store := jobBin(t)
	dir := analysisDir(t, "jobvol")
	if err := os.WriteFile(dir+"/memory.lime", []byte("\x00\x00Linux version 6.1.0-28-cloud-amd64 (gcc) #1 SMP PREEMPT_DYNAMIC\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := "cases/case-j/analysis/ws-002/"
	params := map[string]string{"CaseId": "case-j", "Tool": "volatility", "Bucket": "evidence-bucket", "Prefix": prefix,
		"MemoryPath": dir + "/memory.lime", "Plugins": "banners.Banners,linux.pslist.PsList,linux.bash.Bash",
		"SymbolDirs": "none"}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin"}

	rep := decodeJob(t, runDocument(t, AnalysisJob, params, env))
	if rep.Status != "skipped" || !strings.Contains(rep.Reason, "Volatility 3") || len(rep.Outputs) != 0 {
		t.Fatalf("without vol: %+v", rep)
	}

	writeScript(t, bin, "vol", standInVol)
	res := runDocument(t, AnalysisJob, params, env)
	rep = decodeJob(t, res)
	if res.exit != 1 || rep.Status != "failed" || rep.Version != "Volatility 3 Framework 2.28.2" || rep.SymbolDirs != "" || len(rep.Runs) != 3 {
		t.Fatalf("without symbols: exit %d %+v", res.exit, rep)
	}
	stored := store.checkOutputs(t, rep, prefix+"volatility/")
	want := map[string]int{"banners.Banners": 0, "linux.pslist.PsList": 1, "linux.bash.Bash": 1}
	for _, r := range rep.Runs {
		if code, ok := want[r.Name]; !ok || r.ExitStatus != code || (r.Status == "ok") != (code == 0) || (r.Output != "") != (code == 0) {
			t.Errorf("run %+v, want exit %d", r, code)
		}
		if code := want[r.Name]; code != 0 && !strings.Contains(string(stored[r.Log]), "Unable to validate the plugin requirements") {
			t.Errorf("run %s: the stored stderr is not the tool's: %q", r.Name, stored[r.Log])
		}
	}
	if b := stored[prefix+"volatility/banners.Banners.json"]; !strings.Contains(string(b), "Linux version 6.1.0-28-cloud-amd64") {
		t.Errorf("banners output: %q", b)
	}

	// A second run of the same job finds its keys taken.
	res = runDocument(t, AnalysisJob, params, env)
	if rep := decodeJob(t, res); res.exit != 1 || rep.Status != "failed" || !strings.Contains(rep.Reason, "PreconditionFailed") {
		t.Fatalf("second run: exit %d %+v", res.exit, rep)
	}

	// With the symbol tables on the image every plugin runs.
	symbols := filepath.Join(dir, "symbols")
	if err := os.MkdirAll(symbols+"/linux", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(symbols+"/linux/debian-6.1.0-28.json", []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	params["Prefix"], params["SymbolDirs"] = "cases/case-j/analysis/ws-003/", symbols
	res = runDocument(t, AnalysisJob, params, env)
	rep = decodeJob(t, res)
	if res.exit != 0 || rep.Status != "ok" || rep.SymbolDirs != symbols || len(rep.Runs) != 3 || len(rep.Outputs) != 6 {
		t.Fatalf("with symbols: exit %d %+v", res.exit, rep)
	}
	store.checkOutputs(t, rep, "cases/case-j/analysis/ws-003/volatility/")
}

// standInPlaso writes log2timeline.py and psort.py stand-ins: log2timeline
// lists the files under the source with their modification times into its
// "storage file"; psort writes that as JSON lines or CSV, and exits 1 for an
// output module it does not know.
func standInPlaso(t *testing.T, bin string) {
	writeScript(t, bin, "log2timeline.py", `#!/bin/bash
[ "$1" = --version ] && { echo "plaso - log2timeline version 20260720"; exit 0; }
for last; do :; done
while [ $# -gt 1 ]; do case $1 in --storage_file) storage=$2;; --logfile) logfile=$2;; esac; shift; done
find "$last" -type f -printf '%P %TY-%Tm-%TdT%TH:%TM:%TS\n' >"$storage"
echo "extraction log" | gzip >"$logfile"
echo "Processing completed."
`)
	writeScript(t, bin, "psort.py", `#!/bin/bash
for last; do :; done
while [ $# -gt 1 ]; do case $1 in -o) fmt=$2;; -w) out=$2;; esac; shift; done
case $fmt in
json_line) while read -r f t; do printf '{"filename": "/%s", "date_time": "%s"}\n' "$f" "$t"; done <"$last" >"$out" ;;
l2tcsv) { echo "date,time,filename"; while read -r f t; do echo "$t,/$f"; done <"$last"; } >"$out" ;;
*) echo "ERROR: unsupported output format $fmt" >&2; exit 1 ;;
esac
`)
}

// The plaso job with stand-ins for log2timeline.py and psort.py: the
// storage file, both timelines and the three logs are stored with their
// SHA-256, each run reported with its exit status; a psort that fails makes
// the job fail with its log kept; without plaso on PATH the job is skipped.
func TestAnalysisJobPlasoRecordsEachRun(t *testing.T) {
	requireTools(t, "openssl")
	bin, store := jobBin(t)
	root := mntDir(t)
	if err := os.WriteFile(root+"/evidence.txt", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := "cases/case-p/analysis/ws-001/"
	params := map[string]string{"CaseId": "case-p", "Tool": "plaso", "Bucket": "evidence-bucket", "Prefix": prefix, "MountRoot": root}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin"}

	rep := decodeJob(t, runDocument(t, AnalysisJob, params, env))
	if rep.Status != "skipped" || !strings.Contains(rep.Reason, "plaso") {
		t.Fatalf("without plaso: %+v", rep)
	}

	standInPlaso(t, bin)
	res := runDocument(t, AnalysisJob, params, env)
	rep = decodeJob(t, res)
	if res.exit != 0 || rep.Status != "ok" || rep.Version != "plaso - log2timeline version 20260720" || len(rep.Runs) != 3 || len(rep.Outputs) != 7 {
		t.Fatalf("exit %d %+v\n%s", res.exit, rep, res.stderr)
	}
	stored := store.checkOutputs(t, rep, prefix+"plaso/")
	if b := stored[prefix+"plaso/timeline.jsonl"]; !strings.Contains(string(b), `"filename": "/evidence.txt"`) {
		t.Errorf("timeline.jsonl: %q", b)
	}
	if b := stored[prefix+"plaso/log2timeline.log.gz"]; len(b) == 0 {
		t.Errorf("log2timeline's own log (--logfile) is not stored")
	}
	for _, r := range rep.Runs {
		if r.ExitStatus != 0 || r.Status != "ok" || r.Output == "" {
			t.Errorf("run %+v", r)
		}
	}

	// psort that cannot write l2tcsv: the job fails, the storage file and
	// the JSON lines are kept, and so is the failing run's log.
	writeScript(t, bin, "psort.py", `#!/bin/bash
for a; do [ "$a" = l2tcsv ] && { echo "ERROR: l2tcsv unavailable" >&2; exit 1; }; done
for last; do :; done
while [ $# -gt 1 ]; do [ "$1" = -w ] && out=$2; shift; done
cp "$last" "$out"
`)
	params["Prefix"] = "cases/case-p/analysis/ws-002/"
	res = runDocument(t, AnalysisJob, params, env)
	rep = decodeJob(t, res)
	if res.exit != 1 || rep.Status != "failed" || len(rep.Runs) != 3 {
		t.Fatalf("failing psort: exit %d %+v", res.exit, rep)
	}
	stored = store.checkOutputs(t, rep, "cases/case-p/analysis/ws-002/plaso/")
	last := rep.Runs[2]
	if last.Name != "psort l2tcsv" || last.ExitStatus != 1 || last.Status != "failed" || last.Output != "" ||
		!strings.Contains(string(stored[last.Log]), "l2tcsv unavailable") {
		t.Errorf("failing run %+v, log %q", last, stored[last.Log])
	}
}

func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}
