package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/preserve"
)

// preserveOptions are the inputs of `responder preserve`.
type preserveOptions struct {
	CaseID           string
	ForensicsAccount string
	ForensicsKMSKey  string
	SourceKMSKey     string
	roleOptions
	Wait         bool
	Timeout      time.Duration
	PollInterval time.Duration
	Output       outputOptions
	Verbose      bool
	AWS          awsOptions
	Store        storeOptions
	Signing      signingOptions
}

func preserveCommand(s *streams, d deps) *cli.Command {
	o := &preserveOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case whose snapshots to preserve", Required: true, Destination: &o.CaseID},
		&cli.StringFlag{Name: "forensics-account", Usage: "12-digit ID of the forensics account your own credentials act in", Required: true, Destination: &o.ForensicsAccount, EnvVars: []string{"RESPONDER_FORENSICS_ACCOUNT"}},
		&cli.StringFlag{Name: "forensics-kms-key", Usage: "KMS key (ARN or alias) of the forensics account that encrypts the copies", Required: true, Destination: &o.ForensicsKMSKey, EnvVars: []string{"RESPONDER_FORENSICS_KMS_KEY"}},
		&cli.StringFlag{Name: "source-kms-key", Usage: "customer managed key of the instance's account, usable by the forensics account, to re-encrypt snapshots under aws/ebs (which cannot be shared)", Destination: &o.SourceKMSKey},
		&cli.BoolFlag{Name: "wait", Usage: "wait until the copies in the forensics account are completed", Destination: &o.Wait},
		&cli.DurationFlag{Name: "timeout", Usage: "give up waiting after this long (the record keeps what is pending)", Value: preserve.DefaultTimeout, Destination: &o.Timeout},
		&cli.DurationFlag{Name: "poll-interval", Usage: "time between two looks at a snapshot in progress", Value: preserve.DefaultPoll, Destination: &o.PollInterval},
		outputFlag(&o.Output), queryFlag(&o.Output),
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log to standard error", Destination: &o.Verbose},
	}
	flags = append(flags, roleFlags(&o.roleOptions, "")...)
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	flags = append(flags, signingFlags(&o.Signing)...)
	return &cli.Command{
		Name:  "preserve",
		Usage: "copy the case snapshots into the forensics account, re-encrypted with its key",
		UsageText: "responder preserve --case-id ID --forensics-account 444455556666 --forensics-kms-key ARN\n" +
			"    [--source-kms-key ARN] [--role-arn ARN [--external-id X]] [--wait] [--timeout 2h]\n" +
			"    [--evidence-bucket B | --evidence-dir DIR] [--output table|json]",
		Description: "Each snapshot of the case is waited for until it is completed, shared with the forensics\n" +
			"account and copied there, encrypted with --forensics-kms-key and tagged responder:case-id,\n" +
			"responder:source-snapshot-id and responder:source-account-id. A snapshot encrypted with the\n" +
			"AWS managed key aws/ebs cannot be shared: it is first copied in its own account under\n" +
			"--source-kms-key (whose key policy must let the forensics account use it). The copies are\n" +
			"recorded in the case (snapshot_copies) as a \"preserve\" run. Running it again makes no second\n" +
			"copy. Progress goes to standard error. The copies are made with your own credentials: they\n" +
			"must be of --forensics-account (checked with sts:GetCallerIdentity before anything is\n" +
			"copied), so that the record names the account the copies are in.\n\n" +
			"EXIT CODES:\n" +
			"   0  every snapshot copied (and, with --wait, completed)\n" +
			"   1  some snapshot could not be copied (see the table), or the record was not saved\n" +
			"   2  bad input (nothing was copied), your credentials not of --forensics-account included\n" +
			"   3  with --wait: copies made, some still pending when --timeout ran out\n" +
			"   4  could not start: case not found, no credentials",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			if err := o.Signing.validate(); err != nil {
				return err
			}
			return runPreserve(c, s, d, o)
		},
	}
}

func runPreserve(c *cli.Context, s *streams, d deps, o *preserveOptions) error {
	ctx := c.Context
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if err := o.roleOptions.validate(); err != nil {
		return err
	}
	progress := newProgressPrinter(s.Err, s.ErrIsTerminal)
	req := preserve.Request{
		CaseID: o.CaseID, ForensicsAccountID: o.ForensicsAccount, ForensicsKMSKeyID: o.ForensicsKMSKey,
		SourceKMSKeyID: o.SourceKMSKey, Wait: o.Wait, Timeout: o.Timeout, PollInterval: o.PollInterval,
		Progress: progress.update,
	}
	if err := req.Validate(); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	if err := o.Store.checkWritable(o.CaseID); err != nil {
		return err
	}
	clients, err := loadClients(ctx, d, cloud.Options{
		Region: o.AWS.Region, Profile: o.AWS.Profile,
		RoleARN: o.RoleARN, ExternalID: o.ExternalID, SessionName: sessionName(o.CaseID),
	})
	if err != nil {
		return err
	}
	if clients.ForensicsEC2 == nil {
		return exitf(exitCannotStart, "no EC2 client for the forensics account")
	}
	p := preserve.New(clients, clients.ForensicsEC2, o.Store.store(clients))
	p.Log, p.Now = logger(s, o.Verbose), d.now
	p.Signer = o.Signing.signer(clients)
	res, err := p.Preserve(ctx, req)
	if err := caseStartError(o.CaseID, err); err != nil {
		return err
	}
	if err := printPreserve(s, o.Output, res); err != nil {
		return exitf(exitContainmentFailed, "print result: %v", err)
	}
	if res.SaveErr != nil {
		keepRecord(s, res.Manifest)
	}
	switch {
	case res.Err != nil:
		return &exitError{code: 1, err: fmt.Errorf("case %s not fully preserved: %v", o.CaseID, res.Err)}
	case o.Wait && res.Status == preserve.Pending:
		return &exitError{code: 3, err: fmt.Errorf("case %s: copies still pending after %s; run again to wait more", o.CaseID, o.Timeout)}
	}
	return nil
}

