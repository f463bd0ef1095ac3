package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/fakeaws"
)

// TestMissingStoreGolden: a folder or bucket that does not exist is said,
// never listed as an empty table; a report into a missing folder is bad
// input, and nothing is written.
func TestMissingStoreGolden(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, c, "respond", "-i", s.InstanceID, "--case-id", "case-report", "--evidence-dir", dir); code != exitOK {
		t.Fatalf("respond: exit %d: %s", code, errOut)
	}
	file := filepath.Join(dir, "case-report", "manifest.json")
	got := transcript(t, func(args []string) (int, string, string) { return runCLI(t, c, args...) }, []errorCase{
		{[]string{"cases", "list", "--evidence-dir", filepath.Join(dir, "typo")}, exitCannotStart},
		{[]string{"cases", "list", "--evidence-dir", file}, exitCannotStart},
		{[]string{"cases", "list", "--evidence-bucket", "no-such-bucket"}, exitCannotStart},
		{[]string{"report", "--case-id", "case-report", "--evidence-dir", dir, "--out", filepath.Join(dir, "reports", "case.html"), "-f", "html"}, exitUsage},
	})
	golden(t, "store-errors.golden", strings.ReplaceAll(got, dir, "<dir>"))
	if _, err := os.Stat(filepath.Join(dir, "reports")); err == nil {
		t.Error("report created the missing folder")
	}
}

// TestCasesListEmptyFolder: a folder that exists and holds no case is an
// empty list, exit 0.
func TestCasesListEmptyFolder(t *testing.T) {
	c, _ := fakeaws.NewSuspect()
	code, out, errOut := runCLI(t, c, "cases", "list", "--evidence-dir", t.TempDir(), "--output", "json")
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
