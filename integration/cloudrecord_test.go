package integration

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// The real binary's default plan stores the cloud's record of the instance
// against moto: cloudtrail-events.json (moto lacks LookupEvents: the proxy
// answers it from the events this test adds, StubLookupEvents) and
// findings.json (moto's GuardDuty has no detector, so that source is
// recorded as skipped; moto's Security Hub answers GetFindings), both with
// the SHA-256 the record names (assertManifest re-hashes every artifact).
func TestCloudRecordArtifacts(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	now := time.Now()
	f.trail.AddEvent("ev-run", "RunInstances", "", now.Add(-2*time.Hour), l.InstanceID)
	f.trail.AddEvent("ev-role", "GetCallerIdentity", l.InstanceID, now.Add(-time.Hour))
	f.trail.AddEvent("ev-old", "RunInstances", "", now.Add(-48*time.Hour), l.InstanceID)
	f.trail.AddEvent("ev-other", "StopInstances", "", now.Add(-time.Hour), "i-0123456789abcdef0")
	caseID := "case-cloud-record"
	res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-dir", f.caseDir, "--output", "json")
	if res.Code != exitOK {
		t.Fatalf("want exit %d:\n%s", exitOK, res)
	}
	get := dirStore(f.caseDir, caseID)
	m := assertManifest(t, get, l, caseID, assertSnapshots(t, f.aws, l, caseID))
	var paths []string
	for _, a := range m.Artifacts {
		paths = append(paths, a.Path)
	}
	for _, want := range []string{l.InstanceID + "/cloudtrail-events.json", l.InstanceID + "/findings.json"} {
		if !slices.Contains(paths, want) {
			t.Errorf("artifact %s not recorded (artifacts %v)", want, paths)
		}
	}
	status := map[string]string{}
	for _, s := range m.Steps {
		status[s.Name] = s.Status
	}
	if status["cloudtrail-events"] != "ok" || status["findings"] == "failed" {
		t.Errorf("cloudtrail-events %s, findings %s", status["cloudtrail-events"], status["findings"])
	}
	var trail struct {
		Events []struct {
			EventID string `json:"event_id"`
		} `json:"events"`
	}
	if err := json.Unmarshal(get(t, l.InstanceID+"/cloudtrail-events.json"), &trail); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range trail.Events {
		ids = append(ids, e.EventID)
	}
	if !slices.Equal(ids, []string{"ev-run", "ev-role"}) {
		t.Errorf("events %v, want ev-run then ev-role (the instance's, in the 24h window, oldest first)", ids)
	}
	var findings struct {
		GuardDuty struct {
			Status string `json:"status"`
		} `json:"guardduty"`
	}
	if err := json.Unmarshal(get(t, l.InstanceID+"/findings.json"), &findings); err != nil {
		t.Fatal(err)
	}
	if findings.GuardDuty.Status != "skipped" {
		t.Errorf("GuardDuty %s, want skipped (moto has no detector)", findings.GuardDuty.Status)
	}
}
