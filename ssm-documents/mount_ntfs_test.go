package ssmdocuments

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
)

// hibernationHeader starts the hiberfil.sys of a hibernated Windows: ntfs-3g
// then refuses a read-write mount, and remove_hiberfile would delete it.
var hibernationHeader = append([]byte("HIBR"), make([]byte, 4092)...)

// The mount document, run for real as root against a loop device holding an
// NTFS image whose Windows is "hibernated" (a hiberfil.sys with the HIBR
// signature, the unsafe state in which ntfs-3g refuses a read-write mount):
// it mounts it with ntfs-3g read-only, the files and the hibernation file
// read back, a write fails, and the image's SHA-256 is the same after the
// unmount. Without root, loop devices, FUSE or ntfs-3g it fails in CI.
func TestAnalysisMountNTFS(t *testing.T) {
	requireMountPrivileges(t)
	testenv.LookPath(t, "install the Debian package ntfs-3g (.ci/run does)", "mkntfs")
	testenv.LookPath(t, "install the Debian package ntfs-3g (.ci/run does)", "ntfs-3g")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.Missing(t, "no /dev/fuse: ntfs-3g is a FUSE filesystem (%v)", err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "ntfs.img")
	makeImage(t, img, 16, "mkntfs", "-q", "-F", "-Q", "-L", "evidence-ntfs")
	writeNTFS(t, img, map[string][]byte{"secret.txt": []byte("ntfs evidence\n"), "hiberfil.sys": hibernationHeader})
	before := fileSHA256(t, img)

	loop := attachLoop(t, img)
	vol := "vol-00000000000000e75"
	rep, res := runMount(t, mountRoot(dir), vol+":"+loop)
	if res.exit != 0 || rep.Status != "ok" || len(rep.Mounts) != 1 {
		t.Fatalf("exit %d, status %q, errors %q\nstdout: %s\nstderr: %s", res.exit, rep.Status, rep.Errors, res.stdout, res.stderr)
	}
	m := rep.Mounts[0]
	if m.FSType != "ntfs" || m.VolumeID != vol || !m.ReadOnly || !m.Unchanged || m.WritesBefore != m.WritesAfter || m.SHA256Before != m.SHA256After {
		t.Errorf("ntfs: %+v", m)
	}
	if !strings.Contains(","+m.Options+",", ",ro,") {
		t.Errorf("ntfs mounted with %q, want ro", m.Options)
	}
	if got, err := os.ReadFile(filepath.Join(m.MountPoint, "secret.txt")); err != nil || string(got) != "ntfs evidence\n" {
		t.Errorf("secret.txt: read %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(m.MountPoint, "hiberfil.sys")); err != nil || !bytes.Equal(got, hibernationHeader) {
		t.Errorf("hiberfil.sys: the hibernation file does not read back whole (%d bytes, %v)", len(got), err)
	}
	if err := os.WriteFile(filepath.Join(m.MountPoint, "planted"), []byte("x"), 0o644); err == nil {
		t.Errorf("a file could be written into the read-only NTFS mount")
	}
	if out, err := exec.Command("umount", m.MountPoint).CombinedOutput(); err != nil {
		t.Fatalf("umount %s: %v %s", m.MountPoint, err, out)
	}
	detachLoop(loop)
	if got := fileSHA256(t, img); got != before {
		t.Errorf("ntfs image changed: SHA-256 %s before, %s after", before, got)
	}
}

// writeNTFS mounts an NTFS image read-write with ntfs-3g through a loop
// device (a fuseblk mount, whose unmount waits until ntfs-3g has written
// everything) and writes files into it.
func writeNTFS(t *testing.T, img string, files map[string][]byte) {
	t.Helper()
	loop := attachLoop(t, img)
	mp := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ntfs-3g", loop, mp).CombinedOutput(); err != nil {
		testenv.Missing(t, "ntfs-3g read-write mount of %s: %v %s", loop, err, out)
	}
	var werr error
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(mp, name), content, 0o644); err != nil && werr == nil {
			werr = err
		}
	}
	if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	detachLoop(loop)
	if werr != nil {
		t.Fatal(werr)
	}
}
