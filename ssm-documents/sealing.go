package ssmdocuments

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strings"
)

// Sealed parameters.
//
// SendCommand's parameters stay readable to anyone in the account with
// ssm:ListCommands (and they are kept in the command history), so a
// presigned URL must never be one. A document's sealed parameters (the
// URLs) travel instead inside one parameter, Sealed, encrypted to a key that
// only the instance holds:
//
//  1. the engine runs the platform's sealing-key document
//     (Responder-LinuxSealingKey, Responder-WindowsSealingKey) with a random
//     SealingKeyId; the instance makes an RSA key pair (3072 bits) that never
//     leaves it (tmpfs on Linux, a non-exportable CNG key on Windows) and
//     prints the public key;
//  2. the engine gzips "<variable>=<value>" lines, one per sealed parameter
//     (the URLs share their credential and session token, so this more than
//     pays for the encryption's growth within SSM's 64 KB), encrypts them
//     with RSA-OAEP (SHA-256) in chunks of what one OAEP block holds, and
//     sends the collection document with SealingKeyId and
//     Sealed = "rs1.<chunk>.<chunk>..." (standard base64);
//  3. the instance decrypts them and deletes the private key at once: the
//     ciphertext in the command history opens nothing afterwards.
//
// Whoever reads the parameters sees the public key's output and ciphertext
// only. Whoever runs code on the instance as root could read the URLs while
// the command runs: that is the instance they are meant for.

// Sealing-key documents and their parameter.
const (
	LinuxSealingKey   = "Responder-LinuxSealingKey"
	WindowsSealingKey = "Responder-WindowsSealingKey"
	// SealingKeySchema is the schema of the sealing-key documents' stdout.
	SealingKeySchema = "responder.sealing-key/1"
	// ParamSealingKeyID and ParamSealed are the document parameters that
	// carry the sealed parameters: the key's ID and the ciphertext.
	ParamSealingKeyID = "SealingKeyId"
	ParamSealed       = "Sealed"
	// PatternSealingKeyID admits the 32 hex digits of NewSealingKeyID.
	PatternSealingKeyID = `^[a-f0-9]{32}$`
	// PatternSealed admits "rs1" and dot-separated base64 chunks.
	PatternSealed = `^rs1(\.[A-Za-z0-9+/]+={0,2})+$`
	// MinSealingKeyBits is the smallest RSA key the engine seals to.
	MinSealingKeyBits = 2048
	sealedVersion     = "rs1"
)

// SealingKey is the public half of a key an instance made for one command.
type SealingKey struct {
	ID     string
	Public *rsa.PublicKey
}

// NewSealingKeyID returns a random key ID (32 hex digits).
func NewSealingKeyID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("sealing key ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// SealingKeyDocument names the document that makes a sealing key on a
// platform ("Linux" or "Windows").
func SealingKeyDocument(platform string) (string, error) {
	switch platform {
	case "Linux":
		return LinuxSealingKey, nil
	case "Windows":
		return WindowsSealingKey, nil
	}
	return "", fmt.Errorf("no sealing-key document for platform %q", platform)
}

// sealingKeyReport is the sealing-key documents' stdout: the public key as
// DER SubjectPublicKeyInfo (Linux, openssl), or as modulus and exponent
// (Windows, .NET Framework, which cannot write SPKI), all base64.
type sealingKeyReport struct {
	Schema    string `json:"schema"`
	Status    string `json:"status"`
	Error     string `json:"error"`
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"`
	PublicKey string `json:"public_key"`
	Modulus   string `json:"modulus"`
	Exponent  string `json:"exponent"`
}

// ParseSealingKey reads the stdout of a sealing-key command, checks that it
// is the key asked for (wantID) and strong enough, and returns it.
func ParseSealingKey(stdout []byte, wantID string) (SealingKey, error) {
	var r sealingKeyReport
	line := bytes.TrimSpace(stdout)
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:] // the report is the last line
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return SealingKey{}, fmt.Errorf("sealing key: the instance's answer is not a report: %w", err)
	}
	switch {
	case r.Schema != SealingKeySchema:
		return SealingKey{}, fmt.Errorf("sealing key: schema %q, want %s", r.Schema, SealingKeySchema)
	case r.Status != StatusSucceeded:
		return SealingKey{}, fmt.Errorf("sealing key: the instance reports %s: %s", r.Status, r.Error)
	case r.KeyID != wantID:
		return SealingKey{}, fmt.Errorf("sealing key: the instance made key %q, not %s", r.KeyID, wantID)
	}
	pub, err := r.publicKey()
	if err != nil {
		return SealingKey{}, fmt.Errorf("sealing key: %w", err)
	}
	if pub.N.BitLen() < MinSealingKeyBits {
		return SealingKey{}, fmt.Errorf("sealing key: %d bits, want at least %d", pub.N.BitLen(), MinSealingKeyBits)
	}
	return SealingKey{ID: r.KeyID, Public: pub}, nil
}

