package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// respondOptions are the inputs of `responder respond`.
type respondOptions struct {
	InstanceID string
	CaseID     string
	RoleARN    string
	ExternalID string
	TopicARN   string
	Steps      string
	DryRun     bool
	Output     string
	Verbose    bool
	AWS        awsOptions
	Store      storeOptions
}

func respondCommand(s *streams, d deps) *cli.Command {
	o := &respondOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "instance-id", Aliases: []string{"i"}, Usage: "the suspect EC2 instance (i-...)", Required: true, Destination: &o.InstanceID},
		&cli.StringFlag{Name: "case-id", Usage: "the case to record under (default: a new case-YYYYMMDD-HHMMSS-xxxxxxxx); reuse it to resume a case", Destination: &o.CaseID},
		&cli.StringFlag{Name: "role-arn", Usage: "role to assume in the instance's account (the evidence store keeps your own credentials)", Destination: &o.RoleARN},
		&cli.StringFlag{Name: "external-id", Usage: "ExternalId for --role-arn", Destination: &o.ExternalID},
		&cli.StringFlag{Name: "topic-arn", Usage: "SNS topic to notify", Destination: &o.TopicARN, EnvVars: []string{"RESPONDER_TOPIC_ARN"}},
		&cli.StringFlag{Name: "steps", Usage: "comma-separated steps to run, in order (default: all; see below)", Destination: &o.Steps},
		&cli.BoolFlag{Name: "dry-run", Usage: "change nothing: check permissions with EC2's DryRun and print the plan", Destination: &o.DryRun},
		outputFlag(&o.Output),
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log every step to standard error", Destination: &o.Verbose},
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:      "respond",
		Usage:     "acquire evidence from an instance, contain it, record the case and notify",
		UsageText: "responder respond --instance-id i-0123456789abcdef0 [--case-id ID] [--evidence-bucket B | --evidence-dir DIR] [--topic-arn ARN] [--dry-run]",
		Description: "Steps, in the default order: " + strings.Join(step.DefaultPlan, ", ") + ".\n" +
			"Acquisition runs first and concurrently; containment starts as soon as the snapshot set is\n" +
			"requested (it does not wait for snapshots to complete). One failing step never stops the\n" +
			"others. Running again with the same --case-id changes nothing that is already done.\n\n" +
			exitCodesHelp,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			return runRespond(c, s, d, o)
		},
	}
}

func runRespond(c *cli.Context, s *streams, d deps, o *respondOptions) error {
	ctx := c.Context
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if o.ExternalID != "" && o.RoleARN == "" {
		return exitf(exitUsage, "--external-id needs --role-arn")
	}
	now := d.now()
	req := responder.Request{InstanceID: o.InstanceID, CaseID: o.CaseID, CaseIDGiven: o.CaseID != "", DryRun: o.DryRun, TopicARN: o.TopicARN}
	if req.CaseID == "" {
		req.CaseID = responder.NewCaseID(now)
	}
	if o.Steps != "" {
		for _, name := range strings.Split(o.Steps, ",") {
			req.Plan = append(req.Plan, strings.TrimSpace(name))
		}
		req.PlanName = "custom"
	}
	// Bad input is reported before any AWS call.
	if err := req.Validate(); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	clients, err := loadClients(ctx, d, cloud.Options{
		Region: o.AWS.Region, Profile: o.AWS.Profile,
		RoleARN: o.RoleARN, ExternalID: o.ExternalID, SessionName: sessionName(req.CaseID),
	})
	if err != nil {
		return err
	}
	r := &responder.Responder{
		Clients: responder.Clients{EC2: clients.EC2, STS: clients.STS, CallerSTS: clients.CallerSTS, SNS: clients.SNS, Region: clients.Region},
		Store:   o.Store.store(clients),
		Log:     logger(s, o.Verbose),
		Now:     d.now,
	}
	res, err := r.Respond(ctx, req)
	var ie *responder.InputError
	switch {
	case errors.As(err, &ie):
		return exitf(exitUsage, "%v", err)
	case err != nil:
		return exitf(exitCannotStart, "%v", err)
	}
	if err := printResult(s.Out, o.Output, res); err != nil {
		return exitf(exitEvidenceIncomplete, "print result: %v", err)
	}
	if res.SaveErr != nil {
		keepRecord(s, res.Manifest)
	}
	switch {
	case res.ContainmentFailed():
		return &exitError{code: exitContainmentFailed, err: fmt.Errorf("containment failed: the instance may not be isolated")}
	case res.Err != nil:
		return &exitError{code: exitEvidenceIncomplete, err: fmt.Errorf("contained, but: %v", res.Err)}
	}
	return nil
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
