package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// killOnPut is a front before the test's proxy that kills the binary (by
// cancelling the context it runs under) when it PUTs an object whose key
// ends with suffix: the PUT never reaches moto, and nothing after it runs.
func killOnPut(t *testing.T, target, suffix string, kill context.CancelFunc) *httptest.Server {
	t.Helper()
	u, err := url.Parse(target)
	must(t, err)
	backend := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, suffix) {
			kill()
			// The process dies while it waits for the answer. (The server
			// may not see the connection close: the body is unread.)
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			http.Error(w, "killed", http.StatusServiceUnavailable)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRespondKilledWhileSavingOnMoto kills the real binary at the PUT of
// its record's seal, and at the PUT of manifest.json, then runs it again:
// the case goes on from the history copy the killed run wrote (run 2 after
// run 1, run 1 kept whole) and verifies intact. Before the recovery, the
// next run took run 1 again and failed on its history copy, for ever.
// (Killed at the history copy itself, the next run must wait for the killed
// run's lock to go stale, 3 minutes: TestNextRunContinuesAnInterruptedSave
// in package responder shows that case with a clock of its own.)
func TestRespondKilledWhileSavingOnMoto(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	for _, dieAt := range []string{"history/manifest-run-001.json.sha256", "/manifest.json"} {
		t.Run(strings.TrimPrefix(dieAt, "/"), func(t *testing.T) {
			caseID := "case-killed-" + slug(dieAt)
			args := []string{"respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-bucket", l.Bucket,
				"--steps", "metadata,console-output,snapshots"}

			ctx, kill := context.WithTimeout(context.Background(), time.Minute)
			defer kill()
			front := killOnPut(t, f.proxy.URL, dieAt, kill)
			if _, err := Run(ctx, suite.bin, Env(front.URL, f.home), args...); err == nil {
				t.Fatalf("the run was not killed at %s", dieAt)
			}

			if res := f.run(args...); res.Code != exitOK {
				t.Fatalf("the next run: want exit %d:\n%s", exitOK, res)
			}
			var m struct {
				Runs []struct {
					Run int `json:"run"`
				} `json:"runs"`
				Steps []struct {
					Run    int    `json:"run"`
					Name   string `json:"name"`
					Status string `json:"status"`
				} `json:"steps"`
				Snapshots []struct {
					Run int `json:"run"`
				} `json:"snapshots"`
			}
			must(t, json.Unmarshal(bucketStore(f.aws, l.Bucket, caseID)(t, "manifest.json"), &m))
			if len(m.Runs) != 2 || m.Runs[0].Run != 1 || m.Runs[1].Run != 2 {
				t.Fatalf("runs %+v, want 1 (the killed run, from its history copy) and 2", m.Runs)
			}
			tookSnapshots := false
			for _, s := range m.Steps {
				tookSnapshots = tookSnapshots || (s.Run == 1 && s.Name == "snapshots" && s.Status == "ok")
			}
			if !tookSnapshots || len(m.Snapshots) != 2 || m.Snapshots[0].Run != 1 {
				t.Errorf("the killed run's snapshots step is not kept whole: steps %+v snapshots %+v", m.Steps, m.Snapshots)
			}
			if res := f.run("verify", "--case-id", caseID, "--evidence-bucket", l.Bucket, "--no-snapshots"); res.Code != exitOK {
				t.Errorf("verify: want exit %d:\n%s", exitOK, res)
			}
		})
	}
}
