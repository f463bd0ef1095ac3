package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/step"
)

// defaultRetryTimeout is how long one AWS operation is retried by default.
const defaultRetryTimeout = 2 * time.Minute

func retryFlag(dst *time.Duration) cli.Flag {
	return &cli.DurationFlag{Name: "retry-timeout", Value: defaultRetryTimeout, Destination: dst, EnvVars: []string{"RESPONDER_RETRY_TIMEOUT"},
		Usage: fmt.Sprintf("retry one AWS operation (throttled, answered 5xx, timed out) for at most `DURATION`, then fail its step; "+
			"each retry is shown on a terminal (and with --verbose); the calls of evidence steps, which containment waits for, "+
			"are retried for at most %s so that isolation is never held up by them", step.EvidenceRetryBound)}
}

type retryWatchKey struct{}

// watchRetries puts, before the command runs, the retry watch of
// --retry-timeout in its context, for loadClients.
func watchRetries(s *streams) cli.BeforeFunc {
	return func(c *cli.Context) error {
		bound := c.Duration("retry-timeout")
		if bound <= 0 {
			return exitf(exitUsage, "--retry-timeout %s: want a positive duration, e.g. 2m", bound)
		}
		w := cloud.RetryWatch{Bound: bound}
		if s.ErrIsTerminal || (hasFlag(c.Command, "verbose") && c.Bool("verbose")) {
			w.OnRetry = func(e cloud.RetryEvent) { fmt.Fprintln(s.Err, retryLine(e)) }
		}
		c.Context = context.WithValue(c.Context, retryWatchKey{}, w)
		return nil
	}
}

// retryWatch is the watch watchRetries put in ctx.
func retryWatch(ctx context.Context) (cloud.RetryWatch, bool) {
	w, ok := ctx.Value(retryWatchKey{}).(cloud.RetryWatch)
	return w, ok
}

// retryLine says what a retry waits for, and until when.
func retryLine(e cloud.RetryEvent) string {
	return fmt.Sprintf("responder: %s %s answered %s; retry %d, %s so far, gives up after %s (--retry-timeout)",
		e.Service, e.Operation, shortError(e.LastErr), e.Attempt-1, e.Elapsed.Round(time.Second), e.Bound)
}

// shortError is an AWS error's code and message, not the SDK's whole chain.
func shortError(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + " (" + ae.ErrorMessage() + ")"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() > 0 {
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
	}
	if err == nil {
		return "nothing"
	}
	return err.Error()
}
