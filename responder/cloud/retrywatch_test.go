package cloud_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/responder-ir/responder/responder/cloud"
)

// retries records the retry events of a watch.
type retries struct {
	mu     sync.Mutex
	events []cloud.RetryEvent
}

func (r *retries) add(e cloud.RetryEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// TestRetryWatchGivesUpAtItsBound: an endpoint that answers 503 forever is
// retried until the bound, each retry reported with what it waits for, and
// the error keeps the endpoint's code.
func TestRetryWatchGivesUpAtItsBound(t *testing.T) {
	srv, n := ec2Endpoint(t, 1_000_000)
	setEnv(t, srv.URL)
	seen := &retries{}
	clients, err := cloud.Load(context.Background(), cloud.Options{MaxBackoff: 40 * time.Millisecond,
		Retry: cloud.RetryWatch{Bound: 150 * time.Millisecond, OnRetry: seen.add}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = clients.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	took := time.Since(start)
	var ae smithy.APIError
	if !cloud.IsGaveUp(err) || !errors.As(err, &ae) || ae.ErrorCode() != "RequestLimitExceeded" {
		t.Fatalf("err = %v, want a give-up that keeps RequestLimitExceeded", err)
	}
	if took > 2*time.Second {
		t.Errorf("took %s with a bound of 150ms", took)
	}
	if got := n.Load(); got >= cloud.MaxAttempts {
		t.Errorf("%d requests: the bound did not stop the retries before MaxAttempts", got)
	}
	if len(seen.events) == 0 {
		t.Fatal("no retry was reported")
	}
	e := seen.events[0]
	if e.Service != "EC2" || e.Operation != "DescribeInstances" || e.Attempt != 2 || e.Bound != 150*time.Millisecond || e.LastErr == nil {
		t.Errorf("first event = %+v", e)
	}
}

// TestRetryBoundOfAContext: an evidence call's context bound is tighter than
// the watch's.
func TestRetryBoundOfAContext(t *testing.T) {
	srv, _ := ec2Endpoint(t, 1_000_000)
	setEnv(t, srv.URL)
	clients, err := cloud.Load(context.Background(), cloud.Options{MaxBackoff: 40 * time.Millisecond, Retry: cloud.RetryWatch{Bound: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := cloud.WithRetryBound(context.Background(), 100*time.Millisecond)
	start := time.Now()
	_, err = clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if !cloud.IsGaveUp(err) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %s, want a give-up near 100ms", err, time.Since(start))
	}
}

// TestRetryWatchLetsASuccessThrough: a call that succeeds on its third
// attempt within the bound succeeds.
func TestRetryWatchLetsASuccessThrough(t *testing.T) {
	srv, _ := ec2Endpoint(t, 2)
	setEnv(t, srv.URL)
	seen := &retries{}
	clients, err := cloud.Load(context.Background(), cloud.Options{MaxBackoff: 20 * time.Millisecond, Retry: cloud.RetryWatch{Bound: time.Minute, OnRetry: seen.add}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clients.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	if len(seen.events) != 2 {
		t.Errorf("%d retries reported, want 2", len(seen.events))
	}
}

// TestRetryWatchPresigns: a presigned request has no retry loop; the watch
// stays out of its way.
func TestRetryWatchPresigns(t *testing.T) {
	setEnv(t, "http://127.0.0.1:9")
	clients, err := cloud.Load(context.Background(), cloud.Options{Retry: cloud.RetryWatch{Bound: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := clients.Presign.PresignPutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if err != nil || req.URL == "" {
		t.Fatalf("presign: %v", err)
	}
}
