package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
)

// TestRetriesAreShownAndBounded: an S3 endpoint that answers 503 forever.
// On a terminal each retry says what it waits for and when it gives up; the
// command gives up at --retry-timeout and exits 4.
func TestRetriesAreShownAndBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`))
	}))
	t.Cleanup(srv.Close)
	awsHome(t)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")

	var out, errOut bytes.Buffer
	d := deps{loadClients: cloud.Load, now: time.Now, getenv: os.Getenv}
	start := time.Now()
	code := run(context.Background(), []string{"responder", "status", "--case-id", "case-x", "--evidence-bucket", "b", "--retry-timeout", "3s"},
		&streams{Out: &out, Err: &errOut, ErrIsTerminal: true}, d)
	took := time.Since(start)
	if code != exitCannotStart {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if took > 30*time.Second {
		t.Errorf("took %s with --retry-timeout 3s", took)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "S3 GetObject answered SlowDown (Please reduce your request rate.); retry 1,") ||
		!strings.Contains(lines[0], "gives up after 3s (--retry-timeout)") {
		t.Errorf("the retries are not shown:\n%s", errOut.String())
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "gave up after") || !strings.Contains(last, "SlowDown") {
		t.Errorf("last line %q does not say it gave up, and on what", last)
	}

	// Not a terminal, not --verbose: the retries are not shown, the bound holds.
	errOut.Reset()
	code = run(context.Background(), []string{"responder", "status", "--case-id", "case-x", "--evidence-bucket", "b", "--retry-timeout", "1s"},
		&streams{Out: &out, Err: &errOut}, d)
	if code != exitCannotStart || strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("exit %d, stderr:\n%s", code, errOut.String())
	}
}
