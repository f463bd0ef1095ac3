package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// releaseOptions are the inputs of `responder release`.
type releaseOptions struct {
	CaseID     string
	InstanceID string
	roleOptions
	DryRun bool
	Yes    bool
	// KeepCredentialRevocation leaves the deny on the instance's role.
	KeepCredentialRevocation bool
	TopicARN                 string
	Output                   outputOptions
	Verbose                  bool
	AWS                      awsOptions
	Store                    storeOptions
	Signing                  signingOptions
}

const releaseExitCodesHelp = `EXIT CODES (from the release's status, the word the record and the instance's
responder:status tag carry):
   0  released: every step the case changed read back the state recorded before the response
   1  release-incomplete: some step did not (it failed, or refused a change of the instance since
      the response): part of the containment is still in place; the table says which
   2  bad input, a case of another instance, account or Region, or no confirmation (declined, or
      standard input is not a terminal and --yes is missing): nothing was changed
   3  released, but the case record could not be stored (it is kept in a local file) or the
      instance could not be tagged
   4  could not start: case not found, its record does not match its seal (changed after it was
      sealed: run responder verify), instance not found or terminated, no credentials,
      another run of the case is at work, or another case is at work on the instance
   5  dry run, would-release: nothing was changed and every check that could be made passed
   6  dry run, would-fail: a check was refused; a real release would fail the steps marked FAILED
   7  interrupted (Ctrl-C, SIGTERM): the record says what was restored; run the release again`

