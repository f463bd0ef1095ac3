package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

// statusOptions are the inputs of `responder status`.
type statusOptions struct {
	CaseID string
	Output outputOptions
	AWS    awsOptions
	Store  storeOptions
}

func statusCommand(s *streams, d deps) *cli.Command {
	o := &statusOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case to show", Required: true, Destination: &o.CaseID},
		outputFlag(&o.Output), queryFlag(&o.Output),
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:      "status",
		Usage:     "show the record of a case: every step of every run, the evidence and the snapshots",
		UsageText: "responder status --case-id ID [--evidence-bucket B | --evidence-dir DIR] [--output table|json]",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			return runStatus(c, s, d, o)
		},
	}
}

func runStatus(c *cli.Context, s *streams, d deps, o *statusOptions) error {
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if err := evidence.ValidateCaseID(o.CaseID); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	clients, err := storeClients(c, d, o.AWS, o.Store)
	if err != nil {
		return err
	}
	m, err := responder.Status(c.Context, o.Store.store(clients), o.CaseID)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return exitf(exitCannotStart, "case %s not found: %v", o.CaseID, err)
	case err != nil:
		return exitf(exitCannotStart, "read case %s: %v", o.CaseID, err)
	}
	if err := printManifest(s, o.Output, m); err != nil {
		return exitf(exitCannotStart, "print case: %v", err)
	}
	return nil
}
