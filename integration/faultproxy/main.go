// Command faultproxy runs integration.FaultProxy in front of an emulator
// until it is interrupted. It prints its URL on the first line of stdout.
// The demo uses it so that GetConsoleScreenshot, LockSnapshot,
// DescribeLockedSnapshots, CloudTrail LookupEvents and the connection tracking
// timeouts of network interfaces, which moto does not implement, get an
// answer:
//
//	faultproxy -target http://127.0.0.1:5000 -screenshot -snapshot-lock -lookup-events -connection-tracking [-latency 100ms]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/responder-ir/responder/integration"
)

func main() {
	target := flag.String("target", "", "emulator URL to forward to")
	latency := flag.Duration("latency", 0, "added before every request")
	screenshot := flag.Bool("screenshot", false, "answer GetConsoleScreenshot with a 1x1 JPEG (moto does not implement it)")
	snapshotLock := flag.Bool("snapshot-lock", false, "answer LockSnapshot and DescribeLockedSnapshots from a table of locks (moto does not implement them)")
	lookupEvents := flag.Bool("lookup-events", false, "answer CloudTrail LookupEvents with an empty Event history (moto does not implement it)")
	connTrack := flag.Bool("connection-tracking", false, "keep the connection tracking timeouts of network interfaces (ModifyNetworkInterfaceAttribute, DescribeNetworkInterfaces), which moto ignores")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "faultproxy: -target is required")
		os.Exit(2)
	}
	p, err := integration.NewFaultProxy(*target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultproxy:", err)
		os.Exit(1)
	}
	defer p.Close()
	p.SetLatency(*latency)
	if *screenshot {
		p.StubConsoleScreenshot()
	}
	if *snapshotLock {
		p.StubSnapshotLock()
	}
	if *lookupEvents {
		p.StubLookupEvents()
	}
	if *connTrack {
		p.StubConnectionTracking()
	}
	fmt.Println(p.URL)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
}
