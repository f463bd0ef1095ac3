package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/guardduty"
)

// GuardDuty lists every Amazon GuardDuty operation the toolkit calls, in the
// workload account: the findings step finds the Region's detector, lists the
// findings whose resource is the suspect instance and reads them, 50 at a
// time.
type GuardDuty interface {
	ListDetectors(context.Context, *guardduty.ListDetectorsInput, ...func(*guardduty.Options)) (*guardduty.ListDetectorsOutput, error)
	ListFindings(context.Context, *guardduty.ListFindingsInput, ...func(*guardduty.Options)) (*guardduty.ListFindingsOutput, error)
	GetFindings(context.Context, *guardduty.GetFindingsInput, ...func(*guardduty.Options)) (*guardduty.GetFindingsOutput, error)
}

var _ GuardDuty = (*guardduty.Client)(nil)

func init() {
	Register("guardduty", WorkloadAccount, reflect.TypeFor[GuardDuty]())
}
