package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// A usage error (a typo in a command or a flag, a missing required flag)
// is one short line on standard error, with a suggestion when one is close,
// and exit 2; the help is for `responder help CMD` and --help.

// prepareCommands sets, on every command of the tree, the short usage
// errors, the required-flag check and the EXAMPLES section of its help.
func prepareCommands(cmds []*cli.Command, parent string, s *streams, getenv func(string) string) {
	for _, c := range cmds {
		path := strings.TrimSpace(parent + " " + c.Name)
		c.OnUsageError = usageError(path)
		c.HideHelpCommand = true // `responder help CMD [SUB]` instead
		requireFlags(c, path)
		if hasFlag(c, "env") && hasFlag(c, "region") {
			// The config file's environment fills the flags first.
			c.Before = chain(applyConfig(getenv), c.Before)
		}
		if hasFlag(c, "retry-timeout") {
			c.Before = chain(c.Before, watchRetries(s))
		}
		if ex := commandExamples[path]; len(ex) > 0 {
			c.Description = strings.TrimRight(c.Description, "\n")
			if c.Description != "" {
				c.Description += "\n\n"
			}
			c.Description += examplesHelp(ex)
		}
		if len(c.Subcommands) > 0 {
			if c.Action == nil {
				c.Action = noSubcommand(path)
			}
			prepareCommands(c.Subcommands, path, s, getenv)
		}
	}
}

// usageError turns a flag parsing error into one line: the flag written as
// it is typed (--name), and the closest flag of the command.
func usageError(path string) cli.OnUsageErrorFunc {
	return func(c *cli.Context, err error, _ bool) error {
		return &exitError{code: exitUsage, err: flagError(path, c.Command.Flags, err)}
	}
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	dashFlag      = regexp.MustCompile(`(^|[ :])-([A-Za-z][-A-Za-z]+)`)
)

func flagError(path string, flags []cli.Flag, err error) error {
	help := "responder " + path + " --help"
	if path == "" {
		help = "responder help"
	}
	m := undefinedFlag.FindStringSubmatch(err.Error())
	if m == nil {
		// "flag needs an argument: -case-id", "invalid value ... for flag -x"
		msg := dashFlag.ReplaceAllString(err.Error(), "$1--$2")
		return fmt.Errorf("%s (see %s)", msg, help)
	}
	typed := flagName(m[1])
	var names []string
	for _, f := range flags {
		for _, n := range f.Names() {
			names = append(names, flagName(n))
		}
	}
	if s, ok := closest(typed, names); ok {
		return fmt.Errorf("unknown flag %s: did you mean %s? (see %s)", typed, s, help)
	}
	return fmt.Errorf("unknown flag %s (see %s)", typed, help)
}

func flagName(n string) string {
	n = strings.TrimLeft(n, "-")
	if len(n) == 1 {
		return "-" + n
	}
	return "--" + n
}

// unknownCommand is the error of a command name that is not one.
func unknownCommand(path, name string, cmds []*cli.Command) error {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	what := fmt.Sprintf("unknown command %q", name)
	if path != "" {
		what = fmt.Sprintf("unknown command %q for %q", name, "responder "+path)
	}
	help := strings.TrimSpace("responder help " + path)
	if s, ok := closest(name, names); ok {
		return exitf(exitUsage, "%s: did you mean %q? (see %s)", what, s, help)
	}
	return exitf(exitUsage, "%s (see %s)", what, help)
}

// noSubcommand is the action of a command that only groups others: with no
// argument it shows its help; with one it is a typo of a subcommand.
func noSubcommand(path string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() > 0 {
			return unknownCommand(path, c.Args().First(), c.Command.Subcommands)
		}
		return cli.ShowSubcommandHelp(c)
	}
}

// rootAction runs for `responder` alone (the help) and for a first word
// that is no command.
func rootAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return unknownCommand("", c.Args().First(), c.App.Commands)
	}
	return cli.ShowAppHelp(c)
}

// requireFlags checks the command's required flags itself (urfave/cli would
// print the whole help on standard output): a missing one is one line and
// exit 2. A flag set through its environment variable counts as given.
func requireFlags(c *cli.Command, path string) {
	var required []string
	for _, f := range c.Flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Required {
			sf.Required = false
			sf.Usage += " (required)"
			required = append(required, sf.Name)
		}
	}
	if len(required) == 0 {
		return
	}
	before := c.Before
	c.Before = func(ctx *cli.Context) error {
		var missing []string
		for _, n := range required {
			if !ctx.IsSet(n) {
				missing = append(missing, "--"+n)
			}
		}
		if len(missing) > 0 {
			return exitf(exitUsage, "%s needs %s (see responder %s --help)", path, strings.Join(missing, " and "), path)
		}
		if before != nil {
			return before(ctx)
		}
		return nil
	}
}

// chain runs the before functions in order, stopping at the first error.
func chain(fs ...cli.BeforeFunc) cli.BeforeFunc {
	return func(c *cli.Context) error {
		for _, f := range fs {
			if f == nil {
				continue
			}
			if err := f(c); err != nil {
				return err
			}
		}
		return nil
	}
}

// helpCommand is `responder help [COMMAND [SUBCOMMAND]]`: the help of the
// command, or one line and exit 2 for a name that is no command.
func helpCommand(s *streams, d deps) *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the commands, or the help of one command",
		UsageText: "responder help [COMMAND [SUBCOMMAND]]",
		// urfave/cli's --help of a command named help shows the app's help:
		// this command reads its arguments itself.
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if slices.Contains(args, "--help") || slices.Contains(args, "-h") {
				cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
				return nil
			}
			cmds := c.App.Commands
			var path []string
			for _, name := range args {
				var found *cli.Command
				for _, cmd := range cmds {
					if cmd.HasName(name) {
						found = cmd
					}
				}
				if found == nil {
					return unknownCommand(strings.Join(path, " "), name, cmds)
				}
				path = append(path, found.Name)
				cmds = found.Subcommands
			}
			if len(path) == 0 {
				return cli.ShowAppHelp(c)
			}
			// The help of a command is what its --help prints.
			return newApp(s, d).RunContext(c.Context, append(append([]string{"responder"}, path...), "--help"))
		},
	}
}

// closest is the candidate nearest to word, when it is near enough to be
// what was meant: at most a third of the word's length in edits (a swap of
// two neighbouring letters is one edit), and at least one.
func closest(word string, candidates []string) (string, bool) {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := editDistance(word, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(1, len(word)/3)
	if bestDist < 0 || bestDist > limit {
		return "", false
	}
	return best, true
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of adjacent characters.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
