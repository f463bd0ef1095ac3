package evidence

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// SigningAlgorithm is the one algorithm a case record is signed with:
// ECDSA on NIST P-256 over the SHA-256 of the history copy (KMS key spec
// ECC_NIST_P256, MessageType DIGEST).
const SigningAlgorithm = "ECDSA_SHA_256"

// SigningFolder holds the public keys the runs of a case were signed with,
// as DER (SubjectPublicKeyInfo) and PEM, named by their SHA-256.
const SigningFolder = "signing/"

// Signature says how the history copy of a run is signed. It is part of
// the copy it describes; the signature itself is SignatureName(run).
type Signature struct {
	// KeyID is the KMS key that signed (its ARN, as KMS names it).
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"`
	// PublicKey is the path of the key's public key (PEM) in the case
	// folder; PublicKeySHA256 the SHA-256 of its DER form.
	PublicKey       string `json:"public_key"`
	PublicKeySHA256 string `json:"public_key_sha256"`
}

// SignatureName is the path of the signature of run N's history copy: the
// DER ECDSA signature of its SHA-256, written once.
func SignatureName(run int) string {
	return HistoryName(run) + ".sig"
}

// PublicKeyName is the path of a public key, by the SHA-256 of its DER form
// and the extension ("der" or "pem").
func PublicKeyName(derSHA256, ext string) string {
	return SigningFolder + derSHA256 + "." + ext
}

// ErrNotSigned is returned by SaveSignedRun when the record was saved but
// could not be signed (runs[].signing_error says why).
var ErrNotSigned = errors.New("the case record was saved unsigned")

// Signer signs the SHA-256 digest of a run's record.
type Signer interface {
	// PublicKey returns the signing key's ID (ARN) and its public key as
	// DER SubjectPublicKeyInfo.
	PublicKey(ctx context.Context) (keyID string, der []byte, err error)
	// SignDigest signs a SHA-256 digest and returns a DER ECDSA signature.
	SignDigest(ctx context.Context, digest []byte) ([]byte, error)
}

// SignAPI is what KMSSigner needs of AWS KMS.
type SignAPI interface {
	Sign(context.Context, *kms.SignInput, ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(context.Context, *kms.GetPublicKeyInput, ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// KMSSigner signs with an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY):
// the private key never leaves KMS.
type KMSSigner struct {
	API   SignAPI
	KeyID string

	mu  sync.Mutex
	arn string
	der []byte
}

// keyIDPattern is what KMS takes as a key: a key ID, a multi-Region key
// ID, a key ARN, an alias name or an alias ARN.
var keyIDPattern = regexp.MustCompile(`^(` +
	`(mrk-)?[0-9a-fA-F-]{32,36}` +
	`|alias/[A-Za-z0-9/_-]{1,250}` +
	`|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/(mrk-)?[0-9a-fA-F-]{32,36}|alias/[A-Za-z0-9/_-]{1,250})` +
	`)$`)

// ValidateSigningKey checks a KMS key reference before any AWS call.
func ValidateSigningKey(ref string) error {
	if !keyIDPattern.MatchString(ref) {
		return fmt.Errorf("signing key %q: want a KMS key ID, key ARN, alias name (alias/…) or alias ARN", ref)
	}
	return nil
}

// PublicKey asks KMS once for the key's public key and checks that the key
// signs with ECDSA_SHA_256.
func (s *KMSSigner) PublicKey(ctx context.Context) (string, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.der != nil {
		return s.arn, s.der, nil
	}
	out, err := s.API.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(s.KeyID)})
	if err != nil {
		return "", nil, fmt.Errorf("signing key %s: get public key: %w", s.KeyID, err)
	}
	if out.KeyUsage != kmstypes.KeyUsageTypeSignVerify || !hasAlgorithm(out.SigningAlgorithms, kmstypes.SigningAlgorithmSpecEcdsaSha256) {
		return "", nil, fmt.Errorf("signing key %s: key usage %s, key spec %s: want an ECC_NIST_P256 SIGN_VERIFY key", s.KeyID, out.KeyUsage, out.KeySpec)
	}
	if _, err := ParsePublicKey(out.PublicKey); err != nil {
		return "", nil, fmt.Errorf("signing key %s: %w", s.KeyID, err)
	}
	s.arn, s.der = aws.ToString(out.KeyId), out.PublicKey
	return s.arn, s.der, nil
}

func hasAlgorithm(algs []kmstypes.SigningAlgorithmSpec, want kmstypes.SigningAlgorithmSpec) bool {
	for _, a := range algs {
		if a == want {
			return true
		}
	}
	return false
}

// SignDigest signs a SHA-256 digest with kms:Sign (MessageType DIGEST).
func (s *KMSSigner) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	out, err := s.API.Sign(ctx, &kms.SignInput{
		KeyId: aws.String(s.KeyID), Message: digest,
		MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256,
	})
	if err != nil {
		return nil, fmt.Errorf("signing key %s: sign: %w", s.KeyID, err)
	}
	return out.Signature, nil
}

// ParsePublicKey parses a DER SubjectPublicKeyInfo or a PEM "PUBLIC KEY"
// block holding an ECDSA P-256 key.
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("public key: PEM block %q, want PUBLIC KEY", block.Type)
		}
		b = block.Bytes
	}
	k, err := x509.ParsePKIXPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params().Name != "P-256" {
		return nil, errors.New("public key: not an ECDSA P-256 key")
	}
	return pub, nil
}

