// Package triggertest holds small in-memory fakes of the two AWS services
// the trigger package calls that the shared fake cloud (package fakeaws) does
// not model: AWS Step Functions (StartExecution, DescribeExecution) and AWS
// Security Hub (BatchUpdateFindings, which moto does not implement either).
// They are FAKES at the interface, written from the API reference: they model
// the semantics the trigger relies on (execution-name idempotency, the
// 100-finding and 512-character limits, unprocessed findings) and nothing
// else. SecurityHubServer serves the Security Hub fake over HTTP for tests
// that run the real Lambda binary.
package triggertest

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
)

// Execution is one execution of the fake.
type Execution struct {
	ARN             string
	StateMachineARN string
	Name            string
	Input           string
	Status          types.ExecutionStatus
	StartDate       time.Time
	StopDate        time.Time
	Error           string
}

// SFN is a FAKE of AWS Step Functions with standard workflows: executions
// are started RUNNING and stay so until Finish. Safe for concurrent use.
type SFN struct {
	mu         sync.Mutex
	executions map[string]*Execution // by ARN
	faults     map[string][]error    // operation -> errors to return next
	// Latency, when set, is how long every call takes.
	Latency time.Duration
}

// NewSFN returns a fake with no execution.
func NewSFN() *SFN {
	return &SFN{executions: map[string]*Execution{}, faults: map[string][]error{}}
}

var (
	stateMachineARN = regexp.MustCompile(`^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9_-]{1,80}$`)
	// Names: 1-80 characters, none of whitespace, < > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /
	// nor control characters (StartExecution API reference).
	executionName = regexp.MustCompile("^[^\\s<>{}\\[\\]?*\"#%\\\\^|~`$&,;:/\\x00-\\x1f\\x7f-\\x9f]{1,80}$")
)

func apiError(op string, err smithy.APIError) error {
	return &smithy.OperationError{ServiceID: "SFN", OperationName: op, Err: err}
}

// FailNext makes the next call of op ("StartExecution", "DescribeExecution")
// return err.
func (f *SFN) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[op] = append(f.faults[op], err)
}

func (f *SFN) takeFault(op string) error {
	if q := f.faults[op]; len(q) > 0 {
		f.faults[op] = q[1:]
		return q[0]
	}
	return nil
}

func (f *SFN) wait(ctx context.Context) error {
	if f.Latency <= 0 {
		return ctx.Err()
	}
	select {
	case <-time.After(f.Latency):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartExecution starts an execution. As documented for standard workflows,
// a name is unique per state machine: the same name with the same input as a
// running execution answers that execution; otherwise ExecutionAlreadyExists.
func (f *SFN) StartExecution(ctx context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFault("StartExecution"); err != nil {
		return nil, err
	}
	sm := aws.ToString(in.StateMachineArn)
	if !stateMachineARN.MatchString(sm) {
		return nil, apiError("StartExecution", &types.InvalidArn{Message: aws.String("Invalid Arn: '" + sm + "'")})
	}
	name := aws.ToString(in.Name)
	if !executionName.MatchString(name) {
		return nil, apiError("StartExecution", &types.InvalidName{Message: aws.String("Invalid Name: '" + name + "'")})
	}
	input := aws.ToString(in.Input)
	if input == "" {
		input = "{}"
	}
	if !json.Valid([]byte(input)) || len(input) > 256<<10 {
		return nil, apiError("StartExecution", &types.InvalidExecutionInput{Message: aws.String("Invalid execution input")})
	}
	arn := strings.Replace(sm, ":stateMachine:", ":execution:", 1) + ":" + name
	if e, ok := f.executions[arn]; ok {
		if e.Status == types.ExecutionStatusRunning && e.Input == input {
			return &sfn.StartExecutionOutput{ExecutionArn: aws.String(arn), StartDate: aws.Time(e.StartDate)}, nil
		}
		return nil, apiError("StartExecution", &types.ExecutionAlreadyExists{Message: aws.String("Execution Already Exists: '" + arn + "'")})
	}
	e := &Execution{ARN: arn, StateMachineARN: sm, Name: name, Input: input, Status: types.ExecutionStatusRunning, StartDate: time.Now().UTC()}
	f.executions[arn] = e
	return &sfn.StartExecutionOutput{ExecutionArn: aws.String(arn), StartDate: aws.Time(e.StartDate)}, nil
}

// DescribeExecution reads an execution.
func (f *SFN) DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, _ ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFault("DescribeExecution"); err != nil {
		return nil, err
	}
	arn := aws.ToString(in.ExecutionArn)
	e, ok := f.executions[arn]
	if !ok {
		return nil, apiError("DescribeExecution", &types.ExecutionDoesNotExist{Message: aws.String("Execution Does Not Exist: '" + arn + "'")})
	}
	out := &sfn.DescribeExecutionOutput{
		ExecutionArn: aws.String(e.ARN), StateMachineArn: aws.String(e.StateMachineARN), Name: aws.String(e.Name),
		Input: aws.String(e.Input), Status: e.Status, StartDate: aws.Time(e.StartDate),
	}
	if !e.StopDate.IsZero() {
		out.StopDate = aws.Time(e.StopDate)
	}
	if e.Error != "" {
		out.Error = aws.String(e.Error)
	}
	return out, nil
}

// Finish ends a running execution with a status (SUCCEEDED, FAILED...) and,
// for a failure, an error name.
func (f *SFN) Finish(arn string, status types.ExecutionStatus, errName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.executions[arn]
	if !ok {
		return fmt.Errorf("no execution %s", arn)
	}
	e.Status, e.StopDate, e.Error = status, time.Now().UTC(), errName
	return nil
}

// Executions returns copies of every execution, by name.
func (f *SFN) Executions() []Execution {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Execution, 0, len(f.executions))
	for _, e := range f.executions {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
