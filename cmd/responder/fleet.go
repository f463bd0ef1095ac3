package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fleet"
)

// fleetHelp explains a fleet response in respond's help.
const fleetHelp = `Fleet response (several --instance-id, --filter, --findings, several --region or --accounts):
  The targets are resolved per account and Region with batched DescribeInstances calls; the
  plan (instances per account and Region, and those not found or terminated) is printed on
  standard error, and acting on it needs a yes on a terminal, or --yes. Each instance gets its
  own case, <fleet-id>-<instance-id>; the fleet record (fleets/<fleet-id>/ in the evidence
  store, as the Lambda's fleets; responder status --fleet-id) lists every target with its case
  and outcome. The same --fleet-id again continues the fleet on its recorded plan: contained
  instances are left alone, the others continue their case (no second snapshot or change). One client set and engine per account and
  Region runs that scope's responses concurrently (--max-concurrency). A case claims its
  instance first: while another case is at work on it, that target is not started. Exit 0 when
  every target is contained, 1 when any is not, 3 when all are but with evidence gaps, 7 when
  interrupted (the record says which targets are left; the command that continues is printed).`

// listValue is a repeatable flag that keeps each value as given (no split
// at commas: a filter's values are comma-separated). A value given twice is
// kept once: urfave/cli parses a command's flags twice, and a duplicate
// target, filter or Region means nothing more.
type listValue []string

func (l *listValue) Set(v string) error {
	if !slices.Contains(*l, v) {
		*l = append(*l, v)
	}
	return nil
}

func (l *listValue) String() string { return strings.Join(*l, ",") }

// fleetOptions are the flags of respond that name several targets.
type fleetOptions struct {
	InstanceIDs    listValue
	Regions        listValue
	Filters        listValue
	Findings       string
	Accounts       string
	FleetID        string
	Yes            bool
	MaxConcurrency int
}

func fleetFlags(o *fleetOptions) []cli.Flag {
	return []cli.Flag{
		&cli.GenericFlag{Name: "instance-id", Aliases: []string{"i"}, Value: &o.InstanceIDs,
			Usage: "the suspect EC2 `INSTANCE` (i-...); repeatable and comma-separated: several make a fleet response"},
		&cli.GenericFlag{Name: "filter", Value: &o.Filters,
			Usage: "respond to the instances that match `NAME=VALUES` (EC2 DescribeInstances filters: tag:app=web, image-id=ami-1,ami-2, vpc-id=vpc-...); repeatable, all must match"},
		&cli.StringFlag{Name: "findings", Destination: &o.Findings,
			Usage: "respond to the EC2 instances of the Security Hub findings in `FILE` (ASFF JSON, as aws securityhub get-findings prints it, or a list)"},
		&cli.StringFlag{Name: "accounts", Destination: &o.Accounts,
			Usage: "look for the targets in these `ACCOUNTS` (comma-separated 12-digit IDs), through --role-arn with {account} in it"},
		&cli.StringFlag{Name: "fleet-id", Destination: &o.FleetID,
			Usage: "the fleet to record under (default: a new fleet-YYYYMMDD-HHMMSS-xxxxxxxx); reuse it to continue a fleet: contained instances are left alone, the others continue their case"},
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Destination: &o.Yes,
			Usage: "act on the fleet's plan without asking (needed when there is no terminal to ask on)"},
		&cli.IntFlag{Name: "max-concurrency", Destination: &o.MaxConcurrency, Value: fleet.DefaultMaxConcurrency,
			Usage: "at most `N` responses at work at once per account and Region; the pacing of EC2's request buckets, not this, is what bounds the rate"},
	}
}

// regionFlag replaces the --region of awsFlags: respond takes several.
func regionFlag(o *fleetOptions) cli.Flag {
	return &cli.GenericFlag{Name: "region", Value: &o.Regions,
		Usage: "AWS `REGION` of the instance (default: AWS_REGION or the profile's); repeatable and comma-separated: the fleet's targets are looked for in each"}
}

