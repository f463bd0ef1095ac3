package integration

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFaultProxy checks the proxy against a backend that echoes the request
// body, so it needs no emulator.
func TestFaultProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "backend:"+string(body))
	}))
	defer backend.Close()

	query := func(action string) *http.Request {
		form := url.Values{"Action": {action}, "Version": {"2016-11-15"}}.Encode()
		r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		return r
	}
	jsonCall := func(target string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
		r.Header.Set("X-Amz-Target", target)
		r.Header.Set("Content-Type", "application/x-amz-json-1.0")
		return r
	}
	s3Put := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPut, "/bucket/key", strings.NewReader("object"))
		return r
	}

	for _, tc := range []struct {
		name    string
		arrange func(p *FaultProxy)
		reqs    []*http.Request
		want    []int // status of each request
		action  string
		count   int // Requests(action) afterwards
	}{
		{
			name:    "throttles the first n requests of an action, then forwards",
			arrange: func(p *FaultProxy) { p.Throttle("CreateSnapshots", 2) },
			reqs:    []*http.Request{query("CreateSnapshots"), query("DescribeInstances"), query("CreateSnapshots"), query("CreateSnapshots")},
			want:    []int{503, 200, 503, 200},
			action:  "CreateSnapshots", count: 3,
		},
		{
			name:    "stubs an action on every request",
			arrange: func(p *FaultProxy) { p.Stub("GetConsoleScreenshot", 200, "<stub/>") },
			reqs:    []*http.Request{query("GetConsoleScreenshot"), query("GetConsoleScreenshot")},
			want:    []int{200, 200},
			action:  "GetConsoleScreenshot", count: 2,
		},
		{
			name:    "reads the JSON protocol's target",
			arrange: func(p *FaultProxy) { p.Throttle("ReceiveMessage", 1) },
			reqs:    []*http.Request{jsonCall("AmazonSQS.ReceiveMessage"), jsonCall("AmazonSQS.ReceiveMessage")},
			want:    []int{503, 200},
			action:  "ReceiveMessage", count: 2,
		},
		{
			name:    "forwards S3 untouched",
			arrange: func(p *FaultProxy) { p.Throttle("CreateSnapshots", 5) },
			reqs:    []*http.Request{s3Put()},
			want:    []int{200},
			action:  "*", count: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewFaultProxy(backend.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			tc.arrange(p)
			for i, r := range tc.reqs {
				sent, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(strings.NewReader(string(sent)))
				r.URL, _ = url.Parse(p.URL + r.URL.Path)
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want[i] {
					t.Errorf("request %d: status %d, want %d: %s", i, resp.StatusCode, tc.want[i], body)
				}
				if resp.StatusCode == 200 && strings.HasPrefix(string(body), "backend:") && string(body) != "backend:"+string(sent) {
					t.Errorf("request %d: backend got body %q, want %q", i, body, "backend:"+string(sent))
				}
				if resp.StatusCode == 503 && !strings.Contains(string(body), "<Code>RequestLimitExceeded</Code>") {
					t.Errorf("request %d: throttling body %s", i, body)
				}
			}
			if got := p.Requests(tc.action); got != tc.count {
				t.Errorf("Requests(%q) = %d, want %d", tc.action, got, tc.count)
			}
		})
	}
}

func TestFaultProxyLatency(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	p, err := NewFaultProxy(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetLatency(100 * time.Millisecond)
	start := time.Now()
	resp, err := http.Get(p.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("request took %s, want at least the 100ms latency", took)
	}
}
