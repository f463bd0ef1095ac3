//go:build unix

package playbooks_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/responder-ir/responder/playbooks"
)

// A FIFO with no writer would block a reader forever, and a device is no
// playbook: both are refused before they are opened for reading.
func TestLoadRefusesFIFOsAndDevices(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	device := filepath.Join(dir, "null.yaml")
	if err := os.Symlink(os.DevNull, device); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, arg, want string }{
		{"a FIFO", fifo, "is a named pipe (FIFO), not a regular file"},
		{"a device", device, "is a character device, not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := playbooks.Load(tc.arg)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked on the file")
			}
		})
	}
}
