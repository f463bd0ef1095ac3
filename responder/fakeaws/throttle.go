package fakeaws

import (
	"sync"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
)

// RequestThrottle is EC2's request rate limiting, per action: each EC2
// call takes a token from its action's bucket when it arrives (after
// Latency), and answers RequestLimitExceeded, changing nothing, when the
// bucket is empty. A bucket starts full and gains its refill once per
// second, whole, up to its size (EC2 Developer Guide, "Request
// throttling").
type RequestThrottle struct {
	// Shape gives an action's bucket; nil: cloud.EC2Bucket, EC2's
	// defaults.
	Shape func(action string) cloud.BucketShape
	// Scale runs the buckets' clocks Scale times faster (a refill every
	// 1/Scale s): with Latency divided by the same Scale, a fleet that
	// takes minutes on AWS takes seconds here. Zero or 1: real time.
	Scale float64
}

// SetRequestThrottle turns the per-action throttle of the EC2 operations
// on (nil: off). The buckets start full.
func (c *Cloud) SetRequestThrottle(t *RequestThrottle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t == nil {
		c.throttle = nil
		return
	}
	shape, scale := t.Shape, t.Scale
	if shape == nil {
		shape = cloud.EC2Bucket
	}
	if scale <= 0 {
		scale = 1
	}
	c.throttle = &throttle{shape: shape, period: time.Duration(float64(time.Second) / scale), buckets: map[string]*serverBucket{}}
}

// Throttled returns how many calls of op the request throttle refused.
func (c *Cloud) Throttled(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.throttle == nil {
		return 0
	}
	c.throttle.mu.Lock()
	defer c.throttle.mu.Unlock()
	if b := c.throttle.buckets[op]; b != nil {
		return b.refused
	}
	return 0
}

type throttle struct {
	shape  func(string) cloud.BucketShape
	period time.Duration

	mu      sync.Mutex
	buckets map[string]*serverBucket
}

type serverBucket struct {
	shape   cloud.BucketShape
	tokens  float64
	last    time.Time // the last whole refill
	refused int
}

// take takes a token of op's bucket; false when it is empty.
func (t *throttle) take(op string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[op]
	if b == nil {
		s := t.shape(op)
		b = &serverBucket{shape: s, tokens: float64(s.Burst), last: now}
		t.buckets[op] = b
	}
	if n := now.Sub(b.last) / t.period; n > 0 {
		b.tokens = min(float64(b.shape.Burst), b.tokens+float64(n)*b.shape.Rate)
		b.last = b.last.Add(n * t.period)
	}
	if b.tokens < 1 {
		b.refused++
		return false
	}
	b.tokens--
	return true
}

// takeTokenLocked answers RequestLimitExceeded when the throttle is on and
// op's bucket is empty.
func (c *Cloud) takeTokenLocked(service, op string) error {
	if c.throttle == nil || service != serviceEC2 {
		return nil
	}
	if !c.throttle.take(op, time.Now()) {
		return apiError("RequestLimitExceeded", "Request limit exceeded.")
	}
	return nil
}
