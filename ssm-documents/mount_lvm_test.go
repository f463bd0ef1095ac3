package ssmdocuments

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
)

// lvmBuild is the configuration the test builds its volume group with: no
// activation (the kernel may have no device-mapper), no metadata backup or
// archive written on this machine.
const lvmBuild = "global{activation=0} backup{backup=0 archive=0}"

// lvmCase is a volume group on two physical volumes (two image files, two
// working volumes), with an ext4 logical volume on each.
type lvmCase struct {
	vg, uuid string
	images   [2]string
	vols     [2]string
	before   [2]string // SHA-256 of the images
	files    map[string]string
}

// The mount document on LVM, as root, against loop devices holding the two
// physical volumes of a volume group built with the real lvm2 tools. Where
// the kernel has device-mapper it runs with the real tools end to end; where
// it has none (this project's machines and CI: CONFIG_MD is off) the real
// tools run up to the activation, which the document must refuse cleanly
// (device-mapper unavailable, nothing mounted), and a stand-in
// device-mapper (testdata/fakedm: vgchange and dmsetup, the activation done
// with loop devices over the LVs' extents, the arguments still checked by the
// real vgchange in test mode) takes the rest. Either way each LV is mounted
// read-only from the activation read back read-only, the files read back,
// writes fail, and the images' SHA-256 are the same afterwards; a volume group
// whose UUID or name is already active on the host is refused. (On a machine
// whose udev autoactivates LVM, the real run would see the VG active before
// the document and rightly refuse it.)
func TestAnalysisMountLVM(t *testing.T) {
	requireMountPrivileges(t)
	requireTools(t, "mkfs.ext4")
	lvmDir := filepath.Dir(testenv.LookPath(t, "install the Debian package lvm2 (.ci/run does)", "vgchange"))
	for _, tool := range []string{"pvcreate", "vgcreate", "lvcreate", "pvs", "lvs", "dmsetup"} {
		testenv.LookPath(t, "install the Debian package lvm2 (.ci/run does)", tool)
	}
	t.Setenv("LVM_SUPPRESS_FD_WARNINGS", "1")
	c := buildLVM(t)

	t.Run("device-mapper", func(t *testing.T) {
		loops := c.attach(t)
		out, err := exec.Command("dmsetup", "version").CombinedOutput()
		if err == nil {
			t.Cleanup(func() {
				exec.Command("vgchange", "-an", "--devices", loops[0]+","+loops[1], "-S", "vg_uuid="+c.uuid).Run()
			})
			rep, res := runMount(t, mountRoot(t.TempDir()), c.volumes(loops))
			c.checkMounted(t, rep, res)
			return
		}
		t.Logf("this kernel has no device-mapper (dmsetup version: %v %s): the real activation is not exercised, its refusal is", err, strings.TrimSpace(string(out)))
		rep, res := runMount(t, mountRoot(t.TempDir()), c.volumes(loops))
		if res.exit == 0 || rep.Status != "failed" || len(rep.Mounts) != 0 || !strings.Contains(strings.Join(rep.Errors, "\n"), "device-mapper unavailable") {
			t.Errorf("without device-mapper: exit %d, status %q, mounts %+v, errors %q", res.exit, rep.Status, rep.Mounts, rep.Errors)
		}
		c.checkImages(t)
	})

	fake := func(t *testing.T, host ...string) (dm string, env []string) {
		dm = t.TempDir()
		for i, line := range host {
			if err := os.WriteFile(filepath.Join(dm, "host"+strconv.Itoa(i)), []byte(line+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		stand, err := filepath.Abs("testdata/fakedm")
		if err != nil {
			t.Fatal(err)
		}
		return dm, []string{"PATH=" + stand + ":" + os.Getenv("PATH"), "FAKE_DM_DIR=" + dm, "FAKE_LVM_REAL=" + lvmDir}
	}

	t.Run("stand-in device-mapper", func(t *testing.T) {
		loops := c.attach(t)
		dm, env := fake(t)
		t.Cleanup(func() { c.deactivate(dm) })
		root := mountRoot(t.TempDir())
		rep, res := runMount(t, root, c.volumes(loops), env...)
		// A second run (the document is retried) finds the volume group
		// it activated and mounts it again, read back as before.
		again, res2 := runMount(t, root, c.volumes(loops), env...)
		if res2.exit != 0 || again.Status != "ok" || len(again.Mounts) != len(c.files) {
			t.Errorf("second run: exit %d, status %q, errors %q", res2.exit, again.Status, again.Errors)
		}
		c.checkMounted(t, rep, res)
		for lv := range c.files {
			line, err := os.ReadFile(filepath.Join(dm, c.dmName(lv)))
			if f := strings.Fields(string(line)); err != nil || len(f) != 4 || f[2] != "L--r" {
				t.Errorf("%s/%s: device-mapper has %q (%v), want it active read-only (L--r)", c.vg, lv, line, err)
			}
		}
	})

	// The host (or a working volume mounted before) has the VG active: by
	// UUID (the suspect disk is a copy of an active one) or by name.
	vguuid := strings.ReplaceAll(c.uuid, "-", "")
	for name, host := range map[string]string{
		"same uuid": "root-lv LVM-" + vguuid + "00000000000000000000000000000000 L--w none",
		"same name": c.dmName("root") + " LVM-" + strings.Repeat("0", 64) + " L--w none",
	} {
		t.Run("host VG with the "+name, func(t *testing.T) {
			loops := c.attach(t)
			dm, env := fake(t, host)
			t.Cleanup(func() { c.deactivate(dm) })
			rep, res := runMount(t, mountRoot(t.TempDir()), c.volumes(loops), env...)
			errs := strings.Join(rep.Errors, "\n")
			if res.exit == 0 || rep.Status != "failed" || len(rep.Mounts) != 0 || !strings.Contains(errs, "already active on this host") {
				t.Errorf("exit %d, status %q, mounts %+v, errors %q", res.exit, rep.Status, rep.Mounts, rep.Errors)
			}
			if entries, _ := os.ReadDir(dm); len(entries) != 1 {
				t.Errorf("refused, yet device-mapper has %d devices, want only the host's", len(entries))
			}
			c.checkImages(t)
		})
	}
}

// buildLVM makes two image files, a physical volume on each, one volume
// group over both and an ext4 logical volume on each with a file in it, all
// with the real lvm2 tools and never activated.
func buildLVM(t *testing.T) *lvmCase {
	t.Helper()
	dir := t.TempDir()
	sum := sha256.Sum256([]byte(dir))
	c := &lvmCase{
		vg:    "evidence-" + hex.EncodeToString(sum[:4]),
		vols:  [2]string{"vol-0000000000000a1a1", "vol-0000000000000a2a2"},
		files: map[string]string{"data": "lvm data evidence\n", "logs": "lvm logs evidence\n"},
	}
	for i, mib := range []int64{40, 24} {
		c.images[i] = filepath.Join(dir, "pv"+strconv.Itoa(i)+".img")
		if err := os.WriteFile(c.images[i], nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(c.images[i], mib<<20); err != nil {
			t.Fatal(err)
		}
	}
	loops := c.attach(t)
	devs := loops[0] + "," + loops[1]
	lvm(t, "pvcreate", "--devices", devs, "--config", lvmBuild, loops[0], loops[1])
	lvm(t, "vgcreate", "--devices", devs, "--config", lvmBuild, c.vg, loops[0], loops[1])
	lvm(t, "lvcreate", "--devices", devs, "--config", lvmBuild, "-an", "-Zn", "-n", "data", "-L", "24M", c.vg, loops[0])
	lvm(t, "lvcreate", "--devices", devs, "--config", lvmBuild, "-an", "-Zn", "-n", "logs", "-L", "12M", c.vg, loops[1])
	c.uuid = strings.TrimSpace(lvm(t, "vgs", "--noheadings", "-o", "vg_uuid", "--devices", devs, "--config", lvmBuild, c.vg))
	peStart := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(lvm(t, "pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pv_name,pe_start,vg_extent_size", "--devices", devs, "--config", lvmBuild)), "\n") {
		f := strings.Fields(line)
		start, _ := strconv.ParseInt(f[1], 10, 64)
		ext, _ := strconv.ParseInt(f[2], 10, 64)
		peStart[f[0]] = start
		peStart["ext"] = ext
	}
	for _, line := range strings.Split(strings.TrimSpace(lvm(t, "lvs", "--noheadings", "-o", "lv_name,seg_pe_ranges", "--devices", devs, "--config", lvmBuild, c.vg)), "\n") {
		f := strings.Fields(line) // data /dev/loop3:0-5
		pv, ranges, _ := strings.Cut(f[1], ":")
		a, b, _ := strings.Cut(ranges, "-")
		first, _ := strconv.ParseInt(a, 10, 64)
		last, _ := strconv.ParseInt(b, 10, 64)
		ext := peStart["ext"]
		writeLV(t, pv, peStart[pv]+first*ext, (last-first+1)*ext, c.files[f[0]])
	}
	for _, l := range loops {
		detachLoop(l)
	}
	for i, img := range c.images {
		c.before[i] = fileSHA256(t, img)
	}
	return c
}

// writeLV makes an ext4 filesystem in a logical volume's extents (a loop
// device over them) and writes secret.txt into it.
func writeLV(t *testing.T, pv string, offset, size int64, content string) {
	t.Helper()
	out, err := exec.Command("losetup", "--find", "--show", "--offset", strconv.FormatInt(offset, 10), "--sizelimit", strconv.FormatInt(size, 10), pv).Output()
	if err != nil {
		t.Fatalf("losetup over the LV extents of %s: %v", pv, err)
	}
	lv := strings.TrimSpace(string(out))
	defer detachLoop(lv)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", lv).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v %s", lv, err, out)
	}
	mp := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", lv, mp).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v %s", lv, err, out)
	}
	werr := os.WriteFile(filepath.Join(mp, "secret.txt"), []byte(content), 0o644)
	if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	if werr != nil {
		t.Fatal(werr)
	}
}

