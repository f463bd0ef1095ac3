package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
)

// holdOptions are the inputs of `responder hold` and `responder unhold`.
type holdOptions struct {
	CaseID string
	Output string
	AWS    awsOptions
	Store  storeOptions
}

func holdCommand(s *streams, d deps, on bool) *cli.Command {
	o := &holdOptions{}
	name, usage := "hold", "put an S3 legal hold on every object of a case (no deletion, whatever the retention)"
	if !on {
		name, usage = "unhold", "lift the S3 legal hold from every object of a case (retention still applies)"
	}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case", Required: true, Destination: &o.CaseID},
		outputFlag(&o.Output),
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		UsageText: "responder " + name + " --case-id ID --evidence-bucket B\n\nThe action is recorded, write-once, under custody/ in the case folder.",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			return runHold(c, s, d, o, on)
		},
	}
}

func runHold(c *cli.Context, s *streams, d deps, o *holdOptions, on bool) error {
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if err := evidence.ValidateCaseID(o.CaseID); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	if o.Store.Bucket == "" {
		return exitf(exitUsage, "%v", custody.ErrNoLegalHold)
	}
	clients, err := loadClients(c.Context, d, cloud.Options{Region: o.AWS.Region, Profile: o.AWS.Profile})
	if err != nil {
		return err
	}
	cu := custody.New(clients, o.Store.store(clients))
	rec, err := cu.Hold(c.Context, o.CaseID, on)
	if errors.Is(err, evidence.ErrNotFound) {
		return exitf(exitCannotStart, "case %s not found: %v", o.CaseID, err)
	}
	if rec != nil {
		if o.Output == "json" {
			_ = writeJSON(s.Out, rec)
		} else {
			fmt.Fprintf(s.Out, "Case      %s\nAction    %s by %s at %s\nObjects   %d\nRecord    %s\n",
				rec.CaseID, rec.Action, rec.Actor, rec.At.Format("2006-01-02T15:04:05Z"), len(rec.Objects), rec.Record)
		}
	}
	if err != nil {
		return exitf(exitContainmentFailed, "%v", err)
	}
	return nil
}
