package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// memStore is an evidence store in memory, with errors on demand.
type memStore struct {
	files    map[string][]byte // "<case>/<path>"
	getErr   map[string]error  // by path
	filesErr error
}

var _ evidence.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{files: map[string][]byte{}, getErr: map[string]error{}}
}

func (s *memStore) Put(_ context.Context, caseID, path string, body []byte, _ string) (evidence.Stored, error) {
	s.files[caseID+"/"+path] = append([]byte(nil), body...)
	return evidence.Stored{}, nil
}

func (s *memStore) Get(_ context.Context, caseID, path string) ([]byte, error) {
	if err := s.getErr[path]; err != nil {
		return nil, err
	}
	b, ok := s.files[caseID+"/"+path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", s.Location(caseID, path), evidence.ErrNotFound)
	}
	return b, nil
}

func (s *memStore) Open(ctx context.Context, caseID, path string) (io.ReadCloser, error) {
	b, err := s.Get(ctx, caseID, path)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *memStore) Files(_ context.Context, caseID string) ([]string, error) {
	if s.filesErr != nil {
		return nil, s.filesErr
	}
	var out []string
	for k := range s.files {
		if p, ok := strings.CutPrefix(k, caseID+"/"); ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *memStore) Cases(context.Context) ([]string, error) { return nil, nil }

func (s *memStore) SaveManifest(ctx context.Context, m *evidence.Manifest) error {
	b, err := evidence.EncodeManifest(m)
	if err != nil {
		return err
	}
	_, err = s.Put(ctx, m.CaseID, evidence.ManifestName, b, "application/json")
	return err
}

func (s *memStore) Location(caseID, path string) string { return "mem://cases/" + caseID + "/" + path }

var t0 = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)

func testJPEG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(1, 1, color.RGBA{G: 255, A: 255})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// baseManifest is a case of one run with no step.
func baseManifest() *evidence.Manifest {
	return &evidence.Manifest{
		SchemaVersion: evidence.SchemaVersion, CaseID: "case-1", InstanceID: "i-0123456789abcdef0",
		AccountID: "111122223333", Region: "eu-west-1", Actor: "arn:aws:iam::111122223333:user/alice",
		Tool: "responder test", Status: evidence.CaseContained, StartedAt: t0, EndedAt: t0.Add(time.Second),
		Runs: []evidence.Run{
			{Number: 1, Actor: "arn:aws:iam::111122223333:user/alice", Playbook: "default", Status: evidence.CaseContained, StartedAt: t0, EndedAt: t0.Add(time.Second)},
			{Number: 2, Actor: "arn:aws:iam::999988887777:user/bob", ActingAs: "arn:aws:sts::111122223333:assumed-role/Responder/case-1", Playbook: "default", Status: evidence.CaseContained, StartedAt: t0.Add(time.Hour), EndedAt: t0.Add(time.Hour + time.Second)},
		},
		Artifacts: []evidence.Artifact{}, Snapshots: []evidence.Snapshot{},
	}
}

func step(run int, name, phase, status string, before, after string) evidence.StepRecord {
	s := evidence.StepRecord{Run: run, Name: name, Phase: phase, Status: status,
		StartedAt: t0.Add(time.Duration(run-1) * time.Hour), EndedAt: t0.Add(time.Duration(run-1)*time.Hour + 10*time.Millisecond)}
	if before != "" {
		s.Before = raw(before)
	}
	if after != "" {
		s.After = raw(after)
	}
	if status == evidence.StatusFailed {
		s.Error = name + " failed: UnauthorizedOperation"
	}
	return s
}

