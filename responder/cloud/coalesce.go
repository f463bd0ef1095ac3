package cloud

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Coalescing: the responses of a fleet each read their own instance,
// interfaces, volumes and profile association. Concurrent reads of the same
// kind through one Clients are merged into one call: a read joins the batch
// of its kind that is open, and the batch closes when its token is handed
// out (or it is full). A batch opens with a short window (DefaultBatchWindow)
// only while another read of its kind is in flight; otherwise it waits for
// nothing but its token, so a lone response sees no delay. The answer is
// split back per caller as a single call would have answered it. EC2 fails
// a whole call that names one unknown or malformed ID (InvalidXxx.NotFound,
// naming the IDs, or .Malformed): the callers whose IDs the error names
// then make their own call, which answers them that error exactly, and the
// others are asked again together.

// DefaultBatchWindow is how long a batch stays open for more callers while
// another read of its kind is in flight (divided by the pacer's scale).
const DefaultBatchWindow = 5 * time.Millisecond

// Batch sizes: DescribeInstances takes up to 1000 IDs a call; EC2 takes at
// most 200 filter values in one call (FilterLimitExceeded), so the
// filter-based reads and, to stay in the same range, the ID lists of
// volumes and interfaces, take 200.
const (
	maxInstanceIDs  = 1000
	maxFilterValues = 200
)

func scaledWindow(p *Pacer) time.Duration {
	return time.Duration(float64(DefaultBatchWindow) / p.scale)
}

// readKind describes one kind of read that can be merged.
type readKind[I, O any] struct {
	op  string
	max int
	// keys are the IDs the input asks for; ok is false when the input
	// carries anything else (filters, paging, dry run): it is not merged.
	keys func(I) (keys []string, ok bool)
	// merged is the input that asks for all keys.
	merged func(keys []string) I
	// split is the part of the merged answer a caller asking for keys
	// would have had.
	split func(out O, keys []string) O
	call  func(context.Context, I, ...func(*ec2.Options)) (O, error)
}

type coalescer struct {
	instances    *batcher[*ec2.DescribeInstancesInput, *ec2.DescribeInstancesOutput]
	associations *batcher[*ec2.DescribeIamInstanceProfileAssociationsInput, *ec2.DescribeIamInstanceProfileAssociationsOutput]
	interfaces   *batcher[*ec2.DescribeNetworkInterfacesInput, *ec2.DescribeNetworkInterfacesOutput]
	attachments  *batcher[*ec2.DescribeNetworkInterfacesInput, *ec2.DescribeNetworkInterfacesOutput]
	volumes      *batcher[*ec2.DescribeVolumesInput, *ec2.DescribeVolumesOutput]
}

func newCoalescer(e *PacedEC2, window time.Duration) *coalescer {
	return &coalescer{
		instances:    &batcher[*ec2.DescribeInstancesInput, *ec2.DescribeInstancesOutput]{e: e, window: window, kind: instancesKind(e.next)},
		associations: &batcher[*ec2.DescribeIamInstanceProfileAssociationsInput, *ec2.DescribeIamInstanceProfileAssociationsOutput]{e: e, window: window, kind: associationsKind(e.next)},
		interfaces:   &batcher[*ec2.DescribeNetworkInterfacesInput, *ec2.DescribeNetworkInterfacesOutput]{e: e, window: window, kind: interfacesKind(e.next)},
		attachments:  &batcher[*ec2.DescribeNetworkInterfacesInput, *ec2.DescribeNetworkInterfacesOutput]{e: e, window: window, kind: attachmentsKind(e.next)},
		volumes:      &batcher[*ec2.DescribeVolumesInput, *ec2.DescribeVolumesOutput]{e: e, window: window, kind: volumesKind(e.next)},
	}
}

// DescribeInstances merges the calls by instance IDs.
func (e *PacedEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return e.reads.instances.do(ctx, in, o)
}

// DescribeIamInstanceProfileAssociations merges the calls by the
// instance-id filter.
func (e *PacedEC2) DescribeIamInstanceProfileAssociations(ctx context.Context, in *ec2.DescribeIamInstanceProfileAssociationsInput, o ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error) {
	return e.reads.associations.do(ctx, in, o)
}

// DescribeNetworkInterfaces merges the calls by interface IDs, and those
// by the attachment.instance-id filter.
func (e *PacedEC2) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, o ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	if in != nil && len(in.Filters) > 0 {
		return e.reads.attachments.do(ctx, in, o)
	}
	return e.reads.interfaces.do(ctx, in, o)
}

// DescribeVolumes merges the calls by volume IDs.
func (e *PacedEC2) DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, o ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error) {
	return e.reads.volumes.do(ctx, in, o)
}

// batcher merges the concurrent reads of one kind.
type batcher[I, O any] struct {
	e      *PacedEC2
	window time.Duration
	kind   readKind[I, O]

	mu       sync.Mutex
	open     *batch[I, O]
	inFlight int
}

type batch[I, O any] struct {
	callers []*caller[O]
	keys    int
	full    chan struct{} // closed when the batch reaches kind.max keys
	closed  bool
}

type caller[O any] struct {
	ctx  context.Context
	opts []func(*ec2.Options)
	keys []string
	done chan struct{}
	out  O
	err  error
}

func (b *batcher[I, O]) do(ctx context.Context, in I, opts []func(*ec2.Options)) (O, error) {
	keys, ok := b.kind.keys(in)
	if !ok || len(keys) == 0 || len(keys) > b.kind.max {
		return pace(b.e, ctx, b.kind.op, in, opts, b.kind.call)
	}
	c := &caller[O]{ctx: ctx, opts: opts, keys: keys, done: make(chan struct{})}
	b.join(c)
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		var zero O
		return zero, canceled(b.kind.op, ctx.Err())
	}
}