// withRegions puts the repeatable --region in place of awsFlags' own.
func withRegions(flags []cli.Flag, o *fleetOptions) []cli.Flag {
	for i, f := range flags {
		if f.Names()[0] == "region" {
			flags[i] = regionFlag(o)
		}
	}
	return flags
}

// spec is the fleet's spec from the flags, the findings file read.
func (o *fleetOptions) spec(role string) (fleet.Spec, error) {
	sp := fleet.Spec{
		InstanceIDs: fleet.SplitIDs(o.InstanceIDs), Filters: o.Filters, Regions: fleet.SplitIDs(o.Regions),
		Accounts: fleet.SplitIDs([]string{o.Accounts}), RoleARN: role,
	}
	if o.Findings != "" {
		body, err := readFindings(o.Findings)
		if err != nil {
			return sp, exitf(exitUsage, "--findings: %v", err)
		}
		if sp.Findings, err = fleet.ParseFindings(o.Findings, body); err != nil {
			return sp, exitf(exitUsage, "%v", err)
		}
	}
	return sp, nil
}

// maxFindingsFile bounds the findings file (Security Hub findings are at
// most 240 KB each; a file of thousands of them fits).
const maxFindingsFile = 256 << 20

func readFindings(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxFindingsFile+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxFindingsFile {
		return nil, fmt.Errorf("%s is larger than %d MiB", name, maxFindingsFile>>20)
	}
	return body, nil
}

// isFleet: the flags name more than one instance or Region, or a filter,
// findings, accounts or a fleet ID: a fleet response. One instance in one
// Region is the plain respond.
func (o *fleetOptions) isFleet() bool {
	return len(fleet.SplitIDs(o.InstanceIDs)) != 1 || len(fleet.SplitIDs(o.Regions)) > 1 ||
		len(o.Filters) > 0 || o.Findings != "" || o.Accounts != "" || o.FleetID != ""
}

// newFleetID makes a fleet ID that sorts by time.
func newFleetID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("fleet-%s-%s", now.UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}

// fleetRequest is the request every instance of the fleet gets, checked
// before any AWS call.
func fleetRequest(c *cli.Context, o *respondOptions, fleetID string) (responder.Request, error) {
	req := responder.Request{
		DryRun: o.DryRun, TopicARN: o.TopicARN, ProtectedTag: o.ProtectedTag, Force: o.Force,
		BlastRadius: o.BlastRadius, BlastRadiusRaised: c.IsSet("blast-radius"),
	}
	if c.IsSet("blast-radius") && o.BlastRadius < 1 {
		return req, exitf(exitUsage, "--blast-radius %d: want 1 to %d instances per account in any 60 minutes", o.BlastRadius, evidence.MaxBlastRadius)
	}
	if o.CaseID != "" {
		return req, exitf(exitUsage, "--case-id names one case; a fleet's cases are named after --fleet-id and each instance (%s)", evidence.FleetCaseID("FLEET", "i-..."))
	}
	if err := o.plan(c, &req); err != nil {
		return req, err
	}
	probe := req
	probe.InstanceID, probe.CaseID = "i-00000000", evidence.FleetCaseID(fleetID, "i-00000000000000000")
	if err := probe.Validate(); err != nil {
		return req, exitf(exitUsage, "%v", err)
	}
	return req, nil
}

