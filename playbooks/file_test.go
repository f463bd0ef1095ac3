package playbooks_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/playbooks"
)

// A playbook file larger than MaxFileBytes, or that is not a regular file,
// is refused before it is read.
func TestLoadRefusesWhatIsNotAPlaybookFile(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.yaml")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: the size is what counts, and nothing reads it.
	if err := errors.Join(f.Truncate(playbooks.MaxFileBytes+1), f.Close()); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder.yaml")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, arg, want string }{
		{"larger than 1 MiB", huge, "is 1048577 bytes: a playbook may have at most 1048576 (1 MiB)"},
		{"a directory", folder, "is a directory, not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := playbooks.Load(tc.arg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// A file of exactly MaxFileBytes is read (and then judged as YAML); a
// symbolic link to a playbook file is followed.
func TestLoadReadsUpToTheCap(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	body := minimal + "#" + strings.Repeat("x", playbooks.MaxFileBytes-len(minimal)-2) + "\n"
	if len(body) != playbooks.MaxFileBytes {
		t.Fatalf("body of %d bytes", len(body))
	}
	if err := os.WriteFile(big, []byte(strings.Replace(body, "name: mine", "name: big", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := playbooks.Load(big); err != nil || p.Name != "big" {
		t.Fatalf("Load of a %d-byte file: %+v, %v", len(body), p, err)
	}
	mine := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(filepath.Join(dir, "target"), []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", mine); err != nil {
		t.Fatal(err)
	}
	if p, err := playbooks.Load(mine); err != nil || p.Name != "mine" {
		t.Fatalf("Load through a symbolic link: %+v, %v", p, err)
	}
}
