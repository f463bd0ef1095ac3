package ssmdocuments

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/responder-ir/responder/internal/testenv"
)

// TestLinuxVolatileData runs the Responder-LinuxVolatileData document on
// this machine against the receiver, and checks the archive it uploaded:
// every section listed with the right hash, every JSON section valid, and
// the facts planted for it found: a process whose executable was deleted
// (hashed through /proc/<pid>/exe) and a listening socket with its owner.
func TestLinuxVolatileData(t *testing.T) {
	t.Parallel()
	requireTools(t, "curl")
	r := newReceiver(t)

	// A process running a binary that no longer exists on disk.
	orig, err := os.ReadFile(testenv.LookPath(t, "install the Debian package coreutils", "sleep"))
	if err != nil {
		t.Fatal(err)
	}
	ghost := filepath.Join(t.TempDir(), "ghost-sleep")
	if err := os.WriteFile(ghost, orig, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ghost, "120")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := os.Remove(ghost); err != nil {
		t.Fatal(err)
	}
	// A listening socket owned by this test process.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	res := runDocument(t, LinuxVolatileData, map[string]string{
		"CaseId":     "case-7",
		"ArchiveUrl": r.objectURL("volatile.tar.gz"),
		"ResultUrl":  r.objectURL("volatile.json"),
		"RecentDays": "1",
	}, r.env())
	if strings.Contains(string(res.stdout)+string(res.stderr), "X-Amz-Signature") {
		t.Errorf("a presigned URL leaked into the output")
	}
	rep, err := ParseVolatileReport(res.stdout)
	if err != nil {
		t.Fatalf("%v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	if res.exit != 0 || rep.Status != StatusSucceeded || rep.Archive == nil {
		t.Fatalf("exit %d status %s: %s", res.exit, rep.Status, rep.Error)
	}
	archive, ok := r.object("volatile.tar.gz")
	if !ok {
		t.Fatal("archive not uploaded")
	}
	if sha256Hex(archive) != rep.Archive.SHA256 || int64(len(archive)) != rep.Archive.Bytes {
		t.Errorf("uploaded archive does not match the reported SHA-256 and size")
	}
	if _, ok := r.object("volatile.json"); !ok {
		t.Errorf("report not uploaded")
	}
	files := untar(t, archive)

	var index struct {
		Schema   string    `json:"schema"`
		Sections []Section `json:"sections"`
	}
	if err := json.Unmarshal(files["collection/index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	want := []string{"system", "processes", "sockets", "users", "modules", "mounts", "recent_files", "files",
		"logins_current", "logins_recent", "systemd_units", "process_tree", "network"}
	byName := map[string]Section{}
	for _, s := range index.Sections {
		byName[s.Name] = s
		body, ok := files[s.File]
		if !ok {
			t.Errorf("section %s: %s missing from the archive", s.Name, s.File)
			continue
		}
		if sha256Hex(body) != s.SHA256 || int64(len(body)) != s.Bytes {
			t.Errorf("section %s: content does not match its recorded SHA-256 and size", s.Name)
		}
		if s.Status == "ok" && strings.HasSuffix(s.File, ".json") && !json.Valid(body) {
			t.Errorf("section %s: invalid JSON", s.Name)
		}
		if s.Status != "ok" && s.Status != "unavailable" && s.Status != "failed" {
			t.Errorf("section %s: status %q", s.Name, s.Status)
		}
	}
	for _, name := range want {
		if _, ok := byName[name]; !ok {
			t.Errorf("section %s missing", name)
		}
	}
	for _, name := range []string{"system", "processes", "sockets", "users", "mounts", "recent_files", "files"} {
		if byName[name].Status != "ok" {
			t.Errorf("section %s: %s (%s); it needs only /proc and coreutils", name, byName[name].Status, byName[name].Stderr)
		}
	}

	var procs []struct {
		PID       int      `json:"pid"`
		Cmdline   []string `json:"cmdline"`
		Exe       string   `json:"exe"`
		Deleted   bool     `json:"exe_deleted"`
		ExeSHA256 *string  `json:"exe_sha256"`
	}
	if err := json.Unmarshal(files["collection/processes.json"], &procs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range procs {
		if p.PID == cmd.Process.Pid {
			found = true
			if !p.Deleted || !strings.HasSuffix(p.Exe, " (deleted)") || p.ExeSHA256 == nil || *p.ExeSHA256 != sha256Hex(orig) {
				t.Errorf("deleted-binary process: %+v, want exe_deleted with SHA-256 %s", p, sha256Hex(orig))
			}
			if len(p.Cmdline) != 2 || p.Cmdline[1] != "120" {
				t.Errorf("cmdline %q", p.Cmdline)
			}
		}
	}
	if !found {
		t.Errorf("process %d not in processes.json", cmd.Process.Pid)
	}

	var socks []struct {
		Protocol  string `json:"protocol"`
		LocalAddr string `json:"local_address"`
		LocalPort int    `json:"local_port"`
		State     string `json:"state"`
		PIDs      []int  `json:"pids"`
	}
	if err := json.Unmarshal(files["collection/sockets.json"], &socks); err != nil {
		t.Fatal(err)
	}
	found = false
	for _, s := range socks {
		if s.Protocol == "tcp" && s.LocalAddr == "127.0.0.1" && s.LocalPort == port && s.State == "LISTEN" {
			found = true
			if !containsInt(s.PIDs, os.Getpid()) {
				t.Errorf("listening socket :%d owned by %v, want %d", port, s.PIDs, os.Getpid())
			}
		}
	}
	if !found {
		t.Errorf("listening socket 127.0.0.1:%s not in sockets.json", strconv.Itoa(port))
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func untar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = body
	}
}