func runFleet(c *cli.Context, s *streams, d deps, o *respondOptions) error {
	ctx := c.Context
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if err := o.roleOptions.validate(); err != nil {
		return err
	}
	fleetID := o.Fleet.FleetID
	if fleetID == "" {
		fleetID = newFleetID(d.now())
	}
	if err := evidence.ValidateFleetID(fleetID); err != nil {
		return exitf(exitUsage, "--fleet-id: %v", err)
	}
	req, err := fleetRequest(c, o, fleetID)
	if err != nil {
		return err
	}
	spec, err := o.Fleet.spec(o.RoleARN)
	if err != nil {
		return err
	}
	targets, err := spec.Resolve()
	if err != nil {
		return exitf(exitUsage, "%v", err)
	}
	if !req.DryRun {
		if err := o.Store.checkWritable(evidence.FleetCaseID(fleetID, "i-00000000000000000")); err != nil {
			return err
		}
	}
	conn := &connector{c: c, s: s, d: d, o: o, fleetID: fleetID, collects: playbooks.CollectsOS(req.Plan)}
	plan := fleet.NewPlan(ctx, targets, conn.connect)
	if ctx.Err() != nil {
		return &exitError{code: exitInterrupted, err: errors.New("interrupted while resolving the fleet's targets; nothing was done")}
	}
	store := conn.store()
	if store == nil {
		return exitf(exitCannotStart, "no account and Region of the fleet could be reached: %v", plan.Unreachable[0].Err)
	}
	if !req.DryRun {
		plan.FindContained(ctx, store, fleetID)
	}
	printPlan(s.Err, fleetID, plan)
	if err := approve(s, o, req, plan); err != nil {
		return err
	}
	bar := newFleetProgress(s)
	res, err := fleet.Run(ctx, plan, fleet.Options{
		FleetID: fleetID, Request: req, MaxConcurrency: o.Fleet.MaxConcurrency, Store: store,
		Progress: bar.update, Log: logger(s, o.Verbose), Now: d.now,
	})
	bar.finish()
	if err != nil {
		return exitf(exitUsage, "%v; nothing was done", err)
	}
	location := res.Location
	if req.DryRun {
		location = ""
	}
	if err := printFleet(s, o.Output, res.Record, location); err != nil {
		return exitf(exitEvidenceIncomplete, "print result: %v", err)
	}
	return fleetExit(res, req.DryRun, fleetResume(c, o, fleetID))
}

// connector builds one engine per account and Region, and keeps the first
// one's store for the fleet record.
type connector struct {
	c        *cli.Context
	s        *streams
	d        deps
	o        *respondOptions
	fleetID  string
	collects bool

	mu    sync.Mutex
	first evidence.Store
}

func (k *connector) connect(ctx context.Context, sc fleet.Scope) (*responder.Responder, error) {
	clients, err := loadClients(ctx, k.d, cloud.Options{
		Region: sc.Region, Profile: k.o.AWS.Profile,
		RoleARN: sc.RoleARN, ExternalID: k.o.ExternalID, SessionName: sessionName(k.fleetID),
	})
	if err != nil {
		return nil, err
	}
	r := responder.New(clients, k.o.Store.store(clients))
	r.Log, r.Now = logger(k.s, k.o.Verbose), k.d.now
	r.Signer = k.o.Signing.signer(clients)
	if k.collects {
		if r.Clients.PresignValidUntil, err = presignValidUntil(ctx, clients); err != nil {
			return nil, err
		}
	}
	k.mu.Lock()
	if k.first == nil {
		k.first = r.Store
	}
	k.mu.Unlock()
	return r, nil
}

func (k *connector) store() evidence.Store {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.first
}

// printPlan says on standard error what the fleet will act on: how many
// instances in which accounts and Regions, and the targets left out.
func printPlan(w io.Writer, fleetID string, p *fleet.Plan) {
	accounts, regions := map[string]bool{}, map[string]bool{}
	for _, sc := range p.Scopes {
		for _, in := range sc.Instances {
			accounts[in.AccountID], regions[sc.Region] = true, true
		}
	}
	fmt.Fprintf(w, "Fleet %s: %s in %s and %s", fleetID, plural(p.Count(), "instance"), plural(len(accounts), "account"), plural(len(regions), "Region"))
	if done := p.Count() - p.Acting(); done > 0 {
		fmt.Fprintf(w, " (%d contained already, by an earlier run of the fleet: left alone)", done)
	}
	fmt.Fprintln(w)
	type row struct{ account, region string }
	counts := map[row]int{}
	for _, sc := range p.Scopes {
		for _, in := range sc.Instances {
			counts[row{in.AccountID, sc.Region}]++
		}
	}
	rows := make([]row, 0, len(counts))
	for r := range counts {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].account < rows[j].account || (rows[i].account == rows[j].account && rows[i].region < rows[j].region)
	})
	for _, r := range rows {
		fmt.Fprintf(w, "  %s %-15s %s\n", r.account, r.region, plural(counts[r], "instance"))
	}
	for _, m := range p.Missing {
		fmt.Fprintf(w, "  left out: %s %s (%s)\n", m.InstanceID, m.Status, m.Reason)
	}
	for _, u := range p.Unreachable {
		fmt.Fprintf(w, "  not reached: %s: %v\n", u.Scope, u.Err)
	}
}

