// Package report turns a case record (manifest.json) and its evidence store
// into the report an investigator hands to a legal or audit process: who did
// what and when (with the AWS request IDs to find each call in CloudTrail),
// the state found before containment and the state left, every piece of
// evidence with its location and SHA-256, the snapshots, the console
// screenshot, and what each failure means for the investigation.
//
// Build reads the case and makes the model (Report); Markdown, HTML and JSON
// render it. The HTML is one self-contained file (inline CSS, no script, no
// external URL) with the console screenshot embedded, after its SHA-256 has
// been checked against the record.
//
// A report is not a verification: it shows what the record says. `responder
// verify` re-hashes every artifact and checks the record's seals.
package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
	steps "github.com/responder-ir/responder/responder/step"
)

// Version is the version of the JSON report model (Report.ReportVersion).
// Adding a field keeps it; renaming or removing one, or changing a field's
// meaning, bumps it.
const Version = "1"

// Formats Render accepts.
const (
	FormatMarkdown = "md"
	FormatHTML     = "html"
	FormatJSON     = "json"
)

// Formats lists the formats Render accepts, for usage messages.
var Formats = []string{FormatMarkdown, FormatHTML, FormatJSON}

// Report is the report model, and the JSON format of `responder report
// --format json`. Field names are stable (see Version). Times are UTC RFC 3339.
//
//	report_version  "1"
//	generated_at    when the report was made
//	generated_by    the tool that made it ("responder <version>")
//	case            the case: instance, account, Region, outcome, who started it,
//	                where the evidence is, and the SHA-256 of the record read
//	runs            one entry per run of respond for the case
//	timeline        every action, oldest first: each step of each run (kind "step",
//	                with every AWS call and its request ID) and each custody action
//	                recorded under custody/ (kind "custody": legal hold on or off)
//	state           what the steps found before changing anything and what they left,
//	                one row per thing (an interface's groups, the instance profile, ...)
//	evidence        every artifact: path, location, SHA-256, size, who collected it
//	snapshots       every EBS snapshot of the case, as recorded when requested
//	snapshot_copies every copy of a case snapshot in the forensics account
//	                (responder preserve), with its source and state
//	investigation   every investigation workspace in the forensics account
//	                (responder investigate): instance, working volumes, read-only
//	                mounts with their write counters, the memory image fetched
//	screenshot      the console screenshot: whether it was collected, and whether the
//	                stored file matches its recorded SHA-256 (the image itself is only
//	                in the HTML report)
//	failures        every failed step, and every evidence step skipped without the
//	                case holding that evidence, with what it means for the investigation
//	clock           per run, the largest skew between the local clock that stamped the
//	                record and AWS's Date on its responses (run, calls, skew_ns, step,
//	                operation); a run beyond the threshold is also a note
//	cloud_record    the CloudTrail events and the GuardDuty and Security Hub findings
//	                about the instance (steps cloudtrail-events and findings), read
//	                after their SHA-256 matched the record; absent when the case holds
//	                neither
//	notes           problems met while making the report (an unreadable custody
//	                record, a screenshot that does not match its hash)
type Report struct {
	ReportVersion string         `json:"report_version"`
	GeneratedAt   time.Time      `json:"generated_at"`
	GeneratedBy   string         `json:"generated_by"`
	Case          Case           `json:"case"`
	Runs          []evidence.Run `json:"runs"`
	Timeline      []Event        `json:"timeline"`
	State         []StateRow     `json:"state"`
	Evidence      []Evidence     `json:"evidence"`
	Snapshots     []Snapshot     `json:"snapshots"`
	Copies        []Copy         `json:"snapshot_copies"`
	// Investigation holds the case's investigation workspaces, each as its
	// newest record entry has it.
	Investigation []evidence.Workspace `json:"investigation"`
	Screenshot    Screenshot           `json:"screenshot"`
	Failures      []Failure            `json:"failures"`
	Notes         []string             `json:"notes"`
	// Clock is, per run, how the local clock that stamped the record
	// compared with AWS's Date (records since 1.5).
	Clock []evidence.RunClock `json:"clock"`
	// Headline is what an investigator reads first; Chart the visual
	// timeline, one entry per run.
	Headline Headline   `json:"headline"`
	Chart    []RunChart `json:"chart"`
	// SecurityGroups, Profile and UserData are the instance's network
	// exposure, role and boot script, before and after.
	SecurityGroups SecurityGroups `json:"security_groups"`
	Profile        Profile        `json:"instance_profile"`
	UserData       UserData       `json:"user_data"`
	// Indicators are drawn from the collected volatile data.
	Indicators Indicators `json:"indicators"`
	// Verification is the verification made with the report, if any.
	Verification *Verification `json:"verification,omitempty"`
	// CloudRecord is the CloudTrail events and findings about the instance
	// (cloudrecord.go); nil when the case holds neither.
	CloudRecord *CloudRecord `json:"cloud_record,omitempty"`
}

