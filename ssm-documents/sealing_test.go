package ssmdocuments

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testSealingKey is a key pair as an instance would make it, and its
// public half as the engine reads it.
func testSealingKey(t testing.TB) (*rsa.PrivateKey, SealingKey) {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewSealingKeyID()
	if err != nil {
		t.Fatal(err)
	}
	return priv, SealingKey{ID: id, Public: &priv.PublicKey}
}

// Both answers of the sealing-key documents are read: the SPKI of Linux and
// the modulus and exponent of Windows; a wrong key ID, a failure, a weak key
// and a non-RSA key are refused.
func TestParseSealingKey(t *testing.T) {
	priv, key := testSealingKey(t)
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakSPKI, _ := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	b64 := base64.StdEncoding.EncodeToString
	report := func(fields string) []byte {
		return []byte(`{"schema":"responder.sealing-key/1","status":"succeeded","key_id":"` + key.ID + `"` + fields + "}\n")
	}
	tests := []struct {
		name, wantErr string
		stdout        []byte
	}{
		{"linux", "", report(`,"public_key":"` + b64(spki) + `"`)},
		{"windows", "", report(fmt.Sprintf(`,"modulus":"%s","exponent":"%s"`, b64(priv.N.Bytes()), b64(big.NewInt(int64(priv.E)).Bytes())))},
		{"after other output", "", append([]byte("agent noise\n"), report(`,"public_key":"`+b64(spki)+`"`)...)},
		{"another key", "made key", []byte(`{"schema":"responder.sealing-key/1","status":"succeeded","key_id":"` + strings.Repeat("0", 32) + `","public_key":"` + b64(spki) + `"}`)},
		{"failed", "openssl not found", []byte(`{"schema":"responder.sealing-key/1","status":"failed","error":"openssl not found"}`)},
		{"weak", "1024 bits", report(`,"public_key":"` + b64(weakSPKI) + `"`)},
		{"no key", "no SPKI", report("")},
		{"not a report", "not a report", []byte("Step execution skipped due to unsatisfied preconditions")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSealingKey(tt.stdout, key.ID)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != key.ID || !got.Public.Equal(&priv.PublicKey) {
				t.Errorf("got key %s, want the instance's key %s", got.ID, key.ID)
			}
		})
	}
}

// The sealed parameters of every document go out encrypted, in chunks one
// OAEP block holds, and come back whole with the private key only; nothing
// else may be smuggled in, and no sealed value appears in clear in the
// parameters. With SSM's 64 KB for the document and its parameter values,
// long URLs (3 KB, a session token's worth) still fit.
func TestSealedParametersRoundTrip(t *testing.T) {
	priv, key := testSealingKey(t)
	other, _ := testSealingKey(t)
	long := "https://bucket.s3.eu-west-1.amazonaws.com/cases/c1/x?" + strings.Repeat("X-Amz-Security-Token=abc%2F", 110) + "&X-Amz-Signature=" + strings.Repeat("f", 64)
	for _, d := range allDocuments() {
		if !d.HasSealed() {
			continue
		}
		t.Run(d.Name, func(t *testing.T) {
			values := map[string]string{}
			for _, p := range d.Parameters {
				switch {
				case p.Sealed:
					values[p.Name] = long
				case p.Required():
					values[p.Name] = validSample(t, p)
				}
			}
			params, err := d.SendCommandParameters(values, &key)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(params)
			if strings.Contains(string(raw), "X-Amz-") || strings.Contains(string(raw), "https://") {
				t.Fatalf("a sealed value is in clear in the parameters: %s", raw)
			}
			content, _ := d.Content()
			if size := len(content) + len(raw); size > 64*1024 {
				t.Errorf("document and parameter values are %d bytes, over SSM's 64 KB", size)
			}
			got, err := d.Unseal(priv, params[ParamSealed][0])
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range d.Parameters {
				if p.Sealed && got[p.Name] != long {
					t.Errorf("%s did not come back whole", p.Name)
				}
			}
			if _, err := d.Unseal(other, params[ParamSealed][0]); err == nil {
				t.Error("another key opened the sealed parameters")
			}
			if _, err := d.SendCommandParameters(values, nil); err == nil || !strings.Contains(err.Error(), "no sealing key") {
				t.Errorf("without a key: err = %v", err)
			}
		})
	}
	// A line naming something other than a sealed parameter is refused.
	d, _ := Lookup(LinuxVolatileData)
	forged, err := seal(key.Public, []byte("PATH=/tmp/evil\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Unseal(priv, forged); err == nil {
		t.Error("a sealed line for PATH was accepted")
	}
}

// On Linux, the real scripts: the key lives in a private directory until
// the command that uses it opens its sealed parameters, then it is gone, so
// the same ciphertext opens nothing a second time; a line naming a variable
// that is no sealed parameter of the document is refused (nothing is
// uploaded), and so is a key that never was.
func TestLinuxSealedParametersOpenOnce(t *testing.T) {
	t.Parallel()
	requireTools(t, "curl", "openssl")
	r := newReceiver(t)
	parent := t.TempDir()
	env := append(r.env(), "RESPONDER_WORK_PARENT="+parent)
	doc, _ := Lookup(LinuxVolatileData)
	values := map[string]string{"CaseId": "case-9", "ArchiveUrl": r.objectURL("a.tar.gz"), "ResultUrl": r.objectURL("a.json"), "RecentDays": "1"}

	key := makeSealingKey(t, env)
	keyDir := filepath.Join(parent, "responder-key-"+key.ID)
	if fi, err := os.Stat(keyDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("key directory %s: %v (mode %v), want a private directory", keyDir, err, fi)
	}
	params, err := doc.SendCommandParameters(values, &key)
	if err != nil {
		t.Fatal(err)
	}
	first := runValues(t, doc, params, env)
	if rep, err := ParseVolatileReport(first.stdout); err != nil || first.exit != 0 || rep.Status != StatusSucceeded {
		t.Fatalf("first run: exit %d, %v\n%s\n%s", first.exit, err, first.stdout, first.stderr)
	}
	if _, err := os.Stat(keyDir); !os.IsNotExist(err) {
		t.Errorf("the key is still there after use: %v", err)
	}
	again := runValues(t, doc, params, env)
	wantFailure(t, "the same parameters again", again, "is not on this instance")

	forgedKey := makeSealingKey(t, env)
	forged, err := seal(forgedKey.Public, []byte("RESPONDER_ARCHIVE_URL="+r.objectURL("b.tar.gz")+"\nPATH=/tmp/evil\n"))
	if err != nil {
		t.Fatal(err)
	}
	params[ParamSealingKeyID], params[ParamSealed] = []string{forgedKey.ID}, []string{forged}
	wantFailure(t, "a forged name", runValues(t, doc, params, env), "an unknown name")
	if _, ok := r.object("b.tar.gz"); ok {
		t.Error("the archive was uploaded with forged sealed parameters")
	}
}

func wantFailure(t *testing.T, what string, res runResult, reason string) {
	t.Helper()
	rep, err := ParseVolatileReport(res.stdout)
	if err != nil || res.exit == 0 || rep.Status != "failed" || !strings.Contains(rep.Error, reason) {
		t.Errorf("%s: exit %d, report %+v (%v), want failed: %s", what, res.exit, rep, err, reason)
	}
}
