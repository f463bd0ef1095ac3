package cloud_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder/cloud"
)

// ec2Endpoint answers EC2 Query requests: the first `throttle` requests with
// RequestLimitExceeded (as EC2 does, HTTP 503), then an empty
// DescribeInstances answer.
func ec2Endpoint(t *testing.T, throttle int32) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("req-%d", i))
		if i <= throttle {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled-%d</RequestID></Response>`, i)
			return
		}
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>req-ok</requestId><reservationSet/></DescribeInstancesResponse>`)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func setEnv(t *testing.T, endpoint string) {
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_RETRY_MODE", "")
	t.Setenv("AWS_MAX_ATTEMPTS", "")
}

func TestThrottlingIsRetriedNotReported(t *testing.T) {
	srv, n := ec2Endpoint(t, 3)
	setEnv(t, srv.URL)
	clients, err := cloud.Load(context.Background(), cloud.Options{MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if clients.Region != "eu-west-3" {
		t.Errorf("region = %q, want AWS_REGION's", clients.Region)
	}
	log := &cloud.CallLog{}
	ctx := cloud.WithCallLog(context.Background(), log)
	if _, err := clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatalf("a throttled call that succeeds on retry was reported as failed: %v", err)
	}
	if got := n.Load(); got != 4 {
		t.Errorf("endpoint saw %d requests, want 3 throttled + 1", got)
	}
	calls := log.Calls()
	if len(calls) != 1 {
		t.Fatalf("call log = %+v, want one call (retries are one operation)", calls)
	}
	if c := calls[0]; c.Operation != "DescribeInstances" || c.Service != "EC2" || c.RequestID != "req-4" || c.ErrorCode != "" {
		t.Errorf("call = %+v", c)
	}
}

func TestPersistentThrottlingIsReportedWithItsCode(t *testing.T) {
	srv, n := ec2Endpoint(t, 1000)
	setEnv(t, srv.URL)
	clients, err := cloud.Load(context.Background(), cloud.Options{MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	log := &cloud.CallLog{}
	_, err = clients.EC2.DescribeInstances(cloud.WithCallLog(context.Background(), log), &ec2.DescribeInstancesInput{})
	if !cloud.IsErrorCode(err, "RequestLimitExceeded") {
		t.Fatalf("err = %v, want RequestLimitExceeded after the retries", err)
	}
	if got := n.Load(); got != cloud.MaxAttempts {
		t.Errorf("endpoint saw %d requests, want %d attempts", got, cloud.MaxAttempts)
	}
	if c := log.Calls(); len(c) != 1 || c[0].ErrorCode != "RequestLimitExceeded" || !strings.HasPrefix(c[0].RequestID, "req-") {
		t.Errorf("call log = %+v", c)
	}
}

func TestOperationsAreDerivedFromTheInterfaces(t *testing.T) {
	ops := cloud.Operations()
	want := map[string]string{
		"ec2:CreateSnapshots":                 cloud.WorkloadAccount,
		"ec2:ModifyNetworkInterfaceAttribute": cloud.WorkloadAccount,
		"s3:PutObject":                        cloud.EvidenceAccount,
		"sns:Publish":                         cloud.EvidenceAccount,
		"sts:AssumeRole":                      cloud.EvidenceAccount,
	}
	found := map[string]bool{}
	for _, op := range ops {
		if acc, ok := want[op.Action]; ok {
			found[op.Action] = true
			if op.Account != acc {
				t.Errorf("%s runs in %s, want %s", op.Action, op.Account, acc)
			}
		}
		if op.API == "s3:HeadObject" && op.Action != "s3:GetObject" {
			t.Errorf("s3:HeadObject is authorised by %s, want s3:GetObject", op.Action)
		}
	}
	for a := range want {
		if !found[a] {
			t.Errorf("%s missing from Operations()", a)
		}
	}
}

// An urgent call keeps every attempt but never waits longer than
// UrgentMaxBackoff between two, whatever the client's own cap.
func TestUrgentCallsWaitBoundedBetweenAttempts(t *testing.T) {
	srv, n := ec2Endpoint(t, 1000)
	setEnv(t, srv.URL)
	clients, err := cloud.Load(context.Background(), cloud.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var delays []time.Duration
	watch := func(o *ec2.Options) {
		o.Retryer = delayWatch{RetryerV2: o.Retryer.(aws.RetryerV2), seen: &delays}
	}
	_, err = clients.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}, cloud.Urgent, watch)
	if !cloud.IsErrorCode(err, "RequestLimitExceeded") {
		t.Fatalf("err = %v, want RequestLimitExceeded after the retries", err)
	}
	if got := n.Load(); got != cloud.MaxAttempts {
		t.Errorf("endpoint saw %d requests, want %d attempts", got, cloud.MaxAttempts)
	}
	if len(delays) != cloud.MaxAttempts-1 {
		t.Fatalf("%d waits, want %d", len(delays), cloud.MaxAttempts-1)
	}
	for i, d := range delays {
		if d > cloud.UrgentMaxBackoff {
			t.Errorf("wait %d before attempt %d: %v, above %v", i+1, i+2, d, cloud.UrgentMaxBackoff)
		}
	}
}

// delayWatch records the waits the retryer asks for, and waits none of them.
type delayWatch struct {
	aws.RetryerV2
	seen *[]time.Duration
}

func (w delayWatch) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := w.RetryerV2.RetryDelay(attempt, err)
	*w.seen = append(*w.seen, d)
	return 0, derr
}
