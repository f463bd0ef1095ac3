package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fleet"
	"github.com/responder-ir/responder/responder/step"
)

// respondOptions are the inputs of `responder respond`.
type respondOptions struct {
	InstanceID string
	CaseID     string
	roleOptions
	TopicARN string
	Playbook string
	Steps    string
	// ForensicProfile and StagingBucket override the playbook's collection
	// settings: they belong to an account, not to a playbook.
	ForensicProfile string
	StagingBucket   string
	DryRun          bool
	// Safeguards: see respondDescription.
	ProtectedTag string
	Force        bool
	BlastRadius  int
	Output       outputOptions
	Verbose      bool
	AWS          awsOptions
	Store        storeOptions
	Signing      signingOptions
	// Fleet are the flags that name several targets (fleet.go).
	Fleet fleetOptions
}

func respondCommand(s *streams, d deps) *cli.Command {
	o := &respondOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case to record under (default: a new case-YYYYMMDD-HHMMSS-xxxxxxxx); reuse it to resume a case", Destination: &o.CaseID},
		&cli.StringFlag{Name: "topic-arn", Usage: "SNS topic to notify", Destination: &o.TopicARN, EnvVars: []string{"RESPONDER_TOPIC_ARN"}},
		&cli.StringFlag{Name: "playbook", Usage: "run the playbook `NAME|FILE`: a name listed above, or a playbook file of your own (a regular file of at most 1 MiB)", Value: playbooks.Default, Destination: &o.Playbook},
		&cli.StringFlag{Name: "steps", Usage: "comma-separated steps of an ad-hoc plan, instead of a playbook (listed above)", Destination: &o.Steps},
		&cli.StringFlag{Name: "forensic-profile", Usage: "instance profile `ARN` that OS-level collection associates, for the run, to an instance without one (the member stack's ForensicInstanceProfileArn)", Destination: &o.ForensicProfile, EnvVars: []string{"RESPONDER_FORENSIC_PROFILE"}},
		&cli.StringFlag{Name: "staging-bucket", Usage: "S3 bucket `NAME` of the staged memory tools (and, during a capture, its list of part URLs)", Destination: &o.StagingBucket, EnvVars: []string{"RESPONDER_STAGING_BUCKET"}},
		&cli.BoolFlag{Name: "dry-run", Usage: "change nothing: check permissions with EC2's DryRun and print the plan (would-contain, would-acquire: exit 5; would-fail: exit 6)", Destination: &o.DryRun},
		&cli.StringFlag{Name: "protected-tag", Usage: "tag `KEY` that protects an instance: one tagged KEY=true is refused (exit 4) unless --force", Value: responder.DefaultProtectedTag, Destination: &o.ProtectedTag, EnvVars: []string{"RESPONDER_PROTECTED_TAG"}},
		&cli.BoolFlag{Name: "force", Usage: "respond to a protected instance anyway; the case record names you as who forced it", Destination: &o.Force},
		&cli.IntFlag{Name: "blast-radius", Usage: fmt.Sprintf("contain even if the account's last 60 minutes already hold up to `N` contained instances (default %d), for this run only; the case record names you as who raised it", evidence.DefaultBlastRadius), Destination: &o.BlastRadius},
		outputFlag(&o.Output), queryFlag(&o.Output),
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log every step to standard error", Destination: &o.Verbose},
	}
	flags = append(flags, roleFlags(&o.roleOptions, " (the evidence store keeps your own credentials)")...)
	flags = append(fleetFlags(&o.Fleet), flags...)
	flags = append(flags, withRegions(awsFlags(&o.AWS), &o.Fleet)...)
	flags = append(flags, storeFlags(&o.Store)...)
	flags = append(flags, signingFlags(&o.Signing)...)
	return &cli.Command{
		Name:  "respond",
		Usage: "acquire evidence from an instance, contain it, record the case and notify",
		UsageText: "responder respond --instance-id i-0123456789abcdef0 [--case-id ID] [--playbook NAME|FILE | --steps a,b,c]\n" +
			"    [--evidence-bucket B | --evidence-dir DIR] [--topic-arn ARN] [--forensic-profile ARN] [--staging-bucket B] [--dry-run]\n" +
			"    [--protected-tag KEY] [--force] [--blast-radius N]\n" +
			"responder respond (--instance-id ID,ID... | --filter NAME=VALUES | --findings FILE)... [--region R,R...]\n" +
			"    [--accounts A,A... --role-arn 'arn:aws:iam::{account}:role/NAME'] [--fleet-id ID] [--yes] [--max-concurrency N] [...]",
		Description: respondDescription(),
		Flags:       flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			if err := o.Signing.validate(); err != nil {
				return err
			}
			if len(o.Fleet.InstanceIDs) == 0 && len(o.Fleet.Filters) == 0 && o.Fleet.Findings == "" {
				return exitf(exitUsage, "respond needs --instance-id (see responder respond --help)")
			}
			if o.Fleet.isFleet() {
				return runFleet(c, s, d, o)
			}
			o.InstanceID = fleet.SplitIDs(o.Fleet.InstanceIDs)[0]
			if regions := fleet.SplitIDs(o.Fleet.Regions); len(regions) == 1 {
				o.AWS.Region = regions[0]
			}
			return runRespond(c, s, d, o)
		},
	}
}

