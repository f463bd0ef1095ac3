package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/report"
)

// reportOptions are the inputs of `responder report`.
type reportOptions struct {
	CaseID string
	Format string
	Out    string
	// MaxClockSkew flags runs whose clock was further from AWS's.
	MaxClockSkew time.Duration
	// Verify re-hashes the evidence and checks the record's seals before
	// the report is written; its result is the report's verification state.
	Verify bool
	AWS    awsOptions
	Store  storeOptions
}

func reportCommand(s *streams, d deps) *cli.Command {
	o := &reportOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case to report on", Required: true, Destination: &o.CaseID},
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "md, html (one self-contained file) or json (the report model)", Value: report.FormatMarkdown, Destination: &o.Format},
		&cli.StringFlag{Name: "out", Usage: "write the report to this new file (never overwritten) instead of standard output", Destination: &o.Out},
		maxClockSkewFlag(&o.MaxClockSkew),
		&cli.BoolFlag{Name: "verify", Usage: "first verify the case as responder verify --no-snapshots does (re-hash every artifact, check the record's seals and chain); the headline says verified only when every check passed (exit 1 when one failed, the report is still written)", Destination: &o.Verify},
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:  "report",
		Usage: "write the case report: timeline with AWS request IDs, state before and after, evidence with SHA-256, screenshot, failures",
		UsageText: "responder report --case-id ID [--format md|html|json] [--out FILE] [--verify] [--evidence-bucket B | --evidence-dir DIR]\n\n" +
			"The report opens with a headline (status, time to isolation, what is still open, evidence, verification),\n" +
			"a timeline per run (an SVG chart in HTML), the security groups before and after with the rules removed,\n" +
			"the instance profile's role, the decoded user data (flagging lines that fetch and run remote code) and\n" +
			"indicators drawn from the volatile data (listening sockets, outbound connections, accounts, cron).\n" +
			"The HTML report is one file (inline CSS and SVG, no script, no external link) with the console screenshot\n" +
			"embedded after its SHA-256 is checked against the case record: attach it to a ticket.\n" +
			"A report shows what the record says; with --verify (or `responder verify`) the evidence is proved intact.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			return runReport(c, s, d, o)
		},
	}
}

func runReport(c *cli.Context, s *streams, d deps, o *reportOptions) error {
	if !slices.Contains(report.Formats, o.Format) {
		return exitf(exitUsage, "--format must be %s, not %q", strings.Join(report.Formats, ", "), o.Format)
	}
	if err := evidence.ValidateCaseID(o.CaseID); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	if o.Out != "" {
		// Refuse before reading anything: a report never replaces a file.
		if _, err := os.Lstat(o.Out); err == nil {
			return exitf(exitUsage, "--out %s exists: a report never overwrites a file; choose another name", o.Out)
		}
		if err := checkOutDir(o.Out); err != nil {
			return err
		}
	}
	clients, err := storeClients(c, d, o.AWS, o.Store)
	if err != nil {
		return err
	}
	store := o.Store.store(clients)
	var verification *report.Verification
	if o.Verify {
		if verification, err = verifyForReport(c, clients, store, o); err != nil {
			return err
		}
	}
	r, err := report.Build(c.Context, store, o.CaseID, report.Options{
		Now: d.now, Tool: "responder " + responder.Version, MaxClockSkew: o.MaxClockSkew, Verification: verification,
	})
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return exitf(exitCannotStart, "case %s not found: %v", o.CaseID, err)
	case err != nil:
		return exitf(exitCannotStart, "%v", err)
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, o.Format, r); err != nil {
		return exitf(exitCannotStart, "%v", err)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(s.Err, "responder: warning:", n)
	}
	if o.Out == "" {
		if _, err := s.Out.Write(buf.Bytes()); err != nil {
			return exitf(exitCannotStart, "write report: %v", err)
		}
	} else {
		if err := writeNewFile(o.Out, buf.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(s.Err, "responder: report of case %s written to %s (%d bytes)\n", o.CaseID, o.Out, buf.Len())
	}
	if verification != nil && verification.Result == "failed" {
		return &exitError{code: 1, err: fmt.Errorf("case %s FAILED verification: %s", o.CaseID, verification.Detail)}
	}
	return nil
}

// verifyForReport verifies the case as `responder verify --no-snapshots`
// does, and says the result in the report's words.
func verifyForReport(c *cli.Context, clients *cloud.Clients, store evidence.Store, o *reportOptions) (*report.Verification, error) {
	cu := custody.New(clients, store)
	cu.Snapshots, cu.Copies, cu.MaxClockSkew = nil, nil, o.MaxClockSkew
	v, err := cu.Verify(c.Context, o.CaseID)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return nil, exitf(exitCannotStart, "case %s not found: %v", o.CaseID, err)
	case err != nil:
		return nil, exitf(exitCannotStart, "verify case %s: %v", o.CaseID, err)
	}
	ok, artifacts := 0, 0
	var bad []string
	for _, ch := range v.Checks {
		switch ch.Status {
		case custody.CheckOK:
			ok++
			if ch.Kind == "artifact" {
				artifacts++
			}
		case custody.CheckMismatch, custody.CheckMissing, custody.CheckError:
			bad = append(bad, fmt.Sprintf("%s %s %s: %s", ch.Kind, ch.Subject, ch.Status, ch.Detail))
		}
	}
	detail := fmt.Sprintf("%d of %d checks passed (%d artifacts re-hashed against the record, the record's seals and chain); "+
		"snapshots not checked here: responder verify --case-id %s checks them", ok, len(v.Checks), artifacts, o.CaseID)
	if len(bad) > 0 {
		detail = strings.Join(bad, "; ")
	}
	return &report.Verification{Result: verificationResult(v), Detail: detail, At: v.VerifiedAt}, nil
}

// checkOutDir refuses, as bad input, a report file whose folder does not
// exist (a report creates no folder).
func checkOutDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exitf(exitUsage, "--out %s: folder %s does not exist (a report creates no folder)", path, dir)
	case err != nil:
		return exitf(exitUsage, "--out %s: %v", path, err)
	case !fi.IsDir():
		return exitf(exitUsage, "--out %s: %s is not a folder", path, dir)
	}
	return nil
}

// writeNewFile creates path exclusively and writes body to it; a partial
// file is removed.
func writeNewFile(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return exitf(exitUsage, "--out %s exists: a report never overwrites a file; choose another name", path)
	}
	if err != nil {
		return exitf(exitCannotStart, "create report file: %v", err)
	}
	_, werr := f.Write(body)
	cerr := f.Close()
	if err := errlist.Join(werr, cerr); err != nil {
		_ = os.Remove(path)
		return exitf(exitCannotStart, "write report file %s: %v", path, err)
	}
	return nil
}
