package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/fakeaws"
)

// errorCase is one command line that must fail with one short line on
// standard error, nothing on standard output, and its exit code.
type errorCase struct {
	args []string
	code int
}

// transcript runs each case and writes what a user sees: the command, the
// exit code, standard error (standard output must stay empty).
func transcript(t *testing.T, run func(args []string) (int, string, string), cases []errorCase) string {
	t.Helper()
	var b strings.Builder
	for _, tc := range cases {
		code, out, errOut := run(tc.args)
		if code != tc.code {
			t.Errorf("responder %s: exit %d, want %d (stderr %q)", strings.Join(tc.args, " "), code, tc.code, errOut)
		}
		if out != "" {
			t.Errorf("responder %s: printed on standard output:\n%s", strings.Join(tc.args, " "), out)
		}
		if n := strings.Count(errOut, "\n"); n != 1 {
			t.Errorf("responder %s: %d lines on standard error, want one:\n%s", strings.Join(tc.args, " "), n, errOut)
		}
		fmt.Fprintf(&b, "$ responder %s\n%s(exit %d)\n\n", strings.Join(tc.args, " "), errOut, code)
	}
	return b.String()
}

func TestUsageErrorsGolden(t *testing.T) {
	c, _ := fakeaws.NewSuspect()
	dir := t.TempDir()
	got := transcript(t, func(args []string) (int, string, string) { return runCLI(t, c, args...) }, []errorCase{
		{[]string{"respnd", "-i", "i-0123456789abcdef0"}, exitUsage},
		{[]string{"xyzzy"}, exitUsage},
		{[]string{"respond", "--instance-idd", "i-0123456789abcdef0"}, exitUsage},
		{[]string{"respond", "--evidence-bukcet", "b", "-i", "i-0123456789abcdef0"}, exitUsage},
		{[]string{"respond", "--evidence-dir", dir}, exitUsage},
		{[]string{"respond", "-i"}, exitUsage},
		{[]string{"respond", "-i", "i-0123456789abcdef0", "--blast-radius", "many"}, exitUsage},
		{[]string{"status", "--case-id", "case-x", "--outptu", "json"}, exitUsage},
		{[]string{"status", "--case-id", "case-x", "--output", "yaml"}, exitUsage},
		{[]string{"status", "--case-id", "case-x", "-o", "json", "--query", "steps[?"}, exitUsage},
		{[]string{"status", "--case-id", "case-x", "--query", "status"}, exitUsage},
		{[]string{"preserve", "--case-id", "case-x"}, exitUsage},
		{[]string{"cases", "lst"}, exitUsage},
		{[]string{"playbooks", "shwo", "collect"}, exitUsage},
		{[]string{"help", "relase"}, exitUsage},
		{[]string{"help", "cases", "lits"}, exitUsage},
		{[]string{"--verbsoe"}, exitUsage},
	})
	golden(t, "usage-errors.golden", strings.ReplaceAll(got, dir, "<dir>"))
}

func TestHelpCommand(t *testing.T) {
	c, _ := fakeaws.NewSuspect()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "COMMANDS:"},
		{nil, "COMMANDS:"},
		{[]string{"help", "respond"}, "responder respond - acquire evidence"},
		{[]string{"help", "cases", "list"}, "responder cases list - list the cases"},
		{[]string{"help", "cases"}, "list"},
		{[]string{"cases"}, "list"},
		{[]string{"respond", "--help"}, "EXAMPLES:"},
	} {
		code, out, errOut := runCLI(t, c, tc.args...)
		if code != exitOK || !strings.Contains(out, tc.want) || errOut != "" {
			t.Errorf("responder %s: exit %d, stderr %q, stdout lacks %q:\n%s", strings.Join(tc.args, " "), code, errOut, tc.want, out)
		}
	}
}

// commandPaths are the paths of every command of the tree.
func commandPaths(cmds []*cli.Command, parent []string) [][]string {
	var out [][]string
	for _, c := range cmds {
		p := append(append([]string{}, parent...), c.Name)
		out = append(out, p)
		out = append(out, commandPaths(c.Subcommands, p)...)
	}
	return out
}

var exampleLine = regexp.MustCompile(`^\s+responder\s`)

// helpExamples are the command lines of the EXAMPLES section of a help
// text, continuation lines joined.
func helpExamples(help string) []string {
	_, section, ok := strings.Cut(help, "EXAMPLES:\n")
	if !ok {
		return nil
	}
	var out []string
	lines := strings.Split(section, "\n")
	for i := 0; i < len(lines); i++ {
		if !exampleLine.MatchString(lines[i]) {
			if strings.TrimSpace(lines[i]) != "" && !strings.HasPrefix(strings.TrimSpace(lines[i]), "#") {
				break // the next section
			}
			continue
		}
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		out = append(out, line)
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for the simple
// quoting the examples use ('...', "...").
func shellWords(t *testing.T, line string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unterminated quote in %q", line)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// TestHelpExamplesParse reads the EXAMPLES of every command's --help and
// runs each through the parser (the command's action replaced): a flag
// renamed or dropped, or a required flag missing, fails it.
func TestHelpExamplesParse(t *testing.T) {
	c, _ := fakeaws.NewSuspect()
	d := testDeps(c)
	d.getenv = envOf(map[string]string{"RESPONDER_CONFIG": "testdata/config.yaml"})
	for _, path := range commandPaths(newApp(&streams{}, d).Commands, nil) {
		var out bytes.Buffer
		s := &streams{Out: &out, Err: &out}
		if code := run(context.Background(), append(append([]string{"responder"}, path...), "--help"), s, d); code != exitOK {
			t.Fatalf("%s --help: exit %d", strings.Join(path, " "), code)
		}
		examples := helpExamples(out.String())
		if len(examples) == 0 {
			t.Errorf("responder %s --help has no EXAMPLES section", strings.Join(path, " "))
		}
		for _, ex := range examples {
			args := shellWords(t, ex)
			reached := false
			app := newApp(&streams{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, d)
			stubActions(app.Commands, &reached)
			if err := app.RunContext(context.Background(), args); err != nil || !reached {
				t.Errorf("example of %s does not parse: %s: %v", strings.Join(path, " "), ex, err)
			}
		}
	}
}

func stubActions(cmds []*cli.Command, reached *bool) {
	for _, c := range cmds {
		c.Action = func(*cli.Context) error { *reached = true; return nil }
		stubActions(c.Subcommands, reached)
	}
}

// envOf is an environment of the given variables only.
func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}
