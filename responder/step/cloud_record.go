package step

import (
	"context"
	"fmt"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
)

// CloudRecord is how the steps that collect the cloud's own record of the
// instance (cloudtrail-events, findings) work: a playbook's cloud_record
// settings. Zero values take the defaults.
type CloudRecord struct {
	// Window is how far before the response the CloudTrail lookup reaches
	// (default 24h, at most 2160h: the Event history keeps 90 days).
	Window Duration `yaml:"window" json:"window,omitempty"`
}

// Limits of the CloudTrail window.
const (
	DefaultCloudTrailWindow = 24 * time.Hour
	// MaxCloudTrailWindow is what the Event history keeps: the last 90
	// days of management events of the Region (CloudTrail user guide,
	// "Working with CloudTrail Event history").
	MaxCloudTrailWindow = 90 * 24 * time.Hour
	MinCloudTrailWindow = time.Minute
)

// WindowOrDefault is the lookup window, the default when not set.
func (c CloudRecord) WindowOrDefault() time.Duration { return c.Window.Or(DefaultCloudTrailWindow) }

// Validate checks the settings before any AWS call.
func (c CloudRecord) Validate() error {
	if w := time.Duration(c.Window); w != 0 && (w < MinCloudTrailWindow || w > MaxCloudTrailWindow) {
		return fmt.Errorf("cloud_record: window %s: want %s to %s (the CloudTrail Event history keeps 90 days)",
			w, MinCloudTrailWindow, MaxCloudTrailWindow)
	}
	return nil
}

// accessDeniedCodes are the codes CloudTrail, GuardDuty and Security Hub
// answer a caller without the permission with (JSON protocol services), and
// the generic ones.
var accessDeniedCodes = []string{"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}

// cloudRecordThrottleCodes are the throttling answers of CloudTrail, GuardDuty and
// Security Hub.
var cloudRecordThrottleCodes = []string{"ThrottlingException", "TooManyRequestsException", "Throttling", "LimitExceededException"}

// retryThrottled calls f again, with a doubling wait, while it is
// throttled. The SDK's retryer retries throttling of the real clients
// already; this covers what it gave up on, a few times more, so that
// throttling ends in evidence rather than in the record.
func retryThrottled(ctx context.Context, f func() error) error {
	delay := 500 * time.Millisecond
	const attempts = 6 // about 15 s of waiting in all
	var err error
	for i := range attempts {
		if err = f(); err == nil || !cloud.IsErrorCode(err, cloudRecordThrottleCodes...) || i == attempts-1 {
			return err
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
