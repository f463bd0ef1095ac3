package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cfn "github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/cloudformation"
	"github.com/responder-ir/responder/internal/lab"
)

// TestAnalysisVpcHasNoInternetPath deploys the analysis network of the
// forensics template (issue 17: every AWS::EC2::* resource under
// HasAnalysisEnvironment and what they depend on, see analysisNetwork)
// into moto's CloudFormation and checks, through the EC2 API, the network
// it made: no internet or NAT gateway, no route but the local one and the
// S3 gateway endpoint's, the ssm, ssmmessages and ec2messages interface
// endpoints with private DNS and the S3 gateway endpoint, no ingress to
// the analysis instances' security group, no public IP on launch, a flow
// log of all the VPC's traffic. The template-text check is
// cloudformation's TestAnalysisVpcHasNoInternetPath; this one sees what a
// deployment makes of it (the VPC's main route table included).
//
// Stand-ins (parameters of the deployed part): EvidenceBucket.Arn (the S3
// endpoint's policy) is a literal bucket ARN; AccessLogBucket.Arn (the
// endpoint's policy and the flow log's destination) is the ARN of a bucket
// the test creates, as moto checks that the destination exists; the flow
// log's DependsOn AccessLogBucketPolicy is dropped. moto reads an S3 flow
// log destination as a bucket name and refuses the template's
// ".../flow-logs/" key prefix (AWS accepts it): the deployed destination is
// the bare bucket ARN, so the prefix is not checked here. motoserver.py
// makes moto's CloudFormation associate subnets with their route table and
// honour MapPublicIpOnLaunch, as AWS does; without that neither would show
// through the EC2 API. Not checked: the endpoint security group's rules
// (only the analysis instances' group, which must have no ingress), and
// the S3 endpoint policy's effect (moto does not enforce it).
func TestAnalysisVpcHasNoInternetPath(t *testing.T) {
	f := setup(t)
	net := deployAnalysisNetwork(t, f, "analysis-vpc", nil)
	if problems := analysisNetworkProblems(context.Background(), f.aws.EC2, net); len(problems) > 0 {
		t.Errorf("the analysis network has a path out or lacks a part:\n  %s", strings.Join(problems, "\n  "))
	}
}

// TestAnalysisVpcCheckSeesAnInternetPath proves the check above can fail:
// the same network with an internet gateway attached, a default route to
// it, an ingress rule on the analysis security group and a subnet that maps
// public IPs, deployed the same way, is reported on each count.
func TestAnalysisVpcCheckSeesAnInternetPath(t *testing.T) {
	f := setup(t)
	net := deployAnalysisNetwork(t, f, "analysis-vpc-open", openAnalysisNetwork)
	problems := strings.Join(analysisNetworkProblems(context.Background(), f.aws.EC2, net), "\n")
	for _, want := range []string{"internet gateway", "route 0.0.0.0/0", "ingress", "maps public IPs"} {
		if !strings.Contains(problems, want) {
			t.Errorf("no problem mentions %q; the check reported:\n%s", want, problems)
		}
	}
}