func releaseCommand(s *streams, d deps) *cli.Command {
	o := &releaseOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case to release", Required: true, Destination: &o.CaseID},
		&cli.StringFlag{Name: "instance-id", Aliases: []string{"i"}, Usage: "refuse unless the case is about this instance (a check; the case names its instance)", Destination: &o.InstanceID},
		&cli.BoolFlag{Name: "dry-run", Usage: "change nothing: check permissions with EC2's DryRun and print what would be restored (would-release: exit 5; would-fail: exit 6)", Destination: &o.DryRun},
		&cli.StringFlag{Name: "topic-arn", Usage: "SNS topic to notify of the release and its status (released, release-incomplete)", Destination: &o.TopicARN, EnvVars: []string{"RESPONDER_TOPIC_ARN"}},
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation (needed when standard input is not a terminal)", Destination: &o.Yes},
		&cli.BoolFlag{Name: "keep-credential-revocation", Usage: "leave the deny on the instance's role: the role credentials issued to the instance before the response stay revoked (the record says it was kept)", Destination: &o.KeepCredentialRevocation},
		outputFlag(&o.Output), queryFlag(&o.Output),
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log every step to standard error", Destination: &o.Verbose},
	}
	flags = append(flags, roleFlags(&o.roleOptions, " (the evidence store keeps your own credentials)")...)
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	flags = append(flags, signingFlags(&o.Signing)...)
	return &cli.Command{
		Name:  "release",
		Usage: "restore what a case's containment changed, from the state it recorded before",
		UsageText: "responder release --case-id ID [--instance-id i-...] [--role-arn ARN [--external-id X]]\n" +
			"    [--evidence-bucket B | --evidence-dir DIR] [--topic-arn ARN] [--dry-run] [--yes] [--keep-credential-revocation]\n" +
			"    [--output table|json]",
		Description: "Restores, from the case record, the state every containment step found before it changed\n" +
			"anything (for a case contained again after a release: what the new containment found):\n" +
			"the security groups of each interface, the instance profile, termination and stop\n" +
			"protection, the shutdown behaviour, DeleteOnTermination of each volume, the connection\n" +
			"tracking timeouts, Auto Scaling membership (ExitStandby, or AttachInstances after a detach)\n" +
			"and scale-in protection, the target groups (with the recorded port and zone) and Classic Load\n" +
			"Balancers, the network ACL deny entries, and removes the deny the case put on the instance's role (the revocation of the\n" +
			"credentials issued to the instance before the response) unless --keep-credential-revocation:\n" +
			"the instance then works again with the credentials its profile delivers after the release, and\n" +
			"the old ones, which an attacker may hold, stay denied. One step after the other, in the reverse\n" +
			"order of containment, the Auto Scaling group and load balancers last and only once the\n" +
			"security groups (and network ACL entries) read back as they were (an instance in service but\n" +
			"cut off would fail its health checks and be replaced), then it tags the instance\n" +
			"responder:status=released (and, with\n" +
			"--topic-arn, notifies the topic with the same word). Each step reads back what it restored: the status\n" +
			"is released only when every one holds, release-incomplete otherwise. The release is\n" +
			"recorded as a new run of the case (playbook release); evidence (artifacts, snapshots, their\n" +
			"copies) is never touched.\n\n" +
			"It refuses, changing nothing, a case whose record does not match its seal (the before-states\n" +
			"could have been rewritten), a case of another instance, account or Region, a case another\n" +
			"run holds, and an instance another case is at work on (a response started meanwhile).\n" +
			"A step refuses, saying what, a change of the instance since the response it cannot\n" +
			"reconcile (an interface recorded that is no longer attached, another instance profile\n" +
			"associated since, an Auto Scaling group or target group deleted, a group at its maximum size);\n" +
			"the others are still restored. Returning an instance to its Auto Scaling group raises the\n" +
			"group's desired capacity by one: the replacement launched at the response stays; lower the\n" +
			"desired capacity when ready. On a terminal it asks for confirmation\n" +
			"unless --yes; it never asks when standard input is not a terminal: give --yes there.\n\n" +
			"With the member role (--role-arn), the instance profile cannot be associated again: that\n" +
			"passes the profile's role (iam:PassRole), which only the member stack's release role may\n" +
			"(cloudformation/README.md, \"Release\"). The release is then release-incomplete and says so;\n" +
			"associate the profile with the release role, and release again: it finds it done.\n\n" +
			"EXAMPLES:\n" +
			"   # what would be restored; nothing changed or stored\n" +
			"   responder release --case-id case-20261123-093012-1a2b3c4d --dry-run\n\n" +
			"   # release, after confirming on the terminal\n" +
			"   responder release --case-id case-20261123-093012-1a2b3c4d --region eu-west-1 --profile ir\n\n" +
			"   # from a script, another account, the case in the forensics bucket\n" +
			"   responder release --case-id case-20261123-093012-1a2b3c4d --yes \\\n" +
			"     --role-arn arn:aws:iam::111122223333:role/responder-ir-member --external-id \"$EXTERNAL_ID\" \\\n" +
			"     --evidence-bucket forensics-evidence-444455556666\n\n" +
			releaseExitCodesHelp,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			if err := o.Signing.validate(); err != nil {
				return err
			}
			return runRelease(c, s, d, o)
		},
	}
}

