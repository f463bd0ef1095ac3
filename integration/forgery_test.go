package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/responder-ir/responder/internal/lab"
)

// forger rewrites a case in the lab's evidence bucket (moto, versioned,
// Object Lock GOVERNANCE) as someone with the bucket's write permissions
// could where the forensics stack's bucket policy is missing: plain PUTs
// (moto evaluates no bucket policy) and version deletes that bypass
// GOVERNANCE retention.
type forger struct {
	t      *testing.T
	c      *lab.Clients
	bucket string
	caseID string
}

func (f forger) key(p string) string { return "cases/" + f.caseID + "/" + p }

func (f forger) get(p string) []byte {
	f.t.Helper()
	out, err := f.c.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(p))})
	must(f.t, err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	must(f.t, err)
	return b
}

func (f forger) put(p string, body []byte) string {
	f.t.Helper()
	// A bucket with Object Lock wants a checksum with every PUT.
	out, err := f.c.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &f.bucket, Key: aws.String(f.key(p)),
		Body: bytes.NewReader(body), ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256})
	must(f.t, err)
	return aws.ToString(out.VersionId)
}

func (f forger) deleteNewest(p string) {
	f.t.Helper()
	ctx := context.Background()
	out, err := f.c.S3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &f.bucket, Prefix: aws.String(f.key(p))})
	must(f.t, err)
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == f.key(p) && aws.ToBool(v.IsLatest) {
			_, err := f.c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: v.Key, VersionId: v.VersionId,
				BypassGovernanceRetention: aws.Bool(true)})
			must(f.t, err)
			return
		}
	}
	f.t.Fatalf("no current version of %s", p)
}

// TestVerifyFailsForgeriesOnMoto: the real binary records a case in a
// versioned bucket on moto, someone rewrites it so that the record stays
// consistent with itself, and `responder verify` must fail it (exit 1),
// with the check that sees the forgery. Before verify compared the record
// with the bucket's versions and listing, each of these verified intact.
func TestVerifyFailsForgeriesOnMoto(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	for _, tc := range []struct {
		name  string
		forge func(fg forger)
		kind  string
	}{
		{"manifest put back to run 1", func(fg forger) {
			fg.put("manifest.json", fg.get("history/manifest-run-001.json"))
		}, "revision"},
		{"newest manifest version deleted", func(fg forger) { fg.deleteNewest("manifest.json") }, "revision"},
		{"artifact overwritten with a matching record", func(fg forger) {
			p := l.InstanceID + "/metadata.json"
			forged := []byte(`{"nothing":"to see"}`)
			version := fg.put(p, forged)
			var m map[string]any
			must(t, json.Unmarshal(fg.get("manifest.json"), &m))
			for _, a := range m["artifacts"].([]any) {
				a := a.(map[string]any)
				if a["path"] == p {
					a["sha256"], a["size"], a["version_id"] = sha256Hex(forged), len(forged), version
				}
			}
			body, err := json.MarshalIndent(m, "", "  ")
			must(t, err)
			body = append(body, '\n')
			last := "history/manifest-run-002.json"
			fg.put(last, body)
			fg.put(last+".sha256", []byte(sha256Hex(body)+"\n"))
			fg.put("manifest.json", body)
		}, "versions"},
		{"object added beside the record", func(fg forger) { fg.put(l.InstanceID+"/planted.txt", []byte("planted")) }, "unrecorded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caseID := "case-forged-" + slug(tc.name)
			if len(caseID) > 60 {
				caseID = caseID[:60]
			}
			respond := []string{"respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-bucket", l.Bucket,
				"--steps", "metadata,console-output"}
			for run := 1; run <= 2; run++ {
				if res := f.run(respond...); res.Code != exitOK {
					t.Fatalf("respond (run %d): want exit %d:\n%s", run, exitOK, res)
				}
			}
			verify := []string{"verify", "--case-id", caseID, "--evidence-bucket", l.Bucket, "--no-snapshots", "--output", "json"}
			if res := f.run(verify...); res.Code != exitOK {
				t.Fatalf("verify before the forgery: want exit %d:\n%s", exitOK, res)
			}

			tc.forge(forger{t: t, c: f.aws, bucket: l.Bucket, caseID: caseID})

			res := f.run(verify...)
			var v struct {
				Checks []struct{ Kind, Subject, Status, Detail string } `json:"checks"`
			}
			if res.Code != exitContainFailed || json.Unmarshal([]byte(res.Stdout), &v) != nil {
				t.Fatalf("verify after the forgery: want exit %d:\n%s", exitContainFailed, res)
			}
			var failed []string
			for _, c := range v.Checks {
				if c.Status == "mismatch" {
					failed = append(failed, c.Kind+" "+c.Subject)
				}
			}
			if !strings.Contains(strings.Join(failed, "\n"), tc.kind+" ") {
				t.Errorf("no %s check failed; failed: %v", tc.kind, failed)
			}
		})
	}
}

// TestConcurrentRespondOnMoto runs the binary twice at once on the same
// case, through moto. Whichever order the two take, neither ends in a false
// "containment failed" or a lost record: one runs and the other is refused
// (exit 4), or, if the first had already ended, the second continues the
// case as run 2; every snapshot tagged with the case is in the record.
func TestConcurrentRespondOnMoto(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	caseID := "case-concurrent"
	args := []string{"respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-bucket", l.Bucket}
	codes := make([]int, 2)
	done := make(chan struct{})
	for i := range codes {
		go func() {
			defer func() { done <- struct{}{} }()
			codes[i] = f.run(args...).Code
		}()
	}
	<-done
	<-done
	slices.Sort(codes)
	var m struct {
		Runs []struct {
			Run int `json:"run"`
		} `json:"runs"`
		Snapshots []struct {
			ID string `json:"snapshot_id"`
		} `json:"snapshots"`
	}
	must(t, json.Unmarshal(bucketStore(f.aws, l.Bucket, caseID)(t, "manifest.json"), &m))
	switch {
	case slices.Equal(codes, []int{exitOK, exitCouldNotStart}) && len(m.Runs) == 1:
	case slices.Equal(codes, []int{exitOK, exitOK}) && len(m.Runs) == 2:
	default:
		t.Fatalf("exit codes %v with %d runs recorded: want one run and one refusal, or two runs one after the other", codes, len(m.Runs))
	}
	tagged := assertSnapshots(t, f.aws, l, caseID)
	var recorded []string
	for _, s := range m.Snapshots {
		recorded = append(recorded, s.ID)
	}
	slices.Sort(recorded)
	if !slices.Equal(recorded, tagged) {
		t.Errorf("snapshots recorded %v, tagged with the case %v", recorded, tagged)
	}
}
