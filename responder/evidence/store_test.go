package evidence_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// gofakes3Bucket serves a real S3 API in-process (gofakes3) and returns a
// Bucket store on it, talking through the real SDK client.
func gofakes3Bucket(t *testing.T) (*evidence.Bucket, *s3.Client) {
	t.Helper()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("evidence")}); err != nil {
		t.Fatal(err)
	}
	return &evidence.Bucket{API: client, Name: "evidence"}, client
}

func stores(t *testing.T) map[string]evidence.Store {
	b, _ := gofakes3Bucket(t)
	return map[string]evidence.Store{
		"folder": &evidence.Folder{Root: t.TempDir()},
		"bucket": b,
	}
}

func TestStoreWriteOnce(t *testing.T) {
	ctx := context.Background()
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := store.Put(ctx, "case-1", "i-0123456789abcdef0/console-output.txt", []byte("first"), "text/plain"); err != nil {
				t.Fatal(err)
			}
			_, err := store.Put(ctx, "case-1", "i-0123456789abcdef0/console-output.txt", []byte("second"), "text/plain")
			if !errors.Is(err, evidence.ErrExists) {
				t.Fatalf("second put: got %v, want ErrExists", err)
			}
			got, err := store.Get(ctx, "case-1", "i-0123456789abcdef0/console-output.txt")
			if err != nil || string(got) != "first" {
				t.Fatalf("artifact after a second put = %q, %v; want the first content kept", got, err)
			}
			if _, err := store.Get(ctx, "case-1", "missing.txt"); !errors.Is(err, evidence.ErrNotFound) {
				t.Fatalf("missing artifact: got %v, want ErrNotFound", err)
			}
		})
	}
}

func TestConditionalWritesOnlyStillWritesOnce(t *testing.T) {
	// gofakes3 honours If-None-Match as S3 does only in part; the fake
	// cloud's S3 does. Either way the second write must not replace the first.
	c := fakeaws.New()
	c.AddBucket("ev", fakeaws.BucketOptions{})
	store := &evidence.Bucket{API: c.S3(), Name: "ev", ConditionalWritesOnly: true}
	ctx := context.Background()
	if _, err := store.Put(ctx, "case-1", "a.txt", []byte("first"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, "case-1", "a.txt", []byte("second"), "text/plain"); !errors.Is(err, evidence.ErrExists) {
		t.Fatalf("second put: %v", err)
	}
	if c.CallCount("HeadObject") != 0 {
		t.Fatal("a HEAD was made")
	}
	if got, _ := store.Get(ctx, "case-1", "a.txt"); string(got) != "first" {
		t.Fatalf("artifact %q", got)
	}
}

func TestStoreRejectsUnsafePaths(t *testing.T) {
	ctx := context.Background()
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct{ caseID, path string }{
				{"../etc", "x"}, {"case-1", "../x"}, {"case-1", "/abs"}, {"case-1", "a/../../b"},
				{"case 1", "x"}, {"", "x"}, {"case-1", "x;rm -rf"}, {"case-1", ""},
			} {
				if _, err := store.Put(ctx, tc.caseID, tc.path, []byte("x"), "text/plain"); err == nil {
					t.Errorf("Put(%q, %q) accepted an unsafe name", tc.caseID, tc.path)
				}
			}
		})
	}
}

func TestManifestHistoryIsKept(t *testing.T) {
	ctx := context.Background()
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			m := &evidence.Manifest{SchemaVersion: evidence.SchemaVersion, CaseID: "case-1", InstanceID: "i-0123456789abcdef0",
				Runs: []evidence.Run{{Number: 1, Status: evidence.CaseContained}}}
			if err := store.SaveManifest(ctx, m); err != nil {
				t.Fatal(err)
			}
			m.Runs = append(m.Runs, evidence.Run{Number: 2, Status: evidence.CaseContained, StartedAt: time.Unix(1, 0).UTC()})
			if err := store.SaveManifest(ctx, m); err != nil {
				t.Fatal(err)
			}
			// Saving run 2 again must not replace its history copy.
			if err := store.SaveManifest(ctx, m); !errors.Is(err, evidence.ErrExists) {
				t.Fatalf("saving the same run twice: got %v, want ErrExists", err)
			}
			got, err := evidence.LoadManifest(ctx, store, "case-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.LastRun() != 2 {
				t.Fatalf("manifest.json has last run %d, want 2", got.LastRun())
			}
			first, err := store.Get(ctx, "case-1", "history/manifest-run-001.json")
			if err != nil {
				t.Fatal(err)
			}
			old, err := evidence.DecodeManifest(first)
			if err != nil || old.LastRun() != 1 {
				t.Fatalf("history of run 1 = %+v, %v", old, err)
			}
		})
	}
}

