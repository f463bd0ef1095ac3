package cloud

import (
	"container/heap"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Pacing: EC2 throttles each account and Region with one token bucket per
// API action (EC2 Developer Guide, "Request throttling"). A fleet response
// runs hundreds of responses through one Clients, so the Clients carry one
// Pacer: before each call (and each retry the SDK makes) the caller waits
// for a token of that action's bucket, shaped a little under EC2's own, so
// the calls leave no faster than AWS refills. When AWS throttles anyway
// (another tool in the account draws on the same buckets), that bucket's
// rate is halved and then recovers step by step (AIMD). The SDK retryer stays
// the second line: it retries a throttled call, and its retries wait for
// tokens too.
//
// The queue in front of each bucket has three levels: the snapshot request
// (its point in time is the evidence), then the calls isolation waits on
// (those made with Urgent, or under WithPriority(ctx, PriorityIsolation)),
// then everything else. A token is handed, when it is due, to the waiter of
// the highest level that waits at that moment; within a level, to the call
// of the response that began first (WithResponseOrder), then first come
// first served. With a full bucket a call takes its token at once: a
// single response is not slowed.

// BucketShape is a token bucket: how many tokens it holds and how many it
// gains per second.
type BucketShape struct {
	Burst int
	Rate  float64
}

// EC2 default bucket shapes per action (bucket size / refill per second),
// from the EC2 Developer Guide, "Request throttling". The actions this
// toolkit calls that the guide does not list by name fall in their
// category: Describe*, Get* (GetConsoleOutput, GetConsoleScreenshot) and
// DescribeLockedSnapshots are non-mutating; LockSnapshot, CopySnapshot,
// ModifyInstanceAttribute, ModifySnapshotAttribute, CreateSecurityGroup and
// the network ACL entries are mutating.
var (
	ec2NonMutating = BucketShape{Burst: 100, Rate: 20}
	ec2Mutating    = BucketShape{Burst: 50, Rate: 5}
	ec2Buckets     = map[string]BucketShape{
		"CreateSnapshot":                  {Burst: 100, Rate: 5},
		"CreateSnapshots":                 {Burst: 100, Rate: 5},
		"ModifyNetworkInterfaceAttribute": {Burst: 100, Rate: 5},
		"AssociateIamInstanceProfile":     {Burst: 100, Rate: 5},
		"DisassociateIamInstanceProfile":  {Burst: 100, Rate: 5},
		"CreateTags":                      {Burst: 100, Rate: 10},
		// Resource-intensive actions.
		"AuthorizeSecurityGroupIngress": {Burst: 50, Rate: 5},
		"AuthorizeSecurityGroupEgress":  {Burst: 50, Rate: 5},
		"RevokeSecurityGroupIngress":    {Burst: 50, Rate: 5},
		"RevokeSecurityGroupEgress":     {Burst: 50, Rate: 5},
	}
)

// EC2Bucket returns the shape of the default EC2 token bucket of an action.
func EC2Bucket(action string) BucketShape {
	if s, ok := ec2Buckets[action]; ok {
		return s
	}
	for _, p := range []string{"Describe", "Get", "List", "Search"} {
		if strings.HasPrefix(action, p) {
			return ec2NonMutating
		}
	}
	return ec2Mutating
}

// Headroom: the pacer's buckets are smaller than AWS's, so that a call
// that leaves on time but arrives late (a slow connection, a loaded
// machine, a Go scheduler behind) still finds a token at AWS. A call may
// arrive up to LateArrival after it left: the pacer's bucket holds the
// tokens AWS refills in that time fewer than AWS's (never fewer than a
// fifth of it), and refills at RateHeadroom of AWS's rate, so that the
// margin grows with the run.
const (
	LateArrival  = 3 * time.Second
	RateHeadroom = 0.95
)

// pacedShape is the pacer's bucket for AWS's bucket s.
func pacedShape(s BucketShape) BucketShape {
	burst := float64(s.Burst) - s.Rate*LateArrival.Seconds()
	return BucketShape{Burst: max(1, int(max(burst, float64(s.Burst)/5))), Rate: s.Rate * RateHeadroom}
}

// Priority orders the callers waiting on one bucket: lower goes first.
type Priority int

const (
	// PrioritySnapshot: the snapshot request, whose moment is the evidence.
	PrioritySnapshot Priority = iota
	// PriorityIsolation: the calls isolation waits on.
	PriorityIsolation
	// PriorityNormal: everything else.
	PriorityNormal
	numPriorities
)

type priorityKey struct{}

type orderKey struct{}

// order numbers responses and unmarked calls in the order they began.
var order atomic.Uint64

// WithResponseOrder marks ctx as one response's: within a priority level,
// a bucket hands its tokens to the calls of the response that began first.
// A fleet's responses then finish one after the other as fast as the
// buckets allow, rather than all advancing together and all finishing at
// the end. A context already marked keeps its place.
func WithResponseOrder(ctx context.Context) context.Context {
	if _, ok := ctx.Value(orderKey{}).(uint64); ok {
		return ctx
	}
	return context.WithValue(ctx, orderKey{}, order.Add(1))
}

// ticketOf is ctx's response order, or a new number for an unmarked call.
func ticketOf(ctx context.Context) uint64 {
	if t, ok := ctx.Value(orderKey{}).(uint64); ok {
		return t
	}
	return order.Add(1)
}

// WithPriority returns a context whose calls wait for tokens at level p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

func priorityFrom(ctx context.Context, fallback Priority) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok && p < fallback {
		return p
	}
	return fallback
}

