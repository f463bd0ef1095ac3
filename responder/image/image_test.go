package image_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/klauspost/compress/zstd"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/image"
)

const (
	caseID   = "case-img-1"
	bucket   = "evidence"
	instance = "i-0123456789abcdef0"
	source   = "snap-0aaaaaaaaaaaaaaaa"
	copyID   = "snap-0bbbbbbbbbbbbbbbb"
)

// lab is a forensics account with an evidence bucket, a case whose snapshot
// was copied, and the copy's blocks behind the fake EBS direct API.
type lab struct {
	cloud *fakeaws.Cloud
	ebs   *fakeaws.EBS
	store *evidence.Bucket
	im    *image.Imager
}

func newLab(t testing.TB, written []int32) *lab {
	t.Helper()
	c := fakeaws.New()
	c.AddBucket(bucket, fakeaws.BucketOptions{ObjectLockDefaultRetention: &fakeaws.Retention{Mode: types.ObjectLockRetentionModeGovernance, Days: 90}})
	e := fakeaws.NewEBS()
	rng := rand.New(rand.NewPCG(1, 2))
	blocks := map[int32][]byte{}
	for _, i := range written {
		b := make([]byte, fakeaws.EBSBlockSize)
		for k := 0; k < len(b); k += 8 {
			binary.LittleEndian.PutUint64(b[k:], rng.Uint64()&0x0303030303030303) // compressible, not zero
		}
		blocks[i] = b
	}
	e.AddSnapshot(copyID, 1, blocks)
	store := &evidence.Bucket{API: c.S3(), Name: bucket}
	now := time.Date(2026, 12, 4, 23, 0, 0, 0, time.UTC)
	m := evidence.AppendRun(nil, evidence.Manifest{CaseID: caseID, InstanceID: instance, AccountID: "111122223333", Region: "us-east-1"},
		evidence.Revision{
			Run:       evidence.Run{Number: 1, Playbook: "default", Status: "contained", StartedAt: now, EndedAt: now},
			Snapshots: []evidence.Snapshot{{SnapshotID: source, VolumeID: "vol-1", InstanceID: instance, State: "completed", Run: 1}},
			Copies: []evidence.SnapshotCopy{{SourceSnapshotID: source, SnapshotID: copyID, AccountID: "444455556666",
				Region: "us-east-1", KMSKeyID: "k", State: evidence.CopyCompleted, Run: 1}},
			SetStatus: true, Tool: "test", Location: store.Location(caseID, ""),
		})
	if err := store.SaveManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return &lab{cloud: c, ebs: e, store: store, im: &image.Imager{EBS: e, Store: store}}
}

