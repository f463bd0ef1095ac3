package evidence_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/responder/evidence"
)

// objectLockS3 answers PutObjectLegalHold as S3 does for a bucket with
// Object Lock: a request without Content-MD5 or an x-amz-checksum-* header
// is refused (400 InvalidRequest); an accepted one sets the hold, which
// held() reports.
type objectLockS3 struct {
	mu    sync.Mutex
	holds map[string]string // key -> ON/OFF
}

func (f *objectLockS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut || !r.URL.Query().Has("legal-hold") {
		http.Error(w, "not served", http.StatusNotImplemented)
		return
	}
	checksum := r.Header.Get("Content-MD5") != ""
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") {
			checksum = true
		}
	}
	if !checksum {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`<Error><Code>InvalidRequest</Code><Message>Missing required header for this request: Content-MD5</Message></Error>`))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holds[r.URL.Path] = "OFF"
	if strings.Contains(string(body), "<Status>ON</Status>") {
		f.holds[r.URL.Path] = "ON"
	}
}

func (f *objectLockS3) held(path string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holds[path]
}

// The legal hold request goes through the real SDK with the checksum header
// S3 requires of Object Lock requests, and takes effect.
func TestLegalHoldCarriesTheChecksumS3Requires(t *testing.T) {
	fake := &objectLockS3{holds: map[string]string{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	for _, calc := range []aws.RequestChecksumCalculation{aws.RequestChecksumCalculationWhenSupported, aws.RequestChecksumCalculationWhenRequired} {
		client := s3.New(s3.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
			Credentials:                credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
			RequestChecksumCalculation: calc,
		})
		b := &evidence.Bucket{API: client, Name: "evidence"}
		if err := b.SetLegalHold(context.Background(), "case-1", "manifest.json", true); err != nil {
			t.Fatalf("checksum calculation %v: %v", calc, err)
		}
		if got := fake.held("/evidence/cases/case-1/manifest.json"); got != "ON" {
			t.Fatalf("checksum calculation %v: legal hold %q, want ON", calc, got)
		}
	}
}
