package fakeaws

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is the account's AWS KMS service; it implements cloud.KMS.
type KMS struct{ c *Cloud }

// kmsKey is a customer managed KMS key. The AWS managed key aws/ebs is not
// stored: every account has it (see ebsDefaultKeyLocked).
type kmsKey struct {
	ID    string
	Alias string // "alias/name", or ""
	// Users are the other accounts its key policy lets use it (to copy a
	// snapshot encrypted with it, for example).
	Users   []string
	Created time.Time
	// Spec and Usage are set for keys made by CreateKey; signing holds the
	// private key of a SIGN_VERIFY key.
	Spec    kmstypes.KeySpec
	Usage   kmstypes.KeyUsageType
	signing *signingKey
}

func (c *Cloud) keyArnLocked(id string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", c.Region, c.Account, id)
}

// AddKMSKey adds a customer managed key with an alias ("alias/name", may be
// empty) whose key policy lets the given other accounts use it, and returns
// its ARN.
func (c *Cloud) AddKMSKey(alias string, users ...string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if alias != "" && !strings.HasPrefix(alias, "alias/") {
		panic(fmt.Sprintf("fakeaws: alias %q must start with alias/", alias))
	}
	k := &kmsKey{ID: stableUUID("cmk", c.Account, alias, fmt.Sprint(len(c.st.Keys))), Alias: alias,
		Users: slices.Clone(users), Created: c.now()}
	c.st.Keys[k.ID] = k
	return c.keyArnLocked(k.ID)
}

// EBSDefaultKey returns the ARN of the account's AWS managed key aws/ebs.
func (c *Cloud) EBSDefaultKey() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ebsDefaultKeyLocked()
}

// resolvedKey is a key identifier resolved in an account.
type resolvedKey struct {
	arn        string
	awsManaged bool
	users      []string
}

// resolveKeyLocked resolves a key ID, key ARN, alias name or alias ARN of
// this account; ok is false when the account has no such key.
func (c *Cloud) resolveKeyLocked(ref string) (resolvedKey, bool) {
	ebs := c.ebsDefaultKeyLocked()
	ebsID := ebs[strings.LastIndex(ebs, "/")+1:]
	aliasPrefix := fmt.Sprintf("arn:aws:kms:%s:%s:", c.Region, c.Account)
	name := strings.TrimPrefix(ref, aliasPrefix)
	switch name {
	case "alias/aws/ebs", ebsID, "key/" + ebsID:
		return resolvedKey{arn: ebs, awsManaged: true}, true
	}
	for _, k := range c.st.Keys {
		if name == k.ID || name == "key/"+k.ID || (k.Alias != "" && name == k.Alias) {
			return resolvedKey{arn: c.keyArnLocked(k.ID), users: k.Users}, true
		}
	}
	return resolvedKey{}, false
}

