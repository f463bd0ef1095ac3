package trigger

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder/step"
)

// Environment variables of OS-level collection (the collect and
// collect-before-isolate playbooks). The first two are the CLI's names.
const (
	EnvForensicProfile = "RESPONDER_FORENSIC_PROFILE"
	EnvStagingBucket   = "RESPONDER_STAGING_BUCKET"
	EnvMemoryTools     = "RESPONDER_MEMORY_TOOLS"
	EnvActionPlaybooks = "RESPONDER_ACTION_PLAYBOOKS"
)

// MaxStagedCapture bounds a capture the function runs: the part URLs are
// signed, when the capture is prepared, with the function's execution-role
// credentials, whose expiry the function cannot read (Lambda hands them over
// without one), and a presigned URL dies with the credentials that signed
// it. The function takes one hour, the shortest life of an assumed-role
// session (and the most a chained one gets), as the URLs' limit: a capture
// whose URLs must outlive it (capture timeout plus 5 minutes for the last
// upload) is refused before anything is done.
const MaxStagedCapture = time.Hour - 5*time.Minute

// CollectionConfig is what the function's collection needs beyond the
// playbook: where the tools are, and the forensic profile.
type CollectionConfig struct {
	// ForensicProfile is an instance profile name, with its path (the
	// member stack's responder/<member role>-forensic-ssm), found in the
	// target's account; or an instance profile ARN (one account only).
	ForensicProfile string
	// StagingBucket is in the function's own account: the tools, the part
	// URL lists and the sealed command parameters.
	StagingBucket string
	// MemoryTools are the staged tools: name -> key and pinned SHA-256.
	MemoryTools map[string]step.StagedTool
	// ActionPlaybooks maps a Security Hub custom action ID (the last part
	// of its target ARN) to the playbook its cases run.
	ActionPlaybooks map[string]string
}

var (
	profileNamePattern = regexp.MustCompile(`^([\w+=,.@-]+/)*[\w+=,.@-]{1,128}$`)
	profileARNPattern  = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/[\w+=,.@/-]{1,128}$`)
	actionIDPattern    = regexp.MustCompile(`^[A-Za-z0-9]{1,20}$`)
)

// loadCollection reads the collection variables into c.
func (c *Config) loadCollection(get func(string) string, bad func(name, format string, args ...any)) {
	if v := get(EnvForensicProfile); v != "" {
		if !profileNamePattern.MatchString(v) && !profileARNPattern.MatchString(v) {
			bad(EnvForensicProfile, "%q is neither an instance profile name nor an instance profile ARN", v)
		}
		c.Collection.ForensicProfile = v
	}
	if v := get(EnvStagingBucket); v != "" {
		if !bucketPattern.MatchString(v) {
			bad(EnvStagingBucket, "%q is not an S3 bucket name", v)
		}
		c.Collection.StagingBucket = v
	}
	if v := get(EnvMemoryTools); v != "" {
		tools, err := parseMemoryTools(v)
		if err != nil {
			bad(EnvMemoryTools, "%v", err)
		}
		c.Collection.MemoryTools = tools
	}
	if v := get(EnvActionPlaybooks); v != "" {
		m, err := c.parseActionPlaybooks(v)
		if err != nil {
			bad(EnvActionPlaybooks, "%v", err)
		}
		c.Collection.ActionPlaybooks = m
	}
}

// parseMemoryTools reads name=key@sha256, comma-separated.
func parseMemoryTools(v string) (map[string]step.StagedTool, error) {
	tools := map[string]step.StagedTool{}
	for _, item := range strings.Split(v, ",") {
		name, rest, ok1 := strings.Cut(strings.TrimSpace(item), "=")
		key, sum, ok2 := strings.Cut(rest, "@")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%q: want name=key@sha256 (for example avml-x86_64=tools/avml@<64 hex digits>)", item)
		}
		tools[name] = step.StagedTool{Key: key, SHA256: sum}
	}
	// The playbook's own check says what is wrong with a tool.
	if err := (step.Collection{Memory: step.MemorySettings{Tools: tools}}).Validate(); err != nil {
		return nil, err
	}
	return tools, nil
}

// parseActionPlaybooks reads action-id=playbook, comma-separated.
func (c *Config) parseActionPlaybooks(v string) (map[string]string, error) {
	m := map[string]string{}
	for _, item := range strings.Split(v, ",") {
		id, name, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || !actionIDPattern.MatchString(id) {
			return nil, fmt.Errorf("%q: want action-id=playbook, the ID being the custom action's (1-20 letters and digits)", item)
		}
		if _, err := playbooks.Lookup(name); err != nil {
			return nil, fmt.Errorf("%q: unknown playbook %s", item, quote(name))
		}
		m[id] = name
	}
	return m, nil
}

// Playbook returns the playbook a case runs ("" is DefaultPlaybook), or why
// the function does not run it: ErrUnknownPlaybook, or an
// UnsupportedPlaybookError for a collecting playbook without the staging
// bucket and tools, or whose capture outlasts MaxStagedCapture.
func (c Config) Playbook(name string) (playbooks.Playbook, error) {
	if name == "" {
		name = DefaultPlaybook
	}
	p, err := playbooks.Lookup(name)
	if err != nil {
		return playbooks.Playbook{}, fmt.Errorf("%w %s (known: %s)", ErrUnknownPlaybook, quote(name), strings.Join(playbookNames(), ", "))
	}
	return c.runnable(p)
}

// runnable returns p, or why the function does not run it.
func (c Config) runnable(p playbooks.Playbook) (playbooks.Playbook, error) {
	if !p.CollectsOS() {
		return p, nil
	}
	switch {
	case c.Collection.StagingBucket == "" || len(c.Collection.MemoryTools) == 0:
		return playbooks.Playbook{}, &UnsupportedPlaybookError{Name: p.Name,
			Why: fmt.Sprintf("it collects memory through SSM, which this function is not configured for (%s and %s)", EnvStagingBucket, EnvMemoryTools)}
	case p.Collection.CaptureTimeout.Or(step.DefaultCaptureTimeout) > MaxStagedCapture:
		return playbooks.Playbook{}, &UnsupportedPlaybookError{Name: p.Name,
			Why: fmt.Sprintf("its capture timeout %s is longer than the function's limit %s (the part URLs die with the one-hour role session that signs them)",
				p.Collection.CaptureTimeout.Or(step.DefaultCaptureTimeout), MaxStagedCapture)}
	}
	return p, nil
}

// collection is the playbook's collection settings with the function's
// account facts, for a target account.
func (c Config) collection(p playbooks.Playbook, account string) step.Collection {
	col := p.Collection
	col.StagingBucket = c.Collection.StagingBucket
	col.Memory.Tools = c.Collection.MemoryTools
	switch prof := c.Collection.ForensicProfile; {
	case prof == "":
	case strings.HasPrefix(prof, "arn:"):
		col.ForensicProfileARN = prof
	default:
		col.ForensicProfileARN = "arn:" + c.partition() + ":iam::" + account + ":instance-profile/" + prof
	}
	return col
}

// actionPlaybook is the playbook of a custom action (its target ARN's last
// part), DefaultPlaybook when none is configured for it.
func (c Config) actionPlaybook(actionARN string) string {
	id := actionARN[strings.LastIndex(actionARN, "/")+1:]
	if name, ok := c.Collection.ActionPlaybooks[id]; ok {
		return name
	}
	return DefaultPlaybook
}

func playbookNames() []string {
	var names []string
	for _, p := range playbooks.All() {
		names = append(names, p.Name)
	}
	return names
}
