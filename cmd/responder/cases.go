package main

import (
	"errors"
	"io/fs"
	"os"

	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/custody"
)

// casesOptions are the inputs of `responder cases list`.
type casesOptions struct {
	Output outputOptions
	AWS    awsOptions
	Store  storeOptions
}

func casesCommand(s *streams, d deps) *cli.Command {
	o := &casesOptions{}
	flags := []cli.Flag{outputFlag(&o.Output), queryFlag(&o.Output)}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:  "cases",
		Usage: "work with the cases in an evidence store",
		Subcommands: []*cli.Command{{
			Name:      "list",
			Usage:     "list the cases, newest first, with instance, status and time",
			UsageText: "responder cases list [--evidence-bucket B | --evidence-dir DIR] [--output table|json]",
			Flags:     flags,
			Action: func(c *cli.Context) error {
				if err := o.Store.validate(c); err != nil {
					return err
				}
				return runCasesList(c, s, d, o)
			},
		}},
	}
}

func runCasesList(c *cli.Context, s *streams, d deps, o *casesOptions) error {
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if err := storeExists(o.Store); err != nil {
		return err
	}
	clients, err := storeClients(c, d, o.AWS, o.Store)
	if err != nil {
		return err
	}
	list, err := custody.New(clients, o.Store.store(clients)).Cases(c.Context)
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket":
		return exitf(exitCannotStart, "evidence bucket %s does not exist (NoSuchBucket): no case can be listed there", o.Store.Bucket)
	case err != nil:
		return exitf(exitCannotStart, "list cases: %v", err)
	}
	return printCases(s, o.Output, list)
}

// storeExists refuses a local evidence folder that does not exist: an empty
// list would say there is no case, when the folder is the wrong one.
func storeExists(o storeOptions) error {
	if o.Bucket != "" {
		return nil
	}
	fi, err := os.Stat(o.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exitf(exitCannotStart, "evidence folder %s does not exist: no case was recorded there (give the --evidence-dir or --evidence-bucket the cases are in)", o.Dir)
	case err != nil:
		return exitf(exitCannotStart, "evidence folder %s: %v", o.Dir, err)
	case !fi.IsDir():
		return exitf(exitCannotStart, "evidence folder %s is not a directory", o.Dir)
	}
	return nil
}

func printCases(s *streams, o outputOptions, list []custody.CaseSummary) error {
	return o.print(s, result{
		value: list,
		table: func(w io.Writer) error {
			t := newTable(w, "CASE", "INSTANCE", "ACCOUNT", "REGION", "STATUS", "RUNS", "STARTED")
			for _, cs := range list {
				status := paint(w, statusText(cs.Status))
				if cs.Error != "" {
					status = paint(w, strings.ToUpper(cs.Status)) + ": " + cs.Error
				}
				if err := t.Append([]string{cs.CaseID, cs.InstanceID, cs.AccountID, cs.Region, status, fmt.Sprint(cs.Runs), cs.StartedAt.Format(time.RFC3339)}); err != nil {
					return err
				}
			}
			return t.Render()
		},
		text: func(t *textWriter) {
			for _, cs := range list {
				t.line("CASE", cs.CaseID, cs.InstanceID, cs.AccountID, cs.Region, cs.Status, fmt.Sprint(cs.Runs),
					cs.StartedAt.Format(time.RFC3339), cs.EndedAt.Format(time.RFC3339), cs.Error)
			}
		},
	})
}