// approve checks the safeguards of a fleet before it acts: the blast
// radius of each account, then --yes (or a person's yes on a terminal).
// A dry run changes nothing and needs neither.
func approve(s *streams, o *respondOptions, req responder.Request, p *fleet.Plan) error {
	if p.Count() == 0 {
		return exitf(exitCannotStart, "the fleet has no instance to act on (see above)")
	}
	if req.DryRun {
		return nil
	}
	limit := req.BlastRadius
	if limit == 0 {
		limit = evidence.DefaultBlastRadius
	}
	for account, n := range p.PerAccount() {
		if n > limit {
			return exitf(exitCannotStart, "blast radius: the plan contains %d instances of account %s, above the limit of %d per account in any 60 minutes; "+
				"nothing was changed. Give --blast-radius %d (at most %d) to allow it for this run", n, account, limit, n, evidence.MaxBlastRadius)
		}
	}
	if o.Fleet.Yes || p.Acting() == 0 {
		return nil
	}
	if !s.InIsTerminal || !s.ErrIsTerminal {
		return exitf(exitUsage, "the plan above acts on %d instances and there is no terminal to ask on: give --yes to go ahead", p.Acting())
	}
	fmt.Fprintf(s.Err, "Respond to these %d instances (contain them and record one case each)? [y/N] ", p.Acting())
	answer, _ := bufio.NewReader(s.In).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return exitf(exitUsage, "not confirmed: nothing was done")
	}
	return nil
}

// fleetProgress is the live progress of a fleet on a terminal: one line on
// standard error, redrawn in place. Nothing when standard error is not a
// terminal.
type fleetProgress struct {
	w     io.Writer
	on    bool
	mu    sync.Mutex
	drawn bool
}

func newFleetProgress(s *streams) *fleetProgress {
	return &fleetProgress{w: s.Err, on: s.ErrIsTerminal}
}

func (p *fleetProgress) update(c fleet.Counts) {
	if !p.on {
		return
	}
	rate := 0.0
	if secs := c.Elapsed.Seconds(); secs > 0 {
		rate = float64(c.Isolated) / secs
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%d/%d done: %d isolated, %d snapshots requested, %d failed (%.1f isolated/s)",
		c.Done, c.Total, c.Isolated, c.SnapshotsRequested, c.Failed, rate)
	p.drawn = true
}

