package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// The config file names environments, each a set of flag values:
//
//	environments:
//	  prod:
//	    region: eu-west-1
//	    evidence_bucket: forensics-evidence-444455556666
//	    ...
//
// `--env prod` (or RESPONDER_ENV=prod) fills each flag of the command from
// it, unless the flag is given on the command line or through its
// environment variable: flags > environment variables > config file.

// configKey is a key of an environment: the flag it fills and the
// environment variables that take precedence over it.
type configKey struct {
	Key  string
	Flag string
	Env  []string
}

// configKeys are the keys an environment may hold, in the order config show
// prints them.
var configKeys = []configKey{
	{"region", "region", []string{"AWS_REGION"}},
	{"profile", "profile", []string{"AWS_PROFILE"}},
	{"evidence_bucket", "evidence-bucket", []string{"RESPONDER_EVIDENCE_BUCKET"}},
	{"evidence_kms_key", "evidence-kms-key", nil},
	{"topic_arn", "topic-arn", []string{"RESPONDER_TOPIC_ARN"}},
	{"role_arn", "role-arn", nil},
	{"external_id", "external-id", nil},
	{"forensic_profile", "forensic-profile", []string{"RESPONDER_FORENSIC_PROFILE"}},
	{"staging_bucket", "staging-bucket", []string{"RESPONDER_STAGING_BUCKET"}},
}

// configFile is the parsed config file.
type configFile struct {
	Path         string
	Environments map[string]map[string]string `yaml:"environments"`
}

// configPath is where the config file is: RESPONDER_CONFIG, else
// $XDG_CONFIG_HOME/responder/config.yaml, else ~/.config/responder/config.yaml.
func configPath(getenv func(string) string) string {
	if p := getenv("RESPONDER_CONFIG"); p != "" {
		return p
	}
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "responder", "config.yaml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "responder", "config.yaml")
	}
	return ""
}

// loadConfig reads and checks the config file; a missing file is nil.
func loadConfig(getenv func(string) string) (*configFile, error) {
	path := configPath(getenv)
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	cf := &configFile{Path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cf); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	for name, env := range cf.Environments {
		for k := range env {
			if lookupKey(k) == nil {
				return nil, fmt.Errorf("config file %s: environment %s: unknown key %q (keys: %s)", path, name, k, keyNames())
			}
		}
		if strings.Contains(env["role_arn"], "{account}") && env["account"] == "" {
			return nil, fmt.Errorf("config file %s: environment %s: role_arn has {account} but the environment has no account", path, name)
		}
	}
	return cf, nil
}

func lookupKey(k string) *configKey {
	if k == "account" { // fills {account} in role_arn
		return &configKey{Key: k}
	}
	for i := range configKeys {
		if configKeys[i].Key == k {
			return &configKeys[i]
		}
	}
	return nil
}

func keyNames() string {
	names := []string{"account"}
	for _, k := range configKeys {
		names = append(names, k.Key)
	}
	return strings.Join(names, ", ")
}

// environment returns the named environment, its role_arn filled with its
// account.
func (cf *configFile) environment(name string) (map[string]string, error) {
	if cf == nil {
		return nil, fmt.Errorf("--env %s: no config file (looked for RESPONDER_CONFIG, then ~/.config/responder/config.yaml)", name)
	}
	env, ok := cf.Environments[name]
	if !ok {
		var names []string
		for n := range cf.Environments {
			names = append(names, n)
		}
		sort.Strings(names)
		if s, ok := closest(name, names); ok {
			return nil, fmt.Errorf("--env %s: no such environment in %s: did you mean %s?", name, cf.Path, s)
		}
		return nil, fmt.Errorf("--env %s: no such environment in %s (it has: %s)", name, cf.Path, strings.Join(names, ", "))
	}
	out := map[string]string{}
	for k, v := range env {
		out[k] = strings.ReplaceAll(v, "{account}", env["account"])
	}
	return out, nil
}

