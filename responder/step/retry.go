package step

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/responder-ir/responder/responder/cloud"
)

// retryEventual retries f while it fails with one of the given codes. EC2 is
// eventually consistent: a resource just created can be unknown to the next
// call for a short while ("InvalidGroup.NotFound" right after
// CreateSecurityGroup). Throttling is not handled here: the SDK retryer does.
func retryEventual(ctx context.Context, f func() error, codes ...string) error {
	delay := 100 * time.Millisecond
	const attempts = 6 // about 3 s in all
	var err error
	for i := 0; i < attempts; i++ {
		if err = f(); err == nil || !cloud.IsErrorCode(err, codes...) {
			return err
		}
		if i == attempts-1 {
			break
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
	return err
}

// throttleCodes are the answers of a service whose request rate is
// exceeded.
var throttleCodes = []string{"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
	"RequestThrottled", "SlowDown", "Throttled", "ServiceUnavailable", "InternalError", "InternalFailure", "Unavailable"}

// transient reports whether retrying can fix err: throttling, or a server
// fault (5xx).
func transient(err error) bool {
	if cloud.IsErrorCode(err, throttleCodes...) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorFault() == smithy.FaultServer {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 500
}

// Backoff of retryTransient: jittered, doubling from the first delay up to
// the cap.
const (
	transientFirstDelay = 200 * time.Millisecond
	transientMaxDelay   = 10 * time.Second
)

// retryTransient retries f while it fails with throttling or a server
// error, until ctx ends (the step's deadline): evidence that only the
// moment can give is not given up to a busy API. Any other error (the
// operation unsupported, the instance unknown, access denied) returns at
// once. It returns f's last error.
func retryTransient(ctx context.Context, f func() error) error {
	delay := transientFirstDelay
	for {
		err := f()
		if err == nil || !transient(err) {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		delay = min(2*delay, transientMaxDelay)
	}
}