// preserveOutput is what --output json prints.
type preserveOutput struct {
	CaseID   string `json:"case_id"`
	Run      int    `json:"run"`
	Status   string `json:"status"`
	Location string `json:"location"`
	// Unchanged: every copy was already recorded as found; no run was added.
	Unchanged      bool                    `json:"unchanged"`
	SnapshotCopies []evidence.SnapshotCopy `json:"snapshot_copies"`
}

func printPreserve(s *streams, o outputOptions, res *preserve.Result) error {
	m := res.Manifest
	return o.print(s, result{
		value: preserveOutput{CaseID: m.CaseID, Run: m.LastRun(), Status: res.Status, Location: m.Location, Unchanged: res.Unchanged, SnapshotCopies: res.Copies},
		table: func(w io.Writer) error { return preserveTable(w, res) },
		text: func(t *textWriter) {
			t.line("PRESERVE", m.CaseID, fmt.Sprint(m.LastRun()), res.Status, m.Location, fmt.Sprint(res.Unchanged))
			for _, cp := range res.Copies {
				t.line("COPY", cp.SourceSnapshotID, cp.IntermediateSnapshotID, cp.SnapshotID, cp.AccountID, cp.State, cp.Error)
			}
		},
	})
}

func preserveTable(w io.Writer, res *preserve.Result) error {
	m := res.Manifest
	if res.Unchanged {
		fmt.Fprintf(w, "Case      %s (nothing changed since run %d: no run recorded)\n", m.CaseID, m.LastRun())
	} else {
		fmt.Fprintf(w, "Case      %s (run %d)\n", m.CaseID, m.LastRun())
	}
	fmt.Fprintf(w, "Status    %s\n", paint(w, preserveStatusText(res.Status)))
	fmt.Fprintf(w, "Evidence  %s\n\n", m.Location)
	t := newTable(w, "SOURCE", "RE-ENCRYPTED", "COPY", "ACCOUNT", "STATE", "DETAIL")
	for _, cp := range res.Copies {
		if err := t.Append([]string{cp.SourceSnapshotID, dash(cp.IntermediateSnapshotID), dash(cp.SnapshotID), cp.AccountID, paint(w, cp.State), cp.Error}); err != nil {
			return err
		}
	}
	return t.Render()
}

func preserveStatusText(s string) string {
	switch s {
	case preserve.Completed:
		return "PRESERVED: every copy is completed in the forensics account"
	case preserve.Pending:
		return "COPYING: the copies are made and still pending (verify or preserve --wait later)"
	case preserve.Failed:
		return "INCOMPLETE: some snapshots could not be copied (see DETAIL)"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// progressPrinter shows PreserveProgress on standard error: one progress bar
// per snapshot, redrawn in place, on a terminal; a plain line per change
// otherwise (logs, CI). The library serialises its calls.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	order []string          // source snapshots, in order of first report
	lines map[string]string // source snapshot -> its current line
	drawn int               // lines drawn by the last redraw (terminal)
}

func newProgressPrinter(w io.Writer, tty bool) *progressPrinter {
	return &progressPrinter{w: w, tty: tty, lines: map[string]string{}}
}

const barWidth = 30

func (p *progressPrinter) update(pr preserve.Progress) {
	var line string
	if p.tty {
		filled := pr.Percent * barWidth / 100
		line = fmt.Sprintf("%-22s %-11s [%s%s] %3d%% %s", pr.SourceSnapshotID, pr.Stage,
			strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), pr.Percent, pr.SnapshotID)
	} else {
		line = fmt.Sprintf("%s: %s %s %d%%", pr.SourceSnapshotID, pr.Stage, pr.SnapshotID, pr.Percent)
		if pr.Detail != "" && pr.Detail != "pending" {
			line += " (" + pr.Detail + ")"
		}
	}
	old, seen := p.lines[pr.SourceSnapshotID]
	if !seen {
		p.order = append(p.order, pr.SourceSnapshotID)
	}
	if old == line {
		return
	}
	p.lines[pr.SourceSnapshotID] = line
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn) // back to the first bar
	}
	for _, src := range p.order {
		fmt.Fprintf(p.w, "\r\x1b[2K%s\n", p.lines[src])
	}
	p.drawn = len(p.order)
}
