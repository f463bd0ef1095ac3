package evidence_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/responder/evidence"
)

// put sends body to a presigned URL as the instance does (curl -T with
// Content-MD5), and returns the ETag.
func put(t *testing.T, url string, body []byte) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %d: %s", resp.StatusCode, b)
	}
	return resp.Header.Get("ETag")
}

// TestBucketReceivesPresignedUploads drives the Receiver against a real S3
// API (gofakes3) with real presigned URLs: a single PUT and a multipart
// upload made by "the instance" over HTTP, checked and completed.
func TestBucketReceivesPresignedUploads(t *testing.T) {
	b, client := gofakes3Bucket(t)
	ctx := context.Background()
	if _, err := evidence.AsReceiver(b); !errors.Is(err, evidence.ErrCannotReceive) {
		t.Fatalf("a bucket without a presigner receives: %v", err)
	}
	if _, err := evidence.AsReceiver(&evidence.Folder{Root: t.TempDir()}); !errors.Is(err, evidence.ErrCannotReceive) {
		t.Fatalf("a folder receives: %v", err)
	}
	b.Presign = s3.NewPresignClient(client)
	rcv, err := evidence.AsReceiver(b)
	if err != nil {
		t.Fatal(err)
	}

	// One object.
	url, err := rcv.PresignPut(ctx, "case-1", "i-1/volatile/run-001/report.json", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "http") || !strings.Contains(url, "X-Amz-Signature=") {
		t.Fatalf("not a presigned URL: %.60s", url)
	}
	put(t, url, []byte(`{"status":"succeeded"}`))
	got, err := rcv.Received(ctx, "case-1", "i-1/volatile/run-001/report.json")
	if err != nil || got.Size != int64(len(`{"status":"succeeded"}`)) {
		t.Fatalf("received %+v, %v", got, err)
	}
	// Write-once: a taken path is not presigned again.
	if _, err := rcv.PresignPut(ctx, "case-1", "i-1/volatile/run-001/report.json", time.Minute); !errors.Is(err, evidence.ErrExists) {
		t.Fatalf("presigned a taken path: %v", err)
	}

	// A multipart upload of two parts (5 MiB and a tail).
	image := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16+1000)
	u, err := rcv.BeginUpload(ctx, "case-1", "i-1/memory/run-001/memory-image", "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	urls, err := rcv.PresignParts(ctx, u, 3, time.Minute)
	if err != nil || len(urls) != 3 {
		t.Fatalf("%d URLs, %v", len(urls), err)
	}
	put(t, urls[0], image[:5<<20])
	put(t, urls[1], image[5<<20:])
	parts, err := rcv.UploadedParts(ctx, u)
	if err != nil || len(parts) != 2 || parts[0].Number != 1 || parts[1].Size != int64(len(image)-5<<20) {
		t.Fatalf("parts %+v, %v", parts, err)
	}
	done, err := rcv.CompleteUpload(ctx, u, parts)
	// (gofakes3 gives a completed upload a plain MD5 ETag, not S3's
	// "<md5 of part MD5s>-<parts>": the fakeaws and moto tests check that.)
	if err != nil || done.Size != int64(len(image)) || done.ETag == "" {
		t.Fatalf("completed %+v, %v", done, err)
	}
	body, err := b.Get(ctx, "case-1", "i-1/memory/run-001/memory-image")
	if err != nil || !bytes.Equal(body, image) {
		t.Fatalf("stored image differs (%d bytes, %v)", len(body), err)
	}
	if _, err := rcv.BeginUpload(ctx, "case-1", "i-1/memory/run-001/memory-image", "application/octet-stream"); !errors.Is(err, evidence.ErrExists) {
		t.Fatalf("opened an upload over a stored image: %v", err)
	}

	// An aborted upload leaves nothing.
	u2, err := rcv.BeginUpload(ctx, "case-1", "i-1/memory/run-002/memory-image", "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.AbortUpload(ctx, u2); err != nil {
		t.Fatal(err)
	}
	if _, err := rcv.Received(ctx, "case-1", "i-1/memory/run-002/memory-image"); !errors.Is(err, evidence.ErrNotFound) {
		t.Fatalf("an aborted upload left an object: %v", err)
	}
}
