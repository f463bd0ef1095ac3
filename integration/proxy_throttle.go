package integration

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
)

// requestThrottle is EC2's request rate limiting in front of the emulator:
// one token bucket per EC2 action (the request's SigV4 credential scope
// names the service), full at first, refilled whole once per second (every
// 1/scale s), answering RequestLimitExceeded (HTTP 503) when empty, as
// fakeaws.RequestThrottle does for the unit tier.
type requestThrottle struct {
	shape  func(string) cloud.BucketShape
	period time.Duration

	mu      sync.Mutex
	buckets map[string]*proxyBucket
}

type proxyBucket struct {
	tokens  float64
	last    time.Time
	refused int
}

// SetRequestThrottle shapes the EC2 actions on token buckets (shape nil:
// cloud.EC2Bucket, EC2's defaults) on a clock scale times faster (0 or 1:
// real time); nil shape and scale < 0 turn it off.
func (p *FaultProxy) SetRequestThrottle(shape func(string) cloud.BucketShape, scale float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if scale < 0 {
		p.throttle = nil
		return
	}
	if shape == nil {
		shape = cloud.EC2Bucket
	}
	if scale == 0 {
		scale = 1
	}
	p.throttle = &requestThrottle{shape: shape, period: time.Duration(float64(time.Second) / scale), buckets: map[string]*proxyBucket{}}
}

// Throttled is how many requests of action the request throttle refused.
func (p *FaultProxy) Throttled(action string) int {
	p.mu.Lock()
	t := p.throttle
	p.mu.Unlock()
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.buckets[action]; b != nil {
		return b.refused
	}
	return 0
}

// take takes a token of action's bucket; false when it is empty.
func (t *requestThrottle) take(action string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.shape(action)
	b := t.buckets[action]
	if b == nil {
		b = &proxyBucket{tokens: float64(s.Burst), last: now}
		t.buckets[action] = b
	}
	if n := now.Sub(b.last) / t.period; n > 0 {
		b.tokens = min(float64(s.Burst), b.tokens+float64(n)*s.Rate)
		b.last = b.last.Add(n * t.period)
	}
	if b.tokens < 1 {
		b.refused++
		return false
	}
	b.tokens--
	return true
}

// isEC2 reports whether r is signed for EC2 (Credential=.../ec2/aws4_request).
func isEC2(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Authorization"), "/ec2/aws4_request")
}
