package cloud

import (
	"context"
	"reflect"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// PacedEC2 is an EC2 whose calls wait for tokens of the Pacer shared by
// every response that uses the same Clients, and whose concurrent reads of
// single instances, interfaces, volumes and profile associations are
// merged into one call (coalesce.go).
type PacedEC2 struct {
	next       EC2
	pacer      *Pacer
	reads      *coalescer
	groups     groupFlights
	groupReads *sameReads[*ec2.DescribeSecurityGroupsInput, *ec2.DescribeSecurityGroupsOutput]
	typeReads  *sameReads[*ec2.DescribeInstanceTypesInput, *ec2.DescribeInstanceTypesOutput]
}

var _ EC2 = (*PacedEC2)(nil)

// PaceEC2 wraps next with pacer. The batching window is DefaultBatchWindow
// divided by the pacer's scale.
func PaceEC2(next EC2, pacer *Pacer) *PacedEC2 {
	e := &PacedEC2{next: next, pacer: pacer}
	e.reads = newCoalescer(e, scaledWindow(pacer))
	e.groupReads = &sameReads[*ec2.DescribeSecurityGroupsInput, *ec2.DescribeSecurityGroupsOutput]{
		e: e, op: "DescribeSecurityGroups", call: next.DescribeSecurityGroups, clone: cloneSecurityGroups}
	e.typeReads = &sameReads[*ec2.DescribeInstanceTypesInput, *ec2.DescribeInstanceTypesOutput]{
		e: e, op: "DescribeInstanceTypes", call: next.DescribeInstanceTypes, clone: cloneInstanceTypes}
	return e
}

// Pacer returns the pacer the calls wait on.
func (e *PacedEC2) Pacer() *Pacer { return e.pacer }

// isThrottle reports whether err is EC2 answering that its bucket is empty.
func isThrottle(err error) bool { return IsErrorCode(err, "RequestLimitExceeded") }

// pace makes one call of op: it waits for a token at the call's priority,
// calls next with a middleware that makes each retry of the SDK wait for a
// token too and reports each throttled attempt, and reports the final
// error itself when next has no such stack (a fake).
func pace[I, O any](e *PacedEC2, ctx context.Context, op string, in I, opts []func(*ec2.Options),
	call func(context.Context, I, ...func(*ec2.Options)) (O, error)) (O, error) {
	prio := callPriority(ctx, op, opts)
	if err := e.pacer.Wait(ctx, op, prio); err != nil {
		var zero O
		return zero, canceled(op, err)
	}
	return afterToken(e, ctx, op, prio, in, opts, call)
}

// afterToken makes a call whose first attempt has its token.
func afterToken[I, O any](e *PacedEC2, ctx context.Context, op string, prio Priority, in I, opts []func(*ec2.Options),
	call func(context.Context, I, ...func(*ec2.Options)) (O, error)) (O, error) {
	a := &attempts{pacer: e.pacer, op: op, prio: prio}
	out, err := call(ctx, in, append(opts[:len(opts):len(opts)], a.option)...)
	if !a.onStack() && isThrottle(err) {
		e.pacer.Throttled(op)
	}
	return out, err
}

// canceled is the error of a call whose context ended while it waited for
// a token, as the SDK reports a cancelled call.
func canceled(op string, err error) error {
	return &smithy.OperationError{ServiceID: ec2.ServiceID, OperationName: op, Err: &smithy.CanceledError{Err: err}}
}

// callPriority: CreateSnapshots first, then the calls made with Urgent (the
// isolation path) or under WithPriority.
func callPriority(ctx context.Context, op string, opts []func(*ec2.Options)) Priority {
	if op == "CreateSnapshots" || op == "CreateSnapshot" {
		return PrioritySnapshot
	}
	urgent := reflect.ValueOf(Urgent).Pointer()
	for _, o := range opts {
		if reflect.ValueOf(o).Pointer() == urgent {
			return priorityFrom(ctx, PriorityIsolation)
		}
	}
	return priorityFrom(ctx, PriorityNormal)
}

// attempts counts the attempts the SDK makes of one call.
type attempts struct {
	pacer *Pacer
	op    string
	prio  Priority

	mu sync.Mutex
	n  int
}

func (a *attempts) onStack() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n > 0
}

// option installs the per-attempt middleware inside the SDK's retry loop.
func (a *attempts) option(o *ec2.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		if _, ok := stack.Finalize.Get("Retry"); !ok {
			return nil
		}
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("ResponderPacing", a.attempt), "Retry", middleware.After)
	})
}

func (a *attempts) attempt(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	a.mu.Lock()
	a.n++
	retry := a.n > 1
	a.mu.Unlock()
	if retry { // the first attempt took its token in pace
		if err := a.pacer.Wait(ctx, a.op, a.prio); err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, &smithy.CanceledError{Err: err}
		}
	}
	out, md, err := next.HandleFinalize(ctx, in)
	if isThrottle(err) {
		a.pacer.Throttled(a.op)
	}
	return out, md, err
}

// mergedThrottleRetries: a merged read answers many callers, so a throttle
// of it would fail them all; it is asked again, each time after a new
// token, up to this many times, before the SDK retryer's own attempts are
// all that is left.
const mergedThrottleRetries = 3

// afterTokenMerged is afterToken for a call that answers several callers.
func afterTokenMerged[I, O any](e *PacedEC2, ctx context.Context, op string, prio Priority, in I, opts []func(*ec2.Options),
	call func(context.Context, I, ...func(*ec2.Options)) (O, error)) (O, error) {
	out, err := afterToken(e, ctx, op, prio, in, opts, call)
	for i := 0; i < mergedThrottleRetries && isThrottle(err); i++ {
		if werr := e.pacer.Wait(ctx, op, prio); werr != nil {
			return out, err
		}
		out, err = afterToken(e, ctx, op, prio, in, opts, call)
	}
	return out, err
}