// respondDescription is the respond command's help: the playbooks with their
// summaries, read from the playbooks package so that it never goes stale.
func respondDescription() string {
	var b strings.Builder
	b.WriteString("Playbooks (--playbook; `responder playbooks show NAME` prints each one's trade-off and steps):\n")
	all := playbooks.All()
	width := 0
	for _, p := range all {
		width = max(width, len(p.Name))
	}
	for _, p := range all {
		fmt.Fprintf(&b, "   %-*s  %s\n", width, p.Name, p.Summary)
	}
	b.WriteString("\n" + wrap("The default playbook runs "+strings.Join(step.DefaultPlan, ", ")+".", 95) + "\n" +
		"Acquisition runs first and concurrently; containment starts as soon as the snapshot set is\n" +
		"requested (it does not wait for snapshots to complete). One failing step never stops the\n" +
		"others. Running again with the same --case-id changes nothing that is already done, and\n" +
		"continues a case whose last run was killed while saving its record. One run of a case at a\n" +
		"time: while another run of the case is at work, respond changes nothing and exits 4.\n" +
		"Every containment step reads back what it changed; the case status (below) is made of those\n" +
		"read-backs, and the instance is tagged responder:status=<status> after containment. Ctrl-C\n" +
		"(or SIGTERM) records the case as interrupted and prints the command that resumes it.\n" +
		"credential-revocation puts on the instance's role an inline deny of the sessions issued to\n" +
		"this instance before the response (responder-revoke-<case-id>): role credentials an attacker\n" +
		"copied stop working, other instances with the role keep theirs; credentials the attacker made\n" +
		"with them are not covered. A role it cannot change (AccessDenied, service-linked) leaves the\n" +
		"case partially-contained. A playbook turns it off with containment: {revoke_credentials: false}.\n" +
		"The collect playbooks need --evidence-bucket (the instance uploads its memory and volatile\n" +
		"data there through presigned URLs), and usually --forensic-profile and --staging-bucket.\n\n" +
		fleetHelp + "\n\n" +
		scalingHelp + "\n\n" +
		safeguardsHelp + "\n\n" +
		wrap("Steps for --steps: "+strings.Join(step.Names(), ", ")+".", 95) + "\n\n")
	b.WriteString(exitCodesHelp)
	return b.String()
}

// scalingHelp explains the Auto Scaling and load balancer steps.
const scalingHelp = `Auto Scaling and load balancers (steps auto-scaling or auto-scaling-detach, load-balancers;
they start at once, beside the quarantine, and do not delay it):
  Termination protection does not stop Auto Scaling: once quarantined, an instance fails its
  load balancer health checks and its group may terminate it, with the evidence on its
  instance-store and delete-on-termination volumes. auto-scaling (the default; playbook setting
  containment.auto_scaling: standby) sets scale-in protection and puts it in Standby: it stays in
  the group, not health-checked. auto-scaling-detach (auto_scaling: detach) takes it out of the
  group: nothing of the group can act on it, and release must attach it again, which the
  group's maximum size may refuse. Both keep the desired capacity, so the group launches a clean
  replacement at once (it costs an instance). Only an InService instance can enter Standby.
  load-balancers deregisters it from every target group that lists it (by instance ID, or by a
  private IP in an ip target group of its VPC) and every Classic Load Balancer that serves it.
  Requests and connections already going through a load balancer drain for up to the target
  group's deregistration delay (300 s by default): not cut by this change, and recorded so.`

