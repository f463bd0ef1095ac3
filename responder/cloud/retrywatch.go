package cloud

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Retries: the SDK retries throttling, 5xx answers and timeouts with its
// jittered backoff, up to MaxAttempts. RetryWatch makes that visible and
// bounded: each new attempt of an operation is reported (so a terminal
// shows what the command waits for), and no attempt starts once the
// operation has been retried for longer than its bound.

// RetryEvent is one new attempt of an operation whose last attempt failed.
type RetryEvent struct {
	Service   string
	Operation string
	Attempt   int           // 2 for the first retry
	Elapsed   time.Duration // since the first attempt started
	Bound     time.Duration // no attempt starts after it (0: MaxAttempts only)
	LastErr   error         // what the previous attempt answered
}

// RetryWatch bounds and reports the retries of every operation.
type RetryWatch struct {
	// Bound is how long an operation may be retried: once it has run for
	// that long, no further attempt starts and its last error is returned.
	// Zero: only MaxAttempts bounds it.
	Bound time.Duration
	// OnRetry, when set, is told of every new attempt. It is called from
	// the goroutine of the operation.
	OnRetry func(RetryEvent)
}

// GaveUpError is the error of an operation that was retried for its whole
// bound. It is not retryable; it keeps the last answer.
type GaveUpError struct {
	Elapsed time.Duration
	Bound   time.Duration
	Last    error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("gave up after %s of retries (bound %s): %v", e.Elapsed.Round(time.Second), e.Bound, e.Last)
}

// Unwrap keeps the last answer's error code for the call recorder.
func (e *GaveUpError) Unwrap() error { return e.Last }

// RetryableError tells the SDK's retryer not to retry it.
func (e *GaveUpError) RetryableError() bool { return false }

type retryBoundKey struct{}

// WithRetryBound returns a context whose operations are retried for at most
// d (or the watch's own bound when that is shorter): the calls of an
// evidence step that isolation waits for are bounded this way.
func WithRetryBound(ctx context.Context, d time.Duration) context.Context {
	if cur, ok := ctx.Value(retryBoundKey{}).(time.Duration); ok && cur < d {
		return ctx
	}
	return context.WithValue(ctx, retryBoundKey{}, d)
}

// opState is one operation's attempts, shared by its attempts.
type opState struct {
	mu       sync.Mutex
	start    time.Time
	attempts int
	lastErr  error
}

type opStateKey struct{}

// middleware installs the watch: a clock at the start of the operation
// (before the retry loop) and a check before each attempt (inside it).
func (w RetryWatch) middleware(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ResponderRetryClock",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			return next.HandleInitialize(context.WithValue(ctx, opStateKey{}, &opState{start: time.Now()}), in)
		}), middleware.Before)
	if err != nil {
		return err
	}
	if _, ok := stack.Finalize.Get("Retry"); !ok {
		return nil // a presigned request: no retry loop, nothing to watch
	}
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("ResponderRetryWatch", w.attempt), "Retry", middleware.After)
}

func (w RetryWatch) attempt(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	st, ok := ctx.Value(opStateKey{}).(*opState)
	if !ok {
		return next.HandleFinalize(ctx, in)
	}
	st.mu.Lock()
	st.attempts++
	n, last, elapsed := st.attempts, st.lastErr, time.Since(st.start)
	st.mu.Unlock()
	bound := w.Bound
	if b, ok := ctx.Value(retryBoundKey{}).(time.Duration); ok && (bound == 0 || b < bound) {
		bound = b
	}
	if n > 1 {
		if bound > 0 && elapsed >= bound {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, &GaveUpError{Elapsed: elapsed, Bound: bound, Last: last}
		}
		if w.OnRetry != nil {
			w.OnRetry(RetryEvent{Service: awsmiddleware.GetServiceID(ctx), Operation: awsmiddleware.GetOperationName(ctx),
				Attempt: n, Elapsed: elapsed, Bound: bound, LastErr: last})
		}
	}
	out, md, err := next.HandleFinalize(ctx, in)
	st.mu.Lock()
	st.lastErr = err
	st.mu.Unlock()
	if err != nil && bound > 0 {
		// boundedRetryer reads the deadline, so that the wait before the
		// next attempt does not run past it.
		err = &attemptError{error: err, deadline: st.start.Add(bound)}
	}
	return out, md, err
}

// attemptError is a failed attempt's error, as it is, with the time after
// which no attempt starts.
type attemptError struct {
	error
	deadline time.Time
}

func (e *attemptError) Unwrap() error { return e.error }

// boundedRetryer is the SDK's retryer, whose wait before a new attempt
// ends at the operation's retry deadline at the latest: the attempt then
// finds the bound reached and gives up, on time.
type boundedRetryer struct {
	aws.RetryerV2
}

func (r boundedRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, rerr := r.RetryerV2.RetryDelay(attempt, err)
	var ae *attemptError
	if rerr == nil && errors.As(err, &ae) {
		d = min(d, max(time.Until(ae.deadline), 0))
	}
	return d, rerr
}

// IsGaveUp reports whether err is an operation given up after its bound.
func IsGaveUp(err error) bool {
	var g *GaveUpError
	return errors.As(err, &g)
}
