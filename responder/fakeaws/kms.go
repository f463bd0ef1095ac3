package fakeaws

import (
	"context"
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
