//go:build analysistools

// The analysis job against the real Volatility 3 and plaso, installed by
// scripts/analysis-tools.sh (make test-analysis-tools). Built only with
// -tags analysistools: the machines this project's CI runs on reach no
// Python package index (see ssm-documents/README.md, "Analysis jobs"), so
// these tests are not part of go test ./... . Where they are built, a
// missing tool fails them in CI (internal/testenv).

package ssmdocuments

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/internal/testenv"
)

const realToolsInstall = "run scripts/analysis-tools.sh and put the directory it prints on PATH (make test-analysis-tools does)"

// linuxBanner is a banner as a Debian 12 cloud kernel prints it; banners.Banners
// finds "Linux version ...\x00" anywhere in an image.
const linuxBanner = "Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, " +
	"GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\n"

// syntheticMemory writes mib MiB of pseudo-random bytes with the banner
// planted at three page-aligned offsets.
func syntheticMemory(t *testing.T, path string, mib int) []int64 {
	t.Helper()
	buf := make([]byte, mib<<20)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range buf {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		buf[i] = byte(x)
	}
	offsets := []int64{1 << 20, int64(mib/2) << 20, int64(mib-1)<<20 + 4096}
	for _, off := range offsets {
		copy(buf[off:], linuxBanner+"\x00")
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	return offsets
}

// Volatility 3 on a synthetic image with no symbol tables: banners.Banners
// finds the planted banners; linux.pslist.PsList cannot run without the
// kernel's ISF, and the job reports that as a failure with its exit status
// and stderr stored, never as success.
func TestRealToolsVolatilityBanners(t *testing.T) {
	requireTools(t, "openssl")
	testenv.LookPath(t, realToolsInstall, "vol")
	bin, store := jobBin(t)
	dir := analysisDir(t, "realvol")
	const mib = 16
	offsets := syntheticMemory(t, dir+"/memory.raw", mib)
	prefix := "cases/case-v/analysis/ws-001/"
	params := map[string]string{"CaseId": "case-v", "Tool": "volatility", "Bucket": "evidence-bucket", "Prefix": prefix,
		"MemoryPath": dir + "/memory.raw", "Plugins": "banners.Banners,linux.pslist.PsList", "SymbolDirs": "none"}
	started := time.Now()
	res := runDocument(t, AnalysisJob, params, []string{"PATH=" + bin + ":" + os.Getenv("PATH")})
	t.Logf("Volatility 3 job (banners.Banners, linux.pslist.PsList) on %d MiB: %s", mib, time.Since(started).Round(time.Millisecond))
	rep := decodeJob(t, res)
	if res.exit != 1 || rep.Status != "failed" || len(rep.Runs) != 2 || !strings.HasPrefix(rep.Version, "Volatility 3 Framework 2.") {
		t.Fatalf("exit %d %+v\n%s", res.exit, rep, res.stderr)
	}
	stored := store.checkOutputs(t, rep, prefix+"volatility/")
	banners, pslist := rep.Runs[0], rep.Runs[1]
	if banners.Name != "banners.Banners" || banners.ExitStatus != 0 || banners.Output == "" {
		t.Fatalf("banners run %+v; stderr %s", banners, stored[banners.Log])
	}
	var rows []struct {
		Offset int64  `json:"Offset"`
		Banner string `json:"Banner"`
	}
	if err := json.Unmarshal(stored[banners.Output], &rows); err != nil {
		t.Fatalf("banners output: %v\n%s", err, stored[banners.Output])
	}
	found := map[int64]bool{}
	for _, r := range rows {
		if strings.HasPrefix(r.Banner, "Linux version 6.1.0-28-cloud-amd64") {
			found[r.Offset] = true
		}
	}
	for _, off := range offsets {
		if !found[off] {
			t.Errorf("banner at %#x not found; rows %+v", off, rows)
		}
	}
	if pslist.Name != "linux.pslist.PsList" || pslist.ExitStatus == 0 || pslist.Status != "failed" || pslist.Output != "" || len(stored[pslist.Log]) == 0 {
		t.Errorf("pslist run %+v; stderr %q", pslist, stored[pslist.Log])
	}
}

// plaso on an ext4 filesystem mounted read-only from a loop device: files
// whose modification times were set (touch -d) appear in the JSON lines and
// the l2tcsv timeline with those times, and the image is unchanged.
func TestRealToolsPlasoTimeline(t *testing.T) {
	requireTools(t, "openssl", "mkfs.ext4", "losetup", "mount", "umount")
	testenv.LookPath(t, realToolsInstall, "log2timeline.py")
	testenv.LookPath(t, realToolsInstall, "psort.py")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the plaso test mounts a loop device: run it as root")
	}
	files := map[string]time.Time{
		"home/alice/notes.txt":   time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC),
		"etc/cron.d/persistence": time.Date(2024, 11, 30, 23, 59, 1, 0, time.UTC),
	}
	src, img := t.TempDir(), filepath.Join(t.TempDir(), "ext4.img")
	for name, mtime := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("touch", "-d", mtime.Format(time.RFC3339), p).CombinedOutput(); err != nil {
			t.Fatalf("touch: %v %s", err, out)
		}
	}
	// mkfs.ext4 -d copies the tree with its times, no read-write mount.
	makeImage(t, img, 32, "mkfs.ext4", "-q", "-F", "-d", src)
	before := fileSHA256(t, img)
	out, err := exec.Command("losetup", "--find", "--show", "--read-only", img).Output()
	if err != nil {
		testenv.Missing(t, "losetup --read-only %s: %v", img, err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { detachLoop(dev) })
	root := mntDir(t)
	mp := root + "/vol-0000000000000e4e4"
	if err := os.MkdirAll(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "ro,noload", dev, mp).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mp).Run() })

	bin, store := jobBin(t)
	prefix := "cases/case-p/analysis/ws-001/"
	started := time.Now()
	res := runDocument(t, AnalysisJob, map[string]string{"CaseId": "case-p", "Tool": "plaso", "Bucket": "evidence-bucket",
		"Prefix": prefix, "MountRoot": root}, []string{"PATH=" + bin + ":" + os.Getenv("PATH")})
	t.Logf("plaso job (log2timeline, psort json_line and l2tcsv) on a 32 MiB ext4 image: %s", time.Since(started).Round(time.Millisecond))
	rep := decodeJob(t, res)
	if res.exit != 0 || rep.Status != "ok" || len(rep.Runs) != 3 {
		t.Fatalf("exit %d %+v\n%s", res.exit, rep, res.stderr)
	}
	stored := store.checkOutputs(t, rep, prefix+"plaso/")
	jsonl, csv := stored[prefix+"plaso/timeline.jsonl"], stored[prefix+"plaso/timeline.csv"]
	for name, mtime := range files {
		if !jsonLineHas(jsonl, "/"+name, mtime) {
			t.Errorf("timeline.jsonl has no event of %s at %s", name, mtime)
		}
		if !csvHas(csv, "/"+name, mtime) {
			t.Errorf("timeline.csv has no row of %s at %s", name, mtime)
		}
	}
	if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	detachLoop(dev)
	if after := fileSHA256(t, img); after != before {
		t.Errorf("the image changed: SHA-256 %s before, %s after", before, after)
	}
}

// jsonLineHas reports whether a psort json_line timeline holds an event of
// the file ending in suffix at mtime (its "timestamp" is in microseconds).
func jsonLineHas(b []byte, suffix string, mtime time.Time) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			Filename  string `json:"filename"`
			Timestamp int64  `json:"timestamp"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && strings.HasSuffix(ev.Filename, suffix) && ev.Timestamp == mtime.UnixMicro() {
			return true
		}
	}
	return false
}

// csvHas reports whether an l2tcsv timeline (date MM/DD/YYYY, time
// HH:MM:SS, UTC) has a row of the file ending in suffix at mtime.
func csvHas(b []byte, suffix string, mtime time.Time) bool {
	date, clock := mtime.Format("01/02/2006"), mtime.Format("15:04:05")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, date+","+clock+",") && strings.Contains(line, suffix) {
			return true
		}
	}
	return false
}
