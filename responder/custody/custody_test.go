package custody_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
)

func statusOf(v *custody.Verification, kind, subjectPrefix string) string {
	for _, c := range v.Checks {
		if c.Kind == kind && strings.HasPrefix(c.Subject, subjectPrefix) {
			return c.Status
		}
	}
	return "absent"
}

func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tamper    func(t *testing.T, dir, instanceID string)
		kind      string
		subject   string
		want      string
		wantFails bool
	}{
		{name: "intact", kind: "manifest", subject: "manifest.json", want: custody.CheckOK},
		{name: "changed byte", kind: "artifact", subject: "console-output.txt", want: custody.CheckMismatch, wantFails: true,
			tamper: func(t *testing.T, dir, id string) {
				flipByte(t, filepath.Join(dir, casetest.CaseID, id, "console-output.txt"))
			}},
		{name: "missing artifact", kind: "artifact", subject: "metadata.json", want: custody.CheckMissing, wantFails: true,
			tamper: func(t *testing.T, dir, id string) {
				if err := os.Remove(filepath.Join(dir, casetest.CaseID, id, "metadata.json")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "edited manifest", kind: "manifest", subject: "manifest.json", want: custody.CheckMismatch, wantFails: true,
			tamper: func(t *testing.T, dir, id string) {
				p := filepath.Join(dir, casetest.CaseID, "manifest.json")
				b, _ := os.ReadFile(p)
				_ = os.Chmod(p, 0o640)
				if err := os.WriteFile(p, []byte(strings.Replace(string(b), `"status": "contained"`, `"status": "contained" `, 1)), 0o640); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "edited history", kind: "seal", subject: "history/manifest-run-001.json", want: custody.CheckMismatch, wantFails: true,
			tamper: func(t *testing.T, dir, id string) {
				flipByte(t, filepath.Join(dir, casetest.CaseID, "history", "manifest-run-001.json"))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := fakeaws.NewSuspect()
			dir := t.TempDir()
			store := &evidence.Folder{Root: dir}
			casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID})
			c.CompleteSnapshots()
			if tc.tamper != nil {
				tc.tamper(t, dir, s.InstanceID)
			}
			v, err := (&custody.Custodian{Store: store, Snapshots: c.EC2()}).Verify(context.Background(), casetest.CaseID)
			if err != nil {
				t.Fatal(err)
			}
			if got := statusOf(v, tc.kind, tc.subject) + statusOf(v, tc.kind, s.InstanceID+"/"+tc.subject); !strings.Contains(got, tc.want) {
				t.Errorf("%s %s: %s, want %s (%+v)", tc.kind, tc.subject, got, tc.want, v.Checks)
			}
			if v.Failed() != tc.wantFails {
				t.Errorf("Failed() = %t, want %t: %+v", v.Failed(), tc.wantFails, v.Checks)
			}
		})
	}
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	_ = os.Chmod(p, 0o640)
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestVerifySnapshots(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	store := &evidence.Folder{Root: t.TempDir()}
	casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID})

	v, _ := (&custody.Custodian{Store: store, Snapshots: c.EC2()}).Verify(context.Background(), casetest.CaseID)
	if !v.Pending() || v.Failed() {
		t.Fatalf("fresh snapshots: pending %t failed %t", v.Pending(), v.Failed())
	}
	c.CompleteSnapshots()
	v, _ = (&custody.Custodian{Store: store, Snapshots: c.EC2()}).Verify(context.Background(), casetest.CaseID)
	if v.Pending() || v.Failed() {
		t.Fatalf("completed snapshots: %+v", v.Checks)
	}
	// Against an account where the snapshots are gone.
	v, _ = (&custody.Custodian{Store: store, Snapshots: fakeaws.New().EC2()}).Verify(context.Background(), casetest.CaseID)
	if statusOf(v, "snapshot", "snap-") != custody.CheckMissing || !v.Failed() {
		t.Fatalf("deleted snapshots: %+v", v.Checks)
	}
}

func TestVerifyAndHoldInObjectLockBucket(t *testing.T) {
	ctx := context.Background()
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{ObjectLockDefaultRetention: &fakeaws.Retention{Mode: s3types.ObjectLockRetentionModeCompliance, Days: 365}})
	store := &evidence.Bucket{API: c.S3(), Name: "evidence"}
	casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID})
	c.CompleteSnapshots()

	v, err := (&custody.Custodian{Store: store, Snapshots: c.EC2()}).Verify(ctx, casetest.CaseID)
	if err != nil || v.Failed() {
		t.Fatalf("verify: %v %+v", err, v)
	}
	if got := statusOf(v, "object-lock", s.InstanceID+"/metadata.json"); got != custody.CheckOK {
		t.Fatalf("object lock check %s: %+v", got, v.Checks)
	}

	res, err := (&custody.Custodian{Store: store, Caller: c.STS()}).Hold(ctx, casetest.CaseID, true)
	if err != nil {
		t.Fatal(err)
	}
	rec := res.Record
	for key, o := range c.Objects("evidence") {
		if o.LegalHold != s3types.ObjectLockLegalHoldStatusOn {
			t.Errorf("%s not under legal hold", key)
		}
	}
	if _, ok := c.Objects("evidence")["cases/"+casetest.CaseID+"/"+rec.Record]; !ok || rec.Actor == "" || len(rec.Objects) < 5 {
		t.Fatalf("custody record %+v", rec)
	}
	if _, err := (&custody.Custodian{Store: store, Caller: c.STS()}).Hold(ctx, casetest.CaseID, false); err != nil {
		t.Fatal(err)
	}
	for key, o := range c.Objects("evidence") {
		if o.LegalHold == s3types.ObjectLockLegalHoldStatusOn && !strings.Contains(key, "legal-hold-on") {
			t.Errorf("%s still under legal hold", key)
		}
	}
}

func TestHoldNeedsABucket(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	store := &evidence.Folder{Root: t.TempDir()}
	casetest.Respond(t, c, store, responder.Request{InstanceID: s.InstanceID})
	if _, err := (&custody.Custodian{Store: store, Caller: c.STS()}).Hold(context.Background(), casetest.CaseID, true); !errors.Is(err, custody.ErrNoLegalHold) {
		t.Fatalf("err = %v", err)
	}
}

func TestListCasesNewestFirst(t *testing.T) {
	for name, mk := range map[string]func(c *fakeaws.Cloud) evidence.Store{
		"folder": func(*fakeaws.Cloud) evidence.Store { return &evidence.Folder{Root: t.TempDir()} },
		"bucket": func(c *fakeaws.Cloud) evidence.Store {
			c.AddBucket("ev", fakeaws.BucketOptions{})
			return &evidence.Bucket{API: c.S3(), Name: "ev"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := fakeaws.New()
			store := mk(c)
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, id := range []string{"case-old", "case-new"} {
				inst := c.AddInstance(fakeaws.InstanceSpec{})
				r := casetest.NewResponder(c, store)
				r.Now = func() time.Time { return clock }
				if _, err := r.Respond(context.Background(), responder.Request{InstanceID: inst, CaseID: id}); err != nil {
					t.Fatal(err)
				}
				clock = clock.Add(time.Hour)
			}
			got, err := (&custody.Custodian{Store: store}).Cases(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].CaseID != "case-new" || got[1].CaseID != "case-old" || got[0].InstanceID == "" || got[0].Status != evidence.CaseContained {
				t.Fatalf("cases %+v", got)
			}
		})
	}
}