// join adds c to the open batch, or opens one (full batches close at once).
func (b *batcher[I, O]) join(c *caller[O]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open != nil && b.open.keys+len(c.keys) > b.kind.max {
		b.closeLocked(b.open)
	}
	if b.open == nil {
		b.open = &batch[I, O]{full: make(chan struct{})}
		wait := time.Duration(0)
		if b.inFlight > 0 {
			wait = b.window
		}
		b.inFlight++
		go b.run(b.open, c, wait)
	}
	b.open.callers = append(b.open.callers, c)
	b.open.keys += len(c.keys)
	if b.open.keys >= b.kind.max {
		b.closeLocked(b.open)
	}
}

func (b *batcher[I, O]) closeLocked(bt *batch[I, O]) {
	if !bt.closed {
		bt.closed = true
		close(bt.full)
	}
	if b.open == bt {
		b.open = nil
	}
}

// run waits for the window and a token, closes the batch and makes its call.
func (b *batcher[I, O]) run(bt *batch[I, O], first *caller[O], wait time.Duration) {
	defer func() {
		b.mu.Lock()
		b.inFlight--
		b.mu.Unlock()
	}()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-bt.full:
			t.Stop()
		}
	}
	prio := callPriority(first.ctx, b.kind.op, first.opts)
	// The token is the batch's, not one caller's: no caller's end cancels it.
	if err := b.e.pacer.Wait(context.WithoutCancel(first.ctx), b.kind.op, prio); err != nil {
		b.answerAll(bt.callers, err)
		return
	}
	b.mu.Lock()
	b.closeLocked(bt)
	callers := bt.callers
	b.mu.Unlock()
	b.call(callers, prio, true)
}

func (b *batcher[I, O]) answerAll(callers []*caller[O], err error) {
	for _, c := range callers {
		c.err = err
		close(c.done)
	}
}

// call asks for every caller's keys in one call (its token taken when
// hasToken) and answers each caller its part.
func (b *batcher[I, O]) call(callers []*caller[O], prio Priority, hasToken bool) {
	if len(callers) == 1 && hasToken {
		c := callers[0]
		c.out, c.err = afterToken(b.e, c.ctx, b.kind.op, prio, b.kind.merged(c.keys), c.opts, b.kind.call)
		close(c.done)
		return
	}
	first := callers[0]
	log := &CallLog{}
	ctx := WithCallLog(context.WithoutCancel(first.ctx), log)
	in := b.kind.merged(unionKeys(callers))
	var out O
	var err error
	if !hasToken {
		if err = b.e.pacer.Wait(ctx, b.kind.op, prio); err != nil {
			b.answerAll(callers, canceled(b.kind.op, err))
			return
		}
	}
	out, err = afterTokenMerged(b.e, ctx, b.kind.op, prio, in, first.opts, b.kind.call)
	for _, c := range callers {
		for _, rec := range log.Calls() {
			RecordCall(c.ctx, rec)
		}
	}
	if err != nil && isBadID(err) {
		b.isolate(callers, err, prio)
		return
	}
	if isThrottle(err) { // still throttled: each asks on its own
		b.each(callers)
		return
	}
	for _, c := range callers {
		if err != nil {
			c.err = err
		} else {
			c.out = b.kind.split(out, c.keys)
		}
		close(c.done)
	}
}

// isolate answers a batch that EC2 refused for some ID: the callers whose
// IDs the error names (all of them, when it names none of theirs) make
// their own call; the others are asked again together.
func (b *batcher[I, O]) isolate(callers []*caller[O], err error, prio Priority) {
	msg := err.Error()
	var bad, good []*caller[O]
	for _, c := range callers {
		if namesAny(msg, c.keys) {
			bad = append(bad, c)
		} else {
			good = append(good, c)
		}
	}
	if len(bad) == 0 {
		bad, good = callers, nil
	}
	if len(good) > 0 {
		go b.call(good, prio, false)
	}
	b.each(bad)
}

// each lets every caller make its own call.
func (b *batcher[I, O]) each(callers []*caller[O]) {
	var wg sync.WaitGroup
	for _, c := range callers {
		wg.Go(func() {
			c.out, c.err = pace(b.e, c.ctx, b.kind.op, b.kind.merged(c.keys), c.opts, b.kind.call)
			close(c.done)
		})
	}
	wg.Wait()
}

func isBadID(err error) bool {
	code := ErrorCode(err)
	return strings.HasSuffix(code, ".NotFound") || strings.HasSuffix(code, ".Malformed")
}

func namesAny(msg string, keys []string) bool {
	for _, k := range keys {
		if strings.Contains(msg, k) {
			return true
		}
	}
	return false
}

func unionKeys[O any](callers []*caller[O]) []string {
	seen := map[string]bool{}
	var keys []string
	for _, c := range callers {
		for _, k := range c.keys {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// keySet is the set of a caller's keys.
func keySet(keys []string) map[string]bool {
	s := make(map[string]bool, len(keys))
	for _, k := range keys {
		s[k] = true
	}
	return s
}

// byKeyOrder orders items as their keys appear in keys: a call by IDs
// answers in the order it was asked.
func byKeyOrder[T any](items []T, keys []string, key func(T) string) []T {
	out := make([]T, 0, len(items))
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		for _, it := range items {
			if key(it) == k {
				out = append(out, it)
			}
		}
	}
	return out
}