func TestBucketObjectAttributes(t *testing.T) {
	ctx := context.Background()
	store, client := gofakes3Bucket(t)
	body := []byte("console output of a suspect instance\n")
	if _, err := store.Put(ctx, "case-1", "i-0123456789abcdef0/console-output.txt", body, "text/plain"); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("evidence"), Key: aws.String("cases/case-1/i-0123456789abcdef0/console-output.txt")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if got := aws.ToString(out.ContentType); got != "text/plain" {
		t.Errorf("content type = %q", got)
	}
	if loc := store.Location("case-1", "x.txt"); loc != "s3://evidence/cases/case-1/x.txt" {
		t.Errorf("location = %q", loc)
	}
}

func TestFolderArtifactsAreReadOnly(t *testing.T) {
	root := t.TempDir()
	store := &evidence.Folder{Root: root}
	if _, err := store.Put(context.Background(), "case-1", "a/b.txt", []byte("x"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "case-1", "a", "b.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o222 != 0 {
		t.Fatalf("artifact mode %v is writable", fi.Mode().Perm())
	}
}

func TestDecodeManifestRejectsOtherMajorVersion(t *testing.T) {
	if _, err := evidence.DecodeManifest([]byte(`{"schema_version":"2.0","case_id":"x"}`)); err == nil {
		t.Fatal("a 2.x manifest was accepted")
	}
	if _, err := evidence.DecodeManifest([]byte(`{"schema_version":"1.7","case_id":"x","future_field":1}`)); err != nil {
		t.Fatalf("a newer 1.x manifest was rejected: %v", err)
	}
}

func TestCaseStatus(t *testing.T) {
	held := evidence.StepRecord{Phase: "contain", Status: "ok", Containment: evidence.ContainmentHeld}
	notHeld := evidence.StepRecord{Phase: "contain", Status: "failed", Containment: evidence.ContainmentNotHeld}
	unchecked := evidence.StepRecord{Phase: "contain", Status: "ok", Containment: evidence.ContainmentUnchecked}
	failedButHeld := evidence.StepRecord{Phase: "contain", Status: "failed", Containment: evidence.ContainmentHeld}
	evidenceFailed := evidence.StepRecord{Phase: "acquire", Status: "failed"}
	tagFailed := evidence.StepRecord{Phase: "contain", Status: "failed"} // case-tag: no containment
	permitted := evidence.StepRecord{Phase: "contain", Status: "ok", Containment: evidence.ContainmentPermitted}
	for _, tc := range []struct {
		name  string
		steps []evidence.StepRecord
		o     evidence.Outcome
		want  string
	}{
		{"no containment step", []evidence.StepRecord{{Phase: "acquire", Status: "ok"}}, evidence.Outcome{}, evidence.CaseAcquired},
		{"evidence only, a step failed", []evidence.StepRecord{evidenceFailed}, evidence.Outcome{}, evidence.CaseAcquired},
		{"every read-back held", []evidence.StepRecord{held, held, evidenceFailed, tagFailed}, evidence.Outcome{}, evidence.CaseContained},
		{"an ok step that did not read back", []evidence.StepRecord{held, unchecked}, evidence.Outcome{}, evidence.CasePartiallyContained},
		{"a failed step whose state held", []evidence.StepRecord{held, failedButHeld}, evidence.Outcome{}, evidence.CasePartiallyContained},
		{"some held", []evidence.StepRecord{held, notHeld}, evidence.Outcome{}, evidence.CasePartiallyContained},
		{"none held", []evidence.StepRecord{notHeld, unchecked}, evidence.Outcome{}, evidence.CaseContainmentFailed},
		{"interrupted", []evidence.StepRecord{held}, evidence.Outcome{Interrupted: true}, evidence.CaseInterrupted},
		{"dry run", []evidence.StepRecord{permitted, unchecked}, evidence.Outcome{DryRun: true}, evidence.CaseWouldContain},
		{"dry run, evidence only", []evidence.StepRecord{{Phase: "acquire", Status: "ok"}}, evidence.Outcome{DryRun: true}, evidence.CaseWouldAcquire},
		{"dry run, a check refused", []evidence.StepRecord{permitted, notHeld}, evidence.Outcome{DryRun: true}, evidence.CaseWouldFail},
	} {
		if got := evidence.CaseStatus(tc.steps, tc.o); got != tc.want {
			t.Errorf("%s: CaseStatus = %s, want %s", tc.name, got, tc.want)
		}
	}
}
