package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/image"
)

// runImageCLI runs `responder image` with the forensics account dst and its
// EBS direct API.
func runImageCLI(t *testing.T, dst *fakeaws.Cloud, e *fakeaws.EBS, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	d := deps{
		loadClients: func(ctx context.Context, opts cloud.Options) (*cloud.Clients, error) {
			return &cloud.Clients{STS: dst.STS(), S3: dst.S3(), EBS: e, Region: dst.Region}, nil
		},
		now: func() time.Time { return epoch },
	}
	code := run(context.Background(), append([]string{"responder", "image"}, args...), &streams{Out: &out, Err: &errOut}, d)
	return code, out.String(), errOut.String()
}

func TestImageCommand(t *testing.T) {
	dst := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
	dst.AddBucket("ev", fakeaws.BucketOptions{Versioning: true})
	e := fakeaws.NewEBS()
	e.AddSnapshot("snap-0c0c0c0c0c0c0c0c0", 1, map[int32][]byte{0: []byte("boot sector"), 2047: []byte("last block")})
	store := &evidence.Bucket{API: dst.S3(), Name: "ev"}
	m := evidence.AppendRun(nil, evidence.Manifest{CaseID: "case-i", InstanceID: "i-0abc"}, evidence.Revision{
		Run: evidence.Run{Number: 1, Playbook: "default", Status: "contained", StartedAt: epoch, EndedAt: epoch},
		Copies: []evidence.SnapshotCopy{{SourceSnapshotID: "snap-0a0a0a0a0a0a0a0a0", SnapshotID: "snap-0c0c0c0c0c0c0c0c0",
			AccountID: forensicsAccount, State: evidence.CopyCompleted, Run: 1}},
		SetStatus: true,
	})
	if err := store.SaveManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}

	// Bad input: exit 2, nothing read.
	for _, args := range [][]string{
		{"--case-id", "case-i", "--evidence-bucket", "ev", "--compress", "gzip"},
		{"--case-id", "case-i", "--evidence-dir", t.TempDir()},
	} {
		if code, _, errOut := runImageCLI(t, dst, e, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
	}
	if n := e.CallCount("ListSnapshotBlocks"); n != 0 {
		t.Fatalf("bad input read the snapshot (%d calls)", n)
	}

	code, out, errOut := runImageCLI(t, dst, e, "--case-id", "case-i", "--evidence-bucket", "ev", "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var printed imageOutput
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatal(err)
	}
	want := e.DiskSHA256("snap-0c0c0c0c0c0c0c0c0")
	rec, err := evidence.LoadManifest(context.Background(), store, "case-i")
	if err != nil {
		t.Fatal(err)
	}
	a, ok := rec.Artifact("i-0abc/images/snap-0c0c0c0c0c0c0c0c0.raw.zst")
	if !ok || a.DecodedSHA256 != want || printed.Status != image.Completed || len(printed.Artifacts) != 1 {
		t.Fatalf("recorded %+v (found %v), printed %+v; want raw sha256 %s", a, ok, printed, want)
	}
}
