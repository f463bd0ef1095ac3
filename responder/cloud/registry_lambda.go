package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// SFN lists every AWS Step Functions operation the toolkit calls: the Lambda
// entry points start one execution per case and read its state.
type SFN interface {
	StartExecution(context.Context, *sfn.StartExecutionInput, ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// SecurityHub lists every AWS Security Hub operation the toolkit calls: the
// custom-action entry point notes the case on each finding.
type SecurityHub interface {
	BatchUpdateFindings(context.Context, *securityhub.BatchUpdateFindingsInput, ...func(*securityhub.Options)) (*securityhub.BatchUpdateFindingsOutput, error)
}

// The real clients must serve the registry.
var (
	_ SFN         = (*sfn.Client)(nil)
	_ SecurityHub = (*securityhub.Client)(nil)
)

// LambdaFunction operations are called only by the responder Lambda function,
// with its own role, in the account it runs in (the forensics account, which
// is also the Security Hub administrator account the custom action fires in).
// They are kept apart from EvidenceAccount so that the CLI's responder role is
// not granted them.
const LambdaFunction = "lambda"

func init() {
	Register("states", LambdaFunction, reflect.TypeFor[SFN]())
	Register("securityhub", LambdaFunction, reflect.TypeFor[SecurityHub]())
}

// LambdaClients are the clients only the Lambda entry points use, built with
// the caller's own credentials (never an assumed workload role).
type LambdaClients struct {
	SFN         SFN
	SecurityHub SecurityHub
	Region      string
}

// LoadLambda builds the Lambda-only clients from the standard SDK
// configuration chain, with the same retryer and call recorder as Load. Only
// Region, Profile, MaxBackoff and APIOptions of opts apply.
func LoadLambda(ctx context.Context, opts Options) (*LambdaClients, error) {
	cfg, err := loadBase(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &LambdaClients{
		SFN:         sfn.NewFromConfig(cfg),
		SecurityHub: securityhub.NewFromConfig(cfg),
		Region:      cfg.Region,
	}, nil
}