func TestState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []evidence.StepRecord
		want  []StateRow
	}{
		{
			name: "changed in one run",
			steps: []evidence.StepRecord{
				step(1, "termination-protection", "contain", "ok", `{"disable_api_termination":false}`, `{"disable_api_termination":true}`),
			},
			want: []StateRow{{Aspect: "Termination protection (DisableApiTermination)", Subject: "i-0123456789abcdef0", Step: "termination-protection",
				Before: "disabled: the instance can be terminated through the API", After: "enabled", Changed: true, BeforeRun: 1, AfterRun: 1}},
		},
		{
			name: "skipped: the state is as found",
			steps: []evidence.StepRecord{
				step(1, "shutdown-behavior", "contain", "skipped", `{"instance_initiated_shutdown_behavior":"stop"}`, ""),
			},
			want: []StateRow{{Aspect: "Instance-initiated shutdown behaviour", Subject: "i-0123456789abcdef0", Step: "shutdown-behavior",
				Before: "stop", After: "stop", BeforeRun: 1, AfterRun: 1}},
		},
		{
			name: "before from the first run, after from the last",
			steps: []evidence.StepRecord{
				step(1, "instance-profile", "contain", "failed", `{"associations":[{"association_id":"iip-assoc-1","instance_profile_arn":"arn:aws:iam::111122223333:instance-profile/web","state":"associated"}]}`, ""),
				step(2, "instance-profile", "contain", "ok", `{"associations":[{"association_id":"iip-assoc-1","instance_profile_arn":"arn:aws:iam::111122223333:instance-profile/web","state":"associated"}]}`, `{"associations":null}`),
			},
			want: []StateRow{{Aspect: "Instance profile (role credentials)", Subject: "i-0123456789abcdef0", Step: "instance-profile",
				Before: "arn:aws:iam::111122223333:instance-profile/web (iip-assoc-1, associated)", After: "none", Changed: true, BeforeRun: 1, AfterRun: 2}},
		},
		{
			name: "the last run failed",
			steps: []evidence.StepRecord{
				step(1, "termination-protection", "contain", "ok", `{"disable_api_termination":false}`, `{"disable_api_termination":true}`),
				step(2, "termination-protection", "contain", "failed", "", ""),
			},
			want: []StateRow{{Aspect: "Termination protection (DisableApiTermination)", Subject: "i-0123456789abcdef0", Step: "termination-protection",
				Before: "disabled: the instance can be terminated through the API", After: "enabled", Changed: true, BeforeRun: 1, AfterRun: 1,
				Note: "step termination-protection FAILED in run 2 (see the failures): the state now may differ from the last one recorded"}},
		},
		{
			name:  "failed before reading anything",
			steps: []evidence.StepRecord{step(1, "case-tag", "contain", "failed", "", "")},
			want: []StateRow{{Aspect: "Responder tags on the instance", Subject: "i-0123456789abcdef0", Step: "case-tag",
				Before: "not recorded", After: "unknown",
				Note: "step case-tag FAILED in run 1 (see the failures): the state now may differ from the last one recorded"}},
		},
		{
			name: "one row per interface and per VPC",
			steps: []evidence.StepRecord{
				step(1, "quarantine-group", "contain", "ok", `[{"vpc_id":"vpc-1"},{"vpc_id":"vpc-2","group_id":"sg-q2","rules_found":["egress all to 0.0.0.0/0"]}]`,
					`[{"vpc_id":"vpc-1","group_id":"sg-q1","created":true},{"vpc_id":"vpc-2","group_id":"sg-q2"}]`),
				step(1, "quarantine", "contain", "ok",
					`{"interfaces":[{"network_interface_id":"eni-1","vpc_id":"vpc-1","groups":["sg-a","sg-b"]},{"network_interface_id":"eni-2","vpc_id":"vpc-2","groups":[]}]}`,
					`{"interfaces":[{"network_interface_id":"eni-1","vpc_id":"vpc-1","groups":["sg-q1"]},{"network_interface_id":"eni-2","vpc_id":"vpc-2","groups":["sg-q2"]}]}`),
			},
			want: []StateRow{
				{Aspect: "Security groups of the interface", Subject: "eni-1 (vpc-1)", Step: "quarantine", Before: "sg-a, sg-b", After: "sg-q1", Changed: true, BeforeRun: 1, AfterRun: 1},
				{Aspect: "Security groups of the interface", Subject: "eni-2 (vpc-2)", Step: "quarantine", Before: "no security group", After: "sg-q2", Changed: true, BeforeRun: 1, AfterRun: 1},
				{Aspect: "Quarantine security group of the VPC", Subject: "vpc-1", Step: "quarantine-group", Before: "none", After: "sg-q1, no rules (created for this case)", Changed: true, BeforeRun: 1, AfterRun: 1},
				{Aspect: "Quarantine security group of the VPC", Subject: "vpc-2", Step: "quarantine-group", Before: "sg-q2 with rules: egress all to 0.0.0.0/0", After: "sg-q2, no rules", Changed: true, BeforeRun: 1, AfterRun: 1},
			},
		},
		{
			name: "tags sorted; volumes unchanged by snapshots",
			steps: []evidence.StepRecord{
				step(1, "case-tag", "contain", "ok", `{"tags":{}}`, `{"tags":{"responder:status":"quarantined","responder:case-id":"case-1"}}`),
				step(1, "snapshots", "acquire", "ok", `{"volumes":["vol-1","vol-2"]}`, `{"snapshots":[{"snapshot_id":"snap-1"}]}`),
			},
			want: []StateRow{
				{Aspect: "Responder tags on the instance", Subject: "i-0123456789abcdef0", Step: "case-tag", Before: "none", After: "responder:case-id=case-1, responder:status=quarantined", Changed: true, BeforeRun: 1, AfterRun: 1},
				{Aspect: "EBS volumes attached", Subject: "i-0123456789abcdef0", Step: "snapshots", Before: "vol-1, vol-2", After: "vol-1, vol-2", BeforeRun: 1, AfterRun: 1},
			},
		},
		{
			name: "an unknown step's state is shown as JSON; evidence steps and copies are not state",
			steps: []evidence.StepRecord{
				step(1, "revoke-sessions", "contain", "ok", `{"policy": null,  "role":"web"}`, `{"policy":"deny-before-now","role":"web"}`),
				step(1, "metadata", "acquire", "ok", "", `{"volumes":2}`),
				step(2, "snapshot-copy", "preserve", "ok", `{"snapshot_id":"snap-1"}`, `{"state":"completed"}`),
			},
			want: []StateRow{{Aspect: "Recorded by step revoke-sessions", Subject: "i-0123456789abcdef0", Step: "revoke-sessions",
				Before: `{"policy":null,"role":"web"}`, After: `{"policy":"deny-before-now","role":"web"}`, Changed: true, BeforeRun: 1, AfterRun: 1}},
		},
		{
			name: "a state the report cannot read is said, not hidden",
			steps: []evidence.StepRecord{
				step(1, "termination-protection", "contain", "ok", `{"protected":"yes"}`, `{"disable_api_termination":true}`),
			},
			want: []StateRow{{Aspect: "Termination protection (DisableApiTermination)", Subject: "i-0123456789abcdef0", Step: "termination-protection",
				Before: "not recorded", After: "enabled", AfterRun: 1,
				Note: `run 1 recorded a state this report cannot read (no disable_api_termination): {"protected":"yes"}`}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := baseManifest()
			m.Steps = tc.steps
			got := buildState(m)
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("state\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	screenshotArtifact := evidence.Artifact{Path: "i-0123456789abcdef0/console-screenshot.jpg", Step: "console-screenshot"}
	for _, tc := range []struct {
		name      string
		steps     []evidence.StepRecord
		artifacts []evidence.Artifact
		want      []Failure
	}{
		{
			name:  "nothing failed",
			steps: []evidence.StepRecord{step(1, "quarantine", "contain", "ok", "", "")},
			want:  []Failure{},
		},
		{
			name:  "a failed containment step says what the instance can still do",
			steps: []evidence.StepRecord{step(1, "quarantine", "contain", "failed", "", "")},
			want: []Failure{{Run: 1, Step: "quarantine", Phase: "contain", Status: "failed", Detail: "quarantine failed: UnauthorizedOperation",
				Meaning: failureMeaning["quarantine"]}},
		},
		{
			name: "a later run that succeeds resolves it",
			steps: []evidence.StepRecord{
				step(1, "snapshots", "acquire", "failed", "", ""),
				step(2, "snapshots", "acquire", "ok", "", ""),
			},
			want: []Failure{{Run: 1, Step: "snapshots", Phase: "acquire", Status: "failed", Detail: "snapshots failed: UnauthorizedOperation",
				Meaning: failureMeaning["snapshots"], ResolvedInRun: 2}},
		},
		{
			name: "a containment step that later finds nothing to do is resolved",
			steps: []evidence.StepRecord{
				step(1, "termination-protection", "contain", "failed", "", ""),
				step(2, "termination-protection", "contain", "skipped", "", ""),
			},
			want: []Failure{{Run: 1, Step: "termination-protection", Phase: "contain", Status: "failed", Detail: "termination-protection failed: UnauthorizedOperation",
				Meaning: failureMeaning["termination-protection"], ResolvedInRun: 2}},
		},
		{
			name:  "a screenshot the platform cannot take is a skip with its meaning",
			steps: []evidence.StepRecord{{Run: 1, Name: "console-screenshot", Phase: "acquire", Status: "skipped", Reason: "not supported (UnsupportedOperation)"}},
			want: []Failure{{Run: 1, Step: "console-screenshot", Phase: "acquire", Status: "skipped", Detail: "not supported (UnsupportedOperation)",
				Meaning: skipMeaning["console-screenshot"]}},
		},
		{
			name: "a skip because the evidence is already in the case is not a failure",
			steps: []evidence.StepRecord{
				step(1, "console-screenshot", "acquire", "ok", "", ""),
				{Run: 2, Name: "console-screenshot", Phase: "acquire", Status: "skipped", Reason: "already collected"},
				{Run: 2, Name: "notify", Phase: "report", Status: "skipped", Reason: "no SNS topic configured"},
			},
			artifacts: []evidence.Artifact{screenshotArtifact},
			want:      []Failure{},
		},
		{
			name:  "an unknown containment step",
			steps: []evidence.StepRecord{step(1, "revoke-sessions", "contain", "failed", "", "")},
			want: []Failure{{Run: 1, Step: "revoke-sessions", Phase: "contain", Status: "failed", Detail: "revoke-sessions failed: UnauthorizedOperation",
				Meaning: containMeaning}},
		},
		{
			name: "a snapshot copy is resolved only by a copy of the same snapshot",
			steps: []evidence.StepRecord{
				step(2, "snapshot-copy", "preserve", "failed", `{"snapshot_id":"snap-1"}`, ""),
				step(2, "snapshot-copy", "preserve", "ok", `{"snapshot_id":"snap-2"}`, ""),
				step(3, "snapshot-copy", "preserve", "ok", `{"snapshot_id":"snap-2"}`, ""),
			},
			want: []Failure{{Run: 2, Step: "snapshot-copy", Phase: "preserve", Status: "failed", Detail: "snap-1: snapshot-copy failed: UnauthorizedOperation",
				Meaning: failureMeaning["snapshot-copy"]}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := baseManifest()
			m.Steps = tc.steps
			m.Artifacts = tc.artifacts
			got := failures(m)
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("failures\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// store puts a manifest with a screenshot artifact recorded as body into a
// memory store, and stores stored as the screenshot (nil: not stored).
func screenshotCase(t *testing.T, recorded, stored []byte) (*memStore, *evidence.Manifest) {
	t.Helper()
	s := newMemStore()
	m := baseManifest()
	path := m.InstanceID + "/console-screenshot.jpg"
	m.Artifacts = []evidence.Artifact{{Path: path, SHA256: evidence.SHA256(recorded), Size: int64(len(recorded)),
		ContentType: "image/jpeg", CollectedAt: t0, Step: "console-screenshot", Source: "ec2:GetConsoleScreenshot"}}
	m.Steps = []evidence.StepRecord{{Run: 1, Name: "console-screenshot", Phase: "acquire", Status: "ok", Reason: "stored " + path}}
	if stored != nil {
		if _, err := s.Put(context.Background(), m.CaseID, path, stored, "image/jpeg"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return s, m
}

func TestScreenshot(t *testing.T) {
	img := testJPEG(t)
	tampered := append([]byte(nil), img...)
	tampered[len(tampered)-4] ^= 0x01
	notJPEG := []byte("GIF89a not a jpeg")
	for _, tc := range []struct {
		name             string
		recorded, stored []byte
		prepare          func(s *memStore, m *evidence.Manifest)
		want             string
		detail           string
		shown            bool
	}{
		{name: "verified", recorded: img, stored: img, want: ScreenshotShown, detail: "matches the SHA-256", shown: true},
		{name: "changed after collection", recorded: img, stored: tampered, want: ScreenshotMismatch, detail: "does NOT match the record"},
		{name: "missing from the store", recorded: img, stored: nil, want: ScreenshotUnreadable, detail: "not found"},
		{name: "store error", recorded: img, stored: img, prepare: func(s *memStore, m *evidence.Manifest) {
			s.getErr[m.Artifacts[0].Path] = errors.New("AccessDenied")
		}, want: ScreenshotUnreadable, detail: "AccessDenied"},
		{name: "not a JPEG", recorded: notJPEG, stored: notJPEG, want: ScreenshotUnreadable, detail: "not a JPEG"},
		{name: "not collected: the step says why", recorded: img, stored: img, prepare: func(s *memStore, m *evidence.Manifest) {
			m.Artifacts = nil
			m.Steps[0].Status, m.Steps[0].Reason = "skipped", "console screenshot is not supported for this instance or endpoint (UnsupportedOperation)"
		}, want: ScreenshotNotCollected, detail: "not collected: step console-screenshot skipped in run 1: console screenshot is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, m := screenshotCase(t, tc.recorded, tc.stored)
			if tc.prepare != nil {
				tc.prepare(s, m)
			}
			got := screenshot(context.Background(), s, m)
			if got.Status != tc.want || !strings.Contains(got.Detail, tc.detail) {
				t.Fatalf("screenshot %s: %s; want %s containing %q", got.Status, got.Detail, tc.want, tc.detail)
			}
			if tc.shown != (got.Image != nil) || (tc.shown && !bytes.Equal(got.Image, tc.stored)) {
				t.Fatalf("image shown: %t, want %t", got.Image != nil, tc.shown)
			}
			var html bytes.Buffer
			r := FromManifest(m, s, "responder test", t0)
			r.Screenshot = got
			if err := HTML(&html, r); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(html.String(), "<img") != tc.shown {
				t.Fatalf("HTML has an <img>: %t, want %t", !tc.shown, tc.shown)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	ctx := context.Background()
	opts := Options{Now: func() time.Time { return t0.Add(48 * time.Hour) }, Tool: "responder test"}

	t.Run("no case", func(t *testing.T) {
		_, err := Build(ctx, newMemStore(), "case-1", opts)
		if !errors.Is(err, evidence.ErrNotFound) {
			t.Fatalf("error %v, want ErrNotFound", err)
		}
	})
	t.Run("invalid case ID", func(t *testing.T) {
		if _, err := Build(ctx, newMemStore(), "../x", opts); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("a record of another case", func(t *testing.T) {
		s := newMemStore()
		m := baseManifest()
		b, _ := evidence.EncodeManifest(m)
		_, _ = s.Put(ctx, "case-2", evidence.ManifestName, b, "")
		if _, err := Build(ctx, s, "case-2", opts); err == nil || !strings.Contains(err.Error(), `of case "case-1"`) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("a full case", func(t *testing.T) {
		img := testJPEG(t)
		s, m := screenshotCase(t, img, img)
		m.Steps = append(m.Steps, evidence.StepRecord{Run: 2, Name: "quarantine", Phase: "contain", Status: "ok",
			StartedAt: t0.Add(time.Hour), EndedAt: t0.Add(time.Hour + 1500*time.Millisecond),
			Calls: []evidence.Call{{Service: "EC2", Operation: "ModifyNetworkInterfaceAttribute", RequestID: "req-1", Duration: 30 * time.Millisecond},
				{Service: "EC2", Operation: "ModifyNetworkInterfaceAttribute", ErrorCode: "RequestLimitExceeded", RequestID: "req-2"}}})
		m.Snapshots = []evidence.Snapshot{{SnapshotID: "snap-1", VolumeID: "vol-1", InstanceID: m.InstanceID, State: "pending", StartedAt: t0, Run: 1}}
		done := t0.Add(2 * time.Hour)
		m.SnapshotCopies = []evidence.SnapshotCopy{{SourceSnapshotID: "snap-1", SnapshotID: "snap-f1", AccountID: "444455556666", Region: "eu-west-1",
			KMSKeyID: "arn:aws:kms:eu-west-1:444455556666:key/k", State: evidence.CopyCompleted, StartedAt: t0.Add(time.Hour), CompletedAt: &done, Run: 2}}
		if err := s.SaveManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
		hold := `{"case_id":"case-1","action":"legal-hold-on","actor":"arn:aws:iam::111122223333:user/custodian","at":"2026-11-23T09:45:00Z","objects":["a","b"],"record":"custody/x.json"}`
		_, _ = s.Put(ctx, "case-1", "custody/20261123T094500.000000000Z-legal-hold-on.json", []byte(hold), "application/json")
		_, _ = s.Put(ctx, "case-1", "custody/broken.json", []byte("{"), "application/json")

		r, err := Build(ctx, s, "case-1", opts)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := s.Get(ctx, "case-1", evidence.ManifestName)
		if r.Case.RecordSHA256 != evidence.SHA256(raw) || r.Case.Record != "mem://cases/case-1/manifest.json" || !r.GeneratedAt.Equal(t0.Add(48*time.Hour)) {
			t.Fatalf("case %+v generated %s", r.Case, r.GeneratedAt)
		}
		var actions []string
		for _, e := range r.Timeline {
			actions = append(actions, fmt.Sprintf("%s/%s/%s", e.Kind, e.Action, e.Actor))
		}
		want := []string{
			"step/console-screenshot/arn:aws:iam::111122223333:user/alice",
			"custody/legal-hold-on/arn:aws:iam::111122223333:user/custodian",
			"step/quarantine/arn:aws:iam::999988887777:user/bob",
		}
		if strings.Join(actions, " ") != strings.Join(want, " ") {
			t.Fatalf("timeline %v, want %v (oldest first, custody actions between runs)", actions, want)
		}
		if q := r.Timeline[2]; q.ActingAs != "arn:aws:sts::111122223333:assumed-role/Responder/case-1" || len(q.Calls) != 2 || q.Calls[1].RequestID != "req-2" || q.Calls[1].ErrorCode != "RequestLimitExceeded" {
			t.Fatalf("quarantine event %+v", q)
		}
		if r.Screenshot.Status != ScreenshotShown || len(r.Copies) != 1 || r.Copies[0].SnapshotID != "snap-f1" || len(r.Snapshots) != 1 {
			t.Fatalf("screenshot %s, copies %+v, snapshots %+v", r.Screenshot.Status, r.Copies, r.Snapshots)
		}
		if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "custody/broken.json") {
			t.Fatalf("notes %q, want one about the broken custody record", r.Notes)
		}
	})
	t.Run("custody records that cannot be listed are a note", func(t *testing.T) {
		img := testJPEG(t)
		s, _ := screenshotCase(t, img, img)
		s.filesErr = errors.New("AccessDenied: s3:ListBucket")
		r, err := Build(ctx, s, "case-1", opts)
		if err != nil || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "s3:ListBucket") {
			t.Fatalf("err %v, notes %q", err, r.Notes)
		}
	})
}

// hostile is text an attacker can put in a record: a tag value, an error
// message quoting input.
const hostile = "x | y <script>alert(1)</script> [click](https://evil.example/) <img src=https://evil.example/p.png> `code`\nnext line"

func hostileReport(t *testing.T) *Report {
	t.Helper()
	img := testJPEG(t)
	s, m := screenshotCase(t, img, img)
	m.Steps = append(m.Steps,
		evidence.StepRecord{Run: 1, Name: "case-tag", Phase: "contain", Status: "failed", Error: hostile,
			Before: raw(`{"tags":{"responder:case-id":` + mustJSON(hostile) + `}}`)},
	)
	m.Actor = hostile
	if err := s.SaveManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r, err := Build(context.Background(), s, m.CaseID, Options{Now: func() time.Time { return t0 }, Tool: "responder test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestMarkdownEscapesRecordText(t *testing.T) {
	r := hostileReport(t)
	var buf bytes.Buffer
	if err := Markdown(&buf, r); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, bad := range []string{"<script>", "<img", "](https://", "| y", "`code`"} {
		if unescaped(md, bad) {
			t.Errorf("the Markdown report carries %q unescaped", bad)
		}
	}
	// Every table row keeps its columns: no unescaped '|' inside a cell.
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "| Run | Step | Result |") {
			continue
		}
		want := countCells(line)
		rows := strings.Split(md[strings.Index(md, line):], "\n")[2:]
		for _, row := range rows {
			if !strings.HasPrefix(row, "| ") {
				break
			}
			if got := countCells(row); got != want {
				t.Errorf("row has %d cells, want %d: %s", got, want, row)
			}
		}
	}
	if !strings.Contains(md, "## Failures and what they mean") || !strings.Contains(md, failureMeaning["case-tag"]) {
		t.Error("the failure and its meaning are missing")
	}
}

// unescaped reports whether s holds sub not preceded by a backslash.
func unescaped(s, sub string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], sub)
		if j < 0 {
			return false
		}
		if i+j == 0 || s[i+j-1] != '\\' {
			return true
		}
		i += j + 1
	}
}

// countCells counts the cells of a Markdown table row: '|' not escaped.
func countCells(row string) int {
	n := 0
	for i := 0; i < len(row); i++ {
		switch row[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n - 1
}

func TestHTMLEscapesAndIsSelfContained(t *testing.T) {
	r := hostileReport(t)
	var buf bytes.Buffer
	if err := HTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", `src="https:`, `href="https:`, "<link", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the HTML report carries %q", bad)
		}
	}
	if strings.Count(page, "<img") != 1 || !strings.Contains(page, `src="data:image/jpeg;base64,`) {
		t.Error("the HTML report does not embed exactly the screenshot")
	}
	if !strings.Contains(page, "&lt;script&gt;") {
		t.Error("the hostile text is not shown escaped")
	}
}

func TestJSONModel(t *testing.T) {
	img := testJPEG(t)
	s, m := screenshotCase(t, img, img)
	r, err := Build(context.Background(), s, m.CaseID, Options{Now: func() time.Time { return t0 }, Tool: "responder test"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, FormatJSON, r); err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &top); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "case chart clock evidence failures generated_at generated_by headline indicators instance_profile investigation notes report_version runs screenshot security_groups snapshot_copies snapshots state timeline user_data"
	if strings.Join(keys, " ") != want {
		t.Fatalf("JSON keys %v, want %s", keys, want)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Case.ID != "case-1" || back.Screenshot.Status != ScreenshotShown || back.Screenshot.Image != nil || back.ReportVersion != Version {
		t.Fatalf("round trip %+v", back)
	}
	if err := Render(&buf, "pdf", r); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain words, snake_case and ARNs: arn:aws:iam::1:role/x", "plain words, snake_case and ARNs: arn:aws:iam::1:role/x"},
		{"a|b", `a\|b`},
		{"<b>[x](y)</b>", `\<b\>\[x\](y)\</b\>`},
		{"two\nlines", "two lines"},
		{"back\\slash `tick` *star* ~del~", "back\\\\slash \\`tick\\` \\*star\\* \\~del\\~"},
	} {
		if got := text(tc.in); got != tc.want {
			t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := code("i-0123"); got != "`i-0123`" {
		t.Errorf("code = %q", got)
	}
	if got := code("a|b"); got != `a\|b` {
		t.Errorf("code of a value with a pipe = %q", got)
	}
}

// The report flags a run whose local clock was further from AWS's Date than
// the threshold, and keeps the measure in the JSON model.
func TestClockSkewNote(t *testing.T) {
	ctx := context.Background()
	m := baseManifest()
	local := t0.Add(time.Hour)
	date := local.Add(-12 * time.Second) // AWS's clock 12 s behind
	m.Steps = append(m.Steps, evidence.StepRecord{Run: 1, Name: "quarantine", Phase: "contain", Status: "ok", StartedAt: t0, EndedAt: t0,
		Calls: []evidence.Call{{Service: "EC2", Operation: "ModifyNetworkInterfaceAttribute", Duration: 100 * time.Millisecond, ServerDate: &date, LocalTime: &local}}})
	s := newMemStore()
	b, _ := evidence.EncodeManifest(m)
	_, _ = s.Put(ctx, m.CaseID, evidence.ManifestName, b, "")
	for _, tc := range []struct {
		max  time.Duration
		note bool
	}{{0, true}, {time.Minute, false}} {
		r, err := Build(ctx, s, m.CaseID, Options{Tool: "responder test", MaxClockSkew: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		noted := false
		for _, n := range r.Notes {
			noted = noted || strings.Contains(n, "clock: during run 1 the local clock was 10.9s ahead")
		}
		if noted != tc.note || len(r.Clock) != 1 || r.Clock[0].Skew != 10900*time.Millisecond {
			t.Fatalf("max %s: notes %q, clock %+v", tc.max, r.Notes, r.Clock)
		}
	}
}
