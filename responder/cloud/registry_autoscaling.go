package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// AutoScaling lists every Amazon EC2 Auto Scaling operation the toolkit
// calls, in the workload account: the auto-scaling step takes a suspect
// instance out of its group's service (standby or detach, keeping the desired
// capacity so that the group replaces it) and protects it from scale-in,
// because termination protection does not stop Auto Scaling; a release puts
// it back.
type AutoScaling interface {
	DescribeAutoScalingInstances(context.Context, *autoscaling.DescribeAutoScalingInstancesInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
	DescribeAutoScalingGroups(context.Context, *autoscaling.DescribeAutoScalingGroupsInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	EnterStandby(context.Context, *autoscaling.EnterStandbyInput, ...func(*autoscaling.Options)) (*autoscaling.EnterStandbyOutput, error)
	ExitStandby(context.Context, *autoscaling.ExitStandbyInput, ...func(*autoscaling.Options)) (*autoscaling.ExitStandbyOutput, error)
	DetachInstances(context.Context, *autoscaling.DetachInstancesInput, ...func(*autoscaling.Options)) (*autoscaling.DetachInstancesOutput, error)
	AttachInstances(context.Context, *autoscaling.AttachInstancesInput, ...func(*autoscaling.Options)) (*autoscaling.AttachInstancesOutput, error)
	SetInstanceProtection(context.Context, *autoscaling.SetInstanceProtectionInput, ...func(*autoscaling.Options)) (*autoscaling.SetInstanceProtectionOutput, error)
}

var _ AutoScaling = (*autoscaling.Client)(nil)

func init() {
	Register("autoscaling", WorkloadAccount, reflect.TypeFor[AutoScaling]())
}
