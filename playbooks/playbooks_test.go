package playbooks_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder/step"
)

func TestEmbeddedPlaybooksLoadAndValidate(t *testing.T) {
	all := playbooks.All()
	if got := []string{}; true {
		for _, p := range all {
			got = append(got, p.Name)
		}
		if want := []string{"collect", "collect-before-isolate", "default"}; !slices.Equal(got, want) {
			t.Fatalf("All() = %v, want %v (sorted)", got, want)
		}
	}
	for _, want := range []struct {
		name       string
		collectsOS bool
		order      string
		capture    time.Duration
	}{
		{name: "default"},
		{name: "collect", collectsOS: true, order: step.IsolateFirst, capture: 30 * time.Minute},
		{name: "collect-before-isolate", collectsOS: true, order: step.CaptureFirst, capture: 20 * time.Minute},
	} {
		t.Run(want.name, func(t *testing.T) {
			p, err := playbooks.Load(want.name)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != want.name || p.Summary == "" || strings.Contains(p.Summary, "\n") || p.Tradeoff == "" {
				t.Errorf("name %q, summary %q, tradeoff %q", p.Name, p.Summary, p.Tradeoff)
			}
			if _, err := step.PlanAfter(p.Names(), p.After()); err != nil {
				t.Errorf("plan: %v", err)
			}
			if err := p.Collection.Validate(); err != nil {
				t.Errorf("collection: %v", err)
			}
			if p.CollectsOS() != want.collectsOS || p.Order() != want.order {
				t.Errorf("CollectsOS %v, Order %q; want %v, %q", p.CollectsOS(), p.Order(), want.collectsOS, want.order)
			}
			if got := time.Duration(p.Collection.CaptureTimeout); got != want.capture {
				t.Errorf("capture timeout %s, want %s", got, want.capture)
			}
			if p.Source != "playbooks/"+want.name+".yaml" {
				t.Errorf("source %q", p.Source)
			}
		})
	}
}

func TestDefaultIsTheEngineDefaultPlan(t *testing.T) {
	p, err := playbooks.Lookup(playbooks.Default)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Names(), step.DefaultPlan) || p.After() != nil || p.CollectsOS() {
		t.Fatalf("default runs %v with after %v; want step.DefaultPlan %v and nothing else", p.Names(), p.After(), step.DefaultPlan)
	}
	if !reflect.DeepEqual(p.Collection, step.Collection{}) {
		t.Errorf("default has collection settings %+v", p.Collection)
	}
}

// The two collection playbooks run the same evidence steps; only the order
// of collection and isolation differs.
func TestCollectionPlaybooksOrder(t *testing.T) {
	collect, _ := playbooks.Lookup("collect")
	before, _ := playbooks.Lookup("collect-before-isolate")
	for _, tc := range []struct {
		p           playbooks.Playbook
		first, then string
	}{
		{collect, "quarantine", "ssm-access"},
		{collect, "instance-profile", "ssm-access"},
		{collect, "volatile-data", "memory-capture"},
		{before, "memory-capture", "quarantine"},
		{before, "forensic-access-close", "instance-profile"},
		{before, "volatile-data", "memory-capture"},
	} {
		plan, err := step.PlanAfter(tc.p.Names(), tc.p.After())
		if err != nil {
			t.Fatal(err)
		}
		if !waits(plan, tc.then, tc.first) {
			t.Errorf("%s: %s does not wait for %s", tc.p.Name, tc.then, tc.first)
		}
	}
	extra := []string{"quarantine-group", "forensic-access-group"}
	for _, n := range collect.Names() {
		if !slices.Contains(before.Names(), n) && !slices.Contains(extra, n) {
			t.Errorf("collect runs %s, collect-before-isolate does not", n)
		}
	}
}

func waits(plan []step.Step, from, to string) bool {
	for _, s := range plan {
		if s.Name() != from {
			continue
		}
		for _, n := range s.Needs() {
			n, _, _ = strings.Cut(n, ":")
			if n == to || waits(plan, n, to) {
				return true
			}
		}
	}
	return false
}

func TestLookupUnknownListsTheKnown(t *testing.T) {
	_, err := playbooks.Lookup("nuke")
	if err == nil || !strings.Contains(err.Error(), `unknown playbook "nuke"`) || !strings.Contains(err.Error(), "collect, collect-before-isolate, default") {
		t.Fatalf("error %v", err)
	}
	if _, err := playbooks.Load("nuke"); err == nil {
		t.Fatal("Load of an unknown name succeeded")
	}
}

