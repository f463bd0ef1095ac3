package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/securityhub"
)

// SecurityHubFindings lists the AWS Security Hub operations the toolkit
// calls in the workload account: the findings step reads the findings whose
// resource is the suspect instance. (SecurityHub, in registry_lambda.go, is
// the Lambda function's side: notes on findings in the administrator
// account.)
type SecurityHubFindings interface {
	GetFindings(context.Context, *securityhub.GetFindingsInput, ...func(*securityhub.Options)) (*securityhub.GetFindingsOutput, error)
}

var _ SecurityHubFindings = (*securityhub.Client)(nil)

func init() {
	Register("securityhub", WorkloadAccount, reflect.TypeFor[SecurityHubFindings]())
}
