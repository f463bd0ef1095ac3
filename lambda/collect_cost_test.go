package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// costRun runs the definition with a function stand-in for a collect case
// whose capture takes capture (and whose SSM Agent answers at the first
// look, snapshots complete at the first poll, copies are not configured),
// with the capture poll Wait set to wait seconds. It returns the states
// entered (Step Functions standard workflows bill each state transition),
// the function's invocations, and the seconds from the capture's end to the
// poll that sees it.
func costRun(t *testing.T, capture, wait int) (transitions, invocations, lag int) {
	t.Helper()
	m, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	st := m.States["WaitForCapture"]
	st.Seconds = wait
	m.States["WaitForCapture"] = st
	elapsed := 0 // seconds since the command was sent
	invoke := func(payload []byte) (json.RawMessage, *taskError) {
		var p struct{ Task, Stage string }
		_ = json.Unmarshal(payload, &p)
		var out any
		switch p.Task {
		case "respond":
			out = map[string]any{"status": "contained", "location": "s3://e/cases/c/", "snapshot_ids": []string{"snap-1"}, "steps_failed": []string{},
				"collect": true, "collection_id": "run-001"}
		case "collect":
			r := map[string]any{"requested": true, "stage": p.Stage, "collection_id": "run-001", "failed": false, "error": "",
				"online": true, "timed_out": false, "command_id": "c", "command_status": "InProgress", "terminal": false,
				"polls": 0, "parts_uploaded": 0, "bytes_uploaded": 0, "image_path": "", "image_sha256": "", "aborted": ""}
			switch p.Stage {
			case "poll":
				if elapsed >= capture {
					r["terminal"], r["command_status"] = true, "Success"
					lag = elapsed - capture
				}
			case "finish":
				r["image_path"], r["image_sha256"] = "i/memory/run-001/memory-image", strings.Repeat("0", 64)
			case "close":
				out = map[string]any{"status": "contained", "location": "s3://e/cases/c/", "snapshot_ids": []string{"snap-1"}, "steps_failed": []string{}}
			}
			if out == nil {
				out = r
			}
		case "snapshot-status":
			out = map[string]any{"complete": true, "failed": false, "percent": 100, "polls": 1, "problems": []string{}}
		case "preserve":
			out = map[string]any{"configured": false, "complete": true, "failed": false, "percent": 100, "polls": 1, "problems": []string{}}
		}
		b, _ := json.Marshal(out)
		return b, nil
	}
	input := map[string]any{"case_id": "c", "instance_id": "i-0123456789abcdef0", "account_id": "111122223333", "region": "us-east-1",
		"playbook": "collect", "actor": "a", "source": "api", "case_id_given": false, "requested_at": "2026-12-04T22:00:00Z", "findings": []any{}, "force": false}
	ex, err := m.run(input, invoke, func() { elapsed += wait }, 100000)
	if err != nil || ex.End != "Done" {
		t.Fatalf("run: %v, ended at %s (%s)", err, ex.End, ex.Cause)
	}
	return len(ex.Visits), ex.Invocations, lag
}

// The cost of a memory capture in the state machine, from the definition:
// the states entered and the function's invocations for captures of a given
// length, at the definition's poll interval and others (BENCHMARKS.md,
// "Memory capture from the Lambda"). Run with -v for the table.
func TestCollectionCost(t *testing.T) {
	def := 30 // the definition's WaitForCapture
	m, err := loadMachine(definitionPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.States["WaitForCapture"].Seconds; got != def {
		t.Fatalf("WaitForCapture waits %d s, the table assumes %d", got, def)
	}
	// Fixed part: the whole case with a capture that ends before the first
	// poll.
	base, baseInv, _ := costRun(t, 0, def)
	var b strings.Builder
	fmt.Fprintf(&b, "fixed: %d transitions, %d invocations (respond, access, prepare, send, one poll, finish, close, snapshots, preserve)\n", base, baseInv)
	fmt.Fprintf(&b, "| capture | poll every | transitions | invocations | mean lag to evidence |\n|---|---|---|---|---|\n")
	for _, capture := range []int{60, 600, 1800} {
		for _, wait := range []int{10, 30, 60, 120} {
			tr, inv, _ := costRun(t, capture, wait)
			polls := int(math.Ceil(float64(capture) / float64(wait)))
			if want := base + 3*(polls-1); capture > 0 && tr != want {
				t.Errorf("capture %d s, poll %d s: %d transitions, want %d (3 per extra poll)", capture, wait, tr, want)
			}
			fmt.Fprintf(&b, "| %d min | %d s | %d | %d | %.0f s |\n", capture/60, wait, tr, inv, float64(wait)/2)
		}
	}
	// A 16 GiB image at the stream-upload rate measured on loopback
	// (BENCHMARKS.md, 271 MB/s with zstd) and at 50 MB/s.
	for _, rate := range []float64{271e6, 50e6} {
		capture := int(math.Ceil(16 * (1 << 30) / rate))
		tr, inv, _ := costRun(t, capture, def)
		fmt.Fprintf(&b, "16 GiB at %.0f MB/s (%d s), poll every %d s: %d transitions, %d invocations\n", rate/1e6, capture, def, tr, inv)
	}
	t.Log("\n" + b.String())
}
