package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fleet"
)

// statusOptions are the inputs of `responder status`.
type statusOptions struct {
	CaseID  string
	FleetID string
	Output  outputOptions
	AWS     awsOptions
	Store   storeOptions
}

func statusCommand(s *streams, d deps) *cli.Command {
	o := &statusOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case to show", Destination: &o.CaseID},
		&cli.StringFlag{Name: "fleet-id", Usage: "show a fleet instead: every target with its case and outcome", Destination: &o.FleetID},
		outputFlag(&o.Output), queryFlag(&o.Output),
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:      "status",
		Usage:     "show the record of a case: every step of every run, the evidence and the snapshots",
		UsageText: "responder status --case-id ID | --fleet-id ID [--evidence-bucket B | --evidence-dir DIR] [--output table|json|text]",
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
	switch {
	case o.CaseID == "" && o.FleetID == "":
		return exitf(exitUsage, "status needs --case-id (or --fleet-id) (see responder status --help)")
	case o.CaseID != "" && o.FleetID != "":
		return exitf(exitUsage, "--case-id and --fleet-id are exclusive: show a case, or a fleet")
	case o.FleetID != "":
		return runFleetStatus(c, s, d, o)
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

// runFleetStatus shows a fleet record: every target, its case and outcome.
func runFleetStatus(c *cli.Context, s *streams, d deps, o *statusOptions) error {
	if err := evidence.ValidateFleetID(o.FleetID); err != nil {
		return exitf(exitUsage, "--fleet-id: %v", err)
	}
	clients, err := storeClients(c, d, o.AWS, o.Store)
	if err != nil {
		return err
	}
	store := o.Store.store(clients)
	f, err := fleet.Status(c.Context, store, o.FleetID)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return exitf(exitCannotStart, "fleet %s not found: %v", o.FleetID, err)
	case err != nil:
		return exitf(exitCannotStart, "read fleet %s: %v", o.FleetID, err)
	}
	if err := printFleet(s, o.Output, f, store.Location(evidence.FleetsFolder, o.FleetID+"/")); err != nil {
		return exitf(exitCannotStart, "print fleet: %v", err)
	}
	return nil
}
