package fakeaws

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/responder-ir/responder/responder/cloud"
)

const otherAccount = "444455556666"

// snapshotOf takes one completed snapshot of a new instance built from spec.
func snapshotOf(t *testing.T, c *Cloud, spec InstanceSpec) string {
	t.Helper()
	id := c.AddInstance(spec)
	out, err := c.EC2().CreateSnapshots(context.Background(), &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: &id}})
	if err != nil {
		t.Fatal(err)
	}
	c.CompleteSnapshots()
	return aws.ToString(out.Snapshots[0].SnapshotId)
}

func share(c *Cloud, id string, accounts ...string) error {
	_, err := c.EC2().ModifySnapshotAttribute(context.Background(), &ec2.ModifySnapshotAttributeInput{
		SnapshotId: aws.String(id), Attribute: types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: types.OperationTypeAdd, UserIds: accounts})
	return err
}

func TestModifySnapshotAttribute(t *testing.T) {
	c := New()
	cmk := c.AddKMSKey("alias/share", otherAccount)
	plain := snapshotOf(t, c, InstanceSpec{})
	withCMK := snapshotOf(t, c, InstanceSpec{Encrypted: true, KmsKeyID: cmk})
	withEBSKey := snapshotOf(t, c, InstanceSpec{Encrypted: true})
	add := func(id string, accounts ...string) ec2.ModifySnapshotAttributeInput {
		return ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(id), Attribute: types.SnapshotAttributeNameCreateVolumePermission,
			OperationType: types.OperationTypeAdd, UserIds: accounts}
	}
	for _, tt := range []struct {
		name string
		in   ec2.ModifySnapshotAttributeInput
		snap string
		want []string
		code string
	}{
		{name: "operation type form", in: add(plain, otherAccount), snap: plain, want: []string{otherAccount}},
		{name: "twice is once", in: add(plain, otherAccount), snap: plain, want: []string{otherAccount}},
		{name: "CreateVolumePermission form", snap: plain, want: []string{otherAccount, "555566667777"}, in: ec2.ModifySnapshotAttributeInput{
			SnapshotId: aws.String(plain), CreateVolumePermission: &types.CreateVolumePermissionModifications{
				Add: []types.CreateVolumePermission{{UserId: aws.String("555566667777")}}}}},
		{name: "remove", snap: plain, want: []string{otherAccount}, in: ec2.ModifySnapshotAttributeInput{
			SnapshotId: aws.String(plain), Attribute: types.SnapshotAttributeNameCreateVolumePermission,
			OperationType: types.OperationTypeRemove, UserIds: []string{"555566667777"}}},
		{name: "customer managed key", in: add(withCMK, otherAccount), snap: withCMK, want: []string{otherAccount}},
		{name: "aws/ebs key", in: add(withEBSKey, otherAccount), snap: withEBSKey, code: "OperationNotPermitted"},
		{name: "add and remove", snap: plain, want: []string{otherAccount}, code: "InvalidParameterCombination", in: ec2.ModifySnapshotAttributeInput{
			SnapshotId: aws.String(plain), OperationType: types.OperationTypeAdd, UserIds: []string{"555566667777"},
			CreateVolumePermission: &types.CreateVolumePermissionModifications{Remove: []types.CreateVolumePermission{{UserId: aws.String(otherAccount)}}}}},
		{name: "no account", in: add(plain), snap: plain, want: []string{otherAccount}, code: "MissingParameter"},
		{name: "bad account", in: add(plain, "12"), snap: plain, want: []string{otherAccount}, code: "InvalidParameterValue"},
		{name: "unknown snapshot", in: add("snap-0123456789abcdef0", otherAccount), code: "InvalidSnapshot.NotFound"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.EC2().ModifySnapshotAttribute(context.Background(), &tt.in)
			wantCode(t, err, tt.code)
			if tt.snap != "" && !slices.Equal(c.SnapshotSharedWith(tt.snap), tt.want) {
				t.Errorf("shared with %v, want %v", c.SnapshotSharedWith(tt.snap), tt.want)
			}
		})
	}
}