// setting is one effective value and where it came from.
type setting struct {
	Key    string `json:"key"`
	Flag   string `json:"flag"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// settle decides each key of env for a command: the flag when given, else
// its environment variable, else the config file. set is called for what
// the config file provides.
func settle(c *cli.Context, cf *configFile, envName string, env map[string]string, getenv func(string) string) []setting {
	var out []setting
	for _, k := range configKeys {
		st := setting{Key: k.Key, Flag: "--" + k.Flag, Source: "unset"}
		switch {
		case c != nil && c.IsSet(k.Flag) && !fromEnvVar(k, getenv):
			st.Value, st.Source = c.String(k.Flag), "flag --"+k.Flag
		case envVar(k, getenv) != "":
			st.Value, st.Source = getenv(envVar(k, getenv)), "environment variable "+envVar(k, getenv)
		case env[k.Key] != "":
			st.Value, st.Source = env[k.Key], fmt.Sprintf("config %s (env %s)", cf.Path, envName)
		}
		out = append(out, st)
	}
	return out
}

// envVar is the first of k's environment variables that is set.
func envVar(k configKey, getenv func(string) string) string {
	for _, e := range k.Env {
		if getenv(e) != "" {
			return e
		}
	}
	return ""
}

func fromEnvVar(k configKey, getenv func(string) string) bool { return envVar(k, getenv) != "" }

// applyConfig fills the command's flags from --env before it runs.
func applyConfig(getenv func(string) string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		name := c.String("env")
		if name == "" {
			return nil
		}
		cf, err := loadConfig(getenv)
		if err != nil {
			return exitf(exitUsage, "%v", err)
		}
		env, err := cf.environment(name)
		if err != nil {
			return exitf(exitUsage, "%v", err)
		}
		for _, st := range settle(c, cf, name, env, getenv) {
			if !strings.HasPrefix(st.Source, "config ") || !hasFlag(c.Command, strings.TrimPrefix(st.Flag, "--")) {
				continue
			}
			if strings.HasPrefix(st.Key, "evidence_") && c.IsSet("evidence-dir") {
				continue // --evidence-dir given: the case stays local
			}
			if err := c.Set(strings.TrimPrefix(st.Flag, "--"), st.Value); err != nil {
				return exitf(exitUsage, "--env %s: %s: %v", name, st.Key, err)
			}
		}
		return nil
	}
}

func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

func envFlag(dst *string) cli.Flag {
	return &cli.StringFlag{Name: "env", Usage: "take the flags not given from the `NAME`d environment of the config file " +
		"(RESPONDER_CONFIG or ~/.config/responder/config.yaml); flags, then environment variables, win over it",
		EnvVars: []string{"RESPONDER_ENV"}, Destination: dst}
}

// configCommand is `responder config show`.
func configCommand(s *streams, d deps) *cli.Command {
	var envName string
	o := &outputOptions{}
	return &cli.Command{
		Name:  "config",
		Usage: "show the settings the config file and the environment give",
		Subcommands: []*cli.Command{{
			Name:      "show",
			Usage:     "print the effective value of each setting and where it comes from (flag, environment variable, config file)",
			UsageText: "responder config show [--env NAME] [--output table|json|text]",
			Description: "The config file (RESPONDER_CONFIG, else ~/.config/responder/config.yaml) names environments:\n\n" +
				"   environments:\n" +
				"     prod:\n" +
				"       account: \"111122223333\"             # fills {account} in role_arn\n" +
				"       region: eu-west-1\n" +
				"       profile: ir\n" +
				"       role_arn: arn:aws:iam::{account}:role/responder-ir-member\n" +
				"       external_id: example-external-id\n" +
				"       evidence_bucket: forensics-evidence-444455556666\n" +
				"       topic_arn: arn:aws:sns:eu-west-1:444455556666:responder\n" +
				"       forensic_profile: arn:aws:iam::111122223333:instance-profile/responder/responder-ir-member-forensic-ssm\n" +
				"       staging_bucket: responder-staging-444455556666\n\n" +
				"`--env prod` on a command (or RESPONDER_ENV=prod) fills each of its flags that is not given.\n" +
				"Precedence: a flag on the command line, then its environment variable (AWS_REGION, AWS_PROFILE,\n" +
				"RESPONDER_EVIDENCE_BUCKET, RESPONDER_TOPIC_ARN, RESPONDER_FORENSIC_PROFILE,\n" +
				"RESPONDER_STAGING_BUCKET), then the config file. Without --env the config file is not read.",
			Flags: []cli.Flag{envFlag(&envName), outputFlag(o), queryFlag(o)},
			Action: func(c *cli.Context) error {
				if err := o.validate(); err != nil {
					return err
				}
				return runConfigShow(s, d, *o, envName)
			},
		}},
	}
}

// configView is what config show prints.
type configView struct {
	File        string    `json:"file"`
	FileExists  bool      `json:"file_exists"`
	Environment string    `json:"environment,omitempty"`
	Settings    []setting `json:"settings"`
}

func runConfigShow(s *streams, d deps, o outputOptions, envName string) error {
	cf, err := loadConfig(d.getenv)
	if err != nil {
		return exitf(exitUsage, "%v", err)
	}
	var env map[string]string
	if envName != "" {
		if env, err = cf.environment(envName); err != nil {
			return exitf(exitUsage, "%v", err)
		}
	}
	v := configView{File: configPath(d.getenv), FileExists: cf != nil, Environment: envName, Settings: settle(nil, cf, envName, env, d.getenv)}
	return o.print(s, result{
		value: v,
		table: func(w io.Writer) error {
			exists := ""
			if !v.FileExists {
				exists = " (none)"
			}
			fmt.Fprintf(w, "Config file  %s%s\n", v.File, exists)
			if v.Environment != "" {
				fmt.Fprintf(w, "Environment  %s\n", v.Environment)
			}
			fmt.Fprintln(w)
			t := newTable(w, "SETTING", "FLAG", "VALUE", "SOURCE")
			for _, st := range v.Settings {
				if err := t.Append([]string{st.Key, st.Flag, dash(st.Value), st.Source}); err != nil {
					return err
				}
			}
			return t.Render()
		},
		text: func(t *textWriter) {
			for _, st := range v.Settings {
				t.line("SETTING", st.Key, st.Value, st.Source)
			}
		},
	})
}
