package evidence_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
)

// CheckWritable creates the root as the first write would, and leaves no
// file behind: neither the root's cases nor a case's files change.
func TestCheckWritableLeavesNothingBehind(t *testing.T) {
	ctx := context.Background()
	f := &evidence.Folder{Root: filepath.Join(t.TempDir(), "cases")}
	if err := f.CheckWritable("case-new"); err != nil {
		t.Fatalf("new root: %v", err)
	}
	if info, err := os.Stat(f.Root); err != nil || !info.IsDir() {
		t.Fatalf("root not created: %v", err)
	}
	if _, err := f.Put(ctx, "case-1", "a.txt", []byte("a"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if err := f.CheckWritable("case-1"); err != nil {
		t.Fatalf("existing case: %v", err)
	}
	files, err := f.Files(ctx, "case-1")
	if err != nil || !slices.Equal(files, []string{"a.txt"}) {
		t.Errorf("case files after the check: %v, %v", files, err)
	}
	entries, err := os.ReadDir(f.Root)
	if err != nil || len(entries) != 1 || entries[0].Name() != "case-1" {
		t.Errorf("root holds %v after the check (%v), want the case folder only", entries, err)
	}
}

// A root or case folder that cannot be a folder is refused, whatever the
// process's privileges.
func TestCheckWritableRefusesWhatCannotBeAFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (&evidence.Folder{Root: filepath.Join(file, "cases")}).CheckWritable("case-1"); err == nil {
		t.Error("root under a regular file accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "case-1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := (&evidence.Folder{Root: dir}).CheckWritable("case-1"); err == nil {
		t.Error("case folder that is a regular file accepted")
	}
	if err := (&evidence.Folder{Root: dir}).CheckWritable("../x"); err == nil {
		t.Error("invalid case ID accepted")
	}
}
