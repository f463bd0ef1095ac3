package integration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIsolationNotHeldByEvidenceRetries: EC2 answers CreateSnapshots with
// 503 for good. The snapshot request is an evidence call that containment
// waits for: its retries end after step.EvidenceRetryBound (15 s) at the
// latest (sooner when its ten attempts, with the isolation path's backoff
// of at most cloud.UrgentMaxBackoff, run out first), then the step fails and
// says so, and the instance is contained; the case is contained with its
// evidence incomplete (exit 3). With the SDK's 20 s backoff and no bound the
// ten attempts took minutes.
func TestIsolationNotHeldByEvidenceRetries(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	f.proxy.Fail("CreateSnapshots", 1_000_000, http.StatusServiceUnavailable, EC2Error("Unavailable", "The service is unavailable."))
	caseID := "case-snapshots-unavailable"
	start := time.Now()
	res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-dir", f.caseDir)
	took := time.Since(start)
	if res.Code != exitEvidenceFailed {
		t.Fatalf("want exit %d (contained, evidence incomplete):\n%s", exitEvidenceFailed, res)
	}
	if took > 30*time.Second {
		t.Errorf("the response took %s: the snapshot retries held up isolation", took)
	}
	assertContained(t, f.aws, l, caseID)
	var m manifest
	must(t, json.Unmarshal(dirStore(f.caseDir, caseID)(t, "manifest.json"), &m))
	failed := strings.Join(failedSteps(m), "; ")
	if !strings.Contains(failed, "snapshots: ") || !strings.Contains(failed, "Unavailable") {
		t.Errorf("failed steps %q: want snapshots, with the endpoint's answer", failed)
	}
	if n := f.proxy.Injected("CreateSnapshots"); n < 2 {
		t.Errorf("CreateSnapshots was answered %d times: it was not retried", n)
	}
}
