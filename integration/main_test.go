package integration

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/responder-ir/responder/internal/lab"
	"github.com/responder-ir/responder/internal/testenv"
)

// suite is what TestMain prepared for every test.
var suite struct {
	moto    *Moto
	motoErr error // why moto could not start: the tier skips locally, fails in CI
	bin     string
	binErr  error // the binary does not build: always a failure
	dir     string
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if testing.Short() {
		return m.Run() // every test skips itself under -short
	}
	dir, err := os.MkdirTemp("", "responder-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	suite.dir = dir

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logPath := filepath.Join(dir, "moto.log")
	suite.moto, suite.motoErr = StartMoto(ctx, logPath)
	defer suite.moto.Stop()
	suite.bin, suite.binErr = BuildBinary(ctx, dir)

	code := m.Run()
	if code != 0 && suite.moto != nil {
		if log, err := os.ReadFile(logPath); err == nil && motoErrors(string(log), 60) != "" {
			fmt.Fprintf(os.Stderr, "--- moto's log: tracebacks and 5xx answers\n%s\n", motoErrors(string(log), 60))
		}
	}
	return code
}

// fixture is one test's view of the suite: its own proxy in front of moto,
// its own lab, clients that talk to moto directly, and a fresh HOME.
type fixture struct {
	t       testing.TB
	proxy   *FaultProxy
	aws     *lab.Clients
	lab     *lab.Lab
	home    string
	caseDir string
	// env is added to the binary's environment (Env) on every run.
	env []string
	// locks are the snapshot locks the proxy keeps for moto, which lacks
	// LockSnapshot and DescribeLockedSnapshots (StubSnapshotLock).
	locks *SnapshotLocks
	// trail is the CloudTrail Event history the proxy answers LookupEvents
	// from, which moto lacks (StubLookupEvents).
	trail *TrailEvents
	// connTrack is the connection tracking timeouts the proxy keeps for
	// moto, which ignores them (StubConnectionTracking).
	connTrack *ConnTrackTimeouts
}

// setup prepares a test against moto. When moto cannot start, the test fails
// in CI and is skipped elsewhere (testenv.Missing).
func setup(t testing.TB) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("integration tier: skipped under -short")
	}
	if suite.motoErr != nil {
		testenv.Missing(t, "the integration tier: moto did not start: %v", suite.motoErr)
	}
	if suite.binErr != nil {
		t.Fatalf("the responder binary does not build: %v", suite.binErr)
	}
	proxy, err := NewFaultProxy(suite.moto.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.StubConsoleScreenshot()
	locks := proxy.StubSnapshotLock()
	trail := proxy.StubLookupEvents()
	connTrack := proxy.StubConnectionTracking()

	ctx := context.Background()
	clients, err := lab.NewClients(ctx, suite.moto.URL, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, proxy: proxy, aws: clients, home: t.TempDir(), caseDir: t.TempDir(), locks: locks, trail: trail, connTrack: connTrack}
}

var labCount atomic.Int32

// buildLab builds a fresh suspect lab for this test.
func (f *fixture) buildLab() *lab.Lab {
	f.t.Helper()
	name := fmt.Sprintf("t%02d-%s", labCount.Add(1), slug(f.t.Name()))
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	l, err := lab.Build(context.Background(), f.aws, name)
	if err != nil {
		f.t.Fatal(err)
	}
	f.lab = l
	return l
}

// run runs the binary through the test's proxy and logs how it ended.
func (f *fixture) run(args ...string) Result {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, suite.bin, append(Env(f.proxy.URL, f.home), f.env...), args...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Logf("responder %s: exit %d in %s", strings.Join(args, " "), res.Code, time.Since(start).Round(time.Millisecond))
	return res
}

var notSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	return strings.Trim(notSlug.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

var (
	accessLine = regexp.MustCompile(`^127\.0\.0\.1 - - \[.*\] ".*" (\d{3}) -$`)
	bannerLine = regexp.MustCompile(`^(WARNING: This is a development server|\s*\* Running on|Press CTRL\+C)`)
)

// motoErrors returns the last n lines of moto's log that tell of a problem:
// its tracebacks and the access lines of requests it answered with 5xx.
// (4xx answers are normal: a HEAD of a missing key, a DryRun...)
func motoErrors(log string, n int) string {
	var lines []string
	for _, line := range strings.Split(log, "\n") {
		if m := accessLine.FindStringSubmatch(line); m != nil {
			if strings.HasPrefix(m[1], "5") {
				lines = append(lines, line)
			}
			continue
		}
		if strings.TrimSpace(line) != "" && !bannerLine.MatchString(line) {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