func (l *lab) object(t testing.TB, path string) []byte {
	t.Helper()
	obj, ok := l.cloud.Objects(bucket)["cases/"+caseID+"/"+path]
	if !ok {
		t.Fatalf("no object at %s", path)
	}
	return obj.Body
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func unzstd(t *testing.T, b []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.DecodeAll(b, nil)
	if err != nil {
		t.Fatalf("decode the stored image: %v", err)
	}
	return out
}

func recorded(t *testing.T, l *lab) *evidence.Manifest {
	t.Helper()
	m, err := evidence.LoadManifest(context.Background(), l.store, caseID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A raw image holds every block in order, sparse ones as zeros: its hash is
// the disk's, and the record says so.
func TestImageRawSparseAndFull(t *testing.T) {
	l := newLab(t, []int32{0, 1, 2, 17, 1000, 2047})
	res, err := l.im.Image(context.Background(), image.Request{CaseID: caseID, Compression: image.CompressNone})
	if err != nil || res.Err != nil {
		t.Fatalf("Image: %v / %v", err, res.Err)
	}
	path := image.ImagePath(instance, copyID, image.CompressNone)
	body := l.object(t, path)
	want := l.ebs.DiskSHA256(copyID)
	if int64(len(body)) != 1<<30 || sum(body) != want {
		t.Fatalf("stored image: %d bytes sha256 %s, want 1 GiB sha256 %s", len(body), sum(body), want)
	}
	a, ok := recorded(t, l).Artifact(path)
	if !ok || a.SHA256 != want || a.Size != 1<<30 || a.Source != copyID {
		t.Fatalf("artifact = %+v, want sha256 %s", a, want)
	}
	if m := recorded(t, l); m.Runs[len(m.Runs)-1].Status != image.Completed {
		t.Fatalf("run status %q", m.Runs[len(m.Runs)-1].Status)
	}
}

// A compressed image decodes to the disk; the record holds the hash of the
// stored object and of the raw disk. Block listing is paged.
func TestImageZstdPaged(t *testing.T) {
	l := newLab(t, []int32{3, 4, 5, 6, 7, 8, 9, 600, 601, 2046})
	l.ebs.PageLimit = 3
	res, err := l.im.Image(context.Background(), image.Request{CaseID: caseID, SnapshotID: source})
	if err != nil || res.Err != nil {
		t.Fatalf("Image: %v / %v", err, res.Err)
	}
	path := image.ImagePath(instance, copyID, image.CompressZstd)
	body := l.object(t, path)
	disk := unzstd(t, body)
	want := l.ebs.DiskSHA256(copyID)
	if sum(disk) != want {
		t.Fatalf("decoded image sha256 %s, want %s", sum(disk), want)
	}
	a, _ := recorded(t, l).Artifact(path)
	if a.SHA256 != sum(body) || a.DecodedSHA256 != want || a.DecodedSize != 1<<30 || a.Encoding != "zstd" {
		t.Fatalf("artifact = %+v", a)
	}
	if n := l.ebs.CallCount("ListSnapshotBlocks"); n < 4 {
		t.Fatalf("ListSnapshotBlocks served %d pages, want the listing paged", n)
	}
	// Running again makes no second image and records no run.
	runs := len(recorded(t, l).Runs)
	if _, err := l.im.Image(context.Background(), image.Request{CaseID: caseID}); err != nil {
		t.Fatal(err)
	}
	if got := len(recorded(t, l).Runs); got != runs {
		t.Fatalf("a second Image recorded a run (%d -> %d)", runs, got)
	}
}

// A block whose data does not match its checksum is refused: no image is
// stored, the upload is aborted, and the record says which block.
func TestImageRefusesCorruptedBlock(t *testing.T) {
	l := newLab(t, []int32{0, 10, 20, 30})
	l.ebs.CorruptBlock(copyID, 20)
	res, err := l.im.Image(context.Background(), image.Request{CaseID: caseID})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err == nil || !image.IsChecksumError(res.Err) && res.Status != image.Failed {
		t.Fatalf("Image: err %v status %s, want a refused block", res.Err, res.Status)
	}
	for key := range l.cloud.Objects(bucket) {
		if strings.Contains(key, "/images/") {
			t.Fatalf("an image was stored: %s", key)
		}
	}
	if ups := l.cloud.Uploads(bucket); len(ups) != 0 {
		t.Fatalf("uploads left open: %v", ups)
	}
	m := recorded(t, l)
	step := m.Steps[len(m.Steps)-1]
	var after struct {
		RefusedBlock *int64 `json:"refused_block"`
		Aborted      bool   `json:"upload_aborted"`
	}
	_ = json.Unmarshal(step.After, &after)
	if step.Status != evidence.StatusFailed || after.RefusedBlock == nil || *after.RefusedBlock != 20 || !after.Aborted {
		t.Fatalf("step = %+v after %s", step, step.After)
	}
	if m.Runs[len(m.Runs)-1].Status != image.Failed || len(m.Artifacts) != 0 {
		t.Fatalf("run %+v artifacts %v", m.Runs[len(m.Runs)-1], m.Artifacts)
	}
}

// The work resumes from a saved Job in another imager (another Lambda
// invocation): the image is the same disk.
func TestImageResumesInChunks(t *testing.T) {
	for _, compression := range []string{image.CompressZstd, image.CompressNone} {
		t.Run(compression, func(t *testing.T) {
			l := newLab(t, []int32{0, 15, 16, 17, 500, 1500, 2047})
			ctx := context.Background()
			path := image.ImagePath(instance, copyID, compression)
			j, err := l.im.Begin(ctx, caseID, copyID, path, compression)
			if err != nil {
				t.Fatal(err)
			}
			for j.Next < j.Blocks {
				end := min(j.Next+3*j.BlocksPerUnit(), j.Blocks)
				if err := l.im.Advance(ctx, j, end, image.Options{}); err != nil {
					t.Fatal(err)
				}
				saved, _ := json.Marshal(j)
				j = &image.Job{}
				if err := json.Unmarshal(saved, j); err != nil {
					t.Fatal(err)
				}
			}
			a, err := (&image.Imager{EBS: l.ebs, Store: l.store}).Finish(ctx, j)
			if err != nil {
				t.Fatal(err)
			}
			body := l.object(t, path)
			disk := body
			if compression == image.CompressZstd {
				disk = unzstd(t, body)
			}
			if want := l.ebs.DiskSHA256(copyID); sum(disk) != want || a.SHA256 != sum(body) {
				t.Fatalf("resumed image sha256 %s (artifact %s), want disk %s", sum(disk), a.SHA256, want)
			}
		})
	}
}

// Paced at the snapshot's rate, the imager is never throttled.
func TestImagePacedUnderSnapshotRate(t *testing.T) {
	written := make([]int32, 60)
	for i := range written {
		written[i] = int32(i * 30)
	}
	l := newLab(t, written)
	l.ebs.SnapshotRate = 40
	res, err := l.im.Image(context.Background(), image.Request{CaseID: caseID, Options: image.Options{Rate: 40}})
	if err != nil || res.Err != nil {
		t.Fatalf("Image: %v / %v", err, res.Err)
	}
	if n := l.ebs.Refused("RequestThrottledException"); n != 0 {
		t.Fatalf("%d reads throttled", n)
	}
	if got := sum(unzstd(t, l.object(t, image.ImagePath(instance, copyID, image.CompressZstd)))); got != l.ebs.DiskSHA256(copyID) {
		t.Fatal("image differs from the disk")
	}
}

// Bad input is refused before any call.
func TestImageRequestValidation(t *testing.T) {
	l := newLab(t, nil)
	for _, req := range []image.Request{
		{CaseID: "../x"}, {CaseID: caseID, SnapshotID: "vol-1"}, {CaseID: caseID, Compression: "gzip"},
	} {
		if _, err := l.im.Image(context.Background(), req); err == nil {
			t.Errorf("%+v accepted", req)
		}
	}
	if n := l.ebs.CallCount("ListSnapshotBlocks"); n != 0 {
		t.Fatalf("%d calls made on bad input", n)
	}
}