func runRelease(c *cli.Context, s *streams, d deps, o *releaseOptions) error {
	ctx := c.Context
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if err := o.roleOptions.validate(); err != nil {
		return err
	}
	req := responder.ReleaseRequest{CaseID: o.CaseID, InstanceID: o.InstanceID, DryRun: o.DryRun,
		KeepCredentialRevocation: o.KeepCredentialRevocation, TopicARN: o.TopicARN}
	if err := req.Validate(); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	confirm := !o.DryRun && !o.Yes
	if confirm && !s.InIsTerminal {
		return exitf(exitUsage, "release changes the instance: standard input is not a terminal, so it cannot ask; give --yes to release case %s without confirmation", o.CaseID)
	}
	if !o.DryRun {
		if err := o.Store.checkWritable(o.CaseID); err != nil {
			return err
		}
	}
	clients, err := loadClients(ctx, d, cloud.Options{
		Region: o.AWS.Region, Profile: o.AWS.Profile,
		RoleARN: o.RoleARN, ExternalID: o.ExternalID, SessionName: sessionName(o.CaseID),
	})
	if err != nil {
		return err
	}
	store := o.Store.store(clients)
	if confirm {
		if err := askRelease(c, s, store, o.CaseID); err != nil {
			return err
		}
	}
	r := responder.New(clients, store)
	r.Log, r.Now = logger(s, o.Verbose), d.now
	r.Signer = o.Signing.signer(clients)
	res, err := r.Release(ctx, req)
	var ie *responder.InputError
	switch {
	case errors.As(err, &ie):
		return exitf(exitUsage, "%v", err)
	case err != nil && ctx.Err() != nil:
		return exitf(exitInterrupted, "interrupted before anything was changed: %v", err)
	case err != nil:
		return exitf(exitCannotStart, "%v", err)
	}
	if err := printResult(s, o.Output, res); err != nil {
		return exitf(exitEvidenceIncomplete, "print result: %v", err)
	}
	if res.SaveErr != nil {
		keepRecord(s, res.Manifest)
	}
	return releaseExit(res)
}

// askRelease shows what the case changed and asks, on the terminal, whether
// to restore it. Anything but y or yes declines.
func askRelease(c *cli.Context, s *streams, store evidence.Store, caseID string) error {
	m, err := responder.Status(c.Context, store, caseID)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return exitf(exitCannotStart, "%v: %s has no record in %s", responder.ErrCaseNotFound, caseID, store.Location(caseID, ""))
	case err != nil:
		return exitf(exitCannotStart, "read the case record: %v", err)
	}
	var changed []string
	seen := map[string]bool{}
	for _, st := range m.Steps {
		if _, ok := m.FirstBefore(st.Name); ok && releases(st.Name) && !seen[st.Name] {
			seen[st.Name] = true
			changed = append(changed, st.Name)
		}
	}
	fmt.Fprintf(s.Err, "Release case %s: instance %s (account %s, %s), status %s.\n", m.CaseID, m.InstanceID, m.AccountID, m.Region, m.Status)
	fmt.Fprintf(s.Err, "This restores the state recorded before the response (%s): the instance is no longer contained.\n",
		strings.Join(changed, ", "))
	fmt.Fprint(s.Err, "Evidence is kept. Release? [y/N] ")
	line, _ := bufio.NewReader(s.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return exitf(exitUsage, "not released: not confirmed; nothing was changed")
}

// releases reports whether a step restores its before-state in a release.
func releases(name string) bool {
	s, err := step.Lookup(name)
	if err != nil {
		return false
	}
	_, ok := s.(step.Releaser)
	return ok
}

// releaseExit turns the status of a release into its exit code (see
// releaseExitCodesHelp) and says on standard error what is still changed.
func releaseExit(res *responder.Result) error {
	switch res.Status {
	case evidence.CaseInterrupted:
		return exitf(exitInterrupted, "interrupted: the case record says what was restored; run the release again")
	case evidence.CaseWouldFail:
		return exitf(exitDryRunRefused, "dry run, %s: nothing was changed; a real release would fail: %v", res.Status, res.Err)
	case evidence.CaseWouldRelease:
		msg := fmt.Sprintf("dry run, %s: nothing was changed; every check that could be made passed", res.Status)
		if open := unchecked(res.Steps); len(open) > 0 {
			msg += "; not checked: " + strings.Join(open, "; ")
		}
		return &exitError{code: exitDryRun, err: errors.New(msg)}
	case evidence.CaseReleaseIncomplete:
		return exitf(exitContainmentFailed, "%s: part of the containment is still in place; still changed: %s",
			res.Status, strings.Join(stillOpen(res.Steps), "; "))
	}
	if res.Err != nil {
		return exitf(exitEvidenceIncomplete, "%s, but: %v", res.Status, res.Err)
	}
	return nil
}
