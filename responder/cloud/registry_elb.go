package cloud

import (
	"context"
	"reflect"

	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// ELBv2 lists every Elastic Load Balancing (v2: Application, Network and
// Gateway Load Balancers) operation the toolkit calls, in the workload
// account: the load-balancers step finds the target groups that send traffic
// to a suspect instance (by instance ID or by its private IPs), deregisters
// it, and a release registers it again with the recorded port and zone.
type ELBv2 interface {
	DescribeTargetGroups(context.Context, *elbv2.DescribeTargetGroupsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTargetHealth(context.Context, *elbv2.DescribeTargetHealthInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
	DeregisterTargets(context.Context, *elbv2.DeregisterTargetsInput, ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error)
	RegisterTargets(context.Context, *elbv2.RegisterTargetsInput, ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error)
}

// ELB lists every Classic Load Balancer operation the toolkit calls, in the
// workload account, for the same purpose as ELBv2.
type ELB interface {
	DescribeLoadBalancers(context.Context, *elb.DescribeLoadBalancersInput, ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error)
	DeregisterInstancesFromLoadBalancer(context.Context, *elb.DeregisterInstancesFromLoadBalancerInput, ...func(*elb.Options)) (*elb.DeregisterInstancesFromLoadBalancerOutput, error)
	RegisterInstancesWithLoadBalancer(context.Context, *elb.RegisterInstancesWithLoadBalancerInput, ...func(*elb.Options)) (*elb.RegisterInstancesWithLoadBalancerOutput, error)
}

var (
	_ ELBv2 = (*elbv2.Client)(nil)
	_ ELB   = (*elb.Client)(nil)
)

func init() {
	// Both APIs are authorised under one IAM service prefix.
	Register("elasticloadbalancing", WorkloadAccount, reflect.TypeFor[ELBv2]())
	Register("elasticloadbalancing", WorkloadAccount, reflect.TypeFor[ELB]())
}
