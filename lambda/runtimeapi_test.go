package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runtimeAPI serves the Lambda Runtime API as documented (API version
// 2018-06-01) on loopback, so that the real bootstrap binary runs as it does
// in Lambda: it polls GET /runtime/invocation/next, answers with POST
// /runtime/invocation/{id}/response or /error, and reports a failed start
// with POST /runtime/init/error. The AWS Lambda Runtime Interface Emulator
// does the same, but is not available here.
type runtimeAPI struct {
	Addr string // host:port, for AWS_LAMBDA_RUNTIME_API

	srv     *http.Server
	queue   chan *invocation
	closing chan struct{}

	mu       sync.Mutex
	pending  map[string]*invocation
	initErr  chan runtimeError
	seq      int
	firstGet time.Time // when the function first asked for work: init done
}

// invocation is one event handed to the function.
type invocation struct {
	ID       string
	Payload  []byte
	Deadline time.Time
	served   time.Time // when GET /next handed it out
	done     chan invocationResult
}

// invocationResult is how the function answered an invocation.
type invocationResult struct {
	Body []byte
	// Error is set for POST .../error: the function's error type and message.
	Error *runtimeError
	// HandlerTime runs from handing the event out to receiving the answer:
	// the function's billed duration.
	HandlerTime time.Duration
	At          time.Time
}

type runtimeError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

const runtimePrefix = "/2018-06-01/runtime/"

func newRuntimeAPI(t testing.TB) *runtimeAPI {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &runtimeAPI{
		Addr: l.Addr().String(), queue: make(chan *invocation, 64), closing: make(chan struct{}),
		pending: map[string]*invocation{}, initErr: make(chan runtimeError, 1),
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(l) }()
	t.Cleanup(func() {
		close(r.closing)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx)
	})
	return r
}

func (r *runtimeAPI) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := strings.TrimPrefix(req.URL.Path, runtimePrefix)
	switch {
	case req.Method == http.MethodGet && path == "invocation/next":
		r.next(w, req)
	case req.Method == http.MethodPost && path == "init/error":
		var e runtimeError
		_ = json.NewDecoder(req.Body).Decode(&e)
		if e.Type == "" {
			e.Type = req.Header.Get("Lambda-Runtime-Function-Error-Type")
		}
		select {
		case r.initErr <- e:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"status":"OK"}`)
	case req.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		id, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		r.answer(w, req, id, kind)
	default:
		http.Error(w, `{"errorMessage":"not found"}`, http.StatusNotFound)
	}
}

// next blocks until an invocation is queued, then hands it out with the
// documented headers.
func (r *runtimeAPI) next(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if r.firstGet.IsZero() {
		r.firstGet = time.Now()
	}
	r.mu.Unlock()
	select {
	case inv := <-r.queue:
		r.mu.Lock()
		inv.served = time.Now()
		r.pending[inv.ID] = inv
		r.mu.Unlock()
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.ID)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:responder")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(inv.Payload)
	case <-req.Context().Done():
	case <-r.closing:
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

func (r *runtimeAPI) answer(w http.ResponseWriter, req *http.Request, id, kind string) {
	r.mu.Lock()
	inv, ok := r.pending[id]
	delete(r.pending, id)
	r.mu.Unlock()
	if !ok || (kind != "response" && kind != "error") {
		http.Error(w, `{"errorMessage":"unknown invocation"}`, http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(req.Body)
	res := invocationResult{Body: body, HandlerTime: time.Since(inv.served), At: time.Now()}
	if kind == "error" {
		var e runtimeError
		_ = json.Unmarshal(body, &e)
		if t := req.Header.Get("Lambda-Runtime-Function-Error-Type"); t != "" && e.Type == "" {
			e.Type = t
		}
		res.Error = &e
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprint(w, `{"status":"OK"}`)
	inv.done <- res
}

// Invoke hands payload to the function and waits for its answer.
func (r *runtimeAPI) Invoke(t testing.TB, payload []byte) invocationResult {
	t.Helper()
	r.mu.Lock()
	r.seq++
	id := fmt.Sprintf("8476a536-e9f4-11e8-9739-%012d", r.seq)
	r.mu.Unlock()
	inv := &invocation{ID: id, Payload: payload, Deadline: time.Now().Add(5 * time.Minute), done: make(chan invocationResult, 1)}
	r.queue <- inv
	select {
	case res := <-inv.done:
		return res
	case <-time.After(3 * time.Minute):
		t.Fatalf("invocation %s: no answer within 3 minutes", id)
		return invocationResult{}
	}
}

// FirstGet is when the function first asked for an invocation.
func (r *runtimeAPI) FirstGet() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstGet
}

// buildBootstrap builds the function as lambda/build.sh does (static, with
// the lambda.norpc tag) for this machine's architecture, into dir. It keeps
// the symbols and paths that build.sh strips, so that it shares the build
// cache with the other tests' builds.
func buildBootstrap(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the bootstrap: %v\n%s", err, out)
	}
	return bin
}

// function is a running bootstrap process.
type function struct {
	cmd     *exec.Cmd
	started time.Time
	logs    *lockedBuffer
	exited  chan error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startFunction runs the bootstrap with env (and the Runtime API address)
// as the Lambda service would, until the test ends.
func startFunction(t testing.TB, bin string, rt *runtimeAPI, env []string) *function {
	t.Helper()
	f := &function{logs: &lockedBuffer{}, exited: make(chan error, 1)}
	f.cmd = exec.Command(bin)
	f.cmd.Env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+rt.Addr,
		"AWS_LAMBDA_FUNCTION_NAME=responder",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"_HANDLER=bootstrap",
		"TZ=UTC",
	)
	f.cmd.Stdout, f.cmd.Stderr = f.logs, f.logs
	f.started = time.Now()
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.exited <- f.cmd.Wait() }()
	t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
		<-f.exited
		if t.Failed() {
			t.Logf("function log:\n%s", f.logs.String())
		}
	})
	return f
}

// baseEnv is the environment of a function against endpoint: only what
// Lambda sets, dummy credentials and the endpoint, nothing of the caller's
// AWS configuration.
func baseEnv(home, endpoint string) []string {
	env := []string{
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"HOME=" + home,
	}
	if endpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL="+endpoint)
	}
	return env
}
