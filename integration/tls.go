package integration

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
)

// TLSFront is a loopback HTTPS endpoint in front of an HTTP one (moto, or a
// FaultProxy in front of it), with a self-signed certificate for 127.0.0.1.
// Point AWS_ENDPOINT_URL_S3 at URL and AWS_CA_BUNDLE at CAFile, and the
// binary signs its S3 calls and presigns its URLs for https://127.0.0.1:PORT,
// which is what the SSM documents' allowedPattern demands; curl on the test
// "instance" trusts the same file through CURL_CA_BUNDLE.
//
// FailWhere makes the front answer matching requests itself, with an error:
// a part upload that keeps failing, as a broken network path would.
type TLSFront struct {
	URL    string
	CAFile string

	srv     *httptest.Server
	backend *httputil.ReverseProxy

	mu       sync.Mutex
	failures []frontFailure
}

type frontFailure struct {
	match    func(*http.Request) bool
	status   int
	body     string
	answered int
}

// NewTLSFront starts an HTTPS front to target and writes its certificate,
// PEM-encoded, to dir/name-ca.pem.
func NewTLSFront(target, dir string) (*TLSFront, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("TLS front target %q: %w", target, err)
	}
	f := &TLSFront{backend: httputil.NewSingleHostReverseProxy(u)}
	f.srv = httptest.NewTLSServer(f)
	f.URL = f.srv.URL
	f.CAFile = filepath.Join(dir, "tls-front-ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.CAFile, block, 0o600); err != nil {
		f.srv.Close()
		return nil, fmt.Errorf("write the TLS front's CA file: %w", err)
	}
	return f, nil
}

// Close stops the front.
func (f *TLSFront) Close() { f.srv.Close() }

// FailWhere answers every request that match accepts with status and body
// (an S3 XML error), without forwarding it.
func (f *TLSFront) FailWhere(match func(*http.Request) bool, status int, body string) {
	f.mu.Lock()
	f.failures = append(f.failures, frontFailure{match: match, status: status, body: body})
	f.mu.Unlock()
}

// Failed is how many requests the front answered with an injected error.
func (f *TLSFront) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, x := range f.failures {
		n += x.answered
	}
	return n
}

func (f *TLSFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var fail *frontFailure
	for i := range f.failures {
		if f.failures[i].match(r) {
			fail = &f.failures[i]
			fail.answered++
			break
		}
	}
	f.mu.Unlock()
	if fail == nil {
		f.backend.ServeHTTP(w, r)
		return
	}
	// Drain what the client sends, so that it reads the answer rather than
	// a reset connection.
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(fail.status)
	_, _ = io.WriteString(w, fail.body)
}

// S3Error is an S3 REST error body.
func S3Error(code, message string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>` + code + `</Code><Message>` + message + `</Message><RequestId>tls-front</RequestId></Error>`
}

// IsUploadPart reports whether r uploads part n of a multipart upload.
func IsUploadPart(r *http.Request, n int) bool {
	q := r.URL.Query()
	return r.Method == http.MethodPut && q.Get("uploadId") != "" && q.Get("partNumber") == fmt.Sprint(n)
}