// safeguardsHelp explains the safeguards of respond.
var safeguardsHelp = fmt.Sprintf(`Safeguards, checked before anything is changed (a refusal exits 4 and records nothing):
  Protected instances: an instance tagged %[1]s=true (the key: --protected-tag or
  RESPONDER_PROTECTED_TAG) is refused unless --force; a forced run records who forced it.
  Blast radius: at most %[2]d instances contained per account in any 60 minutes (a sliding
  window, not the clock hour), counted in the evidence store across every CLI and Lambda run
  (a slot object per case under locks/blast-radius/). A refusal names the limit, the cases
  that hold the window and when the next slot frees.
  A case takes one slot once (a later run of the case takes none); a dry run, or a plan that
  contains nothing, takes none. --blast-radius N allows up to N for this run only, and the
  record names who raised it. When the store cannot be reached, containment goes on and the
  record says the limit was not checked.`, responder.DefaultProtectedTag, evidence.DefaultBlastRadius)

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(text) {
		switch {
		case i == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// plan sets the request's plan from --steps or --playbook.
func (o *respondOptions) plan(c *cli.Context, req *responder.Request) error {
	if o.Steps != "" {
		if c.IsSet("playbook") {
			return exitf(exitUsage, "--playbook and --steps are exclusive: run a playbook, or list steps for an ad-hoc plan")
		}
		for _, name := range strings.Split(o.Steps, ",") {
			req.Plan = append(req.Plan, strings.TrimSpace(name))
		}
		req.PlanName = "custom"
	} else {
		p, err := playbooks.Load(o.Playbook)
		if err != nil {
			return exitf(exitUsage, "--playbook: %v", err)
		}
		req.Plan, req.After, req.PlanName, req.Collection = p.Names(), p.After(), p.Name, p.Collection
		req.SnapshotLock, req.CloudRecord = p.SnapshotLock, p.CloudRecord
	}
	if o.ForensicProfile != "" {
		req.Collection.ForensicProfileARN = o.ForensicProfile
	}
	if o.StagingBucket != "" {
		req.Collection.StagingBucket = o.StagingBucket
	}
	if playbooks.CollectsOS(req.Plan) && o.Store.Bucket == "" {
		return exitf(exitUsage, "%s collects OS-level evidence, which the instance uploads to the evidence store through presigned S3 URLs: "+
			"give --evidence-bucket (a local --evidence-dir cannot receive it)", planLabel(req))
	}
	return nil
}

func planLabel(req *responder.Request) string {
	if req.PlanName == "custom" {
		return "the plan of --steps"
	}
	return "playbook " + req.PlanName
}

func runRespond(c *cli.Context, s *streams, d deps, o *respondOptions) error {
	ctx := c.Context
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if err := o.roleOptions.validate(); err != nil {
		return err
	}
	now := d.now()
	req := responder.Request{
		InstanceID: o.InstanceID, CaseID: o.CaseID, CaseIDGiven: o.CaseID != "", DryRun: o.DryRun, TopicARN: o.TopicARN,
		ProtectedTag: o.ProtectedTag, Force: o.Force, BlastRadius: o.BlastRadius, BlastRadiusRaised: c.IsSet("blast-radius"),
	}
	if c.IsSet("blast-radius") && o.BlastRadius < 1 {
		return exitf(exitUsage, "--blast-radius %d: want 1 to %d instances per account in any 60 minutes", o.BlastRadius, evidence.MaxBlastRadius)
	}
	if req.CaseID == "" {
		req.CaseID = responder.NewCaseID(now)
	}
	if err := o.plan(c, &req); err != nil {
		return err
	}
	// Bad input is reported before any AWS call.
	if err := req.Validate(); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	if !req.DryRun { // a dry run stores nothing
		if err := o.Store.checkWritable(req.CaseID); err != nil {
			return err
		}
	}
	if s.ErrIsTerminal || o.Verbose {
		req.Progress = newStepProgress(s.Err).print
	}
	clients, err := loadClients(ctx, d, cloud.Options{
		Region: o.AWS.Region, Profile: o.AWS.Profile,
		RoleARN: o.RoleARN, ExternalID: o.ExternalID, SessionName: sessionName(req.CaseID),
	})
	if err != nil {
		return err
	}
	r := responder.New(clients, o.Store.store(clients))
	r.Log, r.Now = logger(s, o.Verbose), d.now
	r.Signer = o.Signing.signer(clients)
	if playbooks.CollectsOS(req.Plan) {
		if r.Clients.PresignValidUntil, err = presignValidUntil(ctx, clients); err != nil {
			return exitf(exitCannotStart, "%v", err)
		}
	}
	res, err := r.Respond(ctx, req)
	var ie *responder.InputError
	switch {
	case errors.As(err, &ie):
		return exitf(exitUsage, "%v", err)
	case err != nil && ctx.Err() != nil:
		return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted before anything was done (%v); run the case with:\n  %s",
			err, resumeCommand(c, o, req.CaseID))}
	case err != nil:
		return exitf(exitCannotStart, "%v", err)
	}
	if err := printResult(s, o.Output, res); err != nil {
		return exitf(exitEvidenceIncomplete, "print result: %v", err)
	}
	if res.SaveErr != nil {
		keepRecord(s, res.Manifest)
	}
	return respondExit(res, resumeCommand(c, o, req.CaseID))
}

