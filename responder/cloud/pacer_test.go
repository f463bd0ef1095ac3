package cloud_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// tagBurst tags n instances at once through api and returns the errors.
func tagBurst(api cloud.EC2, ids []string) []error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			_, errs[i] = api.CreateTags(context.Background(), &ec2.CreateTagsInput{
				Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("case"), Value: aws.String("burst")}}})
		})
	}
	wg.Wait()
	return errs
}

func instances(c *fakeaws.Cloud, n int) []string {
	vpc := c.AddVPC()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc})
	}
	return ids
}

// A burst three times EC2's CreateTags bucket (100, 10 a second), through
// the pacer against a fake throttled as EC2 is: no call is refused and
// every instance carries its tag. Without the pacer the same burst is
// refused (the test can fail). Scale 10: the 24 s the refill takes on AWS
// take 2.4 s; a call that arrives up to 200 ms late (2 s in AWS time: the
// headroom's LateArrival less a whole refill second) still finds a token.
func TestPacedBurstDrawsNoThrottle(t *testing.T) {
	const scale, n = 10, 300
	c := fakeaws.New()
	ids := instances(c, n)
	c.Latency = 100 * time.Millisecond / scale
	c.SetRequestThrottle(&fakeaws.RequestThrottle{Scale: scale})
	paced := cloud.PaceEC2(c.EC2(), cloud.NewPacer(cloud.PacerOptions{Scale: scale}))
	for i, err := range tagBurst(paced, ids) {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := c.Throttled("CreateTags"); got != 0 {
		t.Errorf("the fake refused %d paced calls", got)
	}
	for _, id := range ids {
		if !hasTag(c.Instance(id).Tags, "case", "burst") {
			t.Fatalf("%s has no case tag", id)
		}
	}

	unpaced := fakeaws.New()
	ids = instances(unpaced, n)
	unpaced.SetRequestThrottle(&fakeaws.RequestThrottle{Scale: scale})
	tagBurst(unpaced.EC2(), ids)
	if unpaced.Throttled("CreateTags") == 0 {
		t.Error("the same burst unpaced drew no throttle: the fake's bucket is not EC2's")
	}
}

func hasTag(tags []types.Tag, k, v string) bool {
	for _, tag := range tags {
		if aws.ToString(tag.Key) == k && aws.ToString(tag.Value) == v {
			return true
		}
	}
	return false
}

// Callers queued on an empty bucket get its tokens snapshot first, then
// isolation, then the rest in arrival order. One token every ~0.5 s: the
// callers are all queued long before the first is due.
func TestPacerServesCriticalPathFirst(t *testing.T) {
	p := cloud.NewPacer(cloud.PacerOptions{Shape: func(string) cloud.BucketShape {
		return cloud.BucketShape{Burst: 1, Rate: 2 / cloud.RateHeadroom}
	}})
	ctx := context.Background()
	if err := p.Wait(ctx, "Op", cloud.PriorityNormal); err != nil { // empties the bucket
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for i, c := range []struct {
		name string
		prio cloud.Priority
	}{{"normal-1", cloud.PriorityNormal}, {"normal-2", cloud.PriorityNormal}, {"isolation", cloud.PriorityIsolation}, {"snapshot", cloud.PrioritySnapshot}} {
		wg.Go(func() {
			if err := p.Wait(ctx, "Op", c.prio); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, c.name)
			mu.Unlock()
		})
		waitFor(t, func() bool { return p.Waiting("Op") == i+1 })
	}
	wg.Wait()
	want := []string{"snapshot", "isolation", "normal-1", "normal-2"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("tokens went to %v, want %v", order, want)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A throttle halves the bucket's rate; quiet windows bring it back to the
// nominal rate step by step.
func TestPacerBacksOffAndRecovers(t *testing.T) {
	const scale = 100 // a backoff window of 10 ms
	p := cloud.NewPacer(cloud.PacerOptions{Scale: scale})
	ctx := context.Background()
	rate := func() (cur, nominal float64) {
		for _, s := range p.Stats() {
			if s.Action == "ModifyNetworkInterfaceAttribute" {
				return s.Rate, s.Nominal
			}
		}
		t.Fatal("no bucket")
		return 0, 0
	}
	if err := p.Wait(ctx, "ModifyNetworkInterfaceAttribute", cloud.PriorityNormal); err != nil {
		t.Fatal(err)
	}
	p.Throttled("ModifyNetworkInterfaceAttribute")
	p.Throttled("ModifyNetworkInterfaceAttribute") // the same burst: no second cut
	cur, nominal := rate()
	if cur != nominal/2 {
		t.Fatalf("rate after a throttle %.2f, want half of %.2f", cur, nominal)
	}
	waitFor(t, func() bool {
		if err := p.Wait(ctx, "ModifyNetworkInterfaceAttribute", cloud.PriorityNormal); err != nil {
			t.Fatal(err)
		}
		cur, _ := rate()
		return cur == nominal
	})
}

// A caller whose context ends while it waits gets a cancelled error and
// leaves the queue.
func TestPacerWaitEndsWithContext(t *testing.T) {
	p := cloud.NewPacer(cloud.PacerOptions{Shape: func(string) cloud.BucketShape { return cloud.BucketShape{Burst: 1, Rate: 0.001} }})
	if err := p.Wait(context.Background(), "Op", cloud.PriorityNormal); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx, "Op", cloud.PriorityNormal); err == nil {
		t.Fatal("a wait on an empty bucket outlived its context")
	}
	if n := p.Waiting("Op"); n != 0 {
		t.Errorf("%d callers still queued", n)
	}
}
