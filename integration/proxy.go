package integration

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// FaultProxy is a loopback HTTP proxy in front of an AWS endpoint (moto).
// Point AWS_ENDPOINT_URL at URL and it can, per API action:
//   - answer the first N requests with an error (Throttle: HTTP 503
//     RequestLimitExceeded in EC2's XML, what EC2 sends under throttling);
//   - answer every request with a fixed response (Stub: for actions the
//     emulator does not implement, such as GetConsoleScreenshot);
//   - answer every request with a handler of the test's own (Handle: a
//     stand-in for an operation the emulator lacks or fakes, whose answer
//     depends on the request and on state, such as SSM's
//     DescribeInstanceInformation);
//   - shape the EC2 actions on EC2's token buckets per action
//     (SetRequestThrottle: RequestLimitExceeded when a bucket is empty);
//   - and add a latency to every request (SetLatency: a benchmark can make
//     each AWS call cost 100 ms, as a remote Region does).
//
// The action is read from the Query protocol's Action parameter (EC2, STS,
// SNS, IAM) or the JSON protocol's X-Amz-Target (SQS); S3 requests have no
// action ("") and are only delayed.
type FaultProxy struct {
	URL string

	srv     *http.Server
	backend *httputil.ReverseProxy

	mu       sync.Mutex
	latency  time.Duration
	faults   map[string]*fault
	stubs    map[string]stub
	handlers map[string]http.Handler
	counts   map[string]int
	total    int
	throttle *requestThrottle // EC2's per-action buckets (SetRequestThrottle)
}

type fault struct {
	remaining int
	status    int
	body      string
	injected  int
}

type stub struct {
	status int
	body   string
}

// NewFaultProxy starts a proxy to target on a free loopback port.
func NewFaultProxy(target string) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", target, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &FaultProxy{
		URL:      "http://" + l.Addr().String(),
		backend:  httputil.NewSingleHostReverseProxy(u),
		faults:   map[string]*fault{},
		stubs:    map[string]stub{},
		handlers: map[string]http.Handler{},
		counts:   map[string]int{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// Close stops the proxy.
func (p *FaultProxy) Close() error { return p.srv.Close() }

// SetLatency adds d before every request is forwarded or answered.
func (p *FaultProxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Throttle answers the next n requests of action with EC2's throttling
// error: HTTP 503, code RequestLimitExceeded.
func (p *FaultProxy) Throttle(action string, n int) {
	p.Fail(action, n, http.StatusServiceUnavailable, EC2Error("RequestLimitExceeded", "Request limit exceeded."))
}

// Fail answers the next n requests of action with status and body.
func (p *FaultProxy) Fail(action string, n, status int, body string) {
	p.mu.Lock()
	p.faults[action] = &fault{remaining: n, status: status, body: body}
	p.mu.Unlock()
}

// Stub answers every request of action with status and body, without
// forwarding it.
func (p *FaultProxy) Stub(action string, status int, body string) {
	p.mu.Lock()
	p.stubs[action] = stub{status, body}
	p.mu.Unlock()
}

// Handle answers every request of action with h, without forwarding it
// (faults set with Fail or Throttle still come first). The request's body is
// unread.
func (p *FaultProxy) Handle(action string, h http.Handler) {
	p.mu.Lock()
	p.handlers[action] = h
	p.mu.Unlock()
}

// Injected is how many faults were answered for action so far.
func (p *FaultProxy) Injected(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.faults[action]; f != nil {
		return f.injected
	}
	return 0
}

// Requests is how many requests of action arrived (all actions when action
// is "*"), faults and stubs included.
func (p *FaultProxy) Requests(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if action == "*" {
		return p.total
	}
	return p.counts[action]
}

// Reset drops faults, stubs, handlers, latency and counts.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	p.latency = 0
	p.faults = map[string]*fault{}
	p.stubs = map[string]stub{}
	p.handlers = map[string]http.Handler{}
	p.counts = map[string]int{}
	p.total = 0
	p.throttle = nil
	p.mu.Unlock()
}

// EC2Error is an EC2 Query-protocol error body.
func EC2Error(code, message string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Response><Errors><Error><Code>` + code + `</Code><Message>` + message +
		`</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action, err := readAction(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.total++
	p.counts[action]++
	latency, throttle := p.latency, p.throttle
	var answer *stub
	var handler http.Handler
	if f := p.faults[action]; f != nil && f.remaining > 0 {
		f.remaining--
		f.injected++
		answer = &stub{f.status, f.body}
	} else if s, ok := p.stubs[action]; ok {
		answer = &s
	} else if h, ok := p.handlers[action]; ok && action != "" {
		handler = h
	}
	p.mu.Unlock()

	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if answer == nil && throttle != nil && action != "" && isEC2(r) && !throttle.take(action, time.Now()) {
		answer = &stub{http.StatusServiceUnavailable, EC2Error("RequestLimitExceeded", "Request limit exceeded.")}
	}
	if answer != nil {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(answer.status)
		_, _ = io.WriteString(w, answer.body)
		return
	}
	if handler != nil {
		handler.ServeHTTP(w, r)
		return
	}
	p.backend.ServeHTTP(w, r)
}

// readAction finds the API action of a request and leaves its body readable.
func readAction(r *http.Request) (string, error) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		return target[strings.LastIndex(target, ".")+1:], nil
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return a, nil
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return "", nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", fmt.Errorf("read request body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", nil // not a Query-protocol body; forward it as it is
	}
	return form.Get("Action"), nil
}

// StubConsoleScreenshot answers GetConsoleScreenshot as EC2 does for an
// instance that supports it, with a 1x1 JPEG: moto does not implement it
// (it answers HTTP 500, which the SDK retries for minutes).
func (p *FaultProxy) StubConsoleScreenshot() {
	p.Stub("GetConsoleScreenshot", http.StatusOK, screenshotResponse)
}

var screenshotResponse = func() string {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)), nil); err != nil {
		panic(err)
	}
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<GetConsoleScreenshotResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
		`<requestId>fault-proxy</requestId><instanceId>i-stub</instanceId>` +
		`<imageData>` + base64.StdEncoding.EncodeToString(buf.Bytes()) + `</imageData>` +
		`</GetConsoleScreenshotResponse>`
}()
