package image_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"reflect"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/image"
)

// roundTrip carries a job as a Step Functions state does: as JSON.
func roundTrip(t *testing.T, j *image.Job) *image.Job {
	t.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var out image.Job
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// The staged image, carried as JSON between stages of 32 units each and
// with the second stage run twice on the same input (a retried state), stores the
// disk: its raw SHA-256 is the disk's, the record names the image, and no
// upload is left open.
func TestStagedImageRetriedAdvanceLeavesTheSameImage(t *testing.T) {
	l := newLab(t, []int32{0, 3, 511, 512, 1000, 1500, 2047})
	ctx := context.Background()
	req := image.StagedRequest{Request: image.Request{CaseID: caseID}, Actor: "arn:aws:iam::111122223333:user/alice"}
	p, err := l.im.BeginNext(ctx, req)
	if err != nil || p.Done {
		t.Fatalf("BeginNext: %+v, %v", p, err)
	}
	pace := image.Pace{FirstChunk: 32, MaxChunks: 1}
	j := roundTrip(t, p.Job)
	stages := 0
	for !j.Done() {
		if len(j.Parts) != 0 {
			t.Fatalf("the state carries %d parts; want none (compacted)", len(j.Parts))
		}
		in := roundTrip(t, j)
		first, err := l.im.AdvanceFor(ctx, req, roundTrip(t, in), pace, image.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if stages == 1 {
			// The second stage runs again on the same input, as a retry
			// after a lost answer does.
			again, err := l.im.AdvanceFor(ctx, req, roundTrip(t, in), pace, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(first.Job, again.Job) {
				t.Fatalf("stage %d retried: job %+v, first %+v", stages, again.Job, first.Job)
			}
			first = again
		}
		j = roundTrip(t, first.Job)
		stages++
	}
	if stages != 4 {
		t.Fatalf("%d advance stages, want 4 (128 units of 32)", stages)
	}
	fin, err := l.im.FinishStaged(ctx, req, j)
	if err != nil {
		t.Fatal(err)
	}
	path := image.ImagePath(instance, copyID, image.CompressZstd)
	if got, n := unzstdSum(t, l.object(t, path)); got != l.ebs.DiskSHA256(copyID) || n != 1<<30 {
		t.Fatalf("stored image decompresses to %d bytes sha256 %s, want the disk's %s", n, got, l.ebs.DiskSHA256(copyID))
	}
	a, ok := recorded(t, l).Artifact(path)
	if !ok || a.DecodedSHA256 != l.ebs.DiskSHA256(copyID) || a.SHA256 != sum(l.object(t, path)) || fin.Artifact.SHA256 != a.SHA256 {
		t.Fatalf("artifact %+v", a)
	}
	if ups := l.cloud.Uploads(bucket); len(ups) != 0 {
		t.Fatalf("uploads left open: %v", ups)
	}
	prog, ok := image.LatestStaged(recorded(t, l))
	if !ok || prog.Stage != image.StageFinish || prog.BlocksDone != prog.Blocks || prog.Blocks != 2048 {
		t.Fatalf("progress %+v", prog)
	}
	// A finish retried after it completed finds the image recorded.
	if again, err := l.im.FinishStaged(ctx, req, j); err != nil || again.Artifact.SHA256 != a.SHA256 {
		t.Fatalf("finish again: %+v, %v", again, err)
	}
	// Nothing is left to image.
	if next, err := l.im.BeginNext(ctx, req); err != nil || !next.Done {
		t.Fatalf("BeginNext after the image: %+v, %v", next, err)
	}
}

// A block whose checksum does not match refuses the image in the advance
// stage: the upload is aborted and the record names the block.
func TestStagedImageRefusedBlockAborts(t *testing.T) {
	l := newLab(t, []int32{0, 20, 40})
	l.ebs.CorruptBlock(copyID, 20)
	ctx := context.Background()
	req := image.StagedRequest{Request: image.Request{CaseID: caseID}}
	p, err := l.im.BeginNext(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.im.AdvanceFor(ctx, req, p.Job, image.Pace{}, image.Options{})
	if err != nil || !got.Failed {
		t.Fatalf("advance: %+v, %v; want failed", got, err)
	}
	if ups := l.cloud.Uploads(bucket); len(ups) != 0 {
		t.Fatalf("uploads left open: %v", ups)
	}
	prog, _ := image.LatestStaged(recorded(t, l))
	if prog.Stage != image.StageAbort || prog.Status != evidence.StatusFailed {
		t.Fatalf("progress %+v", prog)
	}
	m := recorded(t, l)
	if last := m.Steps[len(m.Steps)-1]; last.Reason != "block 20 refused: its data does not match the checksum AWS sent; upload aborted" {
		t.Fatalf("reason %q", last.Reason)
	}
}

// A begin retried (the first attempt's answer lost) leaves one upload
// open: the retry's; the first attempt's is aborted.
func TestStagedBeginRetriedLeavesOneUpload(t *testing.T) {
	l := newLab(t, []int32{0})
	ctx := context.Background()
	req := image.StagedRequest{Request: image.Request{CaseID: caseID}}
	if _, err := l.im.BeginNext(ctx, req); err != nil {
		t.Fatal(err)
	}
	second, err := l.im.BeginNext(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ups := l.cloud.Uploads(bucket)
	var open []string
	for _, ids := range ups {
		open = append(open, ids...)
	}
	if len(open) != 1 || open[0] != second.Job.Upload.UploadID {
		t.Fatalf("open uploads %v, want only the retry's %s", open, second.Job.Upload.UploadID)
	}
}

// unzstdSum hashes what a zstd stream decompresses to, without holding it.
func unzstdSum(t *testing.T, b []byte) (string, int64) {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	h := sha256.New()
	n, err := io.Copy(h, d)
	if err != nil {
		t.Fatalf("decode the stored image: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}