// Case is the case as a whole.
type Case struct {
	ID         string `json:"case_id"`
	InstanceID string `json:"instance_id"`
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	// Status is the outcome of the last respond run (a case status of
	// evidence.CaseStatus: contained, partially-contained, ...); StatusText
	// says it in words.
	Status     string `json:"status"`
	StatusText string `json:"status_text"`
	// Actor started the first run; ActingAs is the role session it used in
	// the instance's account, if any.
	Actor    string `json:"actor"`
	ActingAs string `json:"acting_as,omitempty"`
	// Location is where the case folder is; Record is where its
	// manifest.json is, and RecordSHA256 the hash of the bytes this report
	// was made from.
	Location     string `json:"location"`
	Record       string `json:"record"`
	RecordSHA256 string `json:"record_sha256"`
	// RecordSchema and RecordedBy are the record's schema_version and tool.
	RecordSchema string    `json:"record_schema_version"`
	RecordedBy   string    `json:"recorded_by"`
	StartedAt    time.Time `json:"started_at"`
	EndedAt      time.Time `json:"ended_at"`
}

// Event kinds.
const (
	KindStep    = "step"
	KindCustody = "custody"
)

// Event is one action: a step of a run, or a custody action.
type Event struct {
	At      time.Time `json:"at"`
	EndedAt time.Time `json:"ended_at"`
	// Run is the run a step belongs to; 0 for a custody action.
	Run  int    `json:"run,omitempty"`
	Kind string `json:"kind"`
	// Actor is who acted: the run's actor for a step; ActingAs the role
	// session the run used in the instance's account.
	Actor    string `json:"actor"`
	ActingAs string `json:"acting_as,omitempty"`
	// Action is the step name, or the custody action (legal-hold-on,
	// legal-hold-off).
	Action string `json:"action"`
	Phase  string `json:"phase,omitempty"`
	// Status is ok, failed or skipped.
	Status string `json:"status"`
	// Detail says what was done or why it was skipped; Error why it failed.
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
	// Calls are the AWS calls of a step, in the order they were recorded;
	// RequestID finds a call in CloudTrail.
	Calls []evidence.Call `json:"calls"`
	// Record is the custody record's path in the case folder.
	Record string `json:"record,omitempty"`
}