// respondExit turns the case status of a run into its exit code (see
// exitCodesHelp) and says on standard error what is still open.
func respondExit(res *responder.Result, resume string) error {
	switch res.Status {
	case evidence.CaseInterrupted:
		return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: the case record says what was done (status %s); resume the case with:\n  %s",
			res.Status, resume)}
	case evidence.CaseWouldFail:
		return &exitError{code: exitDryRunRefused, err: fmt.Errorf("dry run, %s: nothing was changed; a real run would fail: %v", res.Status, res.Err)}
	case evidence.CaseWouldContain, evidence.CaseWouldAcquire:
		msg := fmt.Sprintf("dry run, %s: nothing was changed; every check that could be made passed", res.Status)
		if open := unchecked(res.Steps); len(open) > 0 {
			msg += "; not checked: " + strings.Join(open, "; ")
		}
		return &exitError{code: exitDryRun, err: errors.New(msg)}
	case evidence.CasePartiallyContained, evidence.CaseContainmentFailed:
		return &exitError{code: exitContainmentFailed, err: fmt.Errorf("%s: the instance may NOT be (fully) isolated; still open: %s",
			res.Status, strings.Join(stillOpen(res.Steps), "; "))}
	}
	if res.Err != nil {
		return &exitError{code: exitEvidenceIncomplete, err: fmt.Errorf("%s, but: %v", res.Status, res.Err)}
	}
	return nil
}

// stillOpen names the containment steps whose read-back did not hold, with
// why.
func stillOpen(steps []evidence.StepRecord) []string {
	var open []string
	for _, st := range steps {
		if st.Containment == "" || (st.Containment == evidence.ContainmentHeld && st.Status != evidence.StatusFailed) {
			continue
		}
		why := st.Error
		if why == "" {
			why = st.Reason
		}
		open = append(open, fmt.Sprintf("%s (%s): %s", st.Name, st.Containment, why))
	}
	return open
}

// unchecked names the steps a dry run could not check: those that would
// act but have no DryRun permission check.
func unchecked(steps []evidence.StepRecord) []string {
	var out []string
	for _, st := range steps {
		if st.Status == evidence.StatusSkipped && strings.HasPrefix(st.Reason, "dry run:") {
			out = append(out, st.Name+": "+strings.TrimPrefix(st.Reason, "dry run: "))
		}
	}
	return out
}

