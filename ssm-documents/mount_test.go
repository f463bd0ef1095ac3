package ssmdocuments

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
)

// mountReport is the part of responder.analysis-mount/1 the tests read.
type mountReport struct {
	Schema string `json:"schema"`
	Status string `json:"status"`
	Mounts []struct {
		VolumeID     string `json:"volume_id"`
		Device       string `json:"device"`
		FSType       string `json:"fstype"`
		MountPoint   string `json:"mount_point"`
		Options      string `json:"options"`
		ReadOnly     bool   `json:"read_only"`
		WritesBefore string `json:"writes_before"`
		WritesAfter  string `json:"writes_after"`
		SHA256Before string `json:"sha256_before"`
		SHA256After  string `json:"sha256_after"`
		Unchanged    bool   `json:"unchanged"`
		Error        string `json:"error"`
	} `json:"mounts"`
	Errors []string `json:"errors"`
}

// The mount document, run for real as root against loop devices holding an
// ext4 and an XFS image, each with a file in it and each left "dirty" where
// the filesystem allows: it mounts both read-only without journal replay,
// reads the files, and the images' SHA-256 (taken of the image files, outside
// the script) are the same afterwards. Without root, loop devices or the
// mkfs programs the test cannot run: it fails in CI and says why.
func TestAnalysisMountLoopDevices(t *testing.T) {
	requireTools(t, "mkfs.ext4", "mkfs.xfs")
	requireMountPrivileges(t)
	dir := t.TempDir()
	root := mountRoot(dir)

	images := map[string]string{"ext4": filepath.Join(dir, "ext4.img"), "xfs": filepath.Join(dir, "xfs.img")}
	makeImage(t, images["ext4"], 64, "mkfs.ext4", "-q", "-F", "-L", "evidence-ext4")
	makeImage(t, images["xfs"], 320, "mkfs.xfs", "-q", "-f", "-L", "evidence-xfs")
	writeFileInto(t, images["ext4"], "ext4", "secret.txt", "ext4 evidence\n")
	writeFileInto(t, images["xfs"], "xfs", "secret.txt", "xfs evidence\n")

	before := map[string]string{}
	for fs, img := range images {
		before[fs] = fileSHA256(t, img)
	}
	loops := map[string]string{}
	for fs, img := range images {
		loops[fs] = attachLoop(t, img)
	}
	vols := map[string]string{"ext4": "vol-0000000000000e4e4", "xfs": "vol-000000000000000f5"}
	rep, res := runMount(t, root, vols["ext4"]+":"+loops["ext4"]+","+vols["xfs"]+":"+loops["xfs"])
	if res.exit != 0 || rep.Status != "ok" || rep.Schema != MountSchema {
		t.Fatalf("exit %d, status %q, errors %q\nstdout: %s\nstderr: %s", res.exit, rep.Status, rep.Errors, res.stdout, res.stderr)
	}
	// The script asks ext4 for noload, which the kernel shows as its
	// synonym norecovery.
	wantOpts := map[string]string{"ext4": "norecovery", "xfs": "norecovery"}
	seen := map[string]bool{}
	for _, m := range rep.Mounts {
		fs := m.FSType
		seen[fs] = true
		if m.VolumeID != vols[fs] || !m.ReadOnly || !m.Unchanged || m.WritesBefore != m.WritesAfter || m.SHA256Before != m.SHA256After {
			t.Errorf("%s: %+v", fs, m)
		}
		if !strings.Contains(","+m.Options+",", ",ro,") || !strings.Contains(m.Options, wantOpts[fs]) {
			t.Errorf("%s mounted with %q, want ro and %s", fs, m.Options, wantOpts[fs])
		}
		got, err := os.ReadFile(filepath.Join(m.MountPoint, "secret.txt"))
		if err != nil || string(got) != fs+" evidence\n" {
			t.Errorf("%s: read %q, %v", fs, got, err)
		}
		// A write through the mount is refused.
		if err := os.WriteFile(filepath.Join(m.MountPoint, "planted"), []byte("x"), 0o644); err == nil {
			t.Errorf("%s: a file could be written into the read-only mount", fs)
		}
	}
	if !seen["ext4"] || !seen["xfs"] {
		t.Fatalf("mounted %v, want ext4 and xfs", seen)
	}
	// Unmount and detach, then compare the images themselves.
	for _, m := range rep.Mounts {
		if out, err := exec.Command("umount", m.MountPoint).CombinedOutput(); err != nil {
			t.Fatalf("umount %s: %v %s", m.MountPoint, err, out)
		}
	}
	for fs, dev := range loops {
		detachLoop(dev)
		if got := fileSHA256(t, images[fs]); got != before[fs] {
			t.Errorf("%s image changed: SHA-256 %s before, %s after", fs, before[fs], got)
		}
	}
}

