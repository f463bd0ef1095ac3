package responder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// BenchmarkFleetRespond responds to N single-interface instances at once,
// all through one paced Clients, against the fake with 100 ms a call and
// EC2's token buckets per action, on a clock Scale times faster (refill
// ×Scale, latency ÷Scale, the pacer told the same): every time below is in
// AWS seconds (wall time × Scale). It reports the time until the last
// interface is quarantined beside the lower bound the
// ModifyNetworkInterfaceAttribute and CreateSnapshots buckets set for the
// calls of those actions the run made ((calls − bucket size) ÷ refill),
// the time until every containment step ended beside the bound of the
// busiest bucket the run drew on, AWS calls per instance, the throttling
// errors the fake answered (each reaches a caller: the fake has no SDK
// retryer) and the peak heap.
//
//	make bench-fleet
//	go test -run '^$' -bench BenchmarkFleetRespond -benchtime 1x -timeout 60m ./responder/
//
// FLEET_SCALE sets Scale (default 5: the machine's own delays, a scheduler
// behind, count Scale times over).
func BenchmarkFleetRespond(b *testing.B) {
	scale := 5.0
	if s, err := strconv.ParseFloat(os.Getenv("FLEET_SCALE"), 64); err == nil && s > 0 {
		scale = s
	}
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("instances-%d", n), func(b *testing.B) {
			var m fleetRun
			for i := 0; i < b.N; i++ {
				m = runFleet(b, n, scale)
			}
			b.ReportMetric(m.quarantined, "s-to-last-quarantined")
			b.ReportMetric(m.quarantineBound, "s-bound-quarantine")
			b.ReportMetric(m.contained, "s-to-contained")
			b.ReportMetric(m.containBound, "s-bound-contained")
			b.ReportMetric(m.callsPerInstance, "calls/instance")
			b.ReportMetric(float64(m.throttles), "throttles")
			b.ReportMetric(float64(m.notContained), "not-contained")
			b.ReportMetric(m.peakHeapMB, "peak-heap-MB")
			b.Logf("N=%d scale=%.0f: last quarantined %.1f s (bound %.1f s, %s), contained %.1f s (bound %.1f s, %s), %.1f calls/instance, %d throttles, %d not contained; calls: %s; last step ends (s): %s",
				n, scale, m.quarantined, m.quarantineBound, m.quarantineBy, m.contained, m.containBound, m.containBy, m.callsPerInstance, m.throttles, m.notContained, m.perAction, m.steps)
		})
	}
}

type fleetRun struct {
	quarantined, quarantineBound float64
	contained, containBound      float64
	quarantineBy, containBy      string
	callsPerInstance             float64
	throttles, notContained      int
	peakHeapMB                   float64
	perAction                    string
	steps                        string
}

// stepEnds lists, per step, when the last response ended it.
func stepEnds(results []*responder.Result, aws func(time.Time) float64) string {
	last := map[string]time.Time{}
	for _, res := range results {
		if res == nil {
			continue
		}
		for _, s := range res.Steps {
			if s.EndedAt.After(last[s.Name]) {
				last[s.Name] = s.EndedAt
			}
		}
	}
	names := make([]string, 0, len(last))
	for n := range last {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return last[names[i]].Before(last[names[j]]) })
	out := ""
	for _, n := range names {
		out += fmt.Sprintf("%s %.0f, ", n, aws(last[n]))
	}
	return out
}

// lastMove records when the last interface move (a change of its groups;
// not of its connection tracking timeouts, which comes after the
// quarantine) succeeded, and how many there were.
type lastMove struct {
	cloud.EC2
	at    atomic.Int64
	moves atomic.Int64
}

func (l *lastMove) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, o ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	out, err := l.EC2.ModifyNetworkInterfaceAttribute(ctx, in, o...)
	if err == nil && len(in.Groups) > 0 {
		l.moves.Add(1)
		now := time.Now().UnixNano()
		for {
			cur := l.at.Load()
			if now <= cur || l.at.CompareAndSwap(cur, now) {
				break
			}
		}
	}
	return out, err
}

