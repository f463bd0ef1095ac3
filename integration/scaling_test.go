package integration

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/responder-ir/responder/internal/lab"
)

// scalingClients talk to moto directly, for the test's own setup and
// assertions.
type scalingClients struct {
	as    *autoscaling.Client
	elbv2 *elbv2.Client
	elb   *elb.Client
}

func newScalingClients(t *testing.T, f *fixture) scalingClients {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(f.aws.Region),
		config.WithBaseEndpoint(suite.moto.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(lab.DummyAccessKeyID, lab.DummySecretAccessKey, "")))
	must(t, err)
	return scalingClients{as: autoscaling.NewFromConfig(cfg), elbv2: elbv2.NewFromConfig(cfg), elb: elb.NewFromConfig(cfg)}
}

// servedLab puts the lab instance in an Auto Scaling group (desired 1, max
// 3), in an instance target group on port 8080, in an ip target group of
// its VPC by its primary IP, and behind a Classic Load Balancer.
type servedLab struct {
	group, tgInstance, tgIP, clb, ip string
}

func (s scalingClients) serve(t *testing.T, f *fixture, l *lab.Lab) servedLab {
	t.Helper()
	ctx := context.Background()
	sv := servedLab{group: l.Name + "-asg", clb: l.Name + "-clb"}
	out, err := f.aws.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{l.InstanceID}})
	must(t, err)
	sv.ip = aws.ToString(out.Reservations[0].Instances[0].PrivateIpAddress)

	lt, err := f.aws.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(l.Name + "-lt"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(l.ImageID), InstanceType: ec2types.InstanceTypeT3Micro}})
	must(t, err)
	_, err = s.as.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(sv.group),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId}, MinSize: aws.Int32(0), MaxSize: aws.Int32(3),
		DesiredCapacity: aws.Int32(0), VPCZoneIdentifier: aws.String(l.SubnetID)})
	must(t, err)
	_, err = s.as.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String(sv.group), InstanceIds: []string{l.InstanceID}})
	must(t, err)

	tg, err := s.elbv2.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String(l.Name[:min(len(l.Name), 28)] + "-i"),
		Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(80), VpcId: aws.String(l.VpcID), TargetType: elbv2types.TargetTypeEnumInstance})
	must(t, err)
	sv.tgInstance = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	_, err = s.elbv2.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(sv.tgInstance),
		Targets: []elbv2types.TargetDescription{{Id: aws.String(l.InstanceID), Port: aws.Int32(8080)}}})
	must(t, err)
	tg, err = s.elbv2.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String(l.Name[:min(len(l.Name), 28)] + "-ip"),
		Protocol: elbv2types.ProtocolEnumTcp, Port: aws.Int32(9000), VpcId: aws.String(l.VpcID), TargetType: elbv2types.TargetTypeEnumIp})
	must(t, err)
	sv.tgIP = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	_, err = s.elbv2.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(sv.tgIP),
		Targets: []elbv2types.TargetDescription{{Id: aws.String(sv.ip)}}})
	must(t, err)

	_, err = s.elb.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{LoadBalancerName: aws.String(sv.clb), Subnets: []string{l.SubnetID},
		Listeners: []elbtypes.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstancePort: aws.Int32(80)}}})
	must(t, err)
	_, err = s.elb.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String(sv.clb),
		Instances: []elbtypes.Instance{{InstanceId: aws.String(l.InstanceID)}}})
	must(t, err)
	return sv
}

// servedState is what the Auto Scaling and load balancer steps change.
type servedState struct {
	Lifecycle  string
	Protected  bool
	Desired    int32
	InService  int
	Targets    map[string][]string // target group -> "id:port"
	ClassicLBs []string            // instances of the Classic Load Balancer
}

