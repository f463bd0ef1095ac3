package fakeaws_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// Sign and GetPublicKey use real ECDSA: a signature of a digest verifies
// with the public key KMS hands out; and they answer KMS's error codes.
func TestKMSSigning(t *testing.T) {
	ctx := context.Background()
	c := fakeaws.New()
	out, err := c.KMS().CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	key := out.KeyMetadata.Arn
	digest := sha256.Sum256([]byte("record"))
	sig, err := c.KMS().Sign(ctx, &kms.SignInput{KeyId: key, Message: digest[:], MessageType: kmstypes.MessageTypeDigest,
		SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.KMS().GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: key})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParsePKIXPublicKey(pub.PublicKey)
	if err != nil || !ecdsa.VerifyASN1(parsed.(*ecdsa.PublicKey), digest[:], sig.Signature) {
		t.Fatalf("the signature does not verify: %v", err)
	}
	if d, _ := c.KMS().DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key}); d.KeyMetadata.KeySpec != kmstypes.KeySpecEccNistP256 {
		t.Errorf("DescribeKey: %+v", d.KeyMetadata)
	}

	encrypt := c.AddKMSKey("alias/evidence")
	for _, tc := range []struct {
		name string
		in   kms.SignInput
		code string
	}{
		{"a short digest", kms.SignInput{KeyId: key, Message: digest[:31], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256}, "ValidationException"},
		{"an encryption key", kms.SignInput{KeyId: aws.String(encrypt), Message: digest[:], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256}, "InvalidKeyUsageException"},
		{"an unknown key", kms.SignInput{KeyId: aws.String("alias/none"), Message: digest[:], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256}, "NotFoundException"},
		{"another algorithm", kms.SignInput{KeyId: key, Message: digest[:], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecRsassaPssSha256}, "InvalidKeyUsageException"},
	} {
		if _, err := c.KMS().Sign(ctx, &tc.in); cloud.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	c.DisableKMSKey(aws.ToString(key))
	if _, err := c.KMS().GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: key}); cloud.ErrorCode(err) != "DisabledException" {
		t.Errorf("disabled key: %v", err)
	}
}