// openAnalysisNetwork adds an internet path to the network template, as a
// careless change to the forensics template would.
func openAnalysisNetwork(n *networkTemplate) {
	cond := "HasAnalysisEnvironment"
	vpc := map[string]any{"Ref": "AnalysisVpc"}
	n.Resources["OpenGateway"] = map[string]any{"Type": "AWS::EC2::InternetGateway", "Condition": cond}
	n.Resources["OpenGatewayAttachment"] = map[string]any{"Type": "AWS::EC2::VPCGatewayAttachment", "Condition": cond,
		"Properties": map[string]any{"VpcId": vpc, "InternetGatewayId": map[string]any{"Ref": "OpenGateway"}}}
	n.Resources["OpenRoute"] = map[string]any{"Type": "AWS::EC2::Route", "Condition": cond, "DependsOn": "OpenGatewayAttachment",
		"Properties": map[string]any{"RouteTableId": map[string]any{"Ref": "AnalysisRouteTable"},
			"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": map[string]any{"Ref": "OpenGateway"}}}
	n.Resources["OpenIngress"] = map[string]any{"Type": "AWS::EC2::SecurityGroupIngress", "Condition": cond,
		"Properties": map[string]any{"GroupId": map[string]any{"Ref": "AnalysisSecurityGroup"},
			"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}}
	n.Resources["AnalysisSubnetB"]["Properties"].(map[string]any)["MapPublicIpOnLaunch"] = true
}

// deployedNetwork is a deployed analysis network: its stack's resources by
// logical ID, and the stand-in values it was given.
type deployedNetwork struct {
	Physical        map[string]string
	CIDR            string
	AccessLogBucket string // ARN
}

// deployAnalysisNetwork extracts the analysis network from the forensics
// template, lets change alter it, deploys it as stack name in moto and
// waits for CREATE_COMPLETE.
func deployAnalysisNetwork(t *testing.T, f *fixture, name string, change func(*networkTemplate)) deployedNetwork {
	t.Helper()
	ctx := context.Background()
	tmpl, err := cloudformation.Load("../cloudformation/forensics-account.yaml")
	must(t, err)
	const cidr = "10.200.0.0/16"
	values := map[string]string{"AnalysisEnvironment": "true", "AnalysisVpcCidr": cidr}
	n, err := analysisNetwork(tmpl, values)
	must(t, err)
	bucket := fmt.Sprintf("t%02d-%s-logs", labCount.Add(1), name)
	_, err = f.aws.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	must(t, err)
	standIns := map[string]string{
		"EvidenceBucketArn":  "arn:aws:s3:::responder-stand-in-evidence",
		"AccessLogBucketArn": "arn:aws:s3:::" + bucket,
	}
	for p, what := range n.StandIns {
		v, ok := standIns[p]
		if !ok {
			t.Fatalf("the analysis network refers to %s outside it: give the test a stand-in for parameter %s", what, p)
		}
		values[p] = v
	}
	ids := make([]string, 0, len(n.Resources))
	for id := range n.Resources {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	t.Logf("deploying %s; stand-ins %v", strings.Join(ids, ", "), n.StandIns)
	motoFlowLogDestination(n)
	if change != nil {
		change(n)
	}
	body, err := n.JSON()
	must(t, err)
	var params []cfntypes.Parameter
	for _, p := range n.ParameterNames() {
		v, ok := values[p]
		if !ok {
			t.Fatalf("no value for parameter %s of the analysis network", p)
		}
		params = append(params, cfntypes.Parameter{ParameterKey: aws.String(p), ParameterValue: aws.String(v)})
	}
	client := cloudFormationClient(t)
	stack := fmt.Sprintf("%s-%d", name, labCount.Add(1))
	_, err = client.CreateStack(ctx, &cfn.CreateStackInput{StackName: aws.String(stack), TemplateBody: aws.String(body), Parameters: params})
	must(t, err)
	waitCreateComplete(t, client, stack)
	out, err := client.DescribeStackResources(ctx, &cfn.DescribeStackResourcesInput{StackName: aws.String(stack)})
	must(t, err)
	net := deployedNetwork{Physical: map[string]string{}, CIDR: cidr, AccessLogBucket: standIns["AccessLogBucketArn"]}
	listed := map[string]bool{}
	for _, r := range out.StackResources {
		listed[aws.ToString(r.LogicalResourceId)] = true
		net.Physical[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
	}
	for id := range n.Resources {
		if !listed[id] {
			t.Errorf("stack %s made no %s (%s): moto's CloudFormation may not support it, and it is not checked", stack, id, n.Resources[id]["Type"])
		}
	}
	for _, id := range analysisNetworkIDs {
		if net.Physical[id] == "" {
			t.Errorf("stack %s: %s has no physical ID", stack, id)
		}
	}
	return net
}

// motoFlowLogDestination strips the key prefix of S3 flow log destinations,
// which moto takes for part of the bucket name.
func motoFlowLogDestination(n *networkTemplate) {
	for _, r := range n.Resources {
		props, _ := r["Properties"].(map[string]any)
		if r["Type"] != "AWS::EC2::FlowLog" || props["LogDestinationType"] != "s3" {
			continue
		}
		if sub, ok := props["LogDestination"].(map[string]any)["Fn::Sub"].(string); ok {
			if i := strings.Index(sub, "}/"); i >= 0 {
				props["LogDestination"] = map[string]any{"Fn::Sub": sub[:i+1]}
			}
		}
	}
}

func cloudFormationClient(t *testing.T) *cfn.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithBaseEndpoint(suite.moto.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(lab.DummyAccessKeyID, lab.DummySecretAccessKey, "")))
	must(t, err)
	return cfn.NewFromConfig(cfg)
}

// waitCreateComplete polls the stack until it is CREATE_COMPLETE; any
// other settled status fails the test with the stack's failure reasons.
func waitCreateComplete(t *testing.T, client *cfn.Client, stack string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := client.DescribeStacks(ctx, &cfn.DescribeStacksInput{StackName: aws.String(stack)})
		must(t, err)
		if len(out.Stacks) != 1 {
			t.Fatalf("stack %s: %d stacks described", stack, len(out.Stacks))
		}
		status := out.Stacks[0].StackStatus
		switch {
		case status == cfntypes.StackStatusCreateComplete:
			return
		case status != cfntypes.StackStatusCreateInProgress:
			t.Fatalf("stack %s: %s (%s)%s", stack, status, aws.ToString(out.Stacks[0].StackStatusReason), stackFailures(ctx, client, stack))
		case time.Now().After(deadline):
			t.Fatalf("stack %s: still %s after 2 minutes", stack, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stackFailures lists the stack's failed resource events.
func stackFailures(ctx context.Context, client *cfn.Client, stack string) string {
	out, err := client.DescribeStackEvents(ctx, &cfn.DescribeStackEventsInput{StackName: aws.String(stack)})
	if err != nil {
		return "; events: " + err.Error()
	}
	var b strings.Builder
	for _, e := range out.StackEvents {
		if strings.HasSuffix(string(e.ResourceStatus), "FAILED") {
			fmt.Fprintf(&b, "\n  %s: %s %s", aws.ToString(e.LogicalResourceId), e.ResourceStatus, aws.ToString(e.ResourceStatusReason))
		}
	}
	return b.String()
}