func TestCopySnapshotAcrossAccounts(t *testing.T) {
	src, dst := New(), New(WithAccount(otherAccount))
	Link(src, dst)
	usable := src.AddKMSKey("alias/share", otherAccount)
	private := src.AddKMSKey("alias/app")
	evidenceKey := dst.AddKMSKey("alias/evidence")
	plain := snapshotOf(t, src, InstanceSpec{})
	withUsable := snapshotOf(t, src, InstanceSpec{Encrypted: true, KmsKeyID: usable})
	withPrivate := snapshotOf(t, src, InstanceSpec{Encrypted: true, KmsKeyID: private})
	notShared := snapshotOf(t, src, InstanceSpec{})
	for _, id := range []string{plain, withUsable, withPrivate} {
		if err := share(src, id, otherAccount); err != nil {
			t.Fatal(err)
		}
	}
	pending := snapshotOf(t, src, InstanceSpec{})
	src.mu.Lock()
	src.st.Snapshots[pending].Completed = false
	src.mu.Unlock()
	if err := share(src, pending, otherAccount); err != nil {
		t.Fatal(err)
	}

	copyIn := func(id string, encrypted bool, key string) ec2.CopySnapshotInput {
		in := ec2.CopySnapshotInput{SourceRegion: aws.String(src.Region), SourceSnapshotId: aws.String(id), Encrypted: aws.Bool(encrypted),
			TagSpecifications: snapshotTags("case", "IR-1")}
		if key != "" {
			in.KmsKeyId = aws.String(key)
		}
		return in
	}
	for _, tt := range []struct {
		name      string
		in        ec2.CopySnapshotInput
		code      string
		encrypted bool
		key       string
		state     types.SnapshotState
	}{
		{name: "unencrypted, encrypted on copy", in: copyIn(plain, true, evidenceKey), encrypted: true, key: evidenceKey, state: types.SnapshotStatePending},
		{name: "unencrypted, default key", in: copyIn(plain, true, ""), encrypted: true, key: dst.EBSDefaultKey(), state: types.SnapshotStatePending},
		{name: "unencrypted stays unencrypted", in: copyIn(plain, false, ""), state: types.SnapshotStatePending},
		{name: "usable key", in: copyIn(withUsable, true, evidenceKey), encrypted: true, key: evidenceKey, state: types.SnapshotStatePending},
		{name: "source key not usable", in: copyIn(withPrivate, true, evidenceKey), encrypted: true, key: evidenceKey, state: types.SnapshotStateError},
		{name: "unknown destination key", in: copyIn(plain, true, "alias/none"), encrypted: true, key: "alias/none", state: types.SnapshotStateError},
		{name: "not shared", in: copyIn(notShared, true, evidenceKey), code: "InvalidSnapshot.NotFound"},
		{name: "pending source", in: copyIn(pending, true, evidenceKey), code: "IncorrectState"},
		{name: "key without Encrypted", in: copyIn(plain, false, evidenceKey), code: "InvalidParameterDependency"},
		{name: "no region", in: ec2.CopySnapshotInput{SourceSnapshotId: aws.String(plain)}, code: "MissingParameter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := dst.EC2().CopySnapshot(context.Background(), &tt.in)
			wantCode(t, err, tt.code)
			if err != nil {
				return
			}
			var got types.Snapshot
			for _, s := range dst.Snapshots() {
				if aws.ToString(s.SnapshotId) == aws.ToString(out.SnapshotId) {
					got = s
				}
			}
			if aws.ToBool(got.Encrypted) != tt.encrypted || aws.ToString(got.KmsKeyId) != tt.key || got.State != tt.state ||
				aws.ToString(got.VolumeId) != "vol-ffffffff" || aws.ToString(got.OwnerId) != otherAccount || !hasTag(got.Tags, "case", "IR-1") {
				t.Errorf("copy %+v", got)
			}
			if from := dst.CopiedFrom(aws.ToString(out.SnapshotId)); from != src.Account+"/"+aws.ToString(tt.in.SourceSnapshotId) {
				t.Errorf("copied from %s", from)
			}
		})
	}
}

func TestCopySnapshotWithinTheAccount(t *testing.T) {
	c := New()
	cmk := c.AddKMSKey("alias/share")
	ebs := snapshotOf(t, c, InstanceSpec{Encrypted: true})
	for _, tt := range []struct {
		name string
		in   ec2.CopySnapshotInput
		key  string
	}{
		{"keeps the source key", ec2.CopySnapshotInput{SourceRegion: aws.String(c.Region), SourceSnapshotId: aws.String(ebs)}, c.EBSDefaultKey()},
		{"re-encrypts under a CMK", ec2.CopySnapshotInput{SourceRegion: aws.String(c.Region), SourceSnapshotId: aws.String(ebs),
			Encrypted: aws.Bool(true), KmsKeyId: aws.String("alias/share")}, cmk},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.EC2().CopySnapshot(context.Background(), &tt.in)
			wantCode(t, err, "")
			d, err := c.EC2().DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(out.SnapshotId)}})
			wantCode(t, err, "")
			if got := d.Snapshots[0]; aws.ToString(got.KmsKeyId) != tt.key || !aws.ToBool(got.Encrypted) {
				t.Errorf("copy %+v, want key %s", got, tt.key)
			}
		})
	}
}

func TestCopySnapshotConcurrentLimit(t *testing.T) {
	c := New()
	c.ConcurrentCopyLimit = 2
	snap := snapshotOf(t, c, InstanceSpec{})
	in := &ec2.CopySnapshotInput{SourceRegion: aws.String(c.Region), SourceSnapshotId: aws.String(snap)}
	for i, want := range []string{"", "", "ResourceLimitExceeded"} {
		_, err := c.EC2().CopySnapshot(context.Background(), in)
		if code := cloud.ErrorCode(err); code != want {
			t.Fatalf("copy %d: %q, want %q", i, code, want)
		}
	}
	c.CompleteSnapshots()
	_, err := c.EC2().CopySnapshot(context.Background(), in)
	wantCode(t, err, "")
}

func TestDescribeKey(t *testing.T) {
	c := New()
	cmk := c.AddKMSKey("alias/share")
	for _, tt := range []struct {
		ref     string
		manager kmstypes.KeyManagerType
		arn     string
		code    string
	}{
		{"alias/aws/ebs", kmstypes.KeyManagerTypeAws, c.EBSDefaultKey(), ""},
		{c.EBSDefaultKey(), kmstypes.KeyManagerTypeAws, c.EBSDefaultKey(), ""},
		{cmk, kmstypes.KeyManagerTypeCustomer, cmk, ""},
		{"alias/share", kmstypes.KeyManagerTypeCustomer, cmk, ""},
		{"alias/none", "", "", "NotFoundException"},
		{"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000", "", "", "NotFoundException"},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			out, err := c.KMS().DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(tt.ref)})
			wantCode(t, err, tt.code)
			if err == nil && (out.KeyMetadata.KeyManager != tt.manager || aws.ToString(out.KeyMetadata.Arn) != tt.arn) {
				t.Errorf("key %+v", out.KeyMetadata)
			}
		})
	}
}
