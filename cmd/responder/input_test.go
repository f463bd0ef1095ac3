package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// An --evidence-dir that cannot take the case is refused before any AWS
// call, with exit 2: never found out after containment, with the record
// dumped in the working directory.
func TestRespondRefusesAnUnwritableEvidenceDir(t *testing.T) {
	for name, prepare := range unwritableEvidenceDirs() {
		t.Run(name, func(t *testing.T) {
			c, s := fakeaws.NewSuspect()
			dir := prepare(t, "case-x")
			before := dumpedRecords(t)
			code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-x", "--evidence-dir", dir)
			if code != exitUsage || !strings.Contains(errOut, "--evidence-dir") {
				t.Fatalf("exit %d, stderr %q; want %d naming --evidence-dir", code, errOut, exitUsage)
			}
			if n := c.TotalCalls(); n != 0 {
				t.Errorf("%d AWS call(s) made before the folder was refused", n)
			}
			if after := dumpedRecords(t); len(after) != len(before) {
				t.Errorf("records dumped in the working directory: %v", after)
			}
		})
	}
}

// A dry run stores nothing: an unwritable folder does not stop it.
func TestDryRunNeedsNoWritableEvidenceDir(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := unwritableEvidenceDirs()["a read-only evidence folder"](t, "case-x")
	if code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--evidence-dir", dir, "--dry-run"); code != exitDryRun {
		t.Fatalf("dry run: exit %d, %s", code, errOut)
	}
}

// preserve records a run in the case: a case folder it cannot write is
// refused the same way, before it shares or copies anything.
func TestPreserveRefusesAnUnwritableEvidenceDir(t *testing.T) {
	for name, prepare := range map[string]func(t *testing.T, src *fakeaws.Cloud, instanceID string) string{
		"a recorded case whose folder is read-only": func(t *testing.T, src *fakeaws.Cloud, instanceID string) string {
			dir := t.TempDir()
			if code, _, errOut := runCLI(t, src, "respond", "--instance-id", instanceID, "--case-id", "case-x", "--evidence-dir", dir, "--steps", "snapshots"); code != exitOK {
				t.Fatalf("respond: %d %s", code, errOut)
			}
			makeUnwritable(t, filepath.Join(dir, "case-x"))
			return dir
		},
		"a path under a regular file": func(t *testing.T, _ *fakeaws.Cloud, _ string) string {
			return unwritableEvidenceDirs()["a path under a regular file"](t, "case-x")
		},
	} {
		t.Run(name, func(t *testing.T) {
			src, s := fakeaws.NewSuspect()
			dst := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
			fakeaws.Link(src, dst)
			key := dst.AddKMSKey("alias/evidence")
			dir := prepare(t, src, s.InstanceID)
			before := src.TotalCalls() + dst.TotalCalls()
			code, _, errOut := runPreserveCLI(t, src, dst, "--case-id", "case-x", "--forensics-account", forensicsAccount,
				"--forensics-kms-key", key, "--evidence-dir", dir, "--poll-interval", "1ms", "--timeout", "1s")
			if code != exitUsage || !strings.Contains(errOut, "--evidence-dir") {
				t.Fatalf("exit %d, stderr %q; want %d naming --evidence-dir", code, errOut, exitUsage)
			}
			if n := src.TotalCalls() + dst.TotalCalls() - before; n != 0 {
				t.Errorf("%d AWS call(s) made before the folder was refused", n)
			}
		})
	}
}

// unwritableEvidenceDirs are ways an --evidence-dir cannot take a case: each
// prepares one under the test's temporary folder and returns the flag's
// value. They hold whatever the test's privileges (see makeUnwritable).
func unwritableEvidenceDirs() map[string]func(t *testing.T, caseID string) string {
	return map[string]func(t *testing.T, caseID string) string{
		"a path under a regular file": func(t *testing.T, _ string) string {
			file := filepath.Join(t.TempDir(), "file")
			writeFile(t, file, "")
			return filepath.Join(file, "cases")
		},
		"a read-only evidence folder": func(t *testing.T, _ string) string {
			return makeUnwritable(t, filepath.Join(t.TempDir(), "cases"))
		},
		"a resumed case whose folder is read-only": func(t *testing.T, caseID string) string {
			dir := filepath.Join(t.TempDir(), "cases")
			makeUnwritable(t, filepath.Join(dir, caseID))
			return dir
		},
	}
}

// makeUnwritable makes the folder dir (created if need be) read-only, and
// returns it. Root ignores permission bits, and CI runs as root: when the
// process can still write into it, dir is replaced by a regular file, into
// which no one can write a file, so that the test still holds.
func makeUnwritable(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) }) // so that TempDir can remove it
	if f, err := os.CreateTemp(dir, "probe-"); err == nil {
		f.Close()
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "")
	}
	return dir
}

// dumpedRecords lists the case records the CLI keeps in the working
// directory when the store cannot take them.
func dumpedRecords(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob("responder-*-manifest-run-*.json")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A --playbook file that is not a regular file of at most 1 MiB is refused
// before it is read, with exit 2 and no AWS call; a FIFO does not block.
func TestRespondRefusesWhatIsNotAPlaybookFile(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.yaml")
	writeFile(t, huge, "")
	if err := os.Truncate(huge, playbooks.MaxFileBytes+1); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder.yaml")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ file, stderr string }{
		"larger than 1 MiB": {huge, "a playbook may have at most 1048576 (1 MiB)"},
		"a directory":       {folder, "is a directory, not a regular file"},
	}
	addSpecialFiles(t, dir, cases)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, s := fakeaws.NewSuspect()
			code, _, errOut := runCLIWithin(t, c, "respond", "--instance-id", s.InstanceID, "--playbook", tc.file, "--evidence-dir", t.TempDir())
			if code != exitUsage || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, exitUsage, tc.stderr)
			}
			if n := c.TotalCalls(); n != 0 {
				t.Errorf("%d AWS call(s) made before the playbook was refused", n)
			}
		})
	}
}

func writeFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runCLIWithin runs the CLI as runCLI does, and fails the test when the
// command has not returned within 10 seconds (reading a FIFO without a
// writer blocks forever).
func runCLIWithin(t *testing.T, c *fakeaws.Cloud, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := runCLI(t, c, args...)
		done <- result{code, out, errOut}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.errOut
	case <-time.After(10 * time.Second):
		t.Fatal("the command blocked")
		return 0, "", ""
	}
}
