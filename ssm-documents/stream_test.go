package ssmdocuments

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mib = 1 << 20

// streamRun runs scripts/stream-upload.sh against the receiver and decodes
// the report it prints.
func streamRun(t *testing.T, r *receiver, urls int, compression, source string, env ...string) (StreamUpload, runResult) {
	t.Helper()
	return streamRunFrom(t, r, urls, compression, []string{"--source", source}, env...)
}

// streamRunFrom is streamRun with the source arguments: "--source FILE" or
// "-- COMMAND...".
func streamRunFrom(t *testing.T, r *receiver, urls int, compression string, source []string, env ...string) (StreamUpload, runResult) {
	t.Helper()
	list := filepath.Join(t.TempDir(), "part-urls")
	if err := os.WriteFile(list, PartURLList(r.partURLs(urls)), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(append(r.env(), "RC_RETRY_SLEEP=0"), env...)
	res := run(t, env, "bash", append([]string{"scripts/stream-upload.sh", "--part-size", "5242880", "--part-urls", list,
		"--compression", compression}, source...)...)
	var rep StreamUpload
	if err := json.Unmarshal(res.stdout, &rep); err != nil {
		t.Fatalf("report: %v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	if strings.Contains(string(res.stdout)+string(res.stderr), "X-Amz-Signature") {
		t.Errorf("a presigned URL leaked into the output")
	}
	return rep, res
}

func writeStandInFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := memoryLike(rand.New(rand.NewSource(7)), n)
	path := filepath.Join(t.TempDir(), "standin.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// TestStreamUploadIntact: whatever the compression, the parts the receiver
// holds, in order, are the compressed stream the report hashes, and they
// decompress to the source byte for byte. "pipe" reads the source through
// cat (the python tee then duplicates the pipe with tee(2)); "nocmp" sets
// SU_HASH_COMPRESSED=0, which the python splitter honours (no
// compressed_sha256) and the coreutils fallback does not.
func TestStreamUploadIntact(t *testing.T) {
	t.Parallel()
	requireTools(t, "curl", "zstd", "gzip")
	src, data := writeStandInFile(t, 24*mib)
	for _, tt := range []struct{ compression, hashtee, variant string }{
		{"zstd", "python", ""}, {"zstd", "coreutils", ""}, {"gzip", "python", ""}, {"gzip", "coreutils", ""}, {"none", "coreutils", ""},
		{"zstd", "python", "pipe"}, {"zstd", "python", "pipe-nocmp"}, {"zstd", "coreutils", "pipe-nocmp"},
	} {
		compression := tt.compression
		t.Run(compression+"/"+tt.hashtee+"/"+tt.variant, func(t *testing.T) {
			if tt.hashtee == "python" {
				requireTools(t, "python3")
			}
			r := newReceiver(t)
			source, env := []string{"--source", src}, []string{"SU_HASHTEE=" + tt.hashtee}
			if strings.HasPrefix(tt.variant, "pipe") {
				source = []string{"--", "cat", src}
			}
			noHash := strings.HasSuffix(tt.variant, "nocmp")
			if noHash {
				env = append(env, "SU_HASH_COMPRESSED=0")
			}
			rep, res := streamRunFrom(t, r, 20, compression, source, env...)
			if rep.HashingTee != tt.hashtee {
				t.Errorf("hashing tee %q, want %q", rep.HashingTee, tt.hashtee)
			}
			if res.exit != 0 || rep.Status != StatusSucceeded {
				t.Fatalf("exit %d, status %s: %s\nstderr: %s", res.exit, rep.Status, rep.Error, res.stderr)
			}
			parts, err := rep.CompletedParts()
			if err != nil {
				t.Fatal(err)
			}
			got := r.assembled(t, len(parts))
			if len(r.partNumbers()) != len(parts) {
				t.Errorf("receiver holds parts %v, report lists %d", r.partNumbers(), len(parts))
			}
			want := sha256Hex(got)
			if noHash && tt.hashtee == "python" {
				want = ""
			}
			if rep.CompressedSHA256 != want || int64(len(got)) != rep.CompressedBytes {
				t.Errorf("uploaded parts hash %s (%d bytes), report says %q (%d), want %q", sha256Hex(got), len(got), rep.CompressedSHA256, rep.CompressedBytes, want)
			}
			if rep.RawSHA256 != sha256Hex(data) || rep.RawBytes != int64(len(data)) {
				t.Errorf("raw hash %s (%d bytes), want %s (%d)", rep.RawSHA256, rep.RawBytes, sha256Hex(data), len(data))
			}
			if plain := decompress(t, rep.Compression, got); sha256Hex(plain) != sha256Hex(data) {
				t.Errorf("decompressed upload differs from the source")
			}
			for _, p := range parts {
				if p.PartNumber < len(parts) && p.Size != 5*mib {
					t.Errorf("part %d is %d bytes; all but the last must be the part size", p.PartNumber, p.Size)
				}
				body := r.assembledPart(t, p.PartNumber)
				if want := `"` + md5Hex(body) + `"`; p.ETag != want {
					t.Errorf("part %d ETag %s, receiver gave %s", p.PartNumber, p.ETag, want)
				}
				// The Content-MD5 the instance sent (the splitter computes it
				// while cutting the part) is the MD5 of the bytes S3 holds.
				if sum := md5.Sum(body); p.ContentMD5 != base64.StdEncoding.EncodeToString(sum[:]) {
					t.Errorf("part %d content_md5 %s is not the MD5 of the part", p.PartNumber, p.ContentMD5)
				}
			}
		})
	}
}

// TestStreamUploadRetriesFailedPart: a part answered with 500 once is sent
// again and the upload completes intact, whether curl's own retry or the
// script's loop does it.
func TestStreamUploadRetriesFailedPart(t *testing.T) {
	t.Parallel()
	requireTools(t, "curl")
	src, data := writeStandInFile(t, 16*mib)
	tests := []struct {
		name         string
		env          []string
		wantAttempts int // as the script counts them
	}{
		{"curl retry", nil, 1},
		{"script loop", []string{"RC_CURL_RETRY=0"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t)
			r.failPartTimes(2, 1)
			rep, res := streamRun(t, r, 20, "none", src, tt.env...)
			if res.exit != 0 || rep.Status != StatusSucceeded || len(rep.Parts) < 2 {
				t.Fatalf("exit %d, status %s, %d parts: %s", res.exit, rep.Status, len(rep.Parts), rep.Error)
			}
			if n := r.putsOfPart(2); n != 2 {
				t.Errorf("receiver saw %d PUTs of part 2, want 2", n)
			}
			if rep.Parts[1].Attempts != tt.wantAttempts {
				t.Errorf("part 2 attempts = %d, want %d", rep.Parts[1].Attempts, tt.wantAttempts)
			}
			got := r.assembled(t, rep.PartCount)
			if sha256Hex(got) != rep.CompressedSHA256 || sha256Hex(got) != sha256Hex(data) {
				t.Errorf("upload not intact after the retry")
			}
		})
	}
}

// TestStreamUploadFailuresAreReported: an upload that cannot complete is
// reported as failed, naming the part, with a non-zero exit; never as a
// shorter success.
func TestStreamUploadFailuresAreReported(t *testing.T) {
	t.Parallel()
	requireTools(t, "curl")
	src, _ := writeStandInFile(t, 16*mib)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []streamFailure{
		{"server keeps failing a part", 20, 2, src, "upload", 2},
		{"more parts than URLs", 1, 0, src, "exhausted", 2},
		{"source unreadable", 20, 0, filepath.Join(t.TempDir(), "missing"), "source", 0},
		{"source empty", 20, 0, empty, "source", 0},
	}
	for _, tt := range tests {
		// python: the one-pass splitter; coreutils: tee, dd and md5sum.
		for _, hashtee := range []string{"python", "coreutils"} {
			t.Run(tt.name+"/"+hashtee, func(t *testing.T) { tt.check(t, hashtee) })
		}
	}
}

type streamFailure struct {
	name        string
	urls        int
	failPart    int
	source      string
	wantFailure string
	wantPart    int
}

func (tt streamFailure) check(t *testing.T, hashtee string) {
	r := newReceiver(t)
	if tt.failPart > 0 {
		r.failPartTimes(tt.failPart, -1)
	}
	rep, res := streamRun(t, r, tt.urls, "none", tt.source, "RC_PUT_ATTEMPTS=2", "RC_CURL_RETRY=0", "SU_HASHTEE="+hashtee)
	if res.exit == 0 {
		t.Fatalf("exit 0 for a failed upload: %+v", rep)
	}
	if rep.Status != StatusFailed || rep.Failure != tt.wantFailure || rep.FailedPart != tt.wantPart {
		t.Errorf("status %s failure %q part %d, want failed %q part %d (%s)",
			rep.Status, rep.Failure, rep.FailedPart, tt.wantFailure, tt.wantPart, rep.Error)
	}
	if _, err := rep.CompletedParts(); err == nil {
		t.Errorf("CompletedParts accepted a failed upload")
	}
	if tt.failPart > 0 {
		if n := r.putsOfPart(tt.failPart); n != 2 {
			t.Errorf("part %d was sent %d times, want 2 (RC_PUT_ATTEMPTS)", tt.failPart, n)
		}
		if p := rep.Parts[tt.failPart-1]; p.Status != "failed" || p.HTTPStatus != 500 {
			t.Errorf("part %d reported %s/%d, want failed/500", tt.failPart, p.Status, p.HTTPStatus)
		}
	}
}

// TestMultipartETag checks the ETag the engine expects for a completed
// upload against what the receiver's parts give, computed independently.
func TestMultipartETag(t *testing.T) {
	a, b := []byte("first part"), []byte("second")
	sa, sb := md5.Sum(a), md5.Sum(b)
	whole := md5.Sum(append(sa[:], sb[:]...))
	parts := []Part{
		{PartNumber: 1, ContentMD5: base64.StdEncoding.EncodeToString(sa[:])},
		{PartNumber: 2, ContentMD5: base64.StdEncoding.EncodeToString(sb[:])},
	}
	got, err := MultipartETag(parts)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + hex.EncodeToString(whole[:]) + `-2"`; got != want {
		t.Errorf("MultipartETag = %s, want %s", got, want)
	}
	if single, _ := SinglePutETag(parts[0].ContentMD5); single != `"`+md5Hex(a)+`"` {
		t.Errorf("SinglePutETag = %s", single)
	}
	if _, err := MultipartETag([]Part{{PartNumber: 1, ContentMD5: "bad"}}); err == nil {
		t.Errorf("MultipartETag accepted an invalid Content-MD5")
	}
}