// DescribeKey describes a key of the account by key ID, key ARN, alias name
// or alias ARN: KeyManager AWS for aws/ebs, CUSTOMER for keys added with
// AddKMSKey. An unknown key answers NotFoundException.
func (k *KMS) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	if in == nil {
		in = &kms.DescribeKeyInput{}
	}
	c := k.c
	out := &kms.DescribeKeyOutput{}
	err := c.call(ctx, serviceKMS, "DescribeKey", false, &out.ResultMetadata, func() (func(), error) {
		ref := aws.ToString(in.KeyId)
		if ref == "" {
			return nil, apiError("ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
		}
		key, ok := c.resolveKeyLocked(ref)
		if !ok {
			if strings.HasPrefix(ref, "alias/") {
				return nil, apiError("NotFoundException", "Alias %s is not found.", c.keyArnLocked(ref))
			}
			return nil, apiError("NotFoundException", "Key '%s' does not exist", ref)
		}
		return func() {
			id := key.arn[strings.LastIndex(key.arn, "/")+1:]
			if k := c.st.Keys[id]; k != nil && k.signing != nil {
				out.KeyMetadata = k.metadata(c)
				return
			}
			manager := kmstypes.KeyManagerTypeCustomer
			if key.awsManaged {
				manager = kmstypes.KeyManagerTypeAws
			}
			out.KeyMetadata = &kmstypes.KeyMetadata{
				KeyId:        aws.String(id),
				Arn:          aws.String(key.arn),
				AWSAccountId: aws.String(c.Account),
				KeyManager:   manager,
				KeyState:     kmstypes.KeyStateEnabled,
				Enabled:      true,
				KeyUsage:     kmstypes.KeyUsageTypeEncryptDecrypt,
				KeySpec:      kmstypes.KeySpecSymmetricDefault,
				Origin:       kmstypes.OriginTypeAwsKms,
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// signingKey is the private half of an asymmetric (ECC_NIST_P256,
// SIGN_VERIFY) key made by CreateKey; it never leaves the fake, as it never
// leaves KMS.
type signingKey struct {
	priv     *ecdsa.PrivateKey
	disabled bool
}

// CreateKey makes a customer managed key. It serves KeySpec ECC_NIST_P256
// with KeyUsage SIGN_VERIFY (a signing key: Sign and GetPublicKey use real
// ECDSA) and SYMMETRIC_DEFAULT with ENCRYPT_DECRYPT (as AddKMSKey); other
// specs answer ValidationException. Not in the registry: the toolkit
// never creates keys; tests and labs do.
func (k *KMS) CreateKey(ctx context.Context, in *kms.CreateKeyInput, _ ...func(*kms.Options)) (*kms.CreateKeyOutput, error) {
	if in == nil {
		in = &kms.CreateKeyInput{}
	}
	c := k.c
	out := &kms.CreateKeyOutput{}
	err := c.call(ctx, serviceKMS, "CreateKey", false, &out.ResultMetadata, func() (func(), error) {
		spec, usage := in.KeySpec, in.KeyUsage
		if spec == "" {
			spec = kmstypes.KeySpecSymmetricDefault
		}
		if usage == "" {
			usage = kmstypes.KeyUsageTypeEncryptDecrypt
		}
		var sk *signingKey
		switch {
		case spec == kmstypes.KeySpecEccNistP256 && usage == kmstypes.KeyUsageTypeSignVerify:
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return nil, apiError("KMSInternalException", "key generation: %v", err)
			}
			sk = &signingKey{priv: priv}
		case spec == kmstypes.KeySpecSymmetricDefault && usage == kmstypes.KeyUsageTypeEncryptDecrypt:
		default:
			return nil, apiError("ValidationException", "KeySpec %s with KeyUsage %s is not served by the fake", spec, usage)
		}
		return func() {
			key := &kmsKey{ID: stableUUID("cmk", c.Account, string(spec), fmt.Sprint(len(c.st.Keys))), Created: c.now(),
				Spec: spec, Usage: usage, signing: sk}
			c.st.Keys[key.ID] = key
			out.KeyMetadata = key.metadata(c)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DisableKMSKey disables a key (as DisableKey): Sign and GetPublicKey then
// answer DisabledException.
func (c *Cloud) DisableKMSKey(ref string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key, ok := c.signingKeyLocked(ref); ok {
		key.signing.disabled = true
	}
}

func (k *kmsKey) metadata(c *Cloud) *kmstypes.KeyMetadata {
	md := &kmstypes.KeyMetadata{
		KeyId: aws.String(k.ID), Arn: aws.String(c.keyArnLocked(k.ID)), AWSAccountId: aws.String(c.Account),
		KeyManager: kmstypes.KeyManagerTypeCustomer, KeyState: kmstypes.KeyStateEnabled, Enabled: true,
		KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt, KeySpec: kmstypes.KeySpecSymmetricDefault,
		Origin: kmstypes.OriginTypeAwsKms, CreationDate: aws.Time(k.Created),
	}
	if k.signing != nil {
		md.KeyUsage, md.KeySpec = k.Usage, k.Spec
		md.SigningAlgorithms = []kmstypes.SigningAlgorithmSpec{kmstypes.SigningAlgorithmSpecEcdsaSha256}
		if k.signing.disabled {
			md.KeyState, md.Enabled = kmstypes.KeyStateDisabled, false
		}
	}
	return md
}

// signingKeyLocked finds a key of the account by key ID, key ARN or alias.
func (c *Cloud) signingKeyLocked(ref string) (*kmsKey, bool) {
	key, ok := c.resolveKeyLocked(ref)
	if !ok || key.awsManaged {
		return nil, false
	}
	k := c.st.Keys[key.arn[strings.LastIndex(key.arn, "/")+1:]]
	return k, k != nil
}

// usableSigningKeyLocked resolves the key of a Sign or GetPublicKey call
// and answers the errors KMS answers: NotFoundException for an unknown key,
// DisabledException for a disabled one, InvalidKeyUsageException for a key
// that does not sign.
func (c *Cloud) usableSigningKeyLocked(ref string) (*kmsKey, error) {
	if ref == "" {
		return nil, apiError("ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	k, ok := c.signingKeyLocked(ref)
	if !ok {
		return nil, apiError("NotFoundException", "Key '%s' does not exist", ref)
	}
	arn := c.keyArnLocked(k.ID)
	if k.signing == nil {
		return nil, apiError("InvalidKeyUsageException", "%s key usage is ENCRYPT_DECRYPT which is not valid for signing.", arn)
	}
	if k.signing.disabled {
		return nil, apiError("DisabledException", "%s is disabled.", arn)
	}
	return k, nil
}

// GetPublicKey answers the DER SubjectPublicKeyInfo of a signing key.
func (k *KMS) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	if in == nil {
		in = &kms.GetPublicKeyInput{}
	}
	c := k.c
	out := &kms.GetPublicKeyOutput{}
	err := c.call(ctx, serviceKMS, "GetPublicKey", false, &out.ResultMetadata, func() (func(), error) {
		key, err := c.usableSigningKeyLocked(aws.ToString(in.KeyId))
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKIXPublicKey(&key.signing.priv.PublicKey)
		if err != nil {
			return nil, apiError("KMSInternalException", "%v", err)
		}
		return func() {
			out.KeyId = aws.String(c.keyArnLocked(key.ID))
			out.PublicKey = der
			out.KeySpec, out.KeyUsage = key.Spec, key.Usage
			out.SigningAlgorithms = []kmstypes.SigningAlgorithmSpec{kmstypes.SigningAlgorithmSpecEcdsaSha256}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Sign signs with a signing key: ECDSA_SHA_256 only, over a 32-byte digest
// (MessageType DIGEST) or over a message of at most 4096 bytes that it
// hashes (RAW, the default), as KMS does.
func (k *KMS) Sign(ctx context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	if in == nil {
		in = &kms.SignInput{}
	}
	c := k.c
	out := &kms.SignOutput{}
	err := c.call(ctx, serviceKMS, "Sign", false, &out.ResultMetadata, func() (func(), error) {
		key, err := c.usableSigningKeyLocked(aws.ToString(in.KeyId))
		if err != nil {
			return nil, err
		}
		digest, err := signingDigest(in)
		if err != nil {
			return nil, err
		}
		if in.SigningAlgorithm != kmstypes.SigningAlgorithmSpecEcdsaSha256 {
			return nil, apiError("InvalidKeyUsageException", "Algorithm %s is incompatible with key spec %s.", in.SigningAlgorithm, key.Spec)
		}
		sig, err := ecdsa.SignASN1(rand.Reader, key.signing.priv, digest)
		if err != nil {
			return nil, apiError("KMSInternalException", "%v", err)
		}
		return func() {
			out.KeyId = aws.String(c.keyArnLocked(key.ID))
			out.Signature = sig
			out.SigningAlgorithm = kmstypes.SigningAlgorithmSpecEcdsaSha256
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// signingDigest is the digest Sign signs: the message itself (DIGEST, which
// must be 32 bytes for ECDSA_SHA_256) or its SHA-256 (RAW).
func signingDigest(in *kms.SignInput) ([]byte, error) {
	switch in.MessageType {
	case kmstypes.MessageTypeDigest:
		if len(in.Message) != sha256.Size {
			return nil, apiError("ValidationException", "Digest is invalid length for algorithm %s.", in.SigningAlgorithm)
		}
		return in.Message, nil
	case "", kmstypes.MessageTypeRaw:
		if len(in.Message) == 0 || len(in.Message) > 4096 {
			return nil, apiError("ValidationException", "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length between 1 and 4096")
		}
		sum := sha256.Sum256(in.Message)
		return sum[:], nil
	default:
		return nil, apiError("ValidationException", "MessageType %s is not valid", in.MessageType)
	}
}
