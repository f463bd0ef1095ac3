package integration

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestTLSFrontAndHandle checks the HTTPS front (trusted through its CA file,
// forwarding, failing matching requests) and FaultProxy.Handle, against a
// backend that echoes the request, so it needs no emulator.
func TestTLSFrontAndHandle(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "backend:"+r.Method+" "+r.URL.RequestURI()+" "+string(body))
	}))
	defer backend.Close()
	proxy, err := NewFaultProxy(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.Handle("DescribeInstanceInformation", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "handled:"+string(body))
	}))
	front, err := NewTLSFront(proxy.URL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	front.FailWhere(func(r *http.Request) bool { return IsUploadPart(r, 2) }, http.StatusInternalServerError, S3Error("InternalError", "injected"))

	// A client that trusts only the front's CA file, as the binary
	// (AWS_CA_BUNDLE) and curl (CURL_CA_BUNDLE) do.
	pemBytes, err := os.ReadFile(front.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("the CA file holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	for _, tc := range []struct {
		name, method, path, target, body string
		wantStatus                       int
		wantBody                         string
	}{
		{name: "forwards part 1", method: http.MethodPut, path: "/bucket/key?partNumber=1&uploadId=u1", body: "part-one",
			wantStatus: 200, wantBody: "backend:PUT /bucket/key?partNumber=1&uploadId=u1 part-one"},
		{name: "fails part 2", method: http.MethodPut, path: "/bucket/key?partNumber=2&uploadId=u1", body: "part-two",
			wantStatus: 500, wantBody: "<Code>InternalError</Code>"},
		{name: "forwards a GET", method: http.MethodGet, path: "/bucket/key?partNumber=2",
			wantStatus: 200, wantBody: "backend:GET /bucket/key?partNumber=2 "},
		{name: "a handler answers its action", method: http.MethodPost, path: "/", target: "AmazonSSM.DescribeInstanceInformation", body: `{"x":1}`,
			wantStatus: 200, wantBody: `handled:{"x":1}`},
		{name: "other actions go on", method: http.MethodPost, path: "/", target: "AmazonSSM.SendCommand", body: `{}`,
			wantStatus: 200, wantBody: "backend:POST / {}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, front.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.target != "" {
				req.Header.Set("X-Amz-Target", tc.target)
				req.Header.Set("Content-Type", jsonContentType)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
	if n := front.Failed(); n != 1 {
		t.Errorf("front failed %d requests, want 1", n)
	}
}