// StateRow is one thing a step found before changing anything, and what it
// left. Before is the first state recorded in the case (the state found
// before containment, the one a release restores); After the last one.
type StateRow struct {
	// Aspect says what it is ("security groups", "instance profile", ...);
	// Subject of what (an interface, a VPC, the instance).
	Aspect  string `json:"aspect"`
	Subject string `json:"subject"`
	Step    string `json:"step"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Changed bool   `json:"changed"`
	// BeforeRun and AfterRun are the runs that recorded them (0: none did).
	BeforeRun int `json:"before_run"`
	AfterRun  int `json:"after_run"`
	// Note qualifies the row: the last run of the step failed, the state
	// after is unknown.
	Note string `json:"note,omitempty"`
}

// Evidence is one artifact of the case, as the record has it, and where it
// is. The artifact's fields are promoted (same JSON keys as the manifest).
type Evidence struct {
	evidence.Artifact
	Location string `json:"location"`
}

// Snapshot is one EBS snapshot of the case.
type Snapshot struct {
	SnapshotID string `json:"snapshot_id"`
	VolumeID   string `json:"volume_id"`
	InstanceID string `json:"instance_id"`
	// StateAtRequest is the state CreateSnapshots answered (usually
	// pending): the point in time is fixed when the request returns.
	StateAtRequest string    `json:"state_at_request"`
	StartedAt      time.Time `json:"started_at"`
	Encrypted      bool      `json:"encrypted"`
	Run            int       `json:"run"`
}

// Copy is a case snapshot copied into the forensics account.
type Copy struct {
	SourceSnapshotID string `json:"source_snapshot_id"`
	SourceAccountID  string `json:"source_account_id"`
	// IntermediateSnapshotID is the re-encrypted copy made in the source
	// account when the source used the AWS managed key aws/ebs;
	// SharedSnapshotID the snapshot shared with the forensics account.
	IntermediateSnapshotID string `json:"intermediate_snapshot_id,omitempty"`
	SharedSnapshotID       string `json:"shared_snapshot_id,omitempty"`
	// SnapshotID is the copy in the forensics account AccountID, Region,
	// encrypted with KMSKeyID.
	SnapshotID string `json:"snapshot_id,omitempty"`
	AccountID  string `json:"account_id"`
	Region     string `json:"region"`
	KMSKeyID   string `json:"kms_key_id,omitempty"`
	// State is pending, completed or failed (Error says why), as last
	// recorded.
	State       string     `json:"state"`
	Error       string     `json:"error,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	Run         int        `json:"run"`
}

// Screenshot statuses.
const (
	// ScreenshotShown: the stored file matches its recorded SHA-256 and is
	// embedded in the HTML report.
	ScreenshotShown = "verified"
	// ScreenshotMismatch: the stored file does not match its recorded
	// SHA-256; it is not shown.
	ScreenshotMismatch = "mismatch"
	// ScreenshotUnreadable: the record names a screenshot the store could not
	// return, or that is not a JPEG image.
	ScreenshotUnreadable = "unreadable"
	// ScreenshotNotCollected: the case holds no screenshot.
	ScreenshotNotCollected = "not-collected"
)

// Screenshot is the console screenshot of the instance.
type Screenshot struct {
	Status   string `json:"status"`
	Path     string `json:"path,omitempty"`
	Location string `json:"location,omitempty"`
	// SHA256 is the hash in the record; StoredSHA256 the hash of the file
	// read from the store when the report was made.
	SHA256       string `json:"sha256,omitempty"`
	StoredSHA256 string `json:"stored_sha256,omitempty"`
	Size         int64  `json:"size,omitempty"`
	// Detail says in words what was checked, or why there is no screenshot.
	Detail string `json:"detail"`
	// Image is the verified JPEG, for the HTML report. It is nil unless
	// Status is verified.
	Image []byte `json:"-"`
}

// Failure is a failed step, or an evidence step skipped without the case
// holding that evidence, and what it means for the investigation.
type Failure struct {
	Run    int    `json:"run"`
	Step   string `json:"step"`
	Phase  string `json:"phase"`
	Status string `json:"status"`
	// Detail is the step's error (failed) or reason (skipped).
	Detail  string `json:"detail"`
	Meaning string `json:"meaning"`
	// ResolvedInRun is a later run in which the step succeeded, if any.
	ResolvedInRun int `json:"resolved_in_run,omitempty"`
}

// Options are what Build needs from its caller.
type Options struct {
	// Now stamps the report; time.Now when nil.
	Now func() time.Time
	// Tool names the program making the report ("responder 1.2.3").
	Tool string
	// MaxClockSkew is the skew between the local clock and AWS's above
	// which the report flags a run's times (0: evidence.DefaultMaxClockSkew).
	MaxClockSkew time.Duration
	// Verification is the result of a verification made for this report
	// (responder report --verify); nil: the report says "not verified".
	Verification *Verification
}