// PacerOptions configure a Pacer.
type PacerOptions struct {
	// Scale runs the buckets' clocks Scale times faster (refill ×Scale,
	// backoff windows ÷Scale): tests and benchmarks against a fake whose
	// throttle is scaled the same way. Zero or 1: real time.
	Scale float64
	// Shape gives an action's bucket as AWS sizes it; the pacer applies
	// its headroom. Nil: EC2Bucket.
	Shape func(action string) BucketShape
}

// Pacer holds the token buckets of one account and Region.
type Pacer struct {
	scale float64
	shape func(string) BucketShape

	mu      sync.Mutex
	buckets map[string]*bucket
}

// NewPacer returns a pacer with full buckets.
func NewPacer(o PacerOptions) *Pacer {
	if o.Scale <= 0 {
		o.Scale = 1
	}
	if o.Shape == nil {
		o.Shape = EC2Bucket
	}
	return &Pacer{scale: o.Scale, shape: o.Shape, buckets: map[string]*bucket{}}
}

// Wait blocks until a token of action's bucket is handed to the caller at
// level prio, or ctx is done.
func (p *Pacer) Wait(ctx context.Context, action string, prio Priority) error {
	return p.bucket(action).wait(ctx, prio)
}

// Throttled tells the pacer that AWS answered a throttling error for
// action: the bucket's rate is halved (at most once per backoff window).
func (p *Pacer) Throttled(action string) {
	p.bucket(action).throttled()
}

// BucketStats is what one bucket has seen.
type BucketStats struct {
	Action    string
	Granted   int     // tokens handed out
	Throttled int     // throttling errors reported
	Rate      float64 // current refill per second, in unscaled (AWS) time
	Nominal   float64 // the rate it recovers to
}

// Stats returns every bucket's counters.
func (p *Pacer) Stats() []BucketStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]BucketStats, 0, len(p.buckets))
	for _, b := range p.buckets {
		b.mu.Lock()
		out = append(out, BucketStats{Action: b.action, Granted: b.granted, Throttled: b.throttles, Rate: b.rate, Nominal: b.nominal})
		b.mu.Unlock()
	}
	return out
}

func (p *Pacer) bucket(action string) *bucket {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.buckets[action]
	if !ok {
		b = newBucket(action, p.shape(action), p.scale)
		p.buckets[action] = b
	}
	return b
}

// AIMD parameters: a throttle halves the rate, never below a tenth of the
// nominal one; after each quiet window the rate gains a tenth of the
// nominal one back.
const (
	backoffFactor = 0.5
	minRateShare  = 0.1
	recoveryStep  = 0.1
	backoffWindow = time.Second
)

