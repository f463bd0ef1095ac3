package custody_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
)

// signingKey makes an ECC_NIST_P256 SIGN_VERIFY key in the fake KMS and
// returns its ARN.
func signingKey(t *testing.T, c *fakeaws.Cloud) string {
	t.Helper()
	out, err := c.KMS().CreateKey(context.Background(), &kms.CreateKeyInput{
		KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// signedCase responds twice to one instance with a signing key, into a
// local folder: a case of two signed, chained runs. It returns the folder,
// the key's ARN and its DER public key.
func signedCase(t *testing.T, c *fakeaws.Cloud, instanceID string) (string, string, []byte) {
	t.Helper()
	dir := t.TempDir()
	key := signingKey(t, c)
	signer := &evidence.KMSSigner{API: c.KMS(), KeyID: key}
	for range 2 {
		r := casetest.NewResponder(c, &evidence.Folder{Root: dir})
		r.Signer = signer
		res, err := r.Respond(context.Background(), responder.Request{InstanceID: instanceID, CaseID: casetest.CaseID})
		if err != nil || res.Err != nil {
			t.Fatalf("respond: %v %v", err, res.Err)
		}
	}
	_, der, err := signer.PublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dir, key, der
}

// verifyOffline verifies with no AWS client at all: nothing can be asked.
func verifyOffline(t *testing.T, dir string, pinned []byte) *custody.Verification {
	t.Helper()
	v, err := (&custody.Custodian{Store: &evidence.Folder{Root: dir}, PublicKey: pinned}).Verify(context.Background(), casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func caseFile(dir, p string) string {
	return filepath.Join(dir, casetest.CaseID, filepath.FromSlash(p))
}

func overwrite(t *testing.T, path string, body []byte) {
	t.Helper()
	_ = os.Chmod(path, 0o640)
	if err := os.WriteFile(path, body, 0o640); err != nil {
		t.Fatal(err)
	}
}

func flipByteAt(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x01
	overwrite(t, path, b)
}

func failedKinds(v *custody.Verification) []string {
	var out []string
	for _, c := range v.Checks {
		if c.Status == custody.CheckMismatch || c.Status == custody.CheckMissing || c.Status == custody.CheckError {
			out = append(out, c.Kind+" "+c.Subject+": "+c.Detail)
		}
	}
	return out
}

func TestSignedCaseVerifiesOffline(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir, key, der := signedCase(t, c, s.InstanceID)
	for _, pinned := range [][]byte{nil, der} {
		v := verifyOffline(t, dir, pinned)
		if v.Failed() || v.Unsigned() {
			t.Fatalf("pinned %v: failed %v unsigned %v: %v", pinned != nil, v.Failed(), v.Unsigned(), failedKinds(v))
		}
		if got := checksOf(v, "signature"); len(got) != 2 || got[0].Status != custody.CheckOK || got[1].Status != custody.CheckOK {
			t.Fatalf("signature checks %+v", got)
		}
		if got := checksOf(v, "chain"); len(got) != 2 || got[1].Status != custody.CheckOK {
			t.Fatalf("chain checks %+v", got)
		}
	}
	m, err := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	hist1, _ := os.ReadFile(caseFile(dir, evidence.HistoryName(1)))
	if m.Runs[1].PreviousSHA256 != evidence.SHA256(hist1) || m.Runs[1].Signature.KeyID != key {
		t.Fatalf("run 2 %+v", m.Runs[1])
	}
	// The key as KMS holds it matches (online), and a disabled key is an
	// error, not a pass.
	v, _ := (&custody.Custodian{Store: &evidence.Folder{Root: dir}, Keys: c.KMS()}).Verify(context.Background(), casetest.CaseID)
	if got := checksOf(v, "signing-key"); len(got) != 1 || got[0].Status != custody.CheckOK {
		t.Fatalf("online key check %+v", got)
	}
	c.DisableKMSKey(key)
	v, _ = (&custody.Custodian{Store: &evidence.Folder{Root: dir}, Keys: c.KMS()}).Verify(context.Background(), casetest.CaseID)
	if got := checksOf(v, "signing-key"); len(got) != 1 || got[0].Status != custody.CheckError || !strings.Contains(got[0].Detail, "DisabledException") {
		t.Fatalf("online key check of a disabled key %+v", got)
	}
}

func TestSignedCaseTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir, instanceID string)
		// pin verifies with the tool's public key pinned.
		pin  bool
		want string // a failed check of this kind
	}{
		{name: "artifact byte", want: "artifact", tamper: func(t *testing.T, dir, id string) {
			flipByteAt(t, caseFile(dir, id+"/console-output.txt"), 0)
		}},
		{name: "manifest byte", want: "manifest", tamper: func(t *testing.T, dir, _ string) {
			flipByteAt(t, caseFile(dir, evidence.ManifestName), 10)
		}},
		{name: "signature byte", want: "signature", tamper: func(t *testing.T, dir, _ string) {
			flipByteAt(t, caseFile(dir, evidence.SignatureName(1)), -3)
		}},
		{name: "history revision rewritten and resealed", want: "chain", tamper: func(t *testing.T, dir, _ string) {
			p := caseFile(dir, evidence.HistoryName(1))
			b, _ := os.ReadFile(p)
			b = []byte(strings.Replace(string(b), `"status": "contained"`, `"status": "released"`, 1))
			overwrite(t, p, b)
			overwrite(t, caseFile(dir, evidence.SealName(1)), []byte(evidence.SHA256(b)+"\n"))
		}},
		{name: "revisions reordered", want: "chain", tamper: func(t *testing.T, dir, _ string) {
			for _, name := range []func(int) string{evidence.HistoryName, evidence.SealName, evidence.SignatureName} {
				a, _ := os.ReadFile(caseFile(dir, name(1)))
				b, _ := os.ReadFile(caseFile(dir, name(2)))
				overwrite(t, caseFile(dir, name(1)), b)
				overwrite(t, caseFile(dir, name(2)), a)
			}
		}},
		{name: "revision missing", want: "seal", tamper: func(t *testing.T, dir, _ string) {
			for _, p := range []string{evidence.HistoryName(1), evidence.SealName(1), evidence.SignatureName(1)} {
				if err := os.Remove(caseFile(dir, p)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "stored public key swapped", want: "signature", tamper: func(t *testing.T, dir, _ string) {
			swapStoredKey(t, dir)
		}},
		{name: "case re-signed with another key, pinned", pin: true, want: "signature", tamper: func(t *testing.T, dir, id string) {
			resignWithOtherKey(t, dir, id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := fakeaws.NewSuspect()
			dir, _, der := signedCase(t, c, s.InstanceID)
			tc.tamper(t, dir, s.InstanceID)
			var pinned []byte
			if tc.pin {
				pinned = der
			}
			v := verifyOffline(t, dir, pinned)
			if !v.Failed() {
				t.Fatalf("tampering not detected: %+v", v.Checks)
			}
			found := false
			for _, f := range failedKinds(v) {
				found = found || strings.HasPrefix(f, tc.want+" ")
			}
			if !found {
				t.Fatalf("no failed %s check; failed: %v", tc.want, failedKinds(v))
			}
		})
	}
}

// swapStoredKey replaces the stored public key (both forms) with another
// key's.
func swapStoredKey(t *testing.T, dir string) {
	t.Helper()
	other := fakeaws.New()
	_, der, err := (&evidence.KMSSigner{API: other.KMS(), KeyID: signingKey(t, other)}).PublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, casetest.CaseID, "signing", "*.der"))
	if len(files) != 1 {
		t.Fatalf("stored keys %v", files)
	}
	overwrite(t, files[0], der)
}

// resignWithOtherKey forges the whole case as someone holding another key
// would: every run rewritten, resealed and re-signed, consistent with
// itself. Only a pinned public key can tell.
func resignWithOtherKey(t *testing.T, dir, instanceID string) {
	t.Helper()
	forger := fakeaws.New()
	forged := t.TempDir()
	c2, s2 := fakeaws.NewSuspect()
	_ = s2
	key := signingKey(t, forger)
	for range 2 {
		r := casetest.NewResponder(c2, &evidence.Folder{Root: forged})
		r.Signer = &evidence.KMSSigner{API: forger.KMS(), KeyID: key}
		if _, err := r.Respond(context.Background(), responder.Request{InstanceID: s2.InstanceID, CaseID: casetest.CaseID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, casetest.CaseID)); err != nil {
		_ = filepath.Walk(filepath.Join(dir, casetest.CaseID), func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o750) })
		if err := os.RemoveAll(filepath.Join(dir, casetest.CaseID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(forged, casetest.CaseID), filepath.Join(dir, casetest.CaseID)); err != nil {
		t.Fatal(err)
	}
	// Without a pinned key the forgery is consistent: that is what
	// --public-key is for.
	if v := verifyOffline(t, dir, nil); v.Failed() || v.Unsigned() {
		t.Fatalf("the forged case should verify with its own stored key: %v", failedKinds(v))
	}
}

func TestUnsignedCaseIsNeverVerifiedAsSigned(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	casetest.Respond(t, c, &evidence.Folder{Root: dir}, responder.Request{InstanceID: s.InstanceID})
	v := verifyOffline(t, dir, nil)
	if v.Failed() || !v.Unsigned() || statusOf(v, "signature", evidence.HistoryName(1)) != custody.CheckUnsigned {
		t.Fatalf("unsigned case: failed %v unsigned %v %v", v.Failed(), v.Unsigned(), checksOf(v, "signature"))
	}
	// Demanding a key makes an unsigned record a failure.
	other := fakeaws.New()
	_, der, _ := (&evidence.KMSSigner{API: other.KMS(), KeyID: signingKey(t, other)}).PublicKey(context.Background())
	if v := verifyOffline(t, dir, der); !v.Failed() {
		t.Fatal("an unsigned case passed with a pinned key")
	}
}

func TestSigningFailureSavesTheRecordUnsigned(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	key := signingKey(t, c)
	c.DisableKMSKey(key)
	r := casetest.NewResponder(c, &evidence.Folder{Root: dir})
	r.Signer = &evidence.KMSSigner{API: c.KMS(), KeyID: key}
	res, err := r.Respond(context.Background(), responder.Request{InstanceID: s.InstanceID, CaseID: casetest.CaseID})
	if err != nil {
		t.Fatal(err)
	}
	if res.SaveErr != nil || !errors.Is(res.Err, evidence.ErrNotSigned) && !strings.Contains(res.Err.Error(), "unsigned") {
		t.Fatalf("save error %v, run error %v", res.SaveErr, res.Err)
	}
	m, err := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, casetest.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Runs[0].Signature != nil || !strings.Contains(m.Runs[0].SigningError, "DisabledException") || m.Status != evidence.CaseContained {
		t.Fatalf("run %+v, status %s", m.Runs[0], m.Status)
	}
	if v := verifyOffline(t, dir, nil); v.Failed() || !v.Unsigned() {
		t.Fatalf("failed %v unsigned %v", v.Failed(), v.Unsigned())
	}
}

// A run whose local clock was off from AWS's Date is flagged, beyond the
// threshold only.
func TestVerifyFlagsClockSkew(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.ServerClockSkew = -30 * time.Second // AWS's clock behind: the local one ahead
	dir := t.TempDir()
	casetest.Respond(t, c, &evidence.Folder{Root: dir}, responder.Request{InstanceID: s.InstanceID})
	v := verifyOffline(t, dir, nil)
	clock := checksOf(v, "clock")
	if len(clock) != 1 || clock[0].Status != custody.CheckWarning || !strings.Contains(clock[0].Detail, "ahead of AWS's") || v.Failed() {
		t.Fatalf("clock checks %+v", clock)
	}
	v, _ = (&custody.Custodian{Store: &evidence.Folder{Root: dir}, MaxClockSkew: time.Minute}).Verify(context.Background(), casetest.CaseID)
	if clock := checksOf(v, "clock"); len(clock) != 1 || clock[0].Status != custody.CheckOK {
		t.Fatalf("within a minute: %+v", clock)
	}
	m, _ := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, casetest.CaseID)
	call := m.Steps[0].Calls[0]
	if call.ServerDate == nil || call.LocalTime == nil || call.LocalTime.Sub(*call.ServerDate) < 29*time.Second {
		t.Fatalf("call %+v", call)
	}
}

// verify reads the locks back: a lock the record holds that is gone is a
// mismatch; a snapshot never locked is a warning.
func TestVerifyChecksSnapshotLocks(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	res := casetest.Respond(t, c, &evidence.Folder{Root: dir}, responder.Request{InstanceID: s.InstanceID})
	c.CompleteSnapshots()
	cu := &custody.Custodian{Store: &evidence.Folder{Root: dir}, Snapshots: c.EC2()}
	v, _ := cu.Verify(context.Background(), casetest.CaseID)
	locks := checksOf(v, "snapshot-lock")
	if len(locks) != len(res.Manifest.Snapshots) || len(locks) == 0 || locks[0].Status != custody.CheckOK || v.Failed() {
		t.Fatalf("lock checks %+v", locks)
	}
	first := res.Manifest.Snapshots[0].SnapshotID
	if _, err := c.EC2().UnlockSnapshot(context.Background(), &ec2.UnlockSnapshotInput{SnapshotId: aws.String(first)}); err != nil {
		t.Fatal(err)
	}
	v, _ = cu.Verify(context.Background(), casetest.CaseID)
	if statusOf(v, "snapshot-lock", first) != custody.CheckMismatch || !v.Failed() {
		t.Fatalf("unlocked snapshot: %+v", checksOf(v, "snapshot-lock"))
	}

	// A case whose plan did not lock: a warning, not a failure.
	c2, s2 := fakeaws.NewSuspect()
	dir2 := t.TempDir()
	casetest.Respond(t, c2, &evidence.Folder{Root: dir2}, responder.Request{InstanceID: s2.InstanceID, Plan: []string{"snapshots"}})
	c2.CompleteSnapshots()
	v, _ = (&custody.Custodian{Store: &evidence.Folder{Root: dir2}, Snapshots: c2.EC2()}).Verify(context.Background(), casetest.CaseID)
	if got := checksOf(v, "snapshot-lock"); len(got) == 0 || got[0].Status != custody.CheckWarning || v.Failed() {
		t.Fatalf("never locked: %+v", got)
	}
}

// KMS refusing the Sign call itself (the key's public key was read) saves
// the record unsigned, with why, and nothing names a signature that is not
// there.
func TestSignRefusedSavesTheRecordUnsigned(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	key := signingKey(t, c)
	c.Fail("Sign", "KMSInternalException", 1)
	r := casetest.NewResponder(c, &evidence.Folder{Root: dir})
	r.Signer = &evidence.KMSSigner{API: c.KMS(), KeyID: key}
	res, err := r.Respond(context.Background(), responder.Request{InstanceID: s.InstanceID, CaseID: casetest.CaseID})
	if err != nil || res.SaveErr != nil || !errors.Is(res.Err, evidence.ErrNotSigned) {
		t.Fatalf("err %v, save %v, run %v", err, res.SaveErr, res.Err)
	}
	m, _ := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, casetest.CaseID)
	if m.Runs[0].Signature != nil || !strings.Contains(m.Runs[0].SigningError, "KMSInternalException") {
		t.Fatalf("run %+v", m.Runs[0])
	}
	if v := verifyOffline(t, dir, nil); v.Failed() || !v.Unsigned() {
		t.Fatalf("failed %v unsigned %v: %v", v.Failed(), v.Unsigned(), failedKinds(v))
	}
}
