package integration

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/internal/lab"
	"github.com/responder-ir/responder/responder/cloud"
)

// TestPacedClientsUnderEC2Buckets: the clients cloud.Load builds, against
// moto behind a proxy that throttles each EC2 action on EC2's buckets
// (scaled 5 times), make a burst of 300 DescribeInstances, three times the
// bucket, without one refusal; the same burst from clients built with
// NoPacing is refused (the SDK retryer then gets it through).
func TestPacedClientsUnderEC2Buckets(t *testing.T) {
	f := setup(t)
	const scale, n = 5, 300
	t.Setenv("AWS_ENDPOINT_URL", f.proxy.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", lab.DummyAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", lab.DummySecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for _, tc := range []struct {
		name     string
		noPacing bool
	}{{"paced", false}, {"unpaced", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f.proxy.SetRequestThrottle(nil, scale)
			defer f.proxy.SetRequestThrottle(nil, -1)
			c, err := cloud.Load(context.Background(), cloud.Options{Region: "us-east-1", NoPacing: tc.noPacing, Pace: cloud.PacerOptions{Scale: scale}})
			if err != nil {
				t.Fatal(err)
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { _, errs[i] = c.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			refused := f.proxy.Throttled("DescribeInstances")
			switch {
			case !tc.noPacing && refused != 0:
				t.Errorf("the proxy refused %d paced calls", refused)
			case tc.noPacing && refused == 0:
				t.Error("the unpaced burst drew no refusal: the proxy's buckets are not EC2's")
			}
		})
	}
}
