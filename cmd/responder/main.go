// Command responder preserves the evidence of a suspect EC2 instance and
// isolates it. See `responder --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, &streams{Out: os.Stdout, Err: os.Stderr}, defaultDeps())
	stop()
	os.Exit(code)
}
