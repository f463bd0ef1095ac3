//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// addSpecialFiles adds a FIFO (no writer: a reader would block forever) and
// a device to the cases of TestRespondRefusesWhatIsNotAPlaybookFile.
func addSpecialFiles(t *testing.T, dir string, cases map[string]struct{ file, stderr string }) {
	t.Helper()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	device := filepath.Join(dir, "null.yaml")
	if err := os.Symlink(os.DevNull, device); err != nil {
		t.Fatal(err)
	}
	cases["a FIFO"] = struct{ file, stderr string }{fifo, "is a named pipe (FIFO), not a regular file"}
	cases["a device"] = struct{ file, stderr string }{device, "is a character device, not a regular file"}
}