// Build reads a case's record and evidence from the store and makes its
// report. It returns an error wrapping evidence.ErrNotFound when the case has
// no record, and an error when the record cannot be read; anything else it
// cannot read (a custody record, the screenshot) is said in the report.
func Build(ctx context.Context, store evidence.Store, caseID string, opts Options) (*Report, error) {
	if err := evidence.ValidateCaseID(caseID); err != nil {
		return nil, err
	}
	raw, err := store.Get(ctx, caseID, evidence.ManifestName)
	if err != nil {
		return nil, fmt.Errorf("read the record of case %s: %w", caseID, err)
	}
	m, err := evidence.DecodeManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", caseID, err)
	}
	if m.CaseID != caseID {
		return nil, fmt.Errorf("the record at %s is of case %q, not %q", store.Location(caseID, evidence.ManifestName), m.CaseID, caseID)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	r := FromManifest(m, store, opts.Tool, now().UTC())
	r.Case.RecordSHA256 = evidence.SHA256(raw)
	r.Screenshot = screenshot(ctx, store, m)
	switch r.Screenshot.Status {
	case ScreenshotMismatch, ScreenshotUnreadable:
		r.Notes = append(r.Notes, "console screenshot: "+r.Screenshot.Detail)
	}
	r.Notes = append(r.Notes, clockNotes(r.Clock, opts.MaxClockSkew)...)
	var cloudNotes []string
	r.CloudRecord, cloudNotes = cloudRecord(ctx, store, m)
	r.Notes = append(r.Notes, cloudNotes...)
	custody, notes := custodyEvents(ctx, store, caseID)
	r.Notes = append(r.Notes, notes...)
	r.Timeline = append(r.Timeline, custody...)
	r.Timeline = append(r.Timeline, cloudTrailEvents(r.CloudRecord)...)
	sortTimeline(r.Timeline)
	meta, src, note := metadataDoc(ctx, store, m)
	if note != "" {
		r.Notes = append(r.Notes, note)
	}
	r.SecurityGroups = buildSecurityGroups(m, meta, src)
	r.Profile = buildProfile(m, meta)
	r.UserData = buildUserData(meta, src)
	r.Indicators = volatileIndicators(ctx, store, m)
	r.Verification = opts.Verification
	r.Headline.applyVerification(opts.Verification)
	return r, nil
}

// FromManifest makes the part of the report the record alone gives: the
// screenshot is left not-collected (Build reads and checks it) and there are
// no custody actions. Locations come from the store.
func FromManifest(m *evidence.Manifest, store evidence.Store, tool string, generatedAt time.Time) *Report {
	r := &Report{
		ReportVersion: Version,
		GeneratedAt:   generatedAt,
		GeneratedBy:   tool,
		Case: Case{
			ID: m.CaseID, InstanceID: m.InstanceID, AccountID: m.AccountID, Region: m.Region,
			Status: m.Status, StatusText: StatusText(m.Status),
			Actor: m.Actor, ActingAs: m.ActingAs,
			Location:     store.Location(m.CaseID, ""),
			Record:       store.Location(m.CaseID, evidence.ManifestName),
			RecordSchema: m.SchemaVersion, RecordedBy: m.Tool,
			StartedAt: m.StartedAt.UTC(), EndedAt: m.EndedAt.UTC(),
		},
		Runs:      []evidence.Run{},
		Timeline:  []Event{},
		Evidence:  []Evidence{},
		Snapshots: []Snapshot{},
		Copies:    []Copy{},
		Failures:  []Failure{},
		Notes:     []string{},
		Screenshot: Screenshot{
			Status: ScreenshotNotCollected,
			Detail: "the case holds no console screenshot",
		},
	}
	runs := map[int]evidence.Run{}
	for _, run := range m.Runs {
		runs[run.Number] = run
		run.StartedAt, run.EndedAt = run.StartedAt.UTC(), run.EndedAt.UTC()
		r.Runs = append(r.Runs, run)
	}
	for _, s := range m.Steps {
		run, ok := runs[s.Run]
		if !ok {
			// A record without its run entry: the case's first actor is the
			// best the record can say.
			run = evidence.Run{Actor: m.Actor, ActingAs: m.ActingAs}
		}
		e := Event{
			At: s.StartedAt.UTC(), EndedAt: s.EndedAt.UTC(), Run: s.Run, Kind: KindStep,
			Actor: run.Actor, ActingAs: run.ActingAs,
			Action: s.Name, Phase: s.Phase, Status: s.Status, Detail: s.Reason, Error: s.Error,
			Calls: append([]evidence.Call{}, s.Calls...),
		}
		r.Timeline = append(r.Timeline, e)
	}
	sortTimeline(r.Timeline)
	for _, a := range m.Artifacts {
		a.CollectedAt = a.CollectedAt.UTC()
		r.Evidence = append(r.Evidence, Evidence{Artifact: a, Location: store.Location(m.CaseID, a.Path)})
	}
	for _, s := range m.Snapshots {
		r.Snapshots = append(r.Snapshots, Snapshot{
			SnapshotID: s.SnapshotID, VolumeID: s.VolumeID, InstanceID: s.InstanceID, StateAtRequest: s.State,
			StartedAt: s.StartedAt.UTC(), Encrypted: s.Encrypted, Run: s.Run,
		})
	}
	for _, c := range m.SnapshotCopies {
		cp := Copy{
			SourceSnapshotID: c.SourceSnapshotID, SourceAccountID: c.SourceAccountID,
			IntermediateSnapshotID: c.IntermediateSnapshotID, SharedSnapshotID: c.SharedSnapshotID,
			SnapshotID: c.SnapshotID, AccountID: c.AccountID, Region: c.Region, KMSKeyID: c.KMSKeyID,
			State: c.State, Error: c.Error, StartedAt: c.StartedAt.UTC(), Run: c.Run,
		}
		if c.CompletedAt != nil {
			done := c.CompletedAt.UTC()
			cp.CompletedAt = &done
		}
		r.Copies = append(r.Copies, cp)
	}
	r.Investigation = evidence.LatestWorkspaces(m.Steps, steps.InvestigationRecord)
	r.State = buildState(m)
	r.Failures = failures(m)
	r.Clock = m.RunClocks()
	r.Headline = buildHeadline(m)
	r.Chart = buildChart(m, r.Headline)
	r.SecurityGroups = buildSecurityGroups(m, nil, nil)
	r.Profile = buildProfile(m, nil)
	r.UserData = buildUserData(nil, nil)
	r.Indicators = noIndicators(IndicatorsNotCollected, "not read: the report was made from the record alone")
	return r
}

