// Command responder preserves the evidence of a suspect EC2 instance and
// isolates it. See `responder --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mattn/go-isatty"
)

func main() {
	// The first SIGINT or SIGTERM cancels the run, which still records what
	// it did (status interrupted) and prints how to resume; the signal is
	// then handed back to the default behaviour, so a second one ends the
	// process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	tty := isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd())
	in := isatty.IsTerminal(os.Stdin.Fd()) || isatty.IsCygwinTerminal(os.Stdin.Fd())
	out := isatty.IsTerminal(os.Stdout.Fd()) || isatty.IsCygwinTerminal(os.Stdout.Fd())
	code := run(ctx, os.Args, &streams{Out: os.Stdout, Err: os.Stderr, ErrIsTerminal: tty, In: os.Stdin, InIsTerminal: in, OutIsTerminal: out}, defaultDeps())
	stop()
	os.Exit(code)
}