// lvm runs an lvm2 command and returns its standard output.
func lvm(t *testing.T, cmd string, args ...string) string {
	t.Helper()
	var stderr strings.Builder
	c := exec.Command(cmd, args...)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", cmd, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// attach gives each physical volume image a loop device, the working volume
// the document is run on; detached after the test.
func (c *lvmCase) attach(t *testing.T) [2]string {
	t.Helper()
	return [2]string{attachLoop(t, c.images[0]), attachLoop(t, c.images[1])}
}

// dmName is the device-mapper name of a logical volume of the group.
func (c *lvmCase) dmName(lv string) string {
	return strings.ReplaceAll(c.vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}

func (c *lvmCase) volumes(loops [2]string) string {
	return c.vols[0] + ":" + loops[0] + "," + c.vols[1] + ":" + loops[1]
}

// deactivate undoes what the stand-in vgchange activated (after the mounts
// are gone: cleanups run last registered first).
func (c *lvmCase) deactivate(dm string) {
	entries, _ := os.ReadDir(dm)
	for _, e := range entries {
		line, _ := os.ReadFile(filepath.Join(dm, e.Name()))
		if f := strings.Fields(string(line)); len(f) == 4 && strings.HasPrefix(f[3], "/dev/loop") {
			detachLoop(f[3])
		}
	}
	os.RemoveAll("/dev/" + c.vg)
	os.Remove("/run/responder-analysis-mount/" + c.uuid)
}

// checkMounted asserts that each LV was mounted read-only without journal
// replay and proven unchanged, its file reads back, a write fails, and after
// the unmount the images are as built.
func (c *lvmCase) checkMounted(t *testing.T, rep mountReport, res runResult) {
	t.Helper()
	if res.exit != 0 || rep.Status != "ok" || len(rep.Mounts) != len(c.files) {
		t.Fatalf("exit %d, status %q, errors %q\nstdout: %s\nstderr: %s", res.exit, rep.Status, rep.Errors, res.stdout, res.stderr)
	}
	for _, m := range rep.Mounts {
		lv := strings.TrimPrefix(m.Device, "/dev/"+c.vg+"/")
		if m.FSType != "ext4" || c.files[lv] == "" || filepath.Base(m.MountPoint) != "lvm-"+c.vg+"-"+lv ||
			!m.ReadOnly || !m.Unchanged || m.WritesBefore != m.WritesAfter || m.SHA256Before != m.SHA256After {
			t.Errorf("%s: %+v", lv, m)
		}
		if !strings.Contains(","+m.Options+",", ",ro,") || !strings.Contains(m.Options, "norecovery") {
			t.Errorf("%s mounted with %q, want ro and norecovery", lv, m.Options)
		}
		if got, err := os.ReadFile(filepath.Join(m.MountPoint, "secret.txt")); err != nil || string(got) != c.files[lv] {
			t.Errorf("%s: read %q, %v", lv, got, err)
		}
		if err := os.WriteFile(filepath.Join(m.MountPoint, "planted"), []byte("x"), 0o644); err == nil {
			t.Errorf("%s: a file could be written into the read-only mount", lv)
		}
		if out, err := exec.Command("umount", m.MountPoint).CombinedOutput(); err != nil {
			t.Fatalf("umount %s: %v %s", m.MountPoint, err, out)
		}
	}
	c.checkImages(t)
}

// checkImages compares the images with what was built.
func (c *lvmCase) checkImages(t *testing.T) {
	t.Helper()
	for i, img := range c.images {
		if got := fileSHA256(t, img); got != c.before[i] {
			t.Errorf("physical volume image %d changed: SHA-256 %s before, %s after", i, c.before[i], got)
		}
	}
}
