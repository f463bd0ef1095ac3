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
	AWS          awsOptions
	Store        storeOptions
}

func reportCommand(s *streams, d deps) *cli.Command {
	o := &reportOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case to report on", Required: true, Destination: &o.CaseID},
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "md, html (one self-contained file) or json (the report model)", Value: report.FormatMarkdown, Destination: &o.Format},
		&cli.StringFlag{Name: "out", Usage: "write the report to this new file (never overwritten) instead of standard output", Destination: &o.Out},
		maxClockSkewFlag(&o.MaxClockSkew),
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:  "report",
		Usage: "write the case report: timeline with AWS request IDs, state before and after, evidence with SHA-256, screenshot, failures",
		UsageText: "responder report --case-id ID [--format md|html|json] [--out FILE] [--evidence-bucket B | --evidence-dir DIR]\n\n" +
			"The HTML report is one file (inline CSS, no script, no external link) with the console screenshot\n" +
			"embedded after its SHA-256 is checked against the case record: attach it to a ticket.\n" +
			"A report shows what the record says; `responder verify` proves the evidence intact.",
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
	r, err := report.Build(c.Context, o.Store.store(clients), o.CaseID, report.Options{
		Now: d.now, Tool: "responder " + responder.Version, MaxClockSkew: o.MaxClockSkew,
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
		return nil
	}
	if err := writeNewFile(o.Out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(s.Err, "responder: report of case %s written to %s (%d bytes)\n", o.CaseID, o.Out, buf.Len())
	return nil
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
