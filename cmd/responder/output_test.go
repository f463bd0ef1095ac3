package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/responder-ir/responder/responder/fakeaws"
)

var (
	boxDrawing = regexp.MustCompile(`[│┌┐└┘├┤┬┴┼─]`)
	recordKind = regexp.MustCompile(`^[A-Z]+$`)
)

// checkFormat checks what one command printed in one format: a table
// without box drawing and no line ending in a space (stdout is not a
// terminal here), valid JSON, or text lines of tab-separated fields, each
// starting with its record kind.
func checkFormat(t *testing.T, what, format, out string) {
	t.Helper()
	if strings.TrimSpace(out) == "" {
		t.Errorf("%s: printed nothing", what)
		return
	}
	switch format {
	case formatTable:
		if boxDrawing.MatchString(out) {
			t.Errorf("%s: box drawing off a terminal:\n%s", what, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasSuffix(line, " ") {
				t.Errorf("%s: line ends in a space: %q", what, line)
			}
		}
	case formatJSON:
		if !json.Valid([]byte(out)) {
			t.Errorf("%s: not JSON:\n%s", what, out)
		}
	case formatText:
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			kind, _, _ := strings.Cut(line, "\t")
			if !recordKind.MatchString(kind) || !strings.Contains(line, "\t") || boxDrawing.MatchString(line) {
				t.Errorf("%s: not a text record: %q", what, line)
			}
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("%s: escape sequences off a terminal", what)
	}
}

// TestEveryCommandInEveryFormat runs each command that prints results in
// table, json and text.
func TestEveryCommandInEveryFormat(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{ObjectLockDefaultRetention: &fakeaws.Retention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: 30}})
	dst := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
	fakeaws.Link(c, dst)
	key := dst.AddKMSKey("alias/evidence")
	c.SnapshotCompletesAfter, dst.SnapshotCompletesAfter = 1, 1
	bucket := []string{"--evidence-bucket", "evidence"}
	vars := map[string]string{"RESPONDER_CONFIG": "testdata/config.yaml"}
	for _, format := range []string{formatTable, formatJSON, formatText} {
		caseID := "case-fmt-" + format
		for _, tc := range []struct {
			args  []string
			codes []int
		}{
			{append([]string{"respond", "-i", s.InstanceID, "--case-id", caseID}, bucket...), []int{exitOK}},
			{append([]string{"status", "--case-id", caseID}, bucket...), []int{exitOK}},
			{append([]string{"verify", "--case-id", caseID}, bucket...), []int{exitOK, 3}},
			{append([]string{"hold", "--case-id", caseID}, bucket...), []int{exitOK}},
			{append([]string{"unhold", "--case-id", caseID}, bucket...), []int{exitOK}},
			{append([]string{"cases", "list"}, bucket...), []int{exitOK}},
			{append([]string{"release", "--case-id", caseID, "--dry-run"}, bucket...), []int{exitDryRun}},
			{append([]string{"release", "--case-id", caseID, "--yes"}, bucket...), []int{exitOK}},
			{[]string{"playbooks"}, []int{exitOK}},
			{[]string{"playbooks", "list"}, []int{exitOK}},
			{[]string{"playbooks", "show", "--output", format, "collect"}, []int{exitOK}},
			{[]string{"config", "show", "--env", "prod"}, []int{exitOK}},
		} {
			args := tc.args
			if !slices.Contains(args, "--output") {
				args = append(args, "--output", format)
			}
			code, out, errOut := runEnv(t, c, vars, args...)
			what := strings.Join(args, " ")
			if !slices.Contains(tc.codes, code) {
				t.Fatalf("%s: exit %d: %s", what, code, errOut)
			}
			checkFormat(t, what, format, out)
		}
		// preserve keeps the case where the forensics account's credentials
		// reach: a local folder here.
		dir := t.TempDir()
		if code, _, errOut := runCLI(t, c, "respond", "-i", s.InstanceID, "--case-id", caseID, "--evidence-dir", dir, "--steps", "snapshots"); code != exitOK {
			t.Fatalf("respond: %d %s", code, errOut)
		}
		args := []string{"preserve", "--case-id", caseID, "--forensics-account", forensicsAccount, "--forensics-kms-key", key,
			"--evidence-dir", dir, "--output", format}
		code, out, errOut := runForensicsCLI(t, c, dst, args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		checkFormat(t, strings.Join(args, " "), format, out)
	}
}

// TestQuery: --query searches the JSON result, for json and text.
func TestQuery(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, c, "respond", "-i", s.InstanceID, "--case-id", "case-q", "--evidence-dir", dir); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--case-id", "case-q", "-o", "text", "--query", "status"}, "contained\n"},
		{[]string{"status", "--case-id", "case-q", "-o", "json", "--query", "runs[0].run"}, "1\n"},
		{[]string{"status", "--case-id", "case-q", "-o", "text", "--query", "steps[?name=='quarantine'].[name, status]"}, "quarantine\tok\n"},
		{[]string{"status", "--case-id", "case-q", "-o", "text", "--query", "steps[?status=='failed'].name"}, ""},
		{[]string{"cases", "list", "-o", "json", "--query", "[].case_id"}, "[\n  \"case-q\"\n]\n"},
		{[]string{"cases", "list", "-o", "text", "--query", "[0].{id: case_id, runs: runs}"}, "case-q\t1\n"},
		{[]string{"status", "--case-id", "case-q", "-o", "text", "--query", "no_such_field"}, "None\n"},
	} {
		code, out, errOut := runCLI(t, c, append(tc.args, "--evidence-dir", dir)...)
		if code != exitOK || out != tc.want {
			t.Errorf("%s: exit %d, stdout %q, want %q (stderr %q)", strings.Join(tc.args, " "), code, out, tc.want, errOut)
		}
	}
}

// TestTerminalTablesAndColour: on a terminal, tables have boxes and the
// status words colour; NO_COLOR turns the colour off, not the boxes.
func TestTerminalTablesAndColour(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, c, "respond", "-i", s.InstanceID, "--case-id", "case-tty", "--evidence-dir", dir); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	show := func(vars map[string]string) string {
		d := testDeps(c)
		d.getenv = envOf(vars)
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"responder", "status", "--case-id", "case-tty", "--evidence-dir", dir},
			&streams{Out: &out, Err: &errOut, OutIsTerminal: true}, d)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		return out.String()
	}
	out := show(nil)
	if !boxDrawing.MatchString(out) || !strings.Contains(out, ansiGreen+"CONTAINED"+ansiReset) || !strings.Contains(out, ansiGreen+"OK"+ansiReset) {
		t.Errorf("terminal output lacks boxes or coloured status words:\n%q", out)
	}
	out = show(map[string]string{"NO_COLOR": "1"})
	if !boxDrawing.MatchString(out) || strings.Contains(out, "\x1b[") {
		t.Errorf("NO_COLOR: want boxes and no escape sequence:\n%q", out)
	}
}

// TestTextGolden: the text records of respond and status, field by field.
func TestTextGolden(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	code, out, errOut := runCLI(t, c, "respond", "-i", s.InstanceID, "--case-id", "case-text", "--evidence-dir", dir, "-o", "text")
	if code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	all := "--- respond -o text\n" + out
	if code, out, errOut = runCLI(t, c, "status", "--case-id", "case-text", "--evidence-dir", dir, "-o", "text"); code != exitOK {
		t.Fatalf("status: %d %s", code, errOut)
	}
	all += "--- status -o text\n" + out
	golden(t, "text.golden", stable(all, dir))
}