// PublicKeyDER returns the DER SubjectPublicKeyInfo of a public key given
// as DER or PEM.
func PublicKeyDER(b []byte) ([]byte, error) {
	pub, err := ParsePublicKey(b)
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// VerifyRecord checks a DER ECDSA signature of the SHA-256 of body.
func VerifyRecord(pub *ecdsa.PublicKey, body, sig []byte) bool {
	digest := sha256.Sum256(body)
	return ecdsa.VerifyASN1(pub, digest[:], sig)
}

// publicKeyPEM is the PEM form of a DER public key.
func publicKeyPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// SaveSignedRun stores the record a run left, as SaveRun does, and signs
// it with signer (nil: unsigned). The run's history copy names the key
// that signs it (runs[].signature); the public key is stored beside the
// record (signing/<sha256>.der and .pem, write-once), the record's digest
// is signed, then the record is saved and the signature of its history copy
// written (history/manifest-run-NNN.json.sig, write-once). When the key
// cannot be used, the record is saved unsigned, with the reason in
// runs[].signing_error, and an error wrapping ErrNotSigned is returned: a
// record is never lost for want of a signature.
func SaveSignedRun(ctx context.Context, store Store, m *Manifest, signer Signer) error {
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SaveTimeout)
	defer cancel()
	if err := linkRun(saveCtx, store, m); err != nil {
		return err
	}
	if signer == nil || len(m.Runs) == 0 {
		return store.SaveManifest(saveCtx, m)
	}
	run := &m.Runs[len(m.Runs)-1]
	sig, signErr := signRecord(saveCtx, store, m, run, signer)
	if signErr != nil {
		run.Signature, run.SigningError = nil, signErr.Error()
		if err := store.SaveManifest(saveCtx, m); err != nil {
			return errors.Join(signErr, err)
		}
		return fmt.Errorf("%w: %w", ErrNotSigned, signErr)
	}
	if err := store.SaveManifest(saveCtx, m); err != nil {
		return err
	}
	if err := putOnceOrSame(saveCtx, store, m.CaseID, SignatureName(run.Number), sig, "application/octet-stream"); err != nil {
		return fmt.Errorf("%w: store the signature of run %d: %w", ErrNotSigned, run.Number, err)
	}
	return nil
}

// signRecord names the signing key in the run and signs the digest of the
// record as SaveManifest will store it (the same encoding), then stores the
// key's public key: nothing is written unless KMS signed.
func signRecord(ctx context.Context, store Store, m *Manifest, run *Run, signer Signer) ([]byte, error) {
	keyID, der, err := signer.PublicKey(ctx)
	if err != nil {
		return nil, err
	}
	sum := SHA256(der)
	run.Signature = &Signature{KeyID: keyID, Algorithm: SigningAlgorithm,
		PublicKey: PublicKeyName(sum, "pem"), PublicKeySHA256: sum}
	body, err := EncodeManifest(m)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(body)
	sig, err := signer.SignDigest(ctx, digest[:])
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		ext  string
		body []byte
	}{{"der", der}, {"pem", publicKeyPEM(der)}} {
		if err := putOnceOrSame(ctx, store, m.CaseID, PublicKeyName(sum, f.ext), f.body, "application/octet-stream"); err != nil {
			return nil, fmt.Errorf("store public key: %w", err)
		}
	}
	return sig, nil
}

// writeSignature signs the run's history copy as it was stored, unless its
// signature is there already.
func writeSignature(ctx context.Context, store Store, m *Manifest, signer Signer) error {
	run := m.Runs[len(m.Runs)-1]
	if run.Signature == nil {
		return nil
	}
	name := SignatureName(run.Number)
	if _, err := store.Get(ctx, m.CaseID, name); err == nil {
		return nil
	}
	body, err := store.Get(ctx, m.CaseID, HistoryName(run.Number))
	if err != nil {
		return fmt.Errorf("sign run %d: read its history copy: %w", run.Number, err)
	}
	digest := sha256.Sum256(body)
	sig, err := signer.SignDigest(ctx, digest[:])
	if err != nil {
		return fmt.Errorf("sign run %d: %w", run.Number, err)
	}
	if err := putOnceOrSame(ctx, store, m.CaseID, name, sig, "application/octet-stream"); err != nil {
		return fmt.Errorf("store the signature of run %d: %w", run.Number, err)
	}
	return nil
}

// putOnceOrSame writes an object once; one already there with the same
// content is kept.
func putOnceOrSame(ctx context.Context, store Store, caseID, path string, body []byte, contentType string) error {
	_, err := store.Put(ctx, caseID, path, body, contentType)
	if !errors.Is(err, ErrExists) {
		return err
	}
	have, gerr := store.Get(ctx, caseID, path)
	if gerr != nil {
		return gerr
	}
	if string(have) != string(body) {
		return fmt.Errorf("%s: %w with other content", path, ErrExists)
	}
	return nil
}

// linkRun chains the run to the record before it: runs[].previous_sha256 is
// the SHA-256 of the history copy of the run before, as stored. A run
// already linked (a save completed again) is kept as it is.
func linkRun(ctx context.Context, store Store, m *Manifest) error {
	if len(m.Runs) < 2 || m.Runs[len(m.Runs)-1].PreviousSHA256 != "" {
		return nil
	}
	prev := m.Runs[len(m.Runs)-2].Number
	body, err := store.Get(ctx, m.CaseID, HistoryName(prev))
	if err != nil {
		return fmt.Errorf("chain run %d to run %d: read its history copy: %w", m.LastRun(), prev, err)
	}
	sum := sha256.Sum256(body)
	m.Runs[len(m.Runs)-1].PreviousSHA256 = hex.EncodeToString(sum[:])
	return nil
}