// requireMountPrivileges ends the test (a failure in CI) unless it runs as
// root on a machine with loop devices and the programs the mount document
// and the test use.
func requireMountPrivileges(t testing.TB) {
	t.Helper()
	requireTools(t, "losetup", "blockdev", "blkid", "lsblk", "findmnt", "mount", "umount", "openssl")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the mount test needs root (losetup, mount): run it as root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Missing(t, "no /dev/loop-control: this machine or container offers no loop devices (%v)", err)
	}
}

// mountRoot is a mount root under /mnt (the document takes no other) of the
// test's own, removed afterwards.
func mountRoot(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	root := "/mnt/responder-test-" + hex.EncodeToString(sum[:6])
	return root
}

// runMount runs Responder-AnalysisMount with HashDevices on the volumes
// (vol-ID:/dev/NAME,...) and env, and reads its report; whatever it mounted
// is unmounted after the test.
func runMount(t testing.TB, root, volumes string, env ...string) (mountReport, runResult) {
	t.Helper()
	t.Cleanup(func() { os.RemoveAll(root) })
	res := runDocument(t, AnalysisMount, map[string]string{
		"CaseId":      "case-loop",
		"Volumes":     volumes,
		"MountRoot":   root,
		"HashDevices": "true",
	}, env)
	var rep mountReport
	if err := json.Unmarshal(res.stdout, &rep); err != nil {
		t.Fatalf("report: %v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	t.Cleanup(func() {
		for _, m := range rep.Mounts {
			if m.MountPoint != "" {
				exec.Command("umount", m.MountPoint).Run()
			}
		}
	})
	return rep, res
}

func makeImage(t testing.TB, path string, mib int64, mkfs string, args ...string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(mib << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(mkfs, append(args, path)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", mkfs, err, out)
	}
}

// writeFileInto mounts an image read-write, writes a file and unmounts it:
// the filesystem then has a history (journal, counters) a careless mount
// would update.
func writeFileInto(t testing.TB, img, fs, name, content string) {
	t.Helper()
	mp := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", "-t", fs, img, mp).CombinedOutput(); err != nil {
		testenv.Missing(t, "mount -o loop %s: %v %s", img, err, out)
	}
	err := os.WriteFile(filepath.Join(mp, name), []byte(content), 0o644)
	if out, uerr := exec.Command("umount", mp).CombinedOutput(); uerr != nil {
		t.Fatalf("umount: %v %s", uerr, out)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func attachLoop(t testing.TB, img string) string {
	t.Helper()
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		testenv.Missing(t, "losetup --find --show %s: %v", img, err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { detachLoop(dev) })
	return dev
}

// detachLoop gives the loop device back as it found it: the mount script set
// it read-only in the kernel, a flag the device keeps for its next user.
func detachLoop(dev string) {
	exec.Command("blockdev", "--setrw", dev).Run()
	exec.Command("losetup", "-d", dev).Run()
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// BenchmarkAnalysisMount runs the mount document on a 64 MiB ext4 and a
// 320 MiB XFS loop device (as root), then unmounts: the time to a proven
// read-only mount, with the write counters only and with the devices
// hashed whole before and after.
func BenchmarkAnalysisMount(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (losetup, mount)")
	}
	dir := b.TempDir()
	ext4, xfs := filepath.Join(dir, "ext4.img"), filepath.Join(dir, "xfs.img")
	makeImage(b, ext4, 64, "mkfs.ext4", "-q", "-F")
	makeImage(b, xfs, 320, "mkfs.xfs", "-q", "-f")
	volumes := "vol-0000000000000e4e4:" + attachLoop(b, ext4) + ",vol-000000000000000f5:" + attachLoop(b, xfs)
	sum := sha256.Sum256([]byte(dir))
	root := "/mnt/responder-bench-" + hex.EncodeToString(sum[:6])
	b.Cleanup(func() { os.RemoveAll(root) })
	for _, hash := range []string{"false", "true"} {
		b.Run("hash="+hash, func(b *testing.B) {
			for b.Loop() {
				res := runDocument(b, AnalysisMount, map[string]string{"CaseId": "bench", "Volumes": volumes, "MountRoot": root, "HashDevices": hash}, nil)
				var rep mountReport
				if err := json.Unmarshal(res.stdout, &rep); err != nil || rep.Status != "ok" {
					b.Fatalf("%v %s %s", err, res.stdout, res.stderr)
				}
				b.StopTimer()
				for _, m := range rep.Mounts {
					exec.Command("umount", m.MountPoint).Run()
				}
				b.StartTimer()
			}
		})
	}
}