func runFleet(b *testing.B, n int, scale float64) fleetRun {
	b.Helper()
	b.StopTimer()
	c := fakeaws.New()
	ids := fleet(c, n)
	c.Latency = time.Duration(float64(callLatency) / scale)
	c.SetRequestThrottle(&fakeaws.RequestThrottle{Scale: scale})
	moves := &lastMove{EC2: cloud.PaceEC2(c.EC2(), cloud.NewPacer(cloud.PacerOptions{Scale: scale}))}
	var first sync.Map // op -> time of its first call
	c.OnCall = func(op string) { first.LoadOrStore(op, time.Now()) }
	runtime.GC()
	stop := make(chan struct{})
	peak := watchHeap(stop)
	b.StartTimer()
	start := time.Now()
	results := respondAll(b, c, moves, newMemStore(), ids)
	b.StopTimer()
	close(stop)
	aws := func(t time.Time) float64 { return t.Sub(start).Seconds() * scale }
	m := fleetRun{quarantined: aws(time.Unix(0, moves.at.Load())), peakHeapMB: float64(<-peak) / (1 << 20)}
	var contained time.Time
	for _, res := range results {
		if res == nil || res.Status != evidence.CaseContained {
			m.notContained++
			continue
		}
		for _, s := range res.Steps {
			if s.Phase == string(step.Contain) && s.EndedAt.After(contained) {
				contained = s.EndedAt
			}
		}
	}
	m.contained = aws(contained)
	m.steps = stepEnds(results, aws)
	if t, ok := first.Load("ModifyInstanceAttribute"); ok {
		m.steps += fmt.Sprintf("first ModifyInstanceAttribute call %.0f", aws(t.(time.Time)))
	}
	m.quarantineBound, m.quarantineBy = quarantineBound(c, int(moves.moves.Load()))
	m.containBound, m.containBy = busiest(c)
	m.callsPerInstance = float64(c.TotalCalls()) / float64(n)
	m.throttles, m.perAction = callsByAction(c)
	return m
}

// quarantineBound is the larger of the bounds the interface moves (moves of
// the ModifyNetworkInterfaceAttribute bucket's calls) and the snapshot
// requests set on the last quarantine.
func quarantineBound(c *fakeaws.Cloud, moves int) (float64, string) {
	bound, by := busiest(c, "CreateSnapshots")
	s := cloud.EC2Bucket("ModifyNetworkInterfaceAttribute")
	if t := math.Max(0, float64(moves-s.Burst)) / s.Rate; t > bound {
		bound, by = t, fmt.Sprintf("ModifyNetworkInterfaceAttribute: %d group moves of %d calls, bucket %d + %.0f/s",
			moves, c.CallCount("ModifyNetworkInterfaceAttribute")-c.Throttled("ModifyNetworkInterfaceAttribute"), s.Burst, s.Rate)
	}
	return bound, by
}

// fleetOps are the EC2 operations a response may call.
var fleetOps = []string{
	"DescribeInstances", "DescribeInstanceAttribute", "DescribeVolumes", "DescribeSecurityGroups",
	"DescribeIamInstanceProfileAssociations", "DescribeSnapshots", "GetConsoleOutput", "GetConsoleScreenshot",
	"CreateSnapshots", "CreateTags", "ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute",
	"CreateSecurityGroup", "RevokeSecurityGroupEgress", "RevokeSecurityGroupIngress",
	"DisassociateIamInstanceProfile", "AssociateIamInstanceProfile", "DescribeNetworkInterfaces",
	"AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "DescribeNetworkAcls",
	"LockSnapshot", "DescribeLockedSnapshots", "DescribeVpcEndpoints", "DescribePrefixLists", "DescribeInstanceTypes",
}

// busiest returns the largest lower bound, in seconds, that one of the
// actions' buckets (all of fleetOps when none given) sets on the calls the
// run made of it, and which action that is.
func busiest(c *fakeaws.Cloud, actions ...string) (float64, string) {
	if len(actions) == 0 {
		actions = fleetOps
	}
	bound, by := 0.0, ""
	for _, op := range actions {
		calls := c.CallCount(op) - c.Throttled(op)
		s := cloud.EC2Bucket(op)
		if t := math.Max(0, float64(calls-s.Burst)) / s.Rate; t > bound || by == "" {
			bound, by = t, fmt.Sprintf("%s: %d calls, bucket %d + %.0f/s", op, calls, s.Burst, s.Rate)
		}
	}
	return bound, by
}

func callsByAction(c *fakeaws.Cloud) (int, string) {
	type count struct {
		op string
		n  int
	}
	var counts []count
	throttles := 0
	refused := map[string]int{}
	for _, op := range fleetOps {
		refused[op] = c.Throttled(op)
		throttles += refused[op]
		if n := c.CallCount(op); n > 0 {
			counts = append(counts, count{op, n})
		}
	}
	sort.Slice(counts, func(i, j int) bool { return counts[i].n > counts[j].n })
	s := ""
	for _, k := range counts {
		s += fmt.Sprintf("%s %d", k.op, k.n)
		if refused[k.op] > 0 {
			s += fmt.Sprintf(" (%d throttled)", refused[k.op])
		}
		s += ", "
	}
	return throttles, s
}

