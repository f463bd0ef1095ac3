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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	tty := isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd())
	code := run(ctx, os.Args, &streams{Out: os.Stdout, Err: os.Stderr, ErrIsTerminal: tty}, defaultDeps())
	stop()
	os.Exit(code)
}
