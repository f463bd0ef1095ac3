package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
)

// CloudTrail lists every AWS CloudTrail operation the toolkit calls, in the
// workload account: the cloudtrail-events step looks up the management
// events about the suspect instance (its ID, its interfaces and volumes, and
// the sessions of its instance-profile role) in the Region's Event history.
// LookupEvents is limited to two requests per second per account and Region
// (CloudTrail API reference); the step paces itself to that.
type CloudTrail interface {
	LookupEvents(context.Context, *cloudtrail.LookupEventsInput, ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

var _ CloudTrail = (*cloudtrail.Client)(nil)

func init() {
	Register("cloudtrail", WorkloadAccount, reflect.TypeFor[CloudTrail]())
}