// watchHeap samples the heap in use until stop is closed, then sends its
// peak.
func watchHeap(stop <-chan struct{}) <-chan uint64 {
	peak := make(chan uint64, 1)
	var mu sync.Mutex
	var max uint64
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mu.Lock()
			if ms.HeapInuse > max {
				max = ms.HeapInuse
			}
			mu.Unlock()
			select {
			case <-stop:
				peak <- max
				return
			case <-t.C:
			}
		}
	}()
	return peak
}

// memStore is a write-once evidence store in memory. It keeps no
// blast-radius slots (their reads and writes answer an error, and the
// responses contain "without a slot", as they do when the store cannot
// say): every case reads every slot of the hour before it takes one
// (evidence.TakeBlastSlot), work that grows with the square of the fleet,
// is local (or S3) time rather than EC2's, and would be counted Scale
// times over in AWS seconds. BenchmarkBlastSlots measures it apart. It
// holds the bodies of the locks and of each case's manifest.json only (the
// rest is written and forgotten, as a folder or a bucket would not keep it
// in this process's memory), so that the peak heap is the responses'.
type memStore struct {
	mu    sync.Mutex
	files map[string][]byte // "<case>/<path>"
	slots bool              // keeps blast-radius slots
}

var errNoSlots = errors.New("this benchmark store keeps no blast-radius slots")

func (s *memStore) refuses(path string) bool {
	return !s.slots && strings.HasPrefix(path, "blast-radius/")
}

var _ evidence.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{files: map[string][]byte{}} }

func (s *memStore) Put(_ context.Context, caseID, path string, body []byte, _ string) (evidence.Stored, error) {
	if s.refuses(path) {
		return evidence.Stored{}, errNoSlots
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := caseID + "/" + path
	if _, ok := s.files[k]; ok {
		return evidence.Stored{}, fmt.Errorf("%s: %w", k, evidence.ErrExists)
	}
	s.files[k] = nil
	if caseID == evidence.LocksFolder {
		s.files[k] = append([]byte(nil), body...)
	}
	return evidence.Stored{}, nil
}

func (s *memStore) Get(_ context.Context, caseID, path string) ([]byte, error) {
	if s.refuses(path) {
		return nil, errNoSlots
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[caseID+"/"+path]
	if !ok {
		return nil, fmt.Errorf("%s/%s: %w", caseID, path, evidence.ErrNotFound)
	}
	return b, nil
}

func (s *memStore) Open(ctx context.Context, caseID, path string) (io.ReadCloser, error) {
	b, err := s.Get(ctx, caseID, path)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *memStore) Files(_ context.Context, caseID string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.files {
		if p, ok := strings.CutPrefix(k, caseID+"/"); ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *memStore) Cases(context.Context) ([]string, error) { return nil, nil }

func (s *memStore) SaveManifest(_ context.Context, m *evidence.Manifest) error {
	b, err := evidence.EncodeManifest(m)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[m.CaseID+"/"+evidence.HistoryName(m.LastRun())] = nil
	s.files[m.CaseID+"/"+evidence.ManifestName] = b
	return nil
}

func (s *memStore) Location(caseID, path string) string { return "mem://" + caseID + "/" + path }

// BenchmarkBlastSlots measures, in real seconds, N cases taking their
// blast-radius slots of one hour at once from an in-memory store, as N
// responses of a fleet do before they act (BenchmarkFleetRespond leaves
// this out): each case reads every slot, and the racers for a slot read it
// again and try the next.
//
//	go test -run '^$' -bench BenchmarkBlastSlots -benchtime 1x ./responder/
func BenchmarkBlastSlots(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("cases-%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				store := &memStore{files: map[string][]byte{}, slots: true}
				at := time.Now() // one window: an hour boundary mid-run must not refuse
				var wg sync.WaitGroup
				for k := range n {
					wg.Go(func() {
						_, _, err := evidence.TakeBlastSlot(context.Background(), store, evidence.BlastSlot{
							AccountID: fakeaws.DefaultAccount, CaseID: fmt.Sprintf("case-%04d", k), Taken: at}, n)
						if err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
		})
	}
}
