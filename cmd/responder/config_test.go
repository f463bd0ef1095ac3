package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// runEnv runs the CLI on the fake cloud with the environment vars.
func runEnv(t *testing.T, c *fakeaws.Cloud, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	d := testDeps(c)
	d.getenv = envOf(vars)
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"responder"}, args...), &streams{Out: &out, Err: &errOut}, d)
	return code, out.String(), errOut.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func topicsPublished(c *fakeaws.Cloud) map[string]int {
	n := map[string]int{}
	for _, m := range c.Published() {
		n[m.TopicArn]++
	}
	return n
}

// TestEnvFillsTheFlags: --env takes the evidence bucket and the topic from
// the config file (the case is in the bucket, the topic got the message); a
// flag given on the command line wins over it.
func TestEnvFillsTheFlags(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.AddBucket("lab-evidence", fakeaws.BucketOptions{})
	labTopic, otherTopic := c.AddTopic("lab"), c.AddTopic("other")
	cfg := writeConfig(t, "environments:\n  lab:\n    evidence_bucket: lab-evidence\n    topic_arn: "+labTopic+"\n")
	vars := map[string]string{"RESPONDER_CONFIG": cfg}

	code, _, errOut := runEnv(t, c, vars, "respond", "-i", s.InstanceID, "--case-id", "case-env", "--env", "lab")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, ok := c.Objects("lab-evidence")["cases/case-env/"+evidence.ManifestName]; !ok {
		t.Errorf("the case is not in the environment's bucket: %v", keys(c.Objects("lab-evidence")))
	}
	if n := topicsPublished(c); n[labTopic] != 1 {
		t.Errorf("published %v, want one message to the environment's topic", n)
	}

	code, _, errOut = runEnv(t, c, vars, "respond", "-i", s.InstanceID, "--case-id", "case-env-2", "--env", "lab", "--topic-arn", otherTopic)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := topicsPublished(c); n[otherTopic] != 1 || n[labTopic] != 1 {
		t.Errorf("published %v: the flag must win over the config file", n)
	}

	// --evidence-dir on the command line: the case stays local, the
	// environment's bucket is not used.
	dir := t.TempDir()
	code, _, errOut = runEnv(t, c, vars, "respond", "-i", s.InstanceID, "--case-id", "case-env-3", "--env", "lab", "--evidence-dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "case-env-3", evidence.ManifestName)); err != nil {
		t.Errorf("the case is not in --evidence-dir: %v", err)
	}
	if _, ok := c.Objects("lab-evidence")["cases/case-env-3/"+evidence.ManifestName]; ok {
		t.Error("the case went to the environment's bucket despite --evidence-dir")
	}
}

// TestEnvVarWinsOverConfig: an environment variable of a flag wins over the
// config file, and config show says so.
func TestEnvVarWinsOverConfig(t *testing.T) {
	c, _ := fakeaws.NewSuspect()
	vars := map[string]string{"RESPONDER_CONFIG": "testdata/config.yaml", "AWS_REGION": "eu-central-1", "RESPONDER_STAGING_BUCKET": "staging-from-env"}
	code, out, errOut := runEnv(t, c, vars, "config", "show", "--env", "prod", "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v configView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	got := map[string]setting{}
	for _, st := range v.Settings {
		got[st.Key] = st
	}
	for key, want := range map[string]setting{
		"region":           {Value: "eu-central-1", Source: "environment variable AWS_REGION"},
		"staging_bucket":   {Value: "staging-from-env", Source: "environment variable RESPONDER_STAGING_BUCKET"},
		"role_arn":         {Value: "arn:aws:iam::111122223333:role/responder-ir-member", Source: "config testdata/config.yaml (env prod)"},
		"evidence_kms_key": {Value: "", Source: "unset"},
	} {
		if g := got[key]; g.Value != want.Value || g.Source != want.Source {
			t.Errorf("%s = %q from %q, want %q from %q", key, g.Value, g.Source, want.Value, want.Source)
		}
	}
}

func TestConfigShowGolden(t *testing.T) {
	c, _ := fakeaws.NewSuspect()
	vars := map[string]string{"RESPONDER_CONFIG": "testdata/config.yaml", "AWS_PROFILE": "responder"}
	var all strings.Builder
	for _, format := range []string{"table", "json", "text"} {
		code, out, errOut := runEnv(t, c, vars, "config", "show", "--env", "prod", "--output", format)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", format, code, errOut)
		}
		all.WriteString("--- " + format + "\n" + out)
	}
	golden(t, "config-show.golden", all.String())
}

func TestConfigErrorsGolden(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	bad := writeConfig(t, "environments:\n  prod:\n    evidence_buckte: x\n")
	notYAML := writeConfig(t, "environments: [\n")
	cfgs := map[string]string{"good": "testdata/config.yaml", "bad": bad, "notyaml": notYAML, "none": filepath.Join(t.TempDir(), "missing.yaml")}
	var b strings.Builder
	for _, tc := range []struct {
		cfg  string
		args []string
	}{
		{"good", []string{"respond", "-i", s.InstanceID, "--env", "prd"}},
		{"good", []string{"status", "--case-id", "case-x", "--env", "staging"}},
		{"bad", []string{"respond", "-i", s.InstanceID, "--env", "prod"}},
		{"notyaml", []string{"config", "show"}},
		{"none", []string{"cases", "list", "--env", "prod"}},
	} {
		vars := map[string]string{"RESPONDER_CONFIG": cfgs[tc.cfg]}
		b.WriteString("[config " + tc.cfg + "]\n")
		b.WriteString(transcript(t, func(args []string) (int, string, string) { return runEnv(t, c, vars, args...) },
			[]errorCase{{tc.args, exitUsage}}))
	}
	got := strings.NewReplacer(bad, "<bad>", notYAML, "<notyaml>", cfgs["none"], "<missing>", s.InstanceID, "i-xxxxxxxxxxxxxxxxx").Replace(b.String())
	golden(t, "config-errors.golden", got)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
