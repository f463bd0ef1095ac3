package fakeaws

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// DefaultConcurrentCopyLimit is the number of snapshot copies that may be in
// progress at once in an account's Region when ConcurrentCopyLimit is zero.
const DefaultConcurrentCopyLimit = 20

// volumeOfCopies is the volume ID AWS shows on a snapshot made by
// CopySnapshot: "an arbitrary volume ID that should not be used".
const volumeOfCopies = "vol-ffffffff"

// Link lets target's CopySnapshot read the snapshots that source shared with
// target's account (ModifySnapshotAttribute), as AWS lets one account copy
// what another shared with it. It is one-way: call Link(target, source) too
// for the other direction. Link both before the code under test runs.
func Link(source, target *Cloud) {
	if source == target {
		return
	}
	target.mu.Lock()
	defer target.mu.Unlock()
	target.sources = append(target.sources, source)
}

// SnapshotSharedWith returns the accounts in a snapshot's
// createVolumePermission (nil when the snapshot does not exist).
func (c *Cloud) SnapshotSharedWith(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.st.Snapshots[id]; ok {
		return slices.Clone(s.SharedWith)
	}
	return nil
}

// ModifySnapshotAttribute adds or removes accounts in a snapshot's
// createVolumePermission, in either form AWS accepts: Attribute
// createVolumePermission with OperationType and UserIds, or
// CreateVolumePermission.Add / .Remove. Like AWS it refuses to share a
// snapshot encrypted with the account's AWS managed key aws/ebs
// (OperationNotPermitted) and to add and remove in one call. Groups ("all",
// public snapshots) and product codes are not modelled.
func (e *EC2) ModifySnapshotAttribute(ctx context.Context, in *ec2.ModifySnapshotAttributeInput, _ ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error) {
	if in == nil {
		in = &ec2.ModifySnapshotAttributeInput{}
	}
	c := e.c
	out := &ec2.ModifySnapshotAttributeOutput{}
	err := c.call(ctx, serviceEC2, "ModifySnapshotAttribute", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		id := aws.ToString(in.SnapshotId)
		if id == "" {
			return nil, missingParameter("SnapshotId")
		}
		if err := kindSnapshot.check([]string{id}, c.hasSnapshot); err != nil {
			return nil, err
		}
		var add, remove []string
		if len(in.GroupNames) > 0 {
			return nil, notModelled("ModifySnapshotAttribute", "with GroupNames")
		}
		switch in.Attribute {
		case "", types.SnapshotAttributeNameCreateVolumePermission:
		case types.SnapshotAttributeNameProductCodes:
			return nil, notModelled("ModifySnapshotAttribute", "of productCodes")
		default:
			return nil, apiError("InvalidParameterValue", "Value (%s) for parameter attribute is invalid.", in.Attribute)
		}
		if p := in.CreateVolumePermission; p != nil {
			for _, perm := range append(slices.Clone(p.Add), p.Remove...) {
				if perm.Group != "" {
					return nil, notModelled("ModifySnapshotAttribute", "with groups")
				}
			}
			for _, perm := range p.Add {
				add = append(add, aws.ToString(perm.UserId))
			}
			for _, perm := range p.Remove {
				remove = append(remove, aws.ToString(perm.UserId))
			}
		}
		switch in.OperationType {
		case types.OperationTypeAdd:
			add = append(add, in.UserIds...)
		case types.OperationTypeRemove:
			remove = append(remove, in.UserIds...)
		case "":
			if len(in.UserIds) > 0 {
				return nil, missingParameter("OperationType")
			}
		default:
			return nil, apiError("InvalidParameterValue", "Value (%s) for parameter operationType is invalid.", in.OperationType)
		}
		switch {
		case len(add) > 0 && len(remove) > 0:
			return nil, apiError("InvalidParameterCombination", "You may add or remove create volume permissions, but not both in one request.")
		case len(add) == 0 && len(remove) == 0:
			return nil, missingParameter("CreateVolumePermission")
		}
		for _, acct := range append(slices.Clone(add), remove...) {
			if !accountPattern(acct) {
				return nil, apiError("InvalidParameterValue", "Value (%s) for parameter userId is invalid.", acct)
			}
		}
		s := c.st.Snapshots[id]
		if len(add) > 0 && s.Encrypted && s.KmsKeyID == c.ebsDefaultKeyLocked() {
			return nil, apiError("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
		}
		return func() {
			for _, a := range add {
				if !slices.Contains(s.SharedWith, a) {
					s.SharedWith = append(s.SharedWith, a)
				}
			}
			s.SharedWith = slices.DeleteFunc(s.SharedWith, func(a string) bool { return slices.Contains(remove, a) })
			slices.Sort(s.SharedWith)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func accountPattern(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// copySource is what CopySnapshot needs to know of the snapshot it copies.
type copySource struct {
	account   string
	snap      snapshot
	key       resolvedKey // the source's key, when encrypted
	keyKnown  bool
	completed bool
}

// lookupShared finds a snapshot that one of c's source accounts shared with
// c's account. It takes the source's lock, so c.mu must not be held.
func (c *Cloud) lookupShared(id string) (copySource, bool) {
	c.mu.Lock()
	sources, account := slices.Clone(c.sources), c.Account
	c.mu.Unlock()
	for _, src := range sources {
		src.mu.Lock()
		s, ok := src.st.Snapshots[id]
		if ok && slices.Contains(s.SharedWith, account) {
			cs := copySource{account: src.Account, snap: *s, completed: s.Completed && s.Failed == ""}
			if s.Encrypted {
				cs.key, cs.keyKnown = src.resolveKeyLocked(s.KmsKeyID)
			}
			src.mu.Unlock()
			return cs, true
		}
		src.mu.Unlock()
	}
	return copySource{}, false
}

// CopySnapshot copies a completed snapshot of this account, or one another
// account shared with it (see Link), within the Region. The copy starts
// pending, like CreateSnapshots' snapshots, with the volume ID vol-ffffffff.
//
// Encryption follows AWS: a copy of an encrypted snapshot is encrypted; the
// key is KmsKeyId when given (which needs Encrypted=true), else the source's
// key within the account, else the account's aws/ebs key. A copy from
// another account whose key policy does not let this account use the source
// key, or with a KmsKeyId this account does not have, is accepted and then
// fails (state "error"), as AWS fails it after the call returns. At most
// ConcurrentCopyLimit copies may be pending (ResourceLimitExceeded).
//
// Assumed codes: copying a pending snapshot answers IncorrectState;
// KmsKeyId without Encrypted answers InvalidParameterDependency.
func (e *EC2) CopySnapshot(ctx context.Context, in *ec2.CopySnapshotInput, _ ...func(*ec2.Options)) (*ec2.CopySnapshotOutput, error) {
	if in == nil {
		in = &ec2.CopySnapshotInput{}
	}
	c := e.c
	srcID := aws.ToString(in.SourceSnapshotId)
	shared, isShared := c.lookupShared(srcID)
	out := &ec2.CopySnapshotOutput{}
	err := c.call(ctx, serviceEC2, "CopySnapshot", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		switch {
		case srcID == "":
			return nil, missingParameter("SourceSnapshotId")
		case aws.ToString(in.SourceRegion) == "":
			return nil, missingParameter("SourceRegion")
		case aws.ToString(in.SourceRegion) != c.Region:
			return nil, notModelled("CopySnapshot", "across Regions")
		case in.DestinationOutpostArn != nil || in.PresignedUrl != nil:
			return nil, notModelled("CopySnapshot", "to Outposts or with a presigned URL")
		case in.KmsKeyId != nil && !aws.ToBool(in.Encrypted):
			return nil, apiError("InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.")
		}
		src := shared
		if own, ok := c.st.Snapshots[srcID]; ok {
			src = copySource{account: c.Account, snap: *own, completed: own.Completed && own.Failed == ""}
			if own.Encrypted {
				src.key, src.keyKnown = c.resolveKeyLocked(own.KmsKeyID)
			}
		} else if !isShared {
			// A snapshot of another account that was not shared with this
			// one is invisible to it.
			return nil, kindSnapshot.check([]string{srcID}, c.hasSnapshot)
		}
		if !src.completed {
			return nil, apiError("IncorrectState", "Snapshot is in invalid state - pending")
		}
		tags, err := tagsFor(in.TagSpecifications, types.ResourceTypeSnapshot)
		if err != nil {
			return nil, err
		}
		limit := c.ConcurrentCopyLimit
		if limit == 0 {
			limit = DefaultConcurrentCopyLimit
		}
		inFlight := 0
		for _, s := range c.st.Snapshots {
			if s.CopiedFrom != "" && !s.Completed && s.Failed == "" {
				inFlight++
			}
		}
		if inFlight >= limit {
			return nil, apiError("ResourceLimitExceeded", "Too many snapshot copies in progress. The limit is %d for this destination region.", limit)
		}
		copied := &snapshot{
			VolumeID:    volumeOfCopies,
			Description: aws.ToString(in.Description),
			SizeGiB:     src.snap.SizeGiB,
			Encrypted:   src.snap.Encrypted || aws.ToBool(in.Encrypted),
			CopiedFrom:  src.account + "/" + srcID,
			Tags:        mergeTags(nil, tags),
		}
		if copied.Encrypted {
			switch {
			case in.KmsKeyId != nil:
				key, ok := c.resolveKeyLocked(aws.ToString(in.KmsKeyId))
				copied.KmsKeyID = aws.ToString(in.KmsKeyId)
				if ok {
					copied.KmsKeyID = key.arn
				} else {
					copied.Failed = "Given key ID is not accessible"
				}
			case src.snap.Encrypted && src.account == c.Account:
				copied.KmsKeyID = src.snap.KmsKeyID
			default:
				copied.KmsKeyID = c.ebsDefaultKeyLocked()
			}
		}
		if src.snap.Encrypted && src.account != c.Account &&
			(!src.keyKnown || src.key.awsManaged || !slices.Contains(src.key.users, c.Account)) {
			copied.Failed = "The source snapshot KMS key is not accessible"
		}
		return func() {
			copied.ID = c.hexIDLocked("snap")
			copied.StartTime = c.now().Truncate(time.Millisecond)
			copied.Seq = c.nextSeqLocked()
			c.st.Snapshots[copied.ID] = copied
			out.SnapshotId = aws.String(copied.ID)
			out.Tags = copyTags(copied.Tags)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CopiedFrom returns "account/snap-..." for a snapshot made by CopySnapshot,
// "" otherwise.
func (c *Cloud) CopiedFrom(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.st.Snapshots[id]; ok {
		return s.CopiedFrom
	}
	return ""
}
