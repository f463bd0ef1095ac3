package custody_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
)

// tamperer plays someone with write access to the evidence bucket who
// rewrites a case behind the toolkit's back: plain PUTs (no If-None-Match,
// which the forensics stack's bucket policy would refuse on AWS; the fake
// has no bucket policy, so the forgery lands and verify must see it) and
// version deletes (which Object Lock would refuse: the bucket here keeps
// versions without a lock, as a bucket whose retention ended does).
type tamperer struct {
	t      *testing.T
	c      *fakeaws.Cloud
	bucket string
	caseID string
}

func (tp tamperer) key(p string) string { return evidence.Prefix + tp.caseID + "/" + p }

func (tp tamperer) get(p string) []byte {
	tp.t.Helper()
	objs := tp.c.Objects(tp.bucket)
	o, ok := objs[tp.key(p)]
	if !ok {
		tp.t.Fatalf("no object %s", tp.key(p))
	}
	return o.Body
}

func (tp tamperer) put(p string, body []byte) string {
	tp.t.Helper()
	out, err := tp.c.S3().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(tp.bucket), Key: aws.String(tp.key(p)), Body: bytes.NewReader(body)})
	if err != nil {
		tp.t.Fatalf("put %s: %v", p, err)
	}
	return aws.ToString(out.VersionId)
}

func (tp tamperer) deleteNewestVersion(p string) {
	tp.t.Helper()
	versions := tp.c.ObjectVersions(tp.bucket, tp.key(p))
	if len(versions) == 0 {
		tp.t.Fatalf("no versions of %s", p)
	}
	if _, err := tp.c.S3().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(tp.bucket),
		Key: aws.String(tp.key(p)), VersionId: aws.String(versions[len(versions)-1].VersionID)}); err != nil {
		tp.t.Fatalf("delete version of %s: %v", p, err)
	}
}

// reseal rewrites the record of run 1 consistently: manifest.json, its
// history copy and its seal all say what m says.
func (tp tamperer) reseal(m *evidence.Manifest) {
	tp.t.Helper()
	body, err := evidence.EncodeManifest(m)
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.put(evidence.HistoryName(m.LastRun()), body)
	tp.put(evidence.SealName(m.LastRun()), []byte(evidence.SHA256(body)+"\n"))
	tp.put(evidence.ManifestName, body)
}

func checksOf(v *custody.Verification, kind string) []custody.Check {
	var out []custody.Check
	for _, c := range v.Checks {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// Each forgery leaves a record that is consistent with itself (every hash
// matches its seal); verify must still fail it, from what else the bucket
// holds. On the code before these checks, each of these verified intact.
func TestVerifyFailsForgeriesInS3(t *testing.T) {
	for _, tc := range []struct {
		name   string
		runs   int
		forge  func(tp tamperer, instanceID string)
		kind   string // the check that must fail
		detail string
	}{
		{name: "rollback: manifest.json put back to run 1", runs: 2, kind: "revision", detail: "history holds run 2",
			forge: func(tp tamperer, _ string) {
				tp.put(evidence.ManifestName, tp.get(evidence.HistoryName(1)))
			}},
		{name: "rollback: newest manifest.json version deleted", runs: 2, kind: "revision", detail: "history holds run 2",
			forge: func(tp tamperer, _ string) {
				tp.deleteNewestVersion(evidence.ManifestName)
			}},
		{name: "artifact overwritten with a matching record", runs: 1, kind: "versions", detail: "written 2 times",
			forge: func(tp tamperer, instanceID string) {
				p := instanceID + "/console-output.txt"
				forged := []byte("nothing happened here\n")
				version := tp.put(p, forged)
				m, err := evidence.DecodeManifest(tp.get(evidence.ManifestName))
				if err != nil {
					tp.t.Fatal(err)
				}
				for i := range m.Artifacts {
					if m.Artifacts[i].Path == p {
						m.Artifacts[i].SHA256, m.Artifacts[i].Size, m.Artifacts[i].VersionID = evidence.SHA256(forged), int64(len(forged)), version
					}
				}
				tp.reseal(m)
			}},
		{name: "object added beside the record", runs: 1, kind: "unrecorded", detail: "not in the record",
			forge: func(tp tamperer, instanceID string) {
				tp.put(instanceID+"/planted.bin", []byte("planted"))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, s := fakeaws.NewSuspect()
			c.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
			store := &evidence.Bucket{API: c.S3(), Name: "evidence"}
			for range tc.runs {
				casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID, CaseIDGiven: true})
			}
			c.CompleteSnapshots()
			cu := &custody.Custodian{Store: store, Snapshots: c.EC2()}
			if v, err := cu.Verify(ctx, casetest.CaseID); err != nil || v.Failed() {
				t.Fatalf("before the forgery: %v %+v", err, v)
			}

			tc.forge(tamperer{t: t, c: c, bucket: "evidence", caseID: casetest.CaseID}, s.InstanceID)

			v, err := cu.Verify(ctx, casetest.CaseID)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Failed() {
				t.Fatalf("the forgery verified intact: %+v", v.Checks)
			}
			found := false
			for _, ch := range checksOf(v, tc.kind) {
				found = found || (ch.Status == custody.CheckMismatch && strings.Contains(ch.Detail, tc.detail))
			}
			if !found {
				t.Errorf("no %s check failed with %q: %+v", tc.kind, tc.detail, v.Checks)
			}
		})
	}
}

// A record reads the artifact version it names: an artifact written over
// (the record untouched) is judged by the version the record holds, and the
// extra version is reported.
func TestVerifyReadsTheRecordedVersion(t *testing.T) {
	ctx := context.Background()
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
	store := &evidence.Bucket{API: c.S3(), Name: "evidence"}
	casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID})
	tp := tamperer{t: t, c: c, bucket: "evidence", caseID: casetest.CaseID}
	p := s.InstanceID + "/metadata.json"
	tp.put(p, []byte(`{"forged":true}`))

	v, err := (&custody.Custodian{Store: store}).Verify(ctx, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	if got := statusOf(v, "artifact", p); got != custody.CheckOK {
		t.Errorf("artifact check of the recorded version: %s, want ok: %+v", got, v.Checks)
	}
	if got := statusOf(v, "versions", p); got != custody.CheckMismatch || !v.Failed() {
		t.Errorf("versions check %s, failed %t: %+v", got, v.Failed(), v.Checks)
	}
}

// What legitimately lives beside the record: the custody records of a hold,
// and the versions of manifest.json that runs wrote. A two-run case in an
// Object Lock bucket, held, verifies intact.
func TestVerifyAcceptsCustodyRecordsAndManifestVersions(t *testing.T) {
	ctx := context.Background()
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{ObjectLockDefaultRetention: &fakeaws.Retention{Mode: s3types.ObjectLockRetentionModeCompliance, Days: 1}})
	store := &evidence.Bucket{API: c.S3(), Name: "evidence"}
	casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID, CaseIDGiven: true})
	casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID, CaseIDGiven: true})
	c.CompleteSnapshots()
	if _, err := (&custody.Custodian{Store: store, Caller: c.STS()}).Hold(ctx, casetest.CaseID, true); err != nil {
		t.Fatal(err)
	}
	v, err := (&custody.Custodian{Store: store, Snapshots: c.EC2()}).Verify(ctx, casetest.CaseID)
	if err != nil || v.Failed() {
		t.Fatalf("verify: %v %+v", err, v)
	}
	if n := len(c.ObjectVersions("evidence", evidence.Prefix+casetest.CaseID+"/"+evidence.ManifestName)); n != 2 {
		t.Errorf("manifest.json has %d versions, want 2 (one per run)", n)
	}
}
