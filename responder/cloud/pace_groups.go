package cloud

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

// Concurrent responses in one VPC each look for the VPC's quarantine (and
// untracking) group, find none yet, and create it: on a fleet, hundreds of
// CreateSecurityGroup calls for one group, on a bucket of 50 that refills 5
// a second. While one CreateSecurityGroup of a name in a VPC is waiting or
// in flight, the others of the same name and VPC wait for it; when it made
// the group, they get the answer AWS would have given them,
// InvalidGroup.Duplicate, without a call (the steps then look the group up,
// as they do when another run made it); when it failed, each makes its own
// call. A group this client made, or was told exists (a real
// InvalidGroup.Duplicate), is remembered for the life of the Clients: a
// later CreateSecurityGroup of its name in its VPC answers
// InvalidGroup.Duplicate at once. Should the group be deleted meanwhile,
// the steps' lookup finds no group of the kind and they create one under a
// name of their own, as they do for an untagged lookalike.

type groupFlights struct {
	mu      sync.Mutex
	pending map[string]*groupFlight // vpc ID + "\x00" + group name
	exists  map[string]bool
}

type groupFlight struct {
	done chan struct{}
	err  error
}

// CreateSecurityGroup: one call per VPC and group name at a time.
func (e *PacedEC2) CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, o ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error) {
	if in == nil || in.VpcId == nil || in.GroupName == nil || aws.ToBool(in.DryRun) {
		return pace(e, ctx, "CreateSecurityGroup", in, o, e.next.CreateSecurityGroup)
	}
	key := *in.VpcId + "\x00" + *in.GroupName
	e.groups.mu.Lock()
	if e.groups.exists[key] {
		e.groups.mu.Unlock()
		return nil, duplicateGroup(*in.GroupName, *in.VpcId)
	}
	if f, ok := e.groups.pending[key]; ok {
		e.groups.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, canceled("CreateSecurityGroup", ctx.Err())
		}
		if f.err == nil {
			return nil, duplicateGroup(*in.GroupName, *in.VpcId)
		}
		return pace(e, ctx, "CreateSecurityGroup", in, o, e.next.CreateSecurityGroup)
	}
	f := &groupFlight{done: make(chan struct{})}
	if e.groups.pending == nil {
		e.groups.pending, e.groups.exists = map[string]*groupFlight{}, map[string]bool{}
	}
	e.groups.pending[key] = f
	e.groups.mu.Unlock()

	out, err := pace(e, ctx, "CreateSecurityGroup", in, o, e.next.CreateSecurityGroup)
	f.err = err
	e.groups.mu.Lock()
	if err == nil || IsErrorCode(err, "InvalidGroup.Duplicate") {
		f.err = nil // the group exists: the others' answer is Duplicate
		e.groups.exists[key] = true
	}
	delete(e.groups.pending, key)
	e.groups.mu.Unlock()
	close(f.done)
	return out, err
}

// duplicateGroup is EC2's answer to a CreateSecurityGroup of a name the
// VPC already has.
func duplicateGroup(name, vpcID string) error {
	return &smithy.OperationError{ServiceID: ec2.ServiceID, OperationName: "CreateSecurityGroup", Err: &smithy.GenericAPIError{
		Code: "InvalidGroup.Duplicate", Message: "The security group '" + name + "' already exists for VPC '" + vpcID + "'", Fault: smithy.FaultClient}}
}