// bucket is one action's limiter with its two-level queue.
type bucket struct {
	action  string
	nominal float64 // client refill per second, unscaled
	scale   float64
	window  time.Duration
	lim     *rate.Limiter

	mu        sync.Mutex
	waiting   [numPriorities]waiters
	seq       uint64 // arrival order, to break ties between equal tickets
	running   bool   // a dispatcher goroutine hands out tokens
	rate      float64
	changed   time.Time // last rate change
	granted   int
	throttles int
}

type waiter struct {
	ready  chan struct{}
	gone   bool
	ticket uint64 // the response's order (ticketOf)
	seq    uint64
}

// waiters is a min-heap of one level's callers, by ticket then arrival.
type waiters []*waiter

func (w waiters) Len() int { return len(w) }
func (w waiters) Less(i, j int) bool {
	if w[i].ticket != w[j].ticket {
		return w[i].ticket < w[j].ticket
	}
	return w[i].seq < w[j].seq
}
func (w waiters) Swap(i, j int) { w[i], w[j] = w[j], w[i] }
func (w *waiters) Push(x any)   { *w = append(*w, x.(*waiter)) }
func (w *waiters) Pop() any {
	old := *w
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*w = old[:len(old)-1]
	return x
}

func newBucket(action string, aws BucketShape, scale float64) *bucket {
	s := pacedShape(aws)
	return &bucket{
		action: action, nominal: s.Rate, rate: s.Rate, scale: scale,
		window: time.Duration(float64(backoffWindow) / scale),
		lim:    rate.NewLimiter(rate.Limit(s.Rate*scale), s.Burst),
	}
}

func (b *bucket) wait(ctx context.Context, prio Priority) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &waiter{ready: make(chan struct{}), ticket: ticketOf(ctx)}
	b.mu.Lock()
	b.recoverLocked(time.Now())
	b.seq++
	w.seq = b.seq
	heap.Push(&b.waiting[prio], w)
	if !b.running {
		b.running = true
		go b.dispatch()
	}
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		w.gone = true
		return ctx.Err()
	}
}

// dispatch hands out tokens while callers wait: it reserves the next token,
// sleeps until it is due, and gives it to the first waiter of the highest
// level waiting then.
func (b *bucket) dispatch() {
	for {
		b.mu.Lock()
		if b.emptyLocked() {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		r := b.lim.Reserve()
		if d := r.Delay(); d > 0 {
			time.Sleep(d)
		}
		b.mu.Lock()
		w := b.popLocked()
		if w == nil {
			r.Cancel() // every waiter left: give the token back if it can be
		} else {
			b.granted++
			close(w.ready)
		}
		b.mu.Unlock()
	}
}

func (b *bucket) emptyLocked() bool {
	for p := range b.waiting {
		for _, w := range b.waiting[p] {
			if !w.gone {
				return false
			}
		}
	}
	return true
}

func (b *bucket) popLocked() *waiter {
	for p := range b.waiting {
		for b.waiting[p].Len() > 0 {
			if w := heap.Pop(&b.waiting[p]).(*waiter); !w.gone {
				return w
			}
		}
	}
	return nil
}

// throttled halves the rate and empties the bucket: AWS's is empty.
func (b *bucket) throttled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.throttles++
	now := time.Now()
	if !b.changed.IsZero() && now.Sub(b.changed) < b.window && b.rate < b.nominal {
		return // one cut per window: the throttles of one burst are one signal
	}
	b.rate = max(b.rate*backoffFactor, b.nominal*minRateShare)
	b.changed = now
	b.lim.SetLimitAt(now, rate.Limit(b.rate*b.scale))
	if t := int(b.lim.TokensAt(now)); t > 0 {
		b.lim.ReserveN(now, t)
	}
}

// recoverLocked adds a step of rate back for each quiet window passed.
func (b *bucket) recoverLocked(now time.Time) {
	if b.rate >= b.nominal || now.Sub(b.changed) < b.window {
		return
	}
	steps := float64(now.Sub(b.changed) / b.window)
	b.rate = min(b.nominal, b.rate+steps*recoveryStep*b.nominal)
	b.changed = now
	b.lim.SetLimitAt(now, rate.Limit(b.rate*b.scale))
}
