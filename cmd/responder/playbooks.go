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
	list, show := &outputOptions{}, &outputOptions{}
	return &cli.Command{
		Name:      "playbooks",
		Usage:     "list the playbooks respond can run, or show one's trade-off and steps",
		UsageText: "responder playbooks [list | show NAME|FILE]",
		Flags:     []cli.Flag{outputFlag(list), queryFlag(list)},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand("playbooks", c.Args().First(), c.Command.Subcommands)
			}
			return runPlaybooks(s, *list)
		},
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list the playbooks: name, collection order, summary", UsageText: "responder playbooks list [--output table|json|text]",
				Flags: []cli.Flag{outputFlag(list), queryFlag(list)}, Action: func(c *cli.Context) error { return runPlaybooks(s, *list) }},
			{
				Name:      "show",
				Usage:     "print a playbook's trade-off and its steps, with what each waits for",
				UsageText: "responder playbooks show [--output table|json|text] NAME|FILE",
				Flags:     []cli.Flag{outputFlag(show), queryFlag(show)},
				Action: func(c *cli.Context) error {
					if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
						return exitf(exitUsage, "playbooks show: flags go before the playbook: responder playbooks show %s %s", c.Args().Get(1), c.Args().First())
					}
					if c.NArg() != 1 {
						return exitf(exitUsage, "playbooks show takes one playbook name or file (see responder playbooks)")
					}
					if err := show.validate(); err != nil {
						return err
					}
					p, err := playbooks.Load(c.Args().First())
					if err != nil {
						return exitf(exitUsage, "%v", err)
					}
					return printPlaybook(s, *show, p)
				},
			},
		},
	}
}

func runPlaybooks(s *streams, o outputOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	all := playbooks.All()
	views := make([]playbookView, len(all))
	for i, p := range all {
		views[i] = newPlaybookView(p)
	}
	return o.print(s, result{
		value: views,
		table: printPlaybooks,
		text: func(t *textWriter) {
			for _, p := range all {
				t.line("PLAYBOOK", p.Name, orderText(p), p.Summary)
			}
		},
	})
}

// playbookView is the JSON form of a playbook.
type playbookView struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Summary string `json:"summary"`
	Order   string `json:"order"`
	TwoStep bool   `json:"two_step"`
	// AutoScaling is containment.auto_scaling.
	AutoScaling string             `json:"auto_scaling,omitempty"`
	Tradeoff    string             `json:"tradeoff"`
	Steps       []playbookStepView `json:"steps"`
}

type playbookStepView struct {
	Name     string   `json:"name"`
	Phase    string   `json:"phase"`
	WaitsFor []string `json:"waits_for"`
	After    []string `json:"after,omitempty"`
}

func newPlaybookView(p playbooks.Playbook) playbookView {
	v := playbookView{Name: p.Name, Source: p.Source, Summary: p.Summary, Order: orderText(p), TwoStep: p.TwoStep, AutoScaling: p.AutoScaling, Tradeoff: p.Tradeoff}
	for _, e := range p.Steps {
		phase, waits := stepWaits(p, e.Name)
		v.Steps = append(v.Steps, playbookStepView{Name: e.Name, Phase: phase, WaitsFor: waits, After: e.After})
	}
	return v
}

// stepWaits is a step's phase and what it waits for in playbook p.
func stepWaits(p playbooks.Playbook, name string) (string, []string) {
	s, err := step.Lookup(name)
	if err != nil {
		return "", nil
	}
	if s.Phase() == step.Report {
		return string(s.Phase()), []string{"every other step"}
	}
	var needs []string
	planned := p.Names()
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
	return string(s.Phase()), needs
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

// autoScalingText says what containment.auto_scaling does.
var autoScalingText = map[string]string{
	playbooks.AutoScalingStandby: "standby (containment.auto_scaling): scale-in protection, then Standby in its Auto Scaling group; the group launches a replacement",
	playbooks.AutoScalingDetach:  "detach (containment.auto_scaling): out of its Auto Scaling group; the group launches a replacement",
	playbooks.AutoScalingOff:     "off (containment.auto_scaling): an Auto Scaling group may still terminate the instance",
}

func printPlaybook(s *streams, o outputOptions, p playbooks.Playbook) error {
	return o.print(s, result{
		value: newPlaybookView(p),
		table: func(w io.Writer) error { return playbookTable(w, p) },
		text: func(t *textWriter) {
			t.line("PLAYBOOK", p.Name, orderText(p), p.Summary)
			for i, e := range p.Steps {
				phase, waits := stepWaits(p, e.Name)
				t.line("STEP", fmt.Sprint(i+1), e.Name, phase, strings.Join(waits, ","), strings.Join(e.After, ","))
			}
		},
	})
}

func playbookTable(w io.Writer, p playbooks.Playbook) error {
	fmt.Fprintf(w, "Playbook  %s (%s)\n", p.Name, p.Source)
	fmt.Fprintf(w, "Summary   %s\n", p.Summary)
	fmt.Fprintf(w, "Order     %s\n", orderText(p))
	if slices.Contains(p.Names(), "quarantine") {
		if p.TwoStep {
			fmt.Fprintln(w, "Contain   two-step: each interface passes through the untracking group, so tracked connections are cut")
		} else {
			fmt.Fprintln(w, "Contain   one step (containment.two_step false): tracked connections go on until they are idle")
		}
		fmt.Fprintln(w, "Scaling   "+autoScalingText[p.AutoScaling])
		if p.NetworkACL {
			fmt.Fprintln(w, "Contain   network ACL path (containment.network_acl): deny entries for the instance's addresses in its VPC's "+
				"network ACLs cut established flows into other subnets; the ACLs serve whole subnets")
		}
	}
	if slices.Contains(p.Names(), "snapshot-lock") {
		l := p.SnapshotLock.WithDefaults()
		fmt.Fprintf(w, "Lock      case snapshots and their copies: EBS snapshot lock, %s mode, %d days\n", l.Mode, l.Days)
	}
	if slices.Contains(p.Names(), "cloudtrail-events") {
		fmt.Fprintf(w, "Record    CloudTrail events of the instance over the %s before the response (cloud_record.window), GuardDuty and Security Hub findings\n", durationText(step.Duration(p.CloudRecord.WindowOrDefault())))
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
	for i, e := range p.Steps {
		phase, needs := stepWaits(p, e.Name)
		waits := strings.Join(needs, ", ")
		if err := t.Append([]string{fmt.Sprint(i + 1), e.Name, phase, dash(waits), dash(strings.Join(e.After, ", "))}); err != nil {
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
