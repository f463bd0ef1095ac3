package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
)

// holdOptions are the inputs of `responder hold` and `responder unhold`.
type holdOptions struct {
	CaseID string
	Output outputOptions
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
		outputFlag(&o.Output), queryFlag(&o.Output),
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:  name,
		Usage: usage,
		UsageText: "responder " + name + " --case-id ID --evidence-bucket B\n\n" +
			"Each object's legal hold is read back after the request. The objects whose hold took effect\n" +
			"are recorded, write-once, under custody/ in the case folder (nothing is recorded when none\n" +
			"did). Exit 0: every object done; 1: some failed (the table shows which); 2: bad input;\n" +
			"4: case not found.",
		Flags: flags,
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
	res, err := cu.Hold(c.Context, o.CaseID, on)
	if errors.Is(err, evidence.ErrNotFound) {
		return exitf(exitCannotStart, "case %s not found: %v", o.CaseID, err)
	}
	if res != nil {
		if perr := printHold(s, o.Output, res); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return exitf(exitContainmentFailed, "%v", err)
	}
	return nil
}

// printHold shows what a hold or unhold did: a summary, then each object
// with its legal hold as read back, failures included.
func printHold(s *streams, o outputOptions, res *custody.HoldResult) error {
	want := "ON"
	if res.Action == evidence.CustodyHoldOff {
		want = "OFF"
	}
	return o.print(s, result{
		value: holdOutput{CaseID: res.CaseID, Action: res.Action, Objects: res.Objects,
			Failed: res.Failed(), Record: res.Record, RecordError: res.RecordError},
		table: func(w io.Writer) error { return holdTable(w, res, want) },
		text: func(t *textWriter) {
			t.line("HOLD", res.CaseID, res.Action, fmt.Sprint(len(res.Objects)), fmt.Sprint(res.Failed()), res.RecordError)
			for _, o := range res.Objects {
				if o.Done {
					t.line("OBJECT", o.Path, want, "")
				} else {
					t.line("OBJECT", o.Path, "FAILED", o.Error)
				}
			}
		},
	})
}

func holdTable(w io.Writer, res *custody.HoldResult, want string) error {
	fmt.Fprintf(w, "Case      %s\nAction    %s\n", res.CaseID, res.Action)
	fmt.Fprintf(w, "Objects   %d of %d done, %d failed\n", len(res.Objects)-res.Failed(), len(res.Objects), res.Failed())
	switch {
	case res.Record != nil:
		fmt.Fprintf(w, "Record    %s by %s at %s\n", res.Record.Record, res.Record.Actor, res.Record.At.Format("2006-01-02T15:04:05Z"))
	default:
		fmt.Fprintf(w, "Record    none: no hold took effect\n")
	}
	if res.RecordError != "" {
		fmt.Fprintf(w, "          %s\n", res.RecordError)
	}
	fmt.Fprintln(w)
	t := newTable(w, "OBJECT", "LEGAL HOLD", "DETAIL")
	for _, o := range res.Objects {
		row := []string{o.Path, paint(w, want), ""}
		if !o.Done {
			row[1], row[2] = paint(w, "FAILED"), o.Error
		}
		if err := t.Append(row); err != nil {
			return err
		}
	}
	return t.Render()
}

// holdOutput is what --output json prints.
type holdOutput struct {
	CaseID      string                  `json:"case_id"`
	Action      string                  `json:"action"`
	Objects     []custody.ObjectHold    `json:"objects"`
	Failed      int                     `json:"failed"`
	Record      *evidence.CustodyRecord `json:"record,omitempty"`
	RecordError string                  `json:"record_error,omitempty"`
}
