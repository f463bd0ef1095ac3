// Package integration runs the real responder binary against the moto AWS
// emulator: it starts moto on a loopback port, builds a suspect lab in it
// (package lab), runs `responder respond`, and checks the resulting state
// through the AWS API. FaultProxy sits between the binary and moto to inject
// throttling, latency and answers moto does not implement.
//
// The helpers here are exported so that a benchmark can reuse them.
package integration

import (
	"context"
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/responder-ir/responder/internal/errlist"
)

// Moto is a running moto server.
type Moto struct {
	URL  string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited
}

// MotoEndpointEnv names an already-running moto to use instead of starting
// one (for example MOTO_ENDPOINT=http://127.0.0.1:5000).
const MotoEndpointEnv = "MOTO_ENDPOINT"

// motoServer runs moto.server with the fixes of its emulation the tests need
// (see the file).
//
//go:embed motoserver.py
var motoServer string

// StartMoto starts moto's server (through motoserver.py, which fixes what
// moto emulates unlike AWS) on a free loopback port and waits until it
// answers. Its output goes to logPath. When MOTO_ENDPOINT is set, that
// server is used as it is and Stop leaves it running.
func StartMoto(ctx context.Context, logPath string) (*Moto, error) {
	if url := os.Getenv(MotoEndpointEnv); url != "" {
		m := &Moto{URL: url}
		return m, m.waitReady(ctx, 10*time.Second)
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("moto needs python3: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("moto log: %w", err)
	}
	cmd := exec.Command(python, "-c", motoServer, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group, so Stop also ends anything moto started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start moto: %w", err)
	}
	m := &Moto{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, log: logFile, done: make(chan struct{})}
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(m.done) }()
	readyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- m.waitReady(readyCtx, 60*time.Second) }()
	select {
	case err := <-ready:
		if err != nil {
			m.Stop()
			return nil, fmt.Errorf("%w (log: %s)", err, logPath)
		}
		return m, nil
	case <-m.done:
		logFile.Close()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("moto exited at start (%v): is the moto package installed for %s? its output:\n%s",
			waitErr, python, lastLines(string(log), 5))
	}
}

// waitReady polls moto's management API until it answers 200.
func (m *Moto) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/moto-api/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("moto at %s did not answer within %s: %v", m.URL, limit, errlist.Join(err, ctx.Err()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop ends the moto process (and its process group) it started.
func (m *Moto) Stop() {
	if m == nil || m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
	m.log.Close()
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
