package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
)

// Exit codes. They are part of the interface: scripts and SOAR playbooks
// decide on them. For respond, the case status decides (respondExit): the
// same word is in the record, the table, the report, the SNS message and the
// instance's responder:status tag.
const (
	exitOK                 = 0 // contained or acquired, and every step ok or skipped
	exitContainmentFailed  = 1 // partially-contained or containment-failed: the instance may not be (fully) isolated; release-incomplete
	exitUsage              = 2 // bad input; nothing was called
	exitEvidenceIncomplete = 3 // contained or acquired, but an evidence, record or notify step failed
	exitCannotStart        = 4 // instance not found or terminated, no credentials, case not found, case held by another run, instance protected, blast radius reached, record not matching its seal (release)
	exitDryRun             = 5 // dry run, would-contain or would-acquire: every check that could be made passed
	exitDryRunRefused      = 6 // dry run, would-fail: a check was refused
	exitInterrupted        = 7 // interrupted: the record says what was done; resume with the same case ID
)

const exitCodesHelp = `EXIT CODES (from the case status, the word the record, the report, the SNS message
and the instance's responder:status tag carry):
   0  contained (every containment step read back its state) or acquired (a plan without
      containment), and every step succeeded or had nothing to do
   1  partially-contained or containment-failed: the instance may NOT be (fully) isolated
   2  bad input (nothing was called)
   3  contained or acquired, but some evidence, the case record or the notification failed
   4  could not start: instance not found or terminated, no credentials, case not found,
      or another run of the case is at work (it holds the case's run lock), or another case is
      at work on the instance (it holds the instance's claim), or refused by
      a safeguard: the instance is protected (--force), or the blast radius is reached
      (--blast-radius); nothing was changed
   5  dry run, would-contain or would-acquire: nothing was changed and every check that could
      be made passed (what could not be checked is listed)
   6  dry run, would-fail: a check was refused; a real run would fail the steps marked FAILED
   7  interrupted (Ctrl-C, SIGTERM): the record says what was done; the command that resumes
      the case is printed`

// streams are the command's standard output and error, injected for tests.
type streams struct {
	Out io.Writer
	Err io.Writer
	// ErrIsTerminal: standard error is a terminal (progress bars redraw in
	// place); plain lines otherwise.
	ErrIsTerminal bool
	// In is standard input; InIsTerminal says a person can answer a
	// confirmation there (a command never asks otherwise).
	In           io.Reader
	InIsTerminal bool
	// OutIsTerminal: standard output is a terminal (tables with boxes;
	// colour unless NO_COLOR).
	OutIsTerminal bool
}

// deps are what the commands get from outside: AWS clients, the clock.
type deps struct {
	loadClients func(ctx context.Context, opts cloud.Options) (*cloud.Clients, error)
	now         func() time.Time
	// getenv reads the environment (NO_COLOR, RESPONDER_CONFIG, HOME...);
	// nil is an empty environment.
	getenv func(string) string
}

func defaultDeps() deps {
	return deps{loadClients: cloud.Load, now: time.Now, getenv: os.Getenv}
}

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitf(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// withEnv is d with an empty environment when it has none.
func (d deps) withEnv() deps {
	if d.getenv == nil {
		d.getenv = func(string) string { return "" }
	}
	return d
}

func newApp(s *streams, d deps) *cli.App {
	d = d.withEnv()
	app := &cli.App{
		Name:    "responder",
		Usage:   "preserve the evidence of a suspect EC2 instance and isolate it",
		Version: responder.Version,
		Description: "responder acquires the evidence of a suspect EC2 instance (metadata, console output and\n" +
			"screenshot, a crash-consistent snapshot set of its volumes), then contains it (every\n" +
			"interface through an untracking group into an empty quarantine group, so tracked connections\n" +
			"drop; termination and stop protection, stop on shutdown, volumes kept on termination, no\n" +
			"instance profile), reads back every change, records every step in a case folder with the\n" +
			"SHA-256 of every artifact, and notifies through SNS. `release` undoes the containment from the\n" +
			"record; `investigate` mounts the case's snapshot copies read-only on a fresh analysis instance in\n" +
			"the forensics account. It uses the standard AWS configuration: profiles, AWS_REGION, AWS_ENDPOINT_URL and\n" +
			"the per-service endpoint variables.",
		Writer:    s.Out,
		ErrWriter: s.Err,
		Commands: []*cli.Command{
			respondCommand(s, d), statusCommand(s, d), verifyCommand(s, d),
			holdCommand(s, d, true), holdCommand(s, d, false), casesCommand(s, d), preserveCommand(s, d), imageCommand(s, d),
			reportCommand(s, d), releaseCommand(s, d), playbooksCommand(s), investigateCommand(s, d),
		},
		// Errors are turned into exit codes by run, not by the library.
		ExitErrHandler: func(*cli.Context, error) {},
		// The library's help command answers an unknown name with exit 3:
		// helpCommand replaces it.
		HideHelpCommand: true,
		Action:          rootAction,
		// --generate-bash-completion, which the completion scripts call.
		EnableBashCompletion: true,
		OnUsageError:         usageError(""),
	}
	app.Commands = append(app.Commands, configCommand(s, d), completionCommand(s), helpCommand(s, d))
	prepareCommands(app.Commands, "", s, d.getenv)
	return app
}

// syncWriter serialises writes: logs and progress lines reach standard error
// from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, s *streams, d deps) int {
	d = d.withEnv()
	out := &termOut{Writer: s.Out, tty: s.OutIsTerminal, color: colorOn(s.OutIsTerminal, d.getenv)}
	s = &streams{Out: out, Err: &syncWriter{w: s.Err}, ErrIsTerminal: s.ErrIsTerminal, In: s.In, InIsTerminal: s.InIsTerminal, OutIsTerminal: s.OutIsTerminal}
	if s.In == nil {
		s.In = strings.NewReader("")
	}
	err := newApp(s, d).RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(s.Err, "responder:", ee.err)
		}
		return ee.code
	}
	var ie *responder.InputError
	if errors.As(err, &ie) {
		fmt.Fprintln(s.Err, "responder:", err)
		return exitUsage
	}
	// Anything else comes from parsing the command line.
	fmt.Fprintln(s.Err, "responder:", err)
	return exitUsage
}