func (p *fleetProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// printFleet shows a fleet record: every target with its case and outcome.
func printFleet(s *streams, o outputOptions, f *evidence.FleetRecord, location string) error {
	return o.print(s, result{
		value: f,
		table: func(w io.Writer) error { return fleetTable(w, f, location) },
		text: func(t *textWriter) {
			closed := ""
			if f.ClosedAt != nil {
				closed = f.ClosedAt.Format(time.RFC3339)
			}
			t.line("FLEET", f.FleetID, f.Source, f.OpenedAt.Format(time.RFC3339), closed, location)
			for _, c := range f.Cases {
				t.line("CASE", c.InstanceID, c.AccountID, c.Region, c.CaseID, c.Status, isolation(c), strings.Join(c.EvidenceGaps, ","), c.Reason)
			}
		},
	})
}

func fleetTable(w io.Writer, f *evidence.FleetRecord, location string) error {
	var order []string
	gaps := 0
	for st := range f.Counts {
		order = append(order, st)
	}
	for _, c := range f.Cases {
		if len(c.EvidenceGaps) > 0 {
			gaps++
		}
	}
	sort.Strings(order)
	var parts []string
	for _, st := range order {
		parts = append(parts, fmt.Sprintf("%d %s", f.Counts[st], st))
	}
	if gaps > 0 {
		parts = append(parts, fmt.Sprintf("%d with evidence gaps", gaps))
	}
	fmt.Fprintf(w, "Fleet     %s (opened %s from %s)\n", f.FleetID, f.OpenedAt.Format(time.RFC3339), cmp.Or(f.Source, "?"))
	fmt.Fprintf(w, "Targets   %d: %s\n", len(f.Cases), strings.Join(parts, ", "))
	fmt.Fprintf(w, "Record    %s\n\n", cmp.Or(location, "(not stored: a dry run stores nothing)"))
	t := newTable(w, "INSTANCE", "ACCOUNT", "REGION", "CASE", "STATUS", "ISOLATED AFTER")
	for _, c := range f.Cases {
		if err := t.Append([]string{c.InstanceID, c.AccountID, c.Region, cmp.Or(c.CaseID, "-"), paint(w, strings.ToUpper(c.Status)), isolation(c)}); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	for _, c := range f.Cases {
		if c.Reason != "" && (fleet.Open(c) || len(c.EvidenceGaps) > 0) {
			fmt.Fprintf(w, "%s: %s\n", c.InstanceID, c.Reason)
		}
	}
	return nil
}

func isolation(t evidence.FleetCase) string {
	if t.SecondsToIsolation <= 0 {
		return "-"
	}
	return duration(time.Duration(t.SecondsToIsolation * float64(time.Second)))
}

// fleetExit is the exit of a fleet run: interrupted (7), any target not
// contained (1), contained with evidence gaps or the fleet record not
// stored (3), all contained (0); a dry run: 6 when any target would fail,
// else 5.
func fleetExit(res *fleet.Result, dry bool, resume string) error {
	var open, gaps []string
	wouldFail := false
	for _, t := range res.Record.Cases {
		switch {
		case t.Status == evidence.CaseWouldContain || t.Status == evidence.CaseWouldAcquire:
		case fleet.Open(t):
			open = append(open, t.InstanceID+" "+t.Status)
			wouldFail = true
		case len(t.EvidenceGaps) > 0:
			gaps = append(gaps, t.InstanceID+" ("+strings.Join(t.EvidenceGaps, ", ")+")")
		}
	}
	switch {
	case res.Interrupted:
		return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: the fleet record says which instances were done; continue the fleet with:\n  %s", resume)}
	case dry && wouldFail:
		return &exitError{code: exitDryRunRefused, err: fmt.Errorf("dry run: nothing was changed; a real run would not contain: %s", strings.Join(open, ", "))}
	case dry:
		return &exitError{code: exitDryRun, err: errors.New("dry run: nothing was changed; every check that could be made passed")}
	case len(open) > 0:
		return &exitError{code: exitContainmentFailed, err: fmt.Errorf("%d of %d targets are NOT proven contained: %s; continue the fleet with:\n  %s",
			len(open), len(res.Record.Cases), strings.Join(open, ", "), resume)}
	case res.SaveErr != nil:
		return &exitError{code: exitEvidenceIncomplete, err: fmt.Errorf("every target is contained, but the fleet record was not stored: %v", res.SaveErr)}
	case len(gaps) > 0:
		return &exitError{code: exitEvidenceIncomplete, err: fmt.Errorf("every target is contained, but with evidence gaps: %s", strings.Join(gaps, "; "))}
	}
	return nil
}

// fleetResume is the command line that continues a fleet: the same fleet
// ID and targets, with --yes.
func fleetResume(c *cli.Context, o *respondOptions, fleetID string) string {
	args := []string{"responder", "respond", "--fleet-id", fleetID, "--yes"}
	add := func(flag string, values ...string) {
		for _, v := range values {
			if v != "" {
				args = append(args, "--"+flag, v)
			}
		}
	}
	add("instance-id", strings.Join(fleet.SplitIDs(o.Fleet.InstanceIDs), ","))
	add("filter", o.Fleet.Filters...)
	add("findings", o.Fleet.Findings)
	add("accounts", o.Fleet.Accounts)
	add("region", fleet.SplitIDs(o.Fleet.Regions)...)
	resumeArgs(c, o, add)
	if c.IsSet("blast-radius") {
		add("blast-radius", fmt.Sprint(o.BlastRadius))
	}
	if o.Force {
		args = append(args, "--force")
	}
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