// clockNotes flags the runs whose local clock was further than max from
// AWS's.
func clockNotes(clocks []evidence.RunClock, max time.Duration) []string {
	if max <= 0 {
		max = evidence.DefaultMaxClockSkew
	}
	var notes []string
	for _, rc := range clocks {
		if rc.Above(max) {
			notes = append(notes, fmt.Sprintf("clock: during run %d %s, above %s: the times of that run are off by about that much (each call keeps AWS's Date)",
				rc.Run, rc.Describe(), max))
		}
	}
	return notes
}

// sortTimeline orders events oldest first; events at the same time keep
// their order (steps in the order the record lists them).
func sortTimeline(events []Event) {
	sort.SliceStable(events, func(i, j int) bool { return events[i].At.Before(events[j].At) })
}

// StatusText says a case status in words: the word as a headline, and what
// it claims (evidence.StatusMeaning, the words the CLI and the notification
// use too).
func StatusText(s string) string {
	if s == "" {
		return "no respond run recorded"
	}
	return evidence.StatusHeadline(s) + ": " + evidence.StatusMeaning(s)
}

// screenshotSuffix ends the path of the console screenshot artifact.
const screenshotSuffix = "console-screenshot.jpg"

// screenshot reads the console screenshot from the store and checks it
// against its recorded SHA-256 and size before it may be shown.
func screenshot(ctx context.Context, store evidence.Store, m *evidence.Manifest) Screenshot {
	var a *evidence.Artifact
	for i := range m.Artifacts {
		if strings.HasSuffix(m.Artifacts[i].Path, screenshotSuffix) {
			a = &m.Artifacts[i]
			break
		}
	}
	if a == nil {
		s := Screenshot{Status: ScreenshotNotCollected, Detail: "the case holds no console screenshot"}
		if rec, ok := lastRecord(m, steps.ConsoleScreenshot{}.Name()); ok {
			detail := rec.Reason
			if rec.Status == evidence.StatusFailed {
				detail = rec.Error
			}
			s.Detail = fmt.Sprintf("not collected: step %s %s in run %d: %s", rec.Name, rec.Status, rec.Run, detail)
		}
		return s
	}
	s := Screenshot{Path: a.Path, Location: store.Location(m.CaseID, a.Path), SHA256: a.SHA256, Size: a.Size}
	body, err := store.Get(ctx, m.CaseID, a.Path)
	if err != nil {
		s.Status = ScreenshotUnreadable
		s.Detail = fmt.Sprintf("the record names %s but the store did not return it: %v", a.Path, err)
		return s
	}
	s.StoredSHA256 = evidence.SHA256(body)
	if !strings.EqualFold(s.StoredSHA256, a.SHA256) || int64(len(body)) != a.Size {
		s.Status = ScreenshotMismatch
		s.Detail = fmt.Sprintf("the stored file (SHA-256 %s, %d bytes) does NOT match the record (SHA-256 %s, %d bytes): "+
			"it changed after it was collected, so it is not shown; keep the stored file for examination and run responder verify",
			s.StoredSHA256, len(body), a.SHA256, a.Size)
		return s
	}
	if !isJPEG(body) {
		s.Status = ScreenshotUnreadable
		s.Detail = "the stored file matches its recorded SHA-256 but is not a JPEG image, so it is not shown"
		return s
	}
	s.Status = ScreenshotShown
	s.Detail = "the stored file matches the SHA-256 and size in the record"
	s.Image = body
	return s
}

