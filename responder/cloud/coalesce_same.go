package cloud

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Identical reads: every response of a fleet reads the toolkit's security
// groups with the same request (every group tagged responder:quarantine),
// at the isolation path's priority, and the connection tracking step of
// every instance of one type reads that type (DescribeInstanceTypes). A read that asks exactly what another
// read waiting for its token asks joins it: the one call, sent after both
// asked, answers both, as each one's own call sent at that moment would
// have. A read never joins a call already sent, so no one gets an answer
// older than their question.

type sameFlight[O any] struct {
	callers []*caller[O]
}

// sameReads merges identical waiting reads of one operation.
type sameReads[I, O any] struct {
	e    *PacedEC2
	op   string
	call func(context.Context, I, ...func(*ec2.Options)) (O, error)
	// clone gives each caller its own answer (callers sort and keep them).
	clone func(O) O

	mu   sync.Mutex
	open map[string]*sameFlight[O]
}

// DescribeSecurityGroups merges identical reads waiting for a token.
func (e *PacedEC2) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, o ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	if in == nil || aws.ToBool(in.DryRun) || in.NextToken != nil {
		return pace(e, ctx, "DescribeSecurityGroups", in, o, e.next.DescribeSecurityGroups)
	}
	return e.groupReads.do(ctx, in, o)
}

// DescribeInstanceTypes merges identical reads waiting for a token.
func (e *PacedEC2) DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	if in == nil || aws.ToBool(in.DryRun) || in.NextToken != nil {
		return pace(e, ctx, "DescribeInstanceTypes", in, o, e.next.DescribeInstanceTypes)
	}
	return e.typeReads.do(ctx, in, o)
}

func (s *sameReads[I, O]) do(ctx context.Context, in I, opts []func(*ec2.Options)) (O, error) {
	key, err := json.Marshal(in)
	if err != nil {
		return pace(s.e, ctx, s.op, in, opts, s.call)
	}
	c := &caller[O]{ctx: ctx, opts: opts, done: make(chan struct{})}
	s.mu.Lock()
	f, joined := s.open[string(key)]
	if !joined {
		f = &sameFlight[O]{}
		if s.open == nil {
			s.open = map[string]*sameFlight[O]{}
		}
		s.open[string(key)] = f
	}
	f.callers = append(f.callers, c)
	s.mu.Unlock()
	if !joined {
		go s.run(string(key), f, c, in)
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		var zero O
		return zero, canceled(s.op, ctx.Err())
	}
}

// run waits for the flight's token, closes it to newcomers and makes the
// call for everyone in it.
func (s *sameReads[I, O]) run(key string, f *sameFlight[O], first *caller[O], in I) {
	prio := callPriority(first.ctx, s.op, first.opts)
	err := s.e.pacer.Wait(context.WithoutCancel(first.ctx), s.op, prio)
	s.mu.Lock()
	delete(s.open, key)
	callers := f.callers
	s.mu.Unlock()
	if err != nil {
		for _, c := range callers {
			c.err = err
			close(c.done)
		}
		return
	}
	if len(callers) == 1 {
		first.out, first.err = afterToken(s.e, first.ctx, s.op, prio, in, first.opts, s.call)
		close(first.done)
		return
	}
	log := &CallLog{}
	out, err := afterTokenMerged(s.e, WithCallLog(context.WithoutCancel(first.ctx), log), s.op, prio, in, first.opts, s.call)
	for _, c := range callers {
		for _, rec := range log.Calls() {
			RecordCall(c.ctx, rec)
		}
	}
	if isThrottle(err) { // still throttled: each asks on its own
		var wg sync.WaitGroup
		for _, c := range callers {
			wg.Go(func() {
				c.out, c.err = pace(s.e, c.ctx, s.op, in, c.opts, s.call)
				close(c.done)
			})
		}
		wg.Wait()
		return
	}
	for _, c := range callers {
		if err == nil {
			c.out = s.clone(out)
		}
		c.err = err
		close(c.done)
	}
}

func cloneSecurityGroups(o *ec2.DescribeSecurityGroupsOutput) *ec2.DescribeSecurityGroupsOutput {
	c := *o
	c.SecurityGroups = slices.Clone(o.SecurityGroups)
	return &c
}

func cloneInstanceTypes(o *ec2.DescribeInstanceTypesOutput) *ec2.DescribeInstanceTypesOutput {
	c := *o
	c.InstanceTypes = slices.Clone(o.InstanceTypes)
	return &c
}
