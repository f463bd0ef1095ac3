package report

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	gdtypes "github.com/aws/aws-sdk-go-v2/service/guardduty/types"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	steps "github.com/responder-ir/responder/responder/step"
)

// cloudRecordCase runs the cloudtrail-events and findings steps on the fake
// and records what they stored in a case of the store.
func cloudRecordCase(t *testing.T) (*memStore, *evidence.Manifest) {
	t.Helper()
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	now := time.Now().UTC()
	c.AddTrailEvents(cttypes.Event{EventId: aws.String("ev-stop"), EventTime: aws.Time(now.Add(-time.Hour)), EventName: aws.String("StopInstances"),
		EventSource: aws.String("ec2.amazonaws.com"), Username: aws.String("mallory"),
		Resources: []cttypes.Resource{{ResourceName: aws.String(id)}}})
	c.EnableGuardDuty()
	c.AddGuardDutyFinding(gdtypes.Finding{Id: aws.String("gd-1"), Type: aws.String("CryptoCurrency:EC2/BitcoinTool.B!DNS"), Title: aws.String("Bitcoin-related domain queried"),
		Severity: aws.Float64(8), Resource: &gdtypes.Resource{InstanceDetails: &gdtypes.InstanceDetails{InstanceId: aws.String(id)}}})
	out, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	env := &steps.Env{
		Target:  steps.Target{CaseID: "case-1", Instance: out.Reservations[0].Instances[0], AccountID: c.Account, Region: c.Region, Run: 1},
		Clients: steps.Clients{Store: store, CloudTrail: c.CloudTrail(), GuardDuty: c.GuardDuty(), SecurityHub: c.SecurityHub()},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, s := range []steps.Step{steps.CloudTrailEvents{}, steps.Findings{}} {
		if res := s.Run(context.Background(), env); res.Status == evidence.StatusFailed {
			t.Fatalf("%s: %v", s.Name(), res.Err)
		}
	}
	m := &evidence.Manifest{CaseID: "case-1", InstanceID: id, Artifacts: env.Artifacts()}
	return store, m
}

// The section lists the events and findings the steps stored, once their
// SHA-256 matches the record; a changed artifact is not shown, and says so.
func TestCloudRecordSection(t *testing.T) {
	store, m := cloudRecordCase(t)
	cr, notes := cloudRecord(context.Background(), store, m)
	if len(notes) != 0 || cr == nil {
		t.Fatalf("notes %v, record %+v", notes, cr)
	}
	if len(cr.Events) != 1 || cr.Events[0].EventID != "ev-stop" || cr.Events[0].Username != "mallory" {
		t.Errorf("events %+v", cr.Events)
	}
	if len(cr.Findings) != 1 || cr.Findings[0].Service != "GuardDuty" || cr.Findings[0].Severity != 8 {
		t.Errorf("findings %+v", cr.Findings)
	}
	r := FromManifest(m, store, "responder test", t0)
	r.CloudRecord = cr
	var md, html bytes.Buffer
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"markdown": md.String(), "html": html.String()} {
		for _, want := range []string{"record of the instance</", "ev-stop", "StopInstances", "gd-1", "Security Hub skipped"} {
			if name == "markdown" && strings.HasSuffix(want, "</") {
				want = "## The cloud's record of the instance"
			}
			if !strings.Contains(out, want) {
				t.Errorf("%s report lacks %q", name, want)
			}
		}
	}

	for _, a := range m.Artifacts {
		store.files["case-1/"+a.Path] = append(store.files["case-1/"+a.Path], ' ')
	}
	cr, notes = cloudRecord(context.Background(), store, m)
	if cr != nil || len(notes) != 2 || !strings.Contains(notes[0], "does NOT match") {
		t.Errorf("changed artifacts: record %+v, notes %v", cr, notes)
	}
}

// The CloudTrail events are on the case timeline, among the response's
// moments, in time order: the attacker's StopInstances an hour before the
// run comes before "run 1 started".
func TestCloudTrailEventsOnTheCaseTimeline(t *testing.T) {
	store, m := cloudRecordCase(t)
	started := time.Now().UTC()
	m.SchemaVersion = evidence.SchemaVersion
	m.Runs = []evidence.Run{{Number: 1, Playbook: "default", Status: evidence.CaseContained, StartedAt: started, EndedAt: started.Add(time.Second)}}
	if err := store.SaveManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r, err := Build(context.Background(), store, "case-1", Options{Tool: "responder test"})
	if err != nil {
		t.Fatal(err)
	}
	var onTimeline bool
	for _, e := range r.Timeline {
		onTimeline = onTimeline || (e.Kind == KindCloudTrail && e.Action == "StopInstances" && e.Actor == "mallory")
	}
	if !onTimeline {
		t.Fatalf("no CloudTrail event on the timeline: %+v", r.Timeline)
	}
	var md, html bytes.Buffer
	if err := Markdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"markdown": md.String(), "html": strings.ReplaceAll(html.String(), "<wbr>", "")} {
		i, j := strings.Index(out, "CloudTrail events and the response"), -1
		if i >= 0 {
			j = strings.Index(out[i:], "StopInstances")
		}
		k := strings.Index(out[max(i, 0):], "run 1 started")
		if i < 0 || j < 0 || k < 0 || j > k {
			t.Errorf("%s: the case timeline does not show StopInstances before run 1 started (section %d, event %d, run %d)", name, i, j, k)
		}
	}
}