// isJPEG checks the JPEG start-of-image marker.
func isJPEG(b []byte) bool {
	return len(b) > 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF
}

// lastRecord is the newest record of a step.
func lastRecord(m *evidence.Manifest, name string) (evidence.StepRecord, bool) {
	for i := len(m.Steps) - 1; i >= 0; i-- {
		if m.Steps[i].Name == name {
			return m.Steps[i], true
		}
	}
	return evidence.StepRecord{}, false
}

// custodyEvents reads the custody records of a case. What it cannot read is
// returned as notes: a report still helps without them.
func custodyEvents(ctx context.Context, store evidence.Store, caseID string) ([]Event, []string) {
	files, err := store.Files(ctx, caseID)
	if err != nil {
		return nil, []string{fmt.Sprintf("custody records (legal holds) could not be listed: %v", err)}
	}
	var (
		events []Event
		notes  []string
	)
	for _, f := range files {
		if !strings.HasPrefix(f, evidence.CustodyFolder) || !strings.HasSuffix(f, ".json") {
			continue
		}
		body, err := store.Get(ctx, caseID, f)
		if err != nil {
			notes = append(notes, fmt.Sprintf("custody record %s could not be read: %v", f, err))
			continue
		}
		var rec evidence.CustodyRecord
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&rec); err != nil || rec.Action == "" {
			if err == nil {
				err = errors.New("no action")
			}
			notes = append(notes, fmt.Sprintf("custody record %s is not a custody record: %v", f, err))
			continue
		}
		e := Event{
			At: rec.At.UTC(), EndedAt: rec.At.UTC(), Kind: KindCustody, Actor: rec.Actor, Action: rec.Action,
			Status: evidence.StatusOK, Calls: []evidence.Call{}, Record: f,
			Detail: fmt.Sprintf("%s on %d object(s) of the case", holdVerb(rec.Action), len(rec.Objects)),
		}
		if len(rec.Failures) > 0 {
			e.Status = evidence.StatusFailed
			e.Error = fmt.Sprintf("%d object(s) failed: %s", len(rec.Failures), strings.Join(rec.Failures, "; "))
		}
		events = append(events, e)
	}
	return events, notes
}

func holdVerb(action string) string {
	switch action {
	case evidence.CustodyHoldOn:
		return "S3 legal hold put"
	case evidence.CustodyHoldOff:
		return "S3 legal hold lifted"
	}
	return action
}

// Render writes the report in a format: md, html or json.
func Render(w io.Writer, format string, r *Report) error {
	switch format {
	case FormatMarkdown:
		return Markdown(w, r)
	case FormatHTML:
		return HTML(w, r)
	case FormatJSON:
		return JSON(w, r)
	}
	return fmt.Errorf("unknown report format %q (want %s)", format, strings.Join(Formats, ", "))
}

// JSON writes the report model as indented JSON.
func JSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return nil
}
