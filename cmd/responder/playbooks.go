package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder/step"
)

func playbooksCommand(s *streams) *cli.Command {
	list := func(c *cli.Context) error { return printPlaybooks(s.Out) }
	return &cli.Command{
		Name:      "playbooks",
		Usage:     "list the playbooks respond can run, or show one's trade-off and steps",
		UsageText: "responder playbooks [list | show NAME|FILE]",
		Action:    list,
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list the playbooks: name, collection order, summary", Action: list},
			{
				Name:      "show",
				Usage:     "print a playbook's trade-off and its steps, with what each waits for",
				UsageText: "responder playbooks show NAME|FILE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return exitf(exitUsage, "playbooks show takes one playbook name or file (see responder playbooks)")
					}
					p, err := playbooks.Load(c.Args().First())
					if err != nil {
						return exitf(exitUsage, "%v", err)
					}
					return printPlaybook(s.Out, p)
				},
			},
		},
	}
}

func printPlaybooks(w io.Writer) error {
	t := newTable(w, "NAME", "ORDER", "SUMMARY")
	for _, p := range playbooks.All() {
		if err := t.Append([]string{p.Name, orderText(p), p.Summary}); err != nil {
			return err
		}
	}
	return t.Render()
}

func orderText(p playbooks.Playbook) string {
	if o := p.Order(); o != "" {
		return o
	}
	return "no OS-level collection"
}

func printPlaybook(w io.Writer, p playbooks.Playbook) error {
	fmt.Fprintf(w, "Playbook  %s (%s)\n", p.Name, p.Source)
	fmt.Fprintf(w, "Summary   %s\n", p.Summary)
	fmt.Fprintf(w, "Order     %s\n", orderText(p))
	if slices.Contains(p.Names(), "quarantine") {
		if p.TwoStep {
			fmt.Fprintln(w, "Contain   two-step: each interface passes through the untracking group, so tracked connections are cut")
		} else {
			fmt.Fprintln(w, "Contain   one step (containment.two_step false): tracked connections go on until they are idle")
		}
	}
	if p.CollectsOS() {
		c := p.Collection
		fmt.Fprintf(w, "Collect   capture timeout %s, registration timeout %s; memory: tool %s, compression %s, parts of %s MiB; files modified in the last %s days\n",
			durationText(c.CaptureTimeout), durationText(c.RegistrationTimeout), orDefault(c.Memory.Tool),
			orDefault(c.Memory.Compression), orDefault(intText(c.Memory.PartSizeMiB)), orDefault(intText(c.RecentDays)))
	}
	fmt.Fprintln(w, "\nTrade-off")
	for _, line := range strings.Split(p.Tradeoff, "\n") {
		fmt.Fprintln(w, strings.TrimRight("  "+line, " "))
	}
	fmt.Fprintln(w, "\nSteps (each starts as soon as what it waits for has finished, whatever its outcome)")
	t := newTable(w, "#", "STEP", "PHASE", "WAITS FOR", "PLAYBOOK ADDS")
	planned := p.Names()
	for i, e := range p.Steps {
		s, err := step.Lookup(e.Name)
		if err != nil {
			return err
		}
		var needs []string
		for _, n := range s.Needs() {
			if name, _, _ := strings.Cut(n, ":"); slices.Contains(planned, name) {
				needs = append(needs, n)
			}
		}
		for _, n := range step.Awaits(s) {
			if slices.Contains(planned, n) {
				needs = append(needs, n+" (before isolating)")
			}
		}
		waits := strings.Join(needs, ", ")
		if s.Phase() == step.Report {
			waits = "every other step"
		}
		if err := t.Append([]string{fmt.Sprint(i + 1), e.Name, string(s.Phase()), dash(waits), dash(strings.Join(e.After, ", "))}); err != nil {
			return err
		}
	}
	return t.Render()
}

// durationText writes a playbook duration the way playbooks do: 30m, 1h, 90s.
func durationText(d step.Duration) string {
	if d == 0 {
		return "default"
	}
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func intText(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}
