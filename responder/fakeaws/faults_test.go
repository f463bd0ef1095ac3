package fakeaws

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/responder-ir/responder/responder/cloud"
)

func snapshotCall(c *Cloud, id string) func() error {
	return func() error {
		_, err := c.EC2().CreateSnapshots(context.Background(), &ec2.CreateSnapshotsInput{
			InstanceSpecification: &types.InstanceSpecification{InstanceId: &id}})
		return err
	}
}

func TestFail(t *testing.T) {
	tests := []struct {
		name   string
		inject func(c *Cloud)
		want   []string // codes of successive calls
	}{
		{"twice", func(c *Cloud) { c.Fail("CreateSnapshots", "InternalError", 2) }, []string{"InternalError", "InternalError", ""}},
		{"always", func(c *Cloud) { c.Fail("CreateSnapshots", "InternalError", -1) }, []string{"InternalError", "InternalError", "InternalError"}},
		{"queued", func(c *Cloud) {
			c.Fail("CreateSnapshots", "RequestLimitExceeded", 1)
			c.Fail("CreateSnapshots", "InternalError", 1)
		}, []string{"RequestLimitExceeded", "InternalError", ""}},
		{"throttle", func(c *Cloud) { c.Throttle("CreateSnapshots", 1) }, []string{"RequestLimitExceeded", ""}},
		{"other operation", func(c *Cloud) { c.Fail("CreateTags", "InternalError", -1) }, []string{""}},
		{"cleared", func(c *Cloud) { c.Fail("CreateSnapshots", "InternalError", -1); c.ClearFaults() }, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := NewSuspect()
			tt.inject(c)
			call := snapshotCall(c, s.InstanceID)
			for i, want := range tt.want {
				before := len(c.Snapshots())
				err := call()
				wantCode(t, err, want)
				if err != nil && len(c.Snapshots()) != before {
					t.Errorf("call %d failed but made snapshots", i)
				}
			}
		})
	}
}

func TestThrottleAndDenyCodesPerService(t *testing.T) {
	ctx := context.Background()
	c := New()
	c.AddBucket("b", BucketOptions{})
	topic := c.AddTopic("t")
	calls := map[string]func() error{
		"PutObject": func() error {
			_, err := c.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")})
			return err
		},
		"HeadObject": func() error {
			_, err := c.S3().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
			return err
		},
		"Publish": func() error {
			_, err := c.SNS().Publish(ctx, &sns.PublishInput{TopicArn: &topic, Message: aws.String("m")})
			return err
		},
		"GetCallerIdentity": func() error {
			_, err := c.STS().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		},
	}
	tests := []struct{ op, throttle, deny string }{
		{"PutObject", "SlowDown", "AccessDenied"},
		{"HeadObject", "SlowDown", "Forbidden"},
		{"Publish", "Throttled", "AuthorizationError"},
		{"GetCallerIdentity", "Throttling", "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			c.Throttle(tt.op, 1)
			wantCode(t, calls[tt.op](), tt.throttle)
			c.Deny(tt.op)
			wantCode(t, calls[tt.op](), tt.deny)
			c.Allow(tt.op)
			if tt.op != "HeadObject" { // the object may not exist yet
				wantCode(t, calls[tt.op](), "")
			}
		})
	}
}

func TestFailRejectsUnknownOperation(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Fail accepted an operation that is not in the registry")
		}
	}()
	New().Fail("CreateSnapshot", "InternalError", 1) // singular: not in the registry
}

func TestCallsAreRecordedLikeTheSDK(t *testing.T) {
	c, s := NewSuspect()
	log := &cloud.CallLog{}
	ctx := cloud.WithCallLog(context.Background(), log)
	c.Fail("CreateSnapshots", "InternalError", 1)

	_, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &types.InstanceSpecification{InstanceId: &s.InstanceID}})
	if err == nil {
		t.Fatal("want the injected fault")
	}
	out, err := c.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}

	calls := log.Calls()
	if len(calls) != 2 {
		t.Fatalf("recorded %d calls, want 2: %+v", len(calls), calls)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if calls[0].Service != "EC2" || calls[0].Operation != "CreateSnapshots" || calls[0].ErrorCode != "InternalError" || !uuid.MatchString(calls[0].RequestID) {
		t.Errorf("failed call recorded as %+v", calls[0])
	}
	if calls[1].Operation != "DescribeInstances" || calls[1].ErrorCode != "" || calls[1].RequestID == calls[0].RequestID {
		t.Errorf("second call recorded as %+v", calls[1])
	}
	if id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); id != calls[1].RequestID {
		t.Errorf("ResultMetadata request ID %q, recorded %q", id, calls[1].RequestID)
	}

	// The error has the SDK's shape: OperationError > ResponseError > API error.
	_, err = c.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{unknownInstance}})
	var opErr *smithy.OperationError
	var respErr *awshttp.ResponseError
	var apiErr *smithy.GenericAPIError
	if !errors.As(err, &opErr) || !errors.As(err, &respErr) || !errors.As(err, &apiErr) {
		t.Fatalf("error %T %v does not have the SDK's shape", err, err)
	}
	if respErr.HTTPStatusCode() != 400 || respErr.ServiceRequestID() != log.Calls()[2].RequestID || apiErr.Fault != smithy.FaultClient {
		t.Errorf("status %d, request ID %q, fault %v", respErr.HTTPStatusCode(), respErr.ServiceRequestID(), apiErr.Fault)
	}
	if want := "operation error EC2: DescribeInstances, https response error StatusCode: 400"; !strings.Contains(err.Error(), want) {
		t.Errorf("error text %q lacks %q", err, want)
	}
}

func TestLatency(t *testing.T) {
	c, s := NewSuspect()
	c.Latency = 20 * time.Millisecond
	start := time.Now()
	if _, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < c.Latency {
		t.Errorf("call took %v, want at least %v", d, c.Latency)
	}

	c.Latency = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	before := c.StateDigest()
	_, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &types.InstanceSpecification{InstanceId: &s.InstanceID}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want the context's deadline", err)
	}
	if c.StateDigest() != before {
		t.Error("a cancelled call changed the state")
	}
}

// TestConcurrentUse runs many calls at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	c, s := NewSuspect()
	c.AddBucket("evidence", BucketOptions{Versioning: true})
	topic := c.AddTopic("alerts")
	c.SnapshotCompletesAfter = 3
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 20 {
		wg.Go(func() {
			for j := range 5 {
				key := fmt.Sprintf("k-%d-%d", i, j)
				steps := []func() error{
					snapshotCall(c, s.InstanceID),
					func() error {
						_, err := c.EC2().DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
						return err
					},
					func() error {
						_, err := c.EC2().CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{s.InstanceID},
							Tags: []types.Tag{{Key: aws.String(fmt.Sprintf("t%d", i)), Value: aws.String(key)}}})
						return err
					},
					func() error {
						_, err := c.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("evidence"), Key: &key, Body: strings.NewReader(key)})
						return err
					},
					func() error {
						_, err := c.SNS().Publish(ctx, &sns.PublishInput{TopicArn: &topic, Message: &key})
						return err
					},
				}
				for _, step := range steps {
					if err := step(); err != nil {
						errs <- err
					}
				}
				_ = c.Instance(s.InstanceID)
				_ = c.StateDigest()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(c.Snapshots()); n != 20*5*2 {
		t.Errorf("snapshots = %d, want %d", n, 20*5*2)
	}
	if n := len(c.Objects("evidence")); n != 100 {
		t.Errorf("objects = %d, want 100", n)
	}
	if n := len(c.Published()); n != 100 {
		t.Errorf("published = %d, want 100", n)
	}
}