func (r sealingKeyReport) publicKey() (*rsa.PublicKey, error) {
	if r.PublicKey != "" {
		der, err := base64.StdEncoding.DecodeString(r.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is a %T, not RSA", k)
		}
		return pub, nil
	}
	n, err1 := base64.StdEncoding.DecodeString(r.Modulus)
	e, err2 := base64.StdEncoding.DecodeString(r.Exponent)
	if err := errors.Join(err1, err2); err != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("public key: no SPKI, and no valid modulus and exponent (%v)", err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}

// seal gzips plaintext and encrypts it to the key in OAEP-sized chunks.
func seal(pub *rsa.PublicKey, text []byte) (string, error) {
	var zipped bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zipped, gzip.BestCompression)
	if _, err := zw.Write(text); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	plaintext := zipped.Bytes()
	chunk := pub.Size() - 2*sha256.Size - 2
	parts := []string{sealedVersion}
	for len(plaintext) > 0 {
		n := min(chunk, len(plaintext))
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, plaintext[:n], nil)
		if err != nil {
			return "", fmt.Errorf("seal: %w", err)
		}
		parts = append(parts, base64.StdEncoding.EncodeToString(ct))
		plaintext = plaintext[n:]
	}
	return strings.Join(parts, "."), nil
}

var sealedPattern = regexp.MustCompile(PatternSealed)

// Unseal decrypts a document's Sealed parameter with the instance's private
// key and returns the sealed parameters by name. It is what the instance
// does; the engine never holds the private key (the fake SSM Agent and the
// tests do).
func (d Document) Unseal(priv *rsa.PrivateKey, sealed string) (map[string]string, error) {
	if !sealedPattern.MatchString(sealed) {
		return nil, errors.New("unseal: not sealed parameters")
	}
	var plain []byte
	for _, c := range strings.Split(sealed, ".")[1:] {
		ct, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return nil, fmt.Errorf("unseal: %w", err)
		}
		p, err := rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
		if err != nil {
			return nil, fmt.Errorf("unseal: %w", err)
		}
		plain = append(plain, p...)
	}
	zr, err := gzip.NewReader(bytes.NewReader(plain))
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	byVar := map[string]Parameter{}
	for _, p := range d.Parameters {
		if p.Sealed {
			byVar[p.Var] = p
		}
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		name, value, _ := strings.Cut(line, "=")
		p, ok := byVar[name]
		if !ok {
			return nil, fmt.Errorf("unseal: %q is not a sealed parameter of %s", name, d.Name)
		}
		out[p.Name] = value
	}
	return out, nil
}

// sealedVars lists the variables of the document's sealed parameters, in
// order, for the scripts (which set no other variable from Sealed).
func (d Document) sealedVars() []string {
	var out []string
	for _, p := range d.Parameters {
		if p.Sealed {
			out = append(out, p.Var)
		}
	}
	return out
}

// HasSealed reports whether the document has sealed parameters (and so
// needs a sealing key).
func (d Document) HasSealed() bool { return len(d.sealedVars()) > 0 }