// resumeCommand is the command line that resumes a case: the same case ID
// and instance, with the flags that decide what runs, where and as whom.
// Flags left at their defaults are left out.
func resumeCommand(c *cli.Context, o *respondOptions, caseID string) string {
	args := []string{"responder", "respond", "--case-id", caseID, "--instance-id", o.InstanceID}
	add := func(flag string, values ...string) {
		for _, v := range values {
			if v != "" {
				args = append(args, "--"+flag, v)
			}
		}
	}
	add("region", o.AWS.Region)
	resumeArgs(c, o, add)
	add("forensic-profile", o.ForensicProfile)
	add("staging-bucket", o.StagingBucket)
	if c.IsSet("protected-tag") {
		add("protected-tag", o.ProtectedTag)
	}
	if o.Force {
		args = append(args, "--force")
	}
	if c.IsSet("blast-radius") {
		add("blast-radius", strconv.Itoa(o.BlastRadius))
	}
	if o.DryRun {
		args = append(args, "--dry-run")
	}
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

// resumeArgs adds, through add, the flags a command that continues a
// response repeats: the account to act in, the plan, and where the evidence
// and the notification go.
func resumeArgs(c *cli.Context, o *respondOptions, add func(flag string, values ...string)) {
	add("profile", o.AWS.Profile)
	add("role-arn", o.RoleARN)
	add("external-id", o.ExternalID)
	if o.Steps != "" {
		add("steps", o.Steps)
	} else if c.IsSet("playbook") {
		add("playbook", o.Playbook)
	}
	add("evidence-bucket", o.Store.Bucket)
	if o.Store.Bucket == "" && c.IsSet("evidence-dir") {
		add("evidence-dir", o.Store.Dir)
	}
	add("evidence-kms-key", o.Store.KMSKeyID)
	add("topic-arn", o.TopicARN)
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// presignValidUntil is when the credentials that sign the instance's uploads
// expire (zero when they do not): a presigned URL dies with them, so the
// collection steps size their URLs and parts to it.
func presignValidUntil(ctx context.Context, clients *cloud.Clients) (time.Time, error) {
	if clients.EvidenceCredentials == nil {
		return time.Time{}, nil
	}
	creds, err := clients.EvidenceCredentials.Retrieve(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("retrieve the credentials that sign the instance's uploads: %w", err)
	}
	if creds.CanExpire {
		return creds.Expires, nil
	}
	return time.Time{}, nil
}

// stepProgress prints the progress of long steps on standard error, one line
// per change: "memory-capture: uploading part 3 of 12 (25%)". A step's
// message is the whole sentence; the percentage is added when the step knows
// its total. Steps report concurrently.
type stepProgress struct {
	mu   sync.Mutex
	w    io.Writer
	last map[string]string // step -> its last line, to drop repeats
}

func newStepProgress(w io.Writer) *stepProgress {
	return &stepProgress{w: w, last: map[string]string{}}
}

func (p *stepProgress) print(pr step.Progress) {
	line := pr.Step + ": " + pr.Message
	if pr.Total > 0 {
		line += fmt.Sprintf(" (%d%%)", min(max(pr.Done*100/pr.Total, 0), 100))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last[pr.Step] == line {
		return
	}
	p.last[pr.Step] = line
	fmt.Fprintln(p.w, line)
}

// sessionName is the role session name: it carries the case ID into the
// workload account's CloudTrail. At most 64 characters of [\w+=,.@-].
func sessionName(caseID string) string {
	n := "responder-" + caseID
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// keepRecord writes the case record to a local file when the store could not
// take it, so that nothing is lost.
func keepRecord(s *streams, m *evidence.Manifest) {
	body, err := evidence.EncodeManifest(m)
	if err != nil {
		return
	}
	name := fmt.Sprintf("responder-%s-manifest-run-%03d.json", m.CaseID, m.LastRun())
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o440)
	if err != nil {
		fmt.Fprintf(s.Err, "responder: the case record could not be stored nor kept in %s (%v); here it is:\n%s", name, err, body)
		return
	}
	defer f.Close()
	if _, err := f.Write(body); err == nil {
		fmt.Fprintf(s.Err, "responder: the case record could not be stored; it is kept in %s\n", name)
	}
}
