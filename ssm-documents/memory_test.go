package ssmdocuments

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The memory tests run the Responder-LinuxMemoryCapture document itself (the
// sh wrapper and the embedded scripts) with stand-ins for what cannot run
// here: a fake avml, and fake insmod/rmmod/modinfo/dmesg for LiME. Both
// serve the stand-in LiME image; everything else (download, pinned hash
// check, source fallback, compression, hashing, multipart upload, range
// accounting, the report and its upload) is the real code.

// fakeAVML fails part-way on any source whose name ends in "kcore", the way
// AVML fails on kernels that lock /proc/kcore down, and serves the stand-in
// for any other source.
func fakeAVML(image string) []byte {
	return []byte(fmt.Sprintf(`#!/bin/bash
case ${1-} in --help) echo "Usage: avml [OPTIONS] <FILENAME>"; exit 0 ;; --version) echo "avml 0.14.0 (fake)"; exit 0 ;; esac
src=''
while (($# > 1)); do case $1 in --source) src=$2; shift 2 ;; *) shift ;; esac; done
case $src in
*kcore) head -c 3000000 %[1]q >"$1"; echo "unable to read physical memory" >&2; exit 1 ;;
*) cat %[1]q >"$1" ;;
esac
`, image))
}

type memoryEnv struct {
	r      *receiver
	si     standIn
	dir    string
	params map[string]string
	env    []string
}

func newMemoryEnv(t *testing.T) *memoryEnv {
	t.Helper()
	requireTools(t, "curl", "zstd")
	dir := t.TempDir()
	m := &memoryEnv{r: newReceiver(t), si: newStandIn(t, dir), dir: dir}
	m.r.putObject("part-urls", PartURLList(m.r.partURLs(8)))
	m.params = map[string]string{
		"CaseId":      "case-42",
		"PartUrlsUrl": m.r.objectURL("part-urls"),
		"PartSizeMiB": "5",
		"Compression": "zstd",
		"ResultUrl":   m.r.objectURL("result.json"),
	}
	m.env = append(m.r.env(), "RESPONDER_IOMEM="+m.si.iomem, "RC_RETRY_SLEEP=0")
	return m
}

// stage puts a tool where the document downloads it and returns its URL and pinned hash.
func (m *memoryEnv) stage(name string, b []byte) (string, string) {
	m.r.putObject(name, b)
	return m.r.objectURL(name), sha256Hex(b)
}

// check asserts what every successful capture must show.
func (m *memoryEnv) check(t *testing.T, res runResult) MemoryReport {
	t.Helper()
	if strings.Contains(string(res.stdout)+string(res.stderr), "X-Amz-Signature") {
		t.Errorf("a presigned URL leaked into the output")
	}
	rep, err := ParseMemoryReport(res.stdout)
	if err != nil {
		t.Fatalf("%v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	if testing.Verbose() {
		t.Logf("report: %s", res.stdout)
	}
	if res.exit != 0 || rep.Status != StatusSucceeded {
		t.Fatalf("exit %d, status %s: %s\n%s", res.exit, rep.Status, rep.Error, res.stdout)
	}
	if rep.Upload == nil {
		t.Fatal("report has no upload")
	}
	parts, err := rep.Upload.CompletedParts()
	if err != nil {
		t.Fatal(err)
	}
	got := m.r.assembled(t, len(parts))
	if sha256Hex(got) != rep.Upload.CompressedSHA256 {
		t.Errorf("uploaded parts do not hash to the reported compressed SHA-256")
	}
	if plain := decompress(t, rep.Upload.Compression, got); sha256Hex(plain) != sha256Hex(m.si.data) {
		t.Errorf("decompressed upload differs from the memory image")
	}
	if rep.Upload.RawSHA256 != sha256Hex(m.si.data) {
		t.Errorf("raw SHA-256 %s, want %s", rep.Upload.RawSHA256, sha256Hex(m.si.data))
	}
	if rep.Ranges == nil || !rep.Ranges.IomemReadable || len(rep.Ranges.Captured) != 2 {
		t.Fatalf("ranges: %+v", rep.Ranges)
	}
	want := Range{Start: fmt.Sprintf("0x%x", m.si.skippedStart), End: fmt.Sprintf("0x%x", m.si.skippedEnd),
		Bytes: int64(m.si.skippedEnd - m.si.skippedStart + 1)}
	if len(rep.Ranges.Skipped) != 1 || rep.Ranges.Skipped[0] != want {
		t.Errorf("skipped ranges %+v, want [%+v]", rep.Ranges.Skipped, want)
	}
	stored, ok := m.r.object("result.json")
	if !ok {
		t.Fatal("the report was not uploaded")
	}
	full, err := ParseMemoryReport(stored)
	if err != nil {
		t.Fatal(err)
	}
	if full.Upload == nil || full.Upload.CompressedSHA256 != rep.Upload.CompressedSHA256 || len(full.Upload.Parts) != len(parts) {
		t.Errorf("uploaded report differs from stdout")
	}
	return rep
}

func TestLinuxMemoryCaptureAVMLFallsBackAcrossSources(t *testing.T) {
	t.Parallel()
	m := newMemoryEnv(t)
	m.params["Tool"] = "avml"
	m.params["Compression"] = "none" // several parts
	m.params["AvmlUrl"], m.params["AvmlSha256"] = m.stage("avml", fakeAVML(m.si.image))
	kcore, mem := filepath.Join(m.dir, "kcore"), filepath.Join(m.dir, "mem")
	for _, p := range []string{kcore, mem} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append(m.env, "RESPONDER_MEMORY_SOURCES=/nonexistent/crash "+kcore+" "+mem)
	rep := m.check(t, runDocument(t, LinuxMemoryCapture, m.params, env))

	if rep.Tool.Name != "avml" || rep.Tool.MemorySource != mem || rep.Tool.SHA256 != m.params["AvmlSha256"] {
		t.Errorf("tool %+v, want avml from %s", rep.Tool, mem)
	}
	if len(rep.Attempts) != 2 || rep.Attempts[0].Source != kcore || rep.Attempts[0].Status != StatusFailed ||
		!strings.Contains(rep.Attempts[0].StderrTail, "unable to read physical memory") || rep.Attempts[1].Status != StatusSucceeded {
		t.Errorf("attempts %+v: want kcore failed (with AVML's error), then mem succeeded", rep.Attempts)
	}
	if rep.Upload.PartCount < 3 {
		t.Errorf("%d parts; the test wants an image of several", rep.Upload.PartCount)
	}
	// The failed attempt had uploaded part 1; the successful one replaced it.
	if n := m.r.putsOfPart(1); n != 2 {
		t.Errorf("part 1 was sent %d times, want 2 (failed attempt, then the kept one)", n)
	}
}

func TestLinuxMemoryCaptureRefusesToolWithWrongHash(t *testing.T) {
	t.Parallel()
	m := newMemoryEnv(t)
	m.params["Tool"] = "avml"
	m.params["AvmlUrl"], _ = m.stage("avml", fakeAVML(m.si.image))
	m.params["AvmlSha256"] = strings.Repeat("0", 64)
	res := runDocument(t, LinuxMemoryCapture, m.params, m.env)
	rep, err := ParseMemoryReport(res.stdout)
	if err != nil {
		t.Fatalf("%v: %s", err, res.stdout)
	}
	if res.exit == 0 || rep.Status != StatusFailed || len(rep.Attempts) != 0 {
		t.Errorf("exit %d status %s attempts %d: a tool with the wrong hash must not run", res.exit, rep.Status, len(rep.Attempts))
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "SHA-256 mismatch") {
		t.Errorf("warnings %q do not name the mismatch", rep.Warnings)
	}
	if len(m.r.partNumbers()) != 0 {
		t.Errorf("parts were uploaded: %v", m.r.partNumbers())
	}
	if _, ok := m.r.object("result.json"); !ok {
		t.Errorf("the failure report was not uploaded")
	}
}

// TestLinuxMemoryCaptureLiME runs the LiME path: an older module build that
// refuses the timeout parameter (retried without it), the image read from
// LiME's TCP listener, and a debug log that reports a zero-filled range.
func TestLinuxMemoryCaptureLiME(t *testing.T) {
	t.Parallel()
	requireTools(t, "python3")
	m := newMemoryEnv(t)
	state := t.TempDir()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "dmesg.log"), []byte("[    0.000000] Linux version (fake)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fakes := map[string]string{
		"insmod": fmt.Sprintf(`#!/bin/bash
state=%[1]q
port=''
for a in "$@"; do case $a in path=tcp:*) port=${a#path=tcp:} ;; timeout=*) echo "lime: Unknown parameter 'timeout'" >>"$state/dmesg.log"; echo "insmod: ERROR: could not insert module $1: Invalid parameters" >&2; exit 1 ;; esac; done
{ echo "[LiME] Writing range 1000 - 9fbff."; echo "[LiME] Writing range 100000 - efffff."; echo "[LiME] Reading is too slow.  Skipping Range..."; } >>"$state/dmesg.log"
exec python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept()
with open(sys.argv[2], "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b: break
        c.sendall(b)
c.close()
' "$port" %[2]q
`, state, m.si.image),
		"rmmod":   "#!/bin/sh\nexit 0\n",
		"modinfo": "#!/bin/sh\n[ \"$1\" = -F ] && [ \"$2\" = vermagic ] && echo \"$(uname -r) SMP mod_unload\"\n",
		"dmesg":   fmt.Sprintf("#!/bin/sh\ncat %q\n", filepath.Join(state, "dmesg.log")),
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	m.params["Tool"] = "lime"
	m.params["Compression"] = "gzip"
	m.params["LimeUrl"], m.params["LimeSha256"] = m.stage("lime.ko", []byte("not really a kernel module"))
	// The coreutils hashing tee here (the AVML test uses python3 when installed), so
	// that the LiME header walker is fed by both.
	env := append(m.env, "PATH="+bin+":"+os.Getenv("PATH"), "SU_HASHTEE=coreutils")
	rep := m.check(t, runDocument(t, LinuxMemoryCapture, m.params, env))

	if rep.Upload.HashingTee != "coreutils" {
		t.Errorf("hashing tee %q, want coreutils", rep.Upload.HashingTee)
	}
	if rep.Tool.Name != "lime" || len(rep.Attempts) != 2 || rep.Attempts[0].Status != StatusFailed {
		t.Errorf("tool %+v attempts %+v: want a failed attempt with timeout=, then LiME without it", rep.Tool, rep.Attempts)
	}
	if rep.Lime == nil || len(rep.Lime.ZeroFilled) != 1 || !strings.HasPrefix(rep.Lime.ZeroFilled[0], "0x100000-0xefffff") ||
		len(rep.Lime.LogTail) != 3 {
		t.Fatalf("lime log %+v: want the zero-filled range 0x100000-0xefffff", rep.Lime)
	}
	warnings := strings.Join(rep.Warnings, "\n")
	for _, w := range []string{"no timeout parameter", "zero-filled 1 range"} {
		if !strings.Contains(warnings, w) {
			t.Errorf("warnings %q lack %q", warnings, w)
		}
	}
}