func TestLookupReturnsACopy(t *testing.T) {
	p, _ := playbooks.Lookup("collect")
	ordered := slices.IndexFunc(p.Steps, func(e playbooks.Entry) bool { return len(e.After) > 0 })
	if ordered < 0 {
		t.Fatal("collect has no step with extra ordering")
	}
	want := p.Steps[ordered].After[0]
	p.Steps[0].Name = "changed"
	p.Steps[ordered].After[0] = "changed"
	again, _ := playbooks.Lookup("collect")
	if again.Steps[0].Name != "metadata" || again.Steps[ordered].After[0] != want {
		t.Fatal("a caller changed the embedded playbook")
	}
}

const minimal = `name: mine
summary: snapshots only
tradeoff: nothing else
steps:
  - metadata
  - snapshots
`

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	mine := write("mine.yaml", minimal)
	p, err := playbooks.Load(mine)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "mine" || !slices.Equal(p.Names(), []string{"metadata", "snapshots"}) || p.Source != mine {
		t.Errorf("loaded %+v", p)
	}
	for _, tc := range []struct{ name, arg, want string }{
		{"built-in name", write("collect.yaml", strings.Replace(minimal, "mine", "collect", 1)), "built-in playbook"},
		{"missing file", filepath.Join(dir, "none.yaml"), "no such file"},
		{"name mismatch", write("other.yaml", minimal), `name "mine" does not match the file name "other.yaml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := playbooks.Load(tc.arg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	const collecting = `name: mine
summary: s
tradeoff: t
steps:
  - metadata
  - snapshots
  - quarantine-group
  - quarantine
  - instance-profile
  - name: ssm-access
    after: [quarantine, instance-profile]
  - memory-capture
`
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown top-level field", minimal + "dry_run: true\n", []string{"line 7", `unknown field "dry_run" in the playbook`}},
		{"unknown field in a step", strings.Replace(minimal, "  - snapshots", "  - name: snapshots\n    before: [metadata]", 1),
			[]string{"line 7", `unknown field "before" in a step entry`}},
		{"unknown field in collection", collecting + "collection:\n  order: isolate-first\n  memory_tool: avml\n",
			[]string{"line 15", `unknown field "memory_tool" in collection`}},
		{"unknown field in memory", collecting + "collection:\n  memory: {tool: avml, size: 9}\n",
			[]string{"line 14", `unknown field "size" in collection.memory`}},
		{"unknown step", strings.Replace(minimal, "snapshots\n", "wipe\n", 1), []string{"line 6", `unknown step "wipe"`}},
		{"step twice", minimal + "  - metadata\n", []string{`names step "metadata" twice`}},
		{"step of the wrong type", minimal + "  - [notify]\n", []string{"line 7", "a step is a name or a mapping"}},
		{"step mapping without name", minimal + "  - after: [metadata]\n", []string{"line 7", "needs a name"}},
		{"cycle through after", strings.Replace(minimal, "  - metadata\n  - snapshots\n",
			"  - name: metadata\n    after: [console-output]\n  - name: console-output\n    after: [snapshots]\n  - name: snapshots\n    after: [metadata]\n", 1),
			[]string{"plan has a cycle"}},
		{"cycle with a step's own needs", minimal + "  - quarantine-group\n  - name: quarantine\n  - name: forensic-access-group\n    after: [quarantine]\n",
			[]string{"cycle"}},
		{"after a step not run", minimal + "  - name: notify\n    after: [quarantine]\n", []string{"line 7", `after names "quarantine", which the playbook does not run`}},
		{"after itself", minimal + "  - name: notify\n    after: [notify]\n", []string{"after names the step itself"}},
		{"after an unknown milestone", minimal + "  - name: notify\n    after: [\"metadata:written\"]\n", []string{`no such milestone`}},
		{"bad order", collecting + "collection:\n  order: whenever\n", []string{`collection order "whenever"`}},
		{"bad duration", collecting + "collection:\n  capture_timeout: 30 minutes\n", []string{"line 14", `duration "30 minutes"`}},
		{"duration out of range", collecting + "collection:\n  capture_timeout: 10s\n", []string{"capture timeout 10s"}},
		{"bad part size", collecting + "collection:\n  memory: {part_size_mib: 2}\n", []string{"part size 2 MiB"}},
		{"bad compression", collecting + "collection:\n  memory: {compression: lz4}\n", []string{`compression "lz4"`}},
		{"recent days of the wrong type", collecting + "collection:\n  recent_days: a week\n", []string{"line 14", "cannot unmarshal"}},
		{"bad tool name", collecting + "collection:\n  memory:\n    tools:\n      avml-sparc: {key: tools/avml, sha256: " + strings.Repeat("a", 64) + "}\n",
			[]string{`memory tool "avml-sparc"`}},
		{"unknown field in a tool", collecting + "collection:\n  memory:\n    tools:\n      avml-x86_64: {key: tools/avml, sha: x}\n",
			[]string{"line 16", `unknown field "sha" in a collection.memory.tools entry`}},
		{"collection without collection steps", minimal + "collection:\n  order: isolate-first\n", []string{"runs no collection step"}},
		{"unknown field in containment", collecting + "containment: {two_step: true, nacl: true}\n", []string{"line 13", `unknown field "nacl"`}},
		{"two_step of the wrong type", collecting + "containment: {two_step: sometimes}\n", []string{"line 13", "cannot unmarshal"}},
		{"containment without quarantine", minimal + "containment: {two_step: false}\n", []string{"runs no quarantine step"}},
		{"two_step false with untracking-group", strings.Replace(collecting, "  - quarantine\n", "  - untracking-group\n  - quarantine\n", 1) + "containment: {two_step: false}\n",
			[]string{"two_step is false, but steps lists untracking-group"}},
		{"isolate-first collecting before isolation", strings.Replace(collecting, "    after: [quarantine, instance-profile]\n", "    after: [quarantine]\n", 1),
			[]string{`collection order isolate-first: step "ssm-access" must run after "instance-profile"`}},
		{"capture-first isolating during the collection", collecting + "collection:\n  order: capture-first\n",
			[]string{`collection order capture-first: step "quarantine" must run after "ssm-access"`}},
		{"no name", strings.Replace(minimal, "name: mine\n", "", 1), []string{"name is required"}},
		{"bad name", strings.Replace(minimal, "name: mine", "name: ../mine", 1), []string{`name "../mine"`}},
		{"name mismatch", strings.Replace(minimal, "name: mine", "name: yours", 1), []string{`name "yours" does not match the file name "mine.yaml"`}},
		{"no summary", strings.Replace(minimal, "summary: snapshots only\n", "", 1), []string{"summary is required"}},
		{"summary of two lines", strings.Replace(minimal, "summary: snapshots only", "summary: |\n  one\n  two", 1), []string{"summary must be one line"}},
		{"no tradeoff", strings.Replace(minimal, "tradeoff: nothing else\n", "", 1), []string{"tradeoff is required"}},
		{"no steps", "name: mine\nsummary: s\ntradeoff: t\nsteps: []\n", []string{"runs no step"}},
		{"two documents", minimal + "---\nname: other\n", []string{"more than one YAML document"}},
		{"empty", "", []string{"empty playbook"}},
		{"not YAML", "name: [mine\n", []string{"mine.yaml: line 1"}},
		{"duplicate key", minimal + "name: again\n", []string{`"name" already defined`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := playbooks.Parse([]byte(tc.yaml), "dir/mine.yaml")
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "dir/mine.yaml: ") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// A source that is not a .yaml file name (a test, stdin) has no name to match.
func TestParseWithoutFileName(t *testing.T) {
	p, err := playbooks.Parse([]byte(minimal), "<stdin>")
	if err != nil || p.Name != "mine" {
		t.Fatalf("%+v, %v", p, err)
	}
}

func TestCollectsOS(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  bool
	}{
		{step.DefaultPlan, false},
		{[]string{"metadata", "ssm-access"}, true},
		{[]string{"volatile-data"}, true},
		{[]string{"memory-capture"}, true},
		{[]string{"forensic-access-group", "forensic-access-close"}, false},
		{[]string{"unknown"}, false},
	} {
		if got := playbooks.CollectsOS(tc.names); got != tc.want {
			t.Errorf("CollectsOS(%v) = %v", tc.names, got)
		}
	}
}

// The two-step quarantine is on by default: a playbook that runs quarantine
// gets untracking-group; two_step false moves interfaces in one step.
// revoke_credentials: by default a plan that removes the instance profile
// also revokes the credentials already delivered, right after it and with
// its ordering; false leaves them, and may not list the step.
func TestContainmentRevokeCredentials(t *testing.T) {
	const contain = "name: mine\nsummary: s\ntradeoff: t\nsteps:\n  - quarantine-group\n  - quarantine\n  - snapshots\n" +
		"  - name: instance-profile\n    after: [snapshots]\n  - case-tag\n"
	for _, tc := range []struct {
		name, yaml string
		revoke     bool
		err        string
	}{
		{"default", contain, true, ""},
		{"said", contain + "containment: {revoke_credentials: true}\n", true, ""},
		{"off", contain + "containment: {revoke_credentials: false}\n", false, ""},
		{"off but listed", strings.Replace(contain, "  - case-tag\n", "  - credential-revocation\n  - case-tag\n", 1) +
			"containment: {revoke_credentials: false}\n", false, "revoke_credentials is false, but steps lists credential-revocation"},
		{"set without instance-profile", "name: mine\nsummary: s\ntradeoff: t\nsteps:\n  - metadata\ncontainment: {revoke_credentials: true}\n",
			false, "runs no instance-profile step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := playbooks.Parse([]byte(tc.yaml), "mine.yaml")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			names := p.Names()
			i := slices.Index(names, "credential-revocation")
			if got := i >= 0; got != tc.revoke || p.RevokeCredentials != tc.revoke {
				t.Fatalf("steps %v (RevokeCredentials %t), want credential-revocation %t", names, p.RevokeCredentials, tc.revoke)
			}
			if tc.revoke && (names[i-1] != "instance-profile" || !slices.Equal(p.After()["credential-revocation"], []string{"snapshots"})) {
				t.Errorf("credential-revocation at %d of %v after %v, want right after instance-profile, after [snapshots]", i, names, p.After()["credential-revocation"])
			}
		})
	}
	// capture-first: the SSM Agent collects with the credentials revoked, so
	// the revocation must wait for the collection.
	src, err := os.ReadFile("collect-before-isolate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	early := strings.Replace(string(src), "  - name: credential-revocation\n    after: [forensic-access-close]\n", "  - credential-revocation\n", 1)
	early = strings.Replace(early, "name: collect-before-isolate", "name: mine", 1)
	if early == string(src) {
		t.Fatal("collect-before-isolate.yaml does not order credential-revocation after forensic-access-close")
	}
	if _, err := playbooks.Parse([]byte(early), "mine.yaml"); err == nil || !strings.Contains(err.Error(), `step "credential-revocation" must run after`) {
		t.Errorf("capture-first with the revocation before the collection: %v, want it refused", err)
	}
	for _, p := range playbooks.All() {
		if !p.RevokeCredentials {
			t.Errorf("built-in playbook %s does not revoke the instance's credentials", p.Name)
		}
	}
}

func TestContainmentTwoStep(t *testing.T) {
	const contain = "name: mine\nsummary: s\ntradeoff: t\nsteps:\n  - quarantine-group\n  - quarantine\n"
	for _, tc := range []struct {
		name, yaml string
		twoStep    bool
	}{
		{"default", contain, true},
		{"said", contain + "containment: {two_step: true}\n", true},
		{"listed", strings.Replace(contain, "  - quarantine\n", "  - untracking-group\n  - quarantine\n", 1), true},
		{"off", contain + "containment: {two_step: false}\n", false},
		{"empty settings", contain + "containment: {}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := playbooks.Parse([]byte(tc.yaml), "mine.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(p.Names(), "untracking-group"); got != tc.twoStep || p.TwoStep != tc.twoStep {
				t.Errorf("steps %v (TwoStep %t), want untracking-group %t", p.Names(), p.TwoStep, tc.twoStep)
			}
			if _, err := step.PlanAfter(p.Names(), p.After()); err != nil {
				t.Error(err)
			}
		})
	}
	for _, p := range playbooks.All() {
		if !p.TwoStep {
			t.Errorf("built-in playbook %s moves interfaces in one step", p.Name)
		}
	}
}
