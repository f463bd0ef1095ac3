package cloud_test

import (
	"context"
	"reflect"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// slowReads: a pacer whose read buckets hold one token and refill four a
// second, so that the reads arriving together queue behind the first and
// merge.
func slowReads() *cloud.Pacer {
	return cloud.NewPacer(cloud.PacerOptions{Shape: func(action string) cloud.BucketShape {
		return cloud.BucketShape{Burst: 1, Rate: 4 / cloud.RateHeadroom}
	}})
}

// concurrently runs f(i) for i < n at once and waits for them all.
func concurrently(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

type answer struct {
	out  any
	code string
}

// TestCoalescedReadsAnswerAsSingleCalls: concurrent reads of 20 instances,
// plus one of an unknown instance (and of a malformed volume ID), get from
// the paced client exactly what each would have had from its own call,
// NotFound for the bad ID only, in far fewer calls.
func TestCoalescedReadsAnswerAsSingleCalls(t *testing.T) {
	c := fakeaws.New()
	vpc := c.AddVPC()
	const n = 20
	var ids, vols, enis []string
	for i := range n {
		spec := fakeaws.InstanceSpec{VpcID: vpc, Volumes: 1 + i%2, NetworkInterfaces: 1 + i%2}
		if i%3 == 0 {
			spec.InstanceProfileArn = "arn:aws:iam::" + c.Account + ":instance-profile/web"
		}
		id := c.AddInstance(spec)
		v := c.Instance(id)
		ids = append(ids, id)
		vols = append(vols, aws.ToString(v.BlockDeviceMappings[len(v.BlockDeviceMappings)-1].Ebs.VolumeId))
		enis = append(enis, aws.ToString(v.NetworkInterfaces[0].NetworkInterfaceId))
	}
	ids = append(ids, "i-0123456789abcdef0") // unknown
	vols = append(vols, "vol-nothex")        // malformed
	enis = append(enis, "eni-0123456789abcdef0")

	reads := []struct {
		name string
		call func(api cloud.EC2, i int) (any, error)
		op   string
	}{
		{"instances", func(api cloud.EC2, i int) (any, error) {
			out, err := api.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{ids[i]}}, cloud.Urgent)
			return reservations(out), err
		}, "DescribeInstances"},
		{"profile associations", func(api cloud.EC2, i int) (any, error) {
			out, err := api.DescribeIamInstanceProfileAssociations(context.Background(), &ec2.DescribeIamInstanceProfileAssociationsInput{
				Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{ids[i]}}}})
			if out == nil {
				return nil, err
			}
			return out.IamInstanceProfileAssociations, err
		}, "DescribeIamInstanceProfileAssociations"},
		{"volumes", func(api cloud.EC2, i int) (any, error) {
			out, err := api.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{VolumeIds: []string{vols[i], vols[(i+1)%n]}})
			if out == nil {
				return nil, err
			}
			return out.Volumes, err
		}, "DescribeVolumes"},
		{"interfaces", func(api cloud.EC2, i int) (any, error) {
			out, err := api.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{enis[i]}})
			if out == nil {
				return nil, err
			}
			return out.NetworkInterfaces, err
		}, "DescribeNetworkInterfaces"},
		{"identical security group reads", func(api cloud.EC2, i int) (any, error) {
			out, err := api.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
				Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}})
			if out == nil {
				return nil, err
			}
			return out.SecurityGroups, err
		}, "DescribeSecurityGroups"},
		{"identical instance type reads", func(api cloud.EC2, i int) (any, error) {
			out, err := api.DescribeInstanceTypes(context.Background(), &ec2.DescribeInstanceTypesInput{
				InstanceTypes: []types.InstanceType{types.InstanceTypeM5Large}})
			if out == nil {
				return nil, err
			}
			return out.InstanceTypes, err
		}, "DescribeInstanceTypes"},
		{"attachments", func(api cloud.EC2, i int) (any, error) {
			out, err := api.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
				Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{ids[i]}}}})
			if out == nil {
				return nil, err
			}
			return out.NetworkInterfaces, err
		}, "DescribeNetworkInterfaces"},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			want := make([]answer, n+1)
			for i := range want {
				out, err := r.call(c.EC2(), i)
				want[i] = answer{out, cloud.ErrorCode(err)}
			}
			before := c.CallCount(r.op)
			paced := cloud.PaceEC2(c.EC2(), slowReads())
			got := make([]answer, n+1)
			concurrently(n+1, func(i int) {
				out, err := r.call(paced, i)
				got[i] = answer{out, cloud.ErrorCode(err)}
			})
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("read %d: coalesced answer\n%+v\nwant\n%+v", i, got[i], want[i])
				}
			}
			if calls := c.CallCount(r.op) - before; calls > n/2 {
				t.Errorf("%d reads took %d calls", n+1, calls)
			}
		})
	}
}

func reservations(out *ec2.DescribeInstancesOutput) []types.Reservation {
	if out == nil {
		return nil
	}
	return out.Reservations
}
