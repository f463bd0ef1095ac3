package step_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	gdtypes "github.com/aws/aws-sdk-go-v2/service/guardduty/types"
	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// recordEnv describes the instance as the engine does and returns an Env
// with the CloudTrail, GuardDuty and Security Hub clients.
func recordEnv(t *testing.T, c *fakeaws.Cloud, id string) *step.Env {
	t.Helper()
	out, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return &step.Env{
		Target: step.Target{CaseID: "case-1", Instance: out.Reservations[0].Instances[0], AccountID: c.Account, Region: c.Region, Run: 1},
		Clients: step.Clients{EC2: c.EC2(), Store: &evidence.Folder{Root: t.TempDir()},
			CloudTrail: c.CloudTrail(), GuardDuty: c.GuardDuty(), SecurityHub: c.SecurityHub()},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func trailEvent(id string, at time.Time, name, user string, resources ...string) cttypes.Event {
	e := cttypes.Event{EventId: aws.String(id), EventTime: aws.Time(at), EventName: aws.String(name),
		EventSource: aws.String("ec2.amazonaws.com"), CloudTrailEvent: aws.String(`{"eventID":"` + id + `"}`)}
	if user != "" {
		e.Username, e.AccessKeyId = aws.String(user), aws.String("ASIA"+strings.ToUpper(user[2:8]))
	}
	for _, r := range resources {
		e.Resources = append(e.Resources, cttypes.Resource{ResourceName: aws.String(r), ResourceType: aws.String("AWS::EC2::Instance")})
	}
	return e
}

// stored reads an artifact the step recorded and checks its SHA-256
// against the record.
func stored(t *testing.T, env *step.Env, name string, v any) {
	t.Helper()
	for _, a := range env.Artifacts() {
		if !strings.HasSuffix(a.Path, "/"+name) {
			continue
		}
		body, err := env.Clients.Store.Get(context.Background(), env.Target.CaseID, a.Path)
		if err != nil {
			t.Fatal(err)
		}
		if got := evidence.SHA256(body); got != a.SHA256 {
			t.Fatalf("%s: stored SHA-256 %s, recorded %s", a.Path, got, a.SHA256)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no artifact %s recorded (artifacts %+v)", name, env.Artifacts())
}

type storedTrail struct {
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Lookups     []struct {
		Attribute, Value string
		Pages, Events    int
	} `json:"lookups"`
	Events []struct {
		EventID         string    `json:"event_id"`
		EventTime       time.Time `json:"event_time"`
		EventName       string    `json:"event_name"`
		MatchedBy       []string  `json:"matched_by"`
		CloudTrailEvent string    `json:"cloudtrail_event"`
	} `json:"events"`
}

// The events about the instance, its interface, its volume and its role
// sessions are read over every page, kept once each, oldest first, inside
// the window; the lookups are paced so that CloudTrail never throttles.
func TestCloudTrailEventsPagedDedupedSortedAndPaced(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	env := recordEnv(t, c, id)
	eni := aws.ToString(env.Target.Instance.NetworkInterfaces[0].NetworkInterfaceId)
	vol := aws.ToString(env.Target.Instance.BlockDeviceMappings[0].Ebs.VolumeId)
	now := time.Now().UTC()
	// 120 events about the instance (three pages), every tenth also naming
	// its interface; 5 made by its role sessions; 2 about its volume; noise.
	for i := range 120 {
		res := []string{id}
		if i%10 == 0 {
			res = append(res, eni)
		}
		c.AddTrailEvents(trailEvent(fmt.Sprintf("ev-%03d", i), now.Add(-time.Duration(i)*time.Minute), "DescribeInstances", "", res...))
	}
	for i := range 5 {
		c.AddTrailEvents(trailEvent(fmt.Sprintf("role-%d", i), now.Add(-time.Duration(3*i+1)*time.Hour), "GetObject", id))
	}
	c.AddTrailEvents(trailEvent("vol-a", now.Add(-2*time.Hour), "AttachVolume", "", vol, id),
		trailEvent("vol-b", now.Add(-3*time.Hour), "CreateSnapshot", "", vol),
		trailEvent("old", now.Add(-25*time.Hour), "RunInstances", "", id),
		trailEvent("other", now.Add(-time.Hour), "StopInstances", "", "i-0123456789abcdef0"))

	res := step.CloudTrailEvents{}.Run(context.Background(), env)
	if res.Status != evidence.StatusOK {
		t.Fatalf("status %s: %s %v", res.Status, res.Reason, res.Err)
	}
	var doc storedTrail
	stored(t, env, "cloudtrail-events.json", &doc)
	if want := 120 + 5 + 2; len(doc.Events) != want {
		t.Fatalf("%d events stored, want %d (deduplicated, window 24h)", len(doc.Events), want)
	}
	ids := map[string]bool{}
	for i, e := range doc.Events {
		if ids[e.EventID] {
			t.Errorf("event %s stored twice", e.EventID)
		}
		ids[e.EventID] = true
		if i > 0 && e.EventTime.Before(doc.Events[i-1].EventTime) {
			t.Errorf("event %d (%s) is older than the one before it", i, e.EventID)
		}
		if e.EventID == "ev-010" && len(e.MatchedBy) != 2 {
			t.Errorf("ev-010 matched by %v, want the instance and its interface", e.MatchedBy)
		}
		if e.CloudTrailEvent != `{"eventID":"`+e.EventID+`"}` {
			t.Errorf("%s: record %q not kept as CloudTrail returned it", e.EventID, e.CloudTrailEvent)
		}
	}
	if ids["old"] || ids["other"] || !ids["vol-b"] || !ids["role-4"] {
		t.Errorf("wrong events: old %v other %v vol-b %v role-4 %v", ids["old"], ids["other"], ids["vol-b"], ids["role-4"])
	}
	if got := doc.WindowEnd.Sub(doc.WindowStart); got != 24*time.Hour {
		t.Errorf("window %s, want the default 24h", got)
	}
	if doc.Lookups[0].Pages != 3 {
		t.Errorf("instance lookup read %d pages, want 3", doc.Lookups[0].Pages)
	}
	var after struct {
		ByEventName  map[string]int `json:"by_event_name"`
		AccessKeyIDs []string       `json:"access_key_ids"`
	}
	decodeAfter(t, res, &after)
	if got := after.ByEventName; got["DescribeInstances"] != 120 || got["GetObject"] != 5 || got["AttachVolume"] != 1 {
		t.Errorf("count per event name %v", got)
	}
	if len(after.AccessKeyIDs) != 1 {
		t.Errorf("access keys of the role sessions %v, want one", after.AccessKeyIDs)
	}
	if n := c.LookupEventsThrottled(); n != 0 {
		t.Errorf("CloudTrail throttled %d lookups: the step is not paced to 2 per second", n)
	}
}

func decodeAfter(t *testing.T, res step.Result, v any) {
	t.Helper()
	raw, err := json.Marshal(res.After)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

// Throttling that gets through (another caller in the account used the
// rate) is retried with backoff and never reaches the record.
func TestCloudTrailEventsRetryThrottling(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	c.AddTrailEvents(trailEvent("ev-1", time.Now().Add(-time.Hour), "StartInstances", "", id))
	c.Throttle("LookupEvents", 2)
	env := recordEnv(t, c, id)
	res := step.CloudTrailEvents{}.Run(context.Background(), env)
	if res.Status != evidence.StatusOK {
		t.Fatalf("status %s: %s %v", res.Status, res.Reason, res.Err)
	}
	var doc storedTrail
	stored(t, env, "cloudtrail-events.json", &doc)
	if len(doc.Events) != 1 {
		t.Errorf("%d events, want 1", len(doc.Events))
	}
}

// The fake can fail the pacing test: lookups sent back to back, faster
// than two a second, are throttled.
func TestFakeThrottlesUnpacedLookups(t *testing.T) {
	c := fakeaws.New()
	for range 6 {
		_, _ = c.CloudTrail().LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{})
	}
	if c.LookupEventsThrottled() == 0 {
		t.Fatal("six lookups at once were not throttled")
	}
}

// The window comes from the playbook and is validated before any call.
func TestCloudTrailWindow(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		ok     bool
	}{{0, true}, {time.Hour, true}, {2160 * time.Hour, true}, {30 * time.Second, false}, {2161 * time.Hour, false}, {-time.Hour, false}} {
		err := step.CloudRecord{Window: step.Duration(tc.window)}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("window %s: error %v, want ok %v", tc.window, err, tc.ok)
		}
	}
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	now := time.Now()
	c.AddTrailEvents(trailEvent("recent", now.Add(-time.Hour), "StopInstances", "", id),
		trailEvent("yesterday", now.Add(-30*time.Hour), "RunInstances", "", id))
	env := recordEnv(t, c, id)
	env.CloudRecord = step.CloudRecord{Window: step.Duration(48 * time.Hour)}
	res := step.CloudTrailEvents{}.Run(context.Background(), env)
	var doc storedTrail
	stored(t, env, "cloudtrail-events.json", &doc)
	if res.Status != evidence.StatusOK || len(doc.Events) != 2 || doc.WindowEnd.Sub(doc.WindowStart) != 48*time.Hour {
		t.Errorf("status %s, %d events over %s; want both events over 48h", res.Status, len(doc.Events), doc.WindowEnd.Sub(doc.WindowStart))
	}
}

// A role without cloudtrail:LookupEvents is a recorded skip, not a failure.
func TestCloudTrailEventsDeniedIsSkipped(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	c.Deny("LookupEvents")
	env := recordEnv(t, c, id)
	res := step.CloudTrailEvents{}.Run(context.Background(), env)
	if res.Status != evidence.StatusSkipped || !strings.Contains(res.Reason, "AccessDeniedException") {
		t.Fatalf("status %s reason %q, want skipped naming AccessDeniedException", res.Status, res.Reason)
	}
	if len(env.Artifacts()) != 0 {
		t.Errorf("artifacts %+v, want none", env.Artifacts())
	}
}

type storedFindings struct {
	InstanceARN string `json:"instance_arn"`
	GuardDuty   struct {
		Status   string            `json:"status"`
		Reason   string            `json:"reason"`
		Findings []gdtypes.Finding `json:"findings"`
	} `json:"guardduty"`
	SecurityHub struct {
		Status   string                       `json:"status"`
		Reason   string                       `json:"reason"`
		Findings []shtypes.AwsSecurityFinding `json:"findings"`
	} `json:"security_hub"`
}

func addGuardDutyFindings(c *fakeaws.Cloud, instanceID, prefix string, n int) {
	for i := range n {
		c.AddGuardDutyFinding(gdtypes.Finding{Id: aws.String(fmt.Sprintf("%s-%03d", prefix, i)), Type: aws.String("Backdoor:EC2/C&CActivity.B"),
			Resource: &gdtypes.Resource{ResourceType: aws.String("Instance"), InstanceDetails: &gdtypes.InstanceDetails{InstanceId: aws.String(instanceID)}}})
	}
}

func addSecurityHubFindings(c *fakeaws.Cloud, arn, prefix string, n int) {
	for i := range n {
		c.AddSecurityHubFinding(shtypes.AwsSecurityFinding{Id: aws.String(fmt.Sprintf("%s-%03d", prefix, i)), Title: aws.String("EC2 instance has a public IP"),
			Types: []string{"Software and Configuration Checks"}, RecordState: shtypes.RecordStateActive,
			Resources: []shtypes.Resource{{Id: aws.String(arn), Type: aws.String("AwsEc2Instance")}}})
	}
}

// The findings about the instance are read over every page and batch; the
// findings of another instance are not.
func TestFindingsPresent(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	other := c.AddInstance(fakeaws.InstanceSpec{})
	c.EnableGuardDuty()
	c.EnableSecurityHub()
	arn := func(i string) string { return "arn:aws:ec2:" + c.Region + ":" + c.Account + ":instance/" + i }
	addGuardDutyFindings(c, id, "gd", 60) // two ListFindings pages, two GetFindings batches
	addGuardDutyFindings(c, other, "gd-other", 3)
	addSecurityHubFindings(c, arn(id), "sh", 130) // two pages
	addSecurityHubFindings(c, arn(other), "sh-other", 2)
	env := recordEnv(t, c, id)
	res := step.Findings{}.Run(context.Background(), env)
	if res.Status != evidence.StatusOK {
		t.Fatalf("status %s: %s %v", res.Status, res.Reason, res.Err)
	}
	var doc storedFindings
	stored(t, env, "findings.json", &doc)
	if doc.InstanceARN != arn(id) {
		t.Errorf("instance ARN %s", doc.InstanceARN)
	}
	gd, sh := findingIDs(doc)
	if len(gd) != 60 || len(sh) != 130 || slices.ContainsFunc(append(gd, sh...), func(s string) bool { return strings.Contains(s, "other") }) {
		t.Errorf("GuardDuty %d findings, Security Hub %d (want 60 and 130, none of the other instance)", len(gd), len(sh))
	}
	if c.CallCount("GetFindings") < 2 {
		t.Errorf("GetFindings called %d times", c.CallCount("GetFindings"))
	}
}

func findingIDs(doc storedFindings) (gd, sh []string) {
	for _, f := range doc.GuardDuty.Findings {
		gd = append(gd, aws.ToString(f.Id))
	}
	for _, f := range doc.SecurityHub.Findings {
		sh = append(sh, aws.ToString(f.Id))
	}
	sort.Strings(gd)
	sort.Strings(sh)
	return gd, sh
}

// Both services enabled, nothing about the instance: an empty record, ok.
func TestFindingsAbsent(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	c.EnableGuardDuty()
	c.EnableSecurityHub()
	env := recordEnv(t, c, id)
	res := step.Findings{}.Run(context.Background(), env)
	var doc storedFindings
	stored(t, env, "findings.json", &doc)
	if res.Status != evidence.StatusOK || doc.GuardDuty.Status != "collected" || doc.SecurityHub.Status != "collected" ||
		len(doc.GuardDuty.Findings)+len(doc.SecurityHub.Findings) != 0 {
		t.Errorf("status %s, %+v", res.Status, doc)
	}
}

// No detector, Security Hub not enabled: each source recorded as skipped
// with its reason, and the step skipped, not failed.
func TestFindingsServicesNotEnabled(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	env := recordEnv(t, c, id)
	res := step.Findings{}.Run(context.Background(), env)
	if res.Status != evidence.StatusSkipped {
		t.Fatalf("status %s: %s %v, want skipped", res.Status, res.Reason, res.Err)
	}
	var doc storedFindings
	stored(t, env, "findings.json", &doc)
	if doc.GuardDuty.Status != "skipped" || !strings.Contains(doc.GuardDuty.Reason, "no detector") {
		t.Errorf("GuardDuty %s %q", doc.GuardDuty.Status, doc.GuardDuty.Reason)
	}
	if doc.SecurityHub.Status != "skipped" || !strings.Contains(doc.SecurityHub.Reason, "InvalidAccessException") {
		t.Errorf("Security Hub %s %q", doc.SecurityHub.Status, doc.SecurityHub.Reason)
	}
}

// GuardDuty's findings are read although Security Hub is off, and a denied
// GuardDuty is a skip beside Security Hub's findings.
func TestFindingsOneSourceOnly(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	c.EnableGuardDuty()
	addGuardDutyFindings(c, id, "gd", 2)
	env := recordEnv(t, c, id)
	res := step.Findings{}.Run(context.Background(), env)
	var doc storedFindings
	stored(t, env, "findings.json", &doc)
	if res.Status != evidence.StatusOK || len(doc.GuardDuty.Findings) != 2 || doc.SecurityHub.Status != "skipped" {
		t.Errorf("status %s; GuardDuty %d findings; Security Hub %s", res.Status, len(doc.GuardDuty.Findings), doc.SecurityHub.Status)
	}

	c = fakeaws.New()
	id = c.AddInstance(fakeaws.InstanceSpec{})
	c.EnableGuardDuty()
	c.EnableSecurityHub()
	addSecurityHubFindings(c, "arn:aws:ec2:"+c.Region+":"+c.Account+":instance/"+id, "sh", 1)
	c.Deny("ListDetectors")
	env = recordEnv(t, c, id)
	res = step.Findings{}.Run(context.Background(), env)
	doc = storedFindings{}
	stored(t, env, "findings.json", &doc)
	if res.Status != evidence.StatusOK || doc.GuardDuty.Status != "skipped" || !strings.Contains(doc.GuardDuty.Reason, "AccessDeniedException") ||
		len(doc.SecurityHub.Findings) != 1 {
		t.Errorf("status %s; GuardDuty %s %q; Security Hub %d findings", res.Status, doc.GuardDuty.Status, doc.GuardDuty.Reason, len(doc.SecurityHub.Findings))
	}
}

// Nothing isolating waits for the cloud's record: no containment step of
// the default plan needs or awaits cloudtrail-events or findings, directly
// or through another step.
func TestCloudRecordOffIsolationPath(t *testing.T) {
	plan, err := step.Plan(step.DefaultPlan)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]step.Step{}
	for _, s := range plan {
		byName[s.Name()] = s
	}
	for _, name := range []string{"cloudtrail-events", "findings"} {
		if byName[name] == nil {
			t.Fatalf("the default plan does not run %s", name)
		}
	}
	for _, s := range plan {
		if i, ok := s.(step.Isolator); !ok || !i.Isolates() {
			continue
		}
		seen := map[string]bool{}
		var walk func(step.Step)
		walk = func(s step.Step) {
			waits := s.Needs()
			if a, ok := s.(step.Awaiter); ok {
				waits = append(waits, a.Awaits()...)
			}
			for _, w := range waits {
				name, _, _ := strings.Cut(w, ":")
				if seen[name] {
					continue
				}
				seen[name] = true
				if name == "cloudtrail-events" || name == "findings" {
					t.Errorf("containment step %s waits for %s", s.Name(), name)
				}
				if next := byName[name]; next != nil {
					walk(next)
				}
			}
		}
		walk(s)
	}
}
