package step

import (
	"context"
	"time"

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