func (s scalingClients) observe(t *testing.T, id string, sv servedLab) servedState {
	t.Helper()
	ctx := context.Background()
	st := servedState{Targets: map[string][]string{}}
	g, err := s.as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{sv.group}})
	must(t, err)
	st.Desired = aws.ToInt32(g.AutoScalingGroups[0].DesiredCapacity)
	for _, i := range g.AutoScalingGroups[0].Instances {
		if i.LifecycleState == "InService" {
			st.InService++
		}
		if aws.ToString(i.InstanceId) == id {
			st.Lifecycle, st.Protected = string(i.LifecycleState), aws.ToBool(i.ProtectedFromScaleIn)
		}
	}
	for _, tg := range []string{sv.tgInstance, sv.tgIP} {
		h, err := s.elbv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
		must(t, err)
		for _, d := range h.TargetHealthDescriptions {
			if d.TargetHealth.State != elbv2types.TargetHealthStateEnumUnused && d.TargetHealth.State != elbv2types.TargetHealthStateEnumDraining {
				st.Targets[tg] = append(st.Targets[tg], aws.ToString(d.Target.Id)+":"+strconv.Itoa(int(aws.ToInt32(d.Target.Port))))
			}
		}
		slices.Sort(st.Targets[tg])
	}
	lbs, err := s.elb.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{sv.clb}})
	must(t, err)
	for _, i := range lbs.LoadBalancerDescriptions[0].Instances {
		st.ClassicLBs = append(st.ClassicLBs, aws.ToString(i.InstanceId))
	}
	return st
}

// TestRespondAndReleaseOnAScaledInstance: the real binary puts the lab
// instance in standby in its Auto Scaling group with scale-in protection
// (the group launches a replacement, its desired capacity kept), takes it
// out of both target groups and the Classic Load Balancer, and says
// contained; release gives back the lifecycle state, protection and every
// registration with its port, the group's desired capacity one higher (the
// replacement stays).
func TestRespondAndReleaseOnAScaledInstance(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	s := newScalingClients(t, f)
	sv := s.serve(t, f, l)
	before := s.observe(t, l.InstanceID, sv)
	if before.Lifecycle != "InService" || before.Desired != 1 || len(before.Targets[sv.tgInstance]) != 1 || len(before.Targets[sv.tgIP]) != 1 || len(before.ClassicLBs) != 1 {
		t.Fatalf("the lab is not served as set up: %+v", before)
	}
	caseID := "case-scaled-1"
	store := []string{"--evidence-dir", f.caseDir}
	if res := f.run(append([]string{"respond", "--instance-id", l.InstanceID, "--case-id", caseID}, store...)...); res.Code != exitOK {
		t.Fatalf("respond: want exit %d:\n%s", exitOK, res)
	}
	contained := s.observe(t, l.InstanceID, sv)
	if contained.Lifecycle != "Standby" || !contained.Protected || contained.Desired != 1 || contained.InService != 1 {
		t.Errorf("after respond: %s, protected %t, desired %d, %d in service: want Standby, true, 1, 1 (the replacement)",
			contained.Lifecycle, contained.Protected, contained.Desired, contained.InService)
	}
	if len(contained.Targets[sv.tgInstance]) != 0 || len(contained.Targets[sv.tgIP]) != 0 || len(contained.ClassicLBs) != 0 {
		t.Errorf("a load balancer still sends the instance traffic: %+v", contained)
	}

	if res := f.run(append([]string{"release", "--case-id", caseID, "--yes"}, store...)...); res.Code != exitReleased {
		t.Fatalf("release: want exit %d:\n%s", exitReleased, res)
	}
	after := s.observe(t, l.InstanceID, sv)
	if after.Lifecycle != before.Lifecycle || after.Protected != before.Protected || after.Desired != before.Desired+1 {
		t.Errorf("after release: %s, protected %t, desired %d; before %s, %t, %d (+1 expected: the replacement stays)",
			after.Lifecycle, after.Protected, after.Desired, before.Lifecycle, before.Protected, before.Desired)
	}
	for _, tg := range []string{sv.tgInstance, sv.tgIP} {
		if !slices.Equal(after.Targets[tg], before.Targets[tg]) {
			t.Errorf("%s after release %v, before %v", tg, after.Targets[tg], before.Targets[tg])
		}
	}
	if !slices.Equal(after.ClassicLBs, before.ClassicLBs) {
		t.Errorf("Classic Load Balancer after release %v, before %v", after.ClassicLBs, before.ClassicLBs)
	}
	assertReleaseRecorded(t, f, caseID)
}
