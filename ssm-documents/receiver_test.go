package ssmdocuments

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// receiver is a loopback HTTPS server that stands in for the presigned S3
// URLs the documents are given: UploadPart (PUT /part?partNumber=N), PutObject
// (PUT /object/NAME) and GetObject (GET /object/NAME). Like S3 it checks
// Content-MD5 when sent and answers a PUT with ETag "<md5 hex>".
type receiver struct {
	srv    *httptest.Server
	caFile string
	// discard drops bodies instead of keeping them and skips the MD5 check,
	// for benchmarks: S3 does that work on its own machines, not on the
	// instance whose upload path is measured.
	discard bool

	mu       sync.Mutex
	parts    map[int][]byte
	partPuts map[int]int
	objects  map[string][]byte
	// failPart makes PUTs of a part answer 500: the count of failures left,
	// or a negative number to fail forever.
	failPart map[int]int
}

// query mimics the query string of a presigned URL, so that the documents'
// URL pattern sees what it will see in production.
const presignQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef"

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	r := &receiver{
		parts:    map[int][]byte{},
		partPuts: map[int]int{},
		objects:  map[string][]byte{},
		failPart: map[int]int{},
	}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	r.caFile = filepath.Join(t.TempDir(), "receiver-ca.pem")
	if err := os.WriteFile(r.caFile, pemBytes, 0o600); err != nil {
		t.Fatalf("write CA bundle: %v", err)
	}
	return r
}

// env is what a script needs to trust the receiver (curl reads CURL_CA_BUNDLE).
func (r *receiver) env() []string { return []string{"CURL_CA_BUNDLE=" + r.caFile} }

func (r *receiver) partURL(n int) string {
	return fmt.Sprintf("%s/part?partNumber=%d&uploadId=test-upload.1_x&%s", r.srv.URL, n, presignQuery)
}

func (r *receiver) partURLs(n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = r.partURL(i + 1)
	}
	return urls
}

func (r *receiver) objectURL(name string) string {
	return r.srv.URL + "/object/" + name + "?" + presignQuery
}

func (r *receiver) putObject(name string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objects[name] = b
}

func (r *receiver) object(name string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.objects[name]
	return b, ok
}

func (r *receiver) failPartTimes(n, times int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failPart[n] = times
}

func (r *receiver) putsOfPart(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.partPuts[n]
}

// assembled returns parts 1..count concatenated, failing the test on a gap.
func (r *receiver) assembled(t *testing.T, count int) []byte {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []byte
	for i := 1; i <= count; i++ {
		p, ok := r.parts[i]
		if !ok {
			t.Fatalf("receiver has no part %d", i)
		}
		out = append(out, p...)
	}
	return out
}

func (r *receiver) partNumbers() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ns []int
	for n := range r.parts {
		ns = append(ns, n)
	}
	return ns
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Query().Get("X-Amz-Signature") == "" {
		http.Error(w, "not presigned", http.StatusForbidden)
		return
	}
	switch {
	case req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/object/"):
		b, ok := r.object(strings.TrimPrefix(req.URL.Path, "/object/"))
		if !ok {
			http.Error(w, "NoSuchKey", http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	case req.Method == http.MethodPut && req.URL.Path == "/part":
		n, err := strconv.Atoi(req.URL.Query().Get("partNumber"))
		if err != nil || n < 1 || n > MaxParts {
			http.Error(w, "InvalidArgument", http.StatusBadRequest)
			return
		}
		body, sum, ok := r.readBody(w, req)
		if !ok {
			return
		}
		r.mu.Lock()
		r.partPuts[n]++
		left, failing := r.failPart[n]
		if failing && left != 0 {
			r.failPart[n] = left - 1
			r.mu.Unlock()
			http.Error(w, "InternalError", http.StatusInternalServerError)
			return
		}
		if !r.discard {
			r.parts[n] = body
		}
		r.mu.Unlock()
		w.Header().Set("ETag", `"`+sum+`"`)
	case req.Method == http.MethodPut && strings.HasPrefix(req.URL.Path, "/object/"):
		body, sum, ok := r.readBody(w, req)
		if !ok {
			return
		}
		r.putObject(strings.TrimPrefix(req.URL.Path, "/object/"), body)
		w.Header().Set("ETag", `"`+sum+`"`)
	default:
		http.Error(w, "MethodNotAllowed", http.StatusMethodNotAllowed)
	}
}

// readBody reads the request body, checks Content-MD5 like S3 (400
// BadDigest on a mismatch) and returns the body and its MD5 in hex.
func (r *receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, string, bool) {
	if r.discard {
		_, err := io.Copy(io.Discard, req.Body)
		return nil, "00000000000000000000000000000000", err == nil
	}
	var h hash.Hash = md5.New()
	body, err := io.ReadAll(io.TeeReader(req.Body, h))
	if err != nil {
		http.Error(w, "IncompleteBody", http.StatusBadRequest)
		return nil, "", false
	}
	sum := h.Sum(nil)
	if cm := req.Header.Get("Content-MD5"); cm != "" && cm != base64.StdEncoding.EncodeToString(sum) {
		http.Error(w, "BadDigest", http.StatusBadRequest)
		return nil, "", false
	}
	return body, hex.EncodeToString(sum), true
}

func (r *receiver) assembledPart(t *testing.T, n int) []byte {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.parts[n]
	if !ok {
		t.Fatalf("receiver has no part %d", n)
	}
	return p
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
