package step

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Orders of OS-level collection against isolation.
const (
	// IsolateFirst quarantines the instance before SSM collects from it. The
	// instance's interfaces go into the forensic access group, which allows
	// only HTTPS to the VPC's Systems Manager and S3 endpoints while the
	// collection runs, then into the closed quarantine group. Without those
	// endpoints, SSM cannot reach a quarantined instance and nothing is
	// collected: the safe default, losing memory rather than time.
	IsolateFirst = "isolate-first"
	// CaptureFirst collects through SSM before the instance is isolated,
	// within CaptureTimeout, then isolates it whatever the collection did:
	// the memory image is taken while the attacker still has the network.
	CaptureFirst = "capture-first"
)

// Default bounds of the collection commands.
const (
	DefaultCaptureTimeout  = 30 * time.Minute
	DefaultVolatileTimeout = 10 * time.Minute
)

// Collection configures the OS-level collection steps (ssm-access,
// volatile-data, memory-capture, forensic-access-close). A playbook sets it;
// the CLI and the Lambda may override the account-specific parts.
type Collection struct {
	// Order is IsolateFirst (default) or CaptureFirst.
	Order string `json:"order" yaml:"order"`
	// ForensicProfileARN is the minimal instance profile that ssm-access
	// associates when the instance has none and is not a managed node (the
	// member-account stack's ForensicInstanceProfile). Empty: never attach.
	ForensicProfileARN string `json:"forensic_profile_arn,omitempty" yaml:"forensic_profile_arn"`
	// RegistrationTimeout bounds the wait for the SSM Agent to come online
	// after the forensic profile is associated (default 10 minutes).
	RegistrationTimeout Duration `json:"registration_timeout,omitempty" yaml:"registration_timeout"`
	// CaptureTimeout bounds each collection command (ExecutionTimeout on the
	// instance, and the wait for it). With CaptureFirst it is how long
	// isolation may wait. Default: 30 minutes for memory, 10 for volatile data.
	CaptureTimeout Duration `json:"capture_timeout,omitempty" yaml:"capture_timeout"`
	// PollInterval is the wait between two GetCommandInvocation calls
	// (default 5 s).
	PollInterval Duration `json:"poll_interval,omitempty" yaml:"poll_interval"`
	// StagingBucket holds what the instance fetches: the memory tools under
	// tools/ and, for the length of a capture, the list of presigned part
	// URLs under parts/. It is not the Object Lock evidence bucket.
	StagingBucket string `json:"staging_bucket,omitempty" yaml:"staging_bucket"`
	// Memory configures memory capture.
	Memory MemorySettings `json:"memory" yaml:"memory"`
	// RecentDays is how far back the volatile data lists modified files.
	RecentDays int `json:"recent_days,omitempty" yaml:"recent_days"`
}

// MemorySettings configures the memory capture document.
type MemorySettings struct {
	// Tool is auto (AVML, then LiME), avml or lime on Linux.
	Tool string `json:"tool,omitempty" yaml:"tool"`
	// Compression is auto, zstd, gzip or none.
	Compression string `json:"compression,omitempty" yaml:"compression"`
	// PartSizeMiB is the preferred part size (default 64; grown to fit).
	PartSizeMiB int `json:"part_size_mib,omitempty" yaml:"part_size_mib"`
	// Tools are the staged binaries, keyed avml-x86_64, avml-aarch64,
	// winpmem-x64 or lime-<uname -r>: a key under the staging bucket and the
	// pinned SHA-256 the instance checks before running it.
	Tools map[string]StagedTool `json:"tools,omitempty" yaml:"tools"`
	// LimeTimeoutMs is LiME's slow-read timeout (0: never zero-fill).
	LimeTimeoutMs int `json:"lime_timeout_ms,omitempty" yaml:"lime_timeout_ms"`
	// VerifyImage re-reads the stored image to compute its SHA-256 in the
	// forensics account instead of trusting the instance's hash alone
	// (default true; turning it off saves one read of the image).
	VerifyImage *bool `json:"verify_image,omitempty" yaml:"verify_image"`
}

// StagedTool is a tool binary in the staging bucket.
type StagedTool struct {
	Key    string `json:"key" yaml:"key"`
	SHA256 string `json:"sha256" yaml:"sha256"`
}

// Duration is a time.Duration written as "90s" or "10m" in playbooks.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

var (
	profileARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/[\w+=,.@/-]{1,128}$`)
	bucketPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	toolKeyPattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$`)
	sha256Pattern     = regexp.MustCompile(`^[a-f0-9]{64}$`)
	toolNamePattern   = regexp.MustCompile(`^(avml-(x86_64|aarch64)|winpmem-x64|lime-[A-Za-z0-9._+-]{1,100})$`)
)

// Validate checks the settings without calling AWS.
func (c Collection) Validate() error {
	switch c.Order {
	case "", IsolateFirst, CaptureFirst:
	default:
		return fmt.Errorf("collection order %q: want %s or %s", c.Order, IsolateFirst, CaptureFirst)
	}
	if c.ForensicProfileARN != "" && !profileARNPattern.MatchString(c.ForensicProfileARN) {
		return fmt.Errorf("forensic profile %q is not an instance profile ARN", c.ForensicProfileARN)
	}
	if c.StagingBucket != "" && !bucketPattern.MatchString(c.StagingBucket) {
		return fmt.Errorf("staging bucket %q is not a bucket name", c.StagingBucket)
	}
	switch c.Memory.Tool {
	case "", "auto", "avml", "lime":
	default:
		return fmt.Errorf("memory tool %q: want auto, avml or lime", c.Memory.Tool)
	}
	switch c.Memory.Compression {
	case "", "auto", "zstd", "gzip", "none":
	default:
		return fmt.Errorf("memory compression %q: want auto, zstd, gzip or none", c.Memory.Compression)
	}
	if p := c.Memory.PartSizeMiB; p != 0 && (p < 5 || p > 5120) {
		return fmt.Errorf("memory part size %d MiB: S3 parts are 5 to 5120 MiB", p)
	}
	if c.RecentDays < 0 || c.RecentDays > 90 {
		return fmt.Errorf("recent days %d: want 1 to 90", c.RecentDays)
	}
	if c.Memory.LimeTimeoutMs < 0 {
		return fmt.Errorf("lime timeout %d ms is negative", c.Memory.LimeTimeoutMs)
	}
	if t := time.Duration(c.CaptureTimeout); t != 0 && (t < time.Minute || t > 48*time.Hour) {
		return fmt.Errorf("capture timeout %s: want 1m to 48h", t)
	}
	for name, t := range c.Memory.Tools {
		if !toolNamePattern.MatchString(name) {
			return fmt.Errorf("memory tool %q: want avml-x86_64, avml-aarch64, winpmem-x64 or lime-<kernel release>", name)
		}
		if !toolKeyPattern.MatchString(t.Key) {
			return fmt.Errorf("memory tool %s: key %q is not a plain S3 key", name, t.Key)
		}
		if !sha256Pattern.MatchString(t.SHA256) {
			return fmt.Errorf("memory tool %s: sha256 must be 64 lowercase hex digits", name)
		}
	}
	return nil
}

// StagingAPI is what the collection steps need of S3 in the staging bucket:
// the list of part URLs is written there for the instance to fetch.
type StagingAPI interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	// GetObject reads back what a staged collection's prepare stage
	// staged for its send stage (the sealed command parameters).
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// SSMNode is what ssm-access found of the instance as a managed node.
type SSMNode struct {
	PingStatus   string `json:"ping_status,omitempty"`
	PlatformType string `json:"platform_type,omitempty"` // Linux or Windows
	PlatformName string `json:"platform_name,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
	IAMRole      string `json:"iam_role,omitempty"`
}

// collectionState is what the collection steps share through the Env.
type collectionState struct {
	forensicGroups map[string]string // VPC ID -> forensic access group ID
	// forensicInterfaces are the interfaces this run put in a forensic
	// access group (interface ID -> VPC ID).
	forensicInterfaces map[string]string
	// node is set by ssm-access when commands can run; notReady says why
	// they cannot otherwise.
	node     *SSMNode
	notReady string
	// deadline bounds the collection when it runs before isolation.
	deadline time.Time
	// volatilePending: a staged volatile-data collection has not ended yet
	// (the memory capture is sent only after it, as the CLI runs them).
	volatilePending bool
}

// SetForensicGroup records the forensic access group prepared for a VPC.
func (e *Env) SetForensicGroup(vpcID, groupID string) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	if e.facts.collection.forensicGroups == nil {
		e.facts.collection.forensicGroups = map[string]string{}
	}
	e.facts.collection.forensicGroups[vpcID] = groupID
}

// ForensicGroup returns the forensic access group prepared for a VPC.
func (e *Env) ForensicGroup(vpcID string) (string, bool) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	id, ok := e.facts.collection.forensicGroups[vpcID]
	return id, ok
}

func (e *Env) setForensicInterface(eni, vpc string) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	if e.facts.collection.forensicInterfaces == nil {
		e.facts.collection.forensicInterfaces = map[string]string{}
	}
	e.facts.collection.forensicInterfaces[eni] = vpc
}

func (e *Env) forensicInterfaces() map[string]string {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return maps.Clone(e.facts.collection.forensicInterfaces)
}

func (e *Env) setNode(n *SSMNode, notReady string) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	e.facts.collection.node, e.facts.collection.notReady = n, notReady
}

// ssmNode returns the managed node commands can run on, or why there is none.
func (e *Env) ssmNode() (*SSMNode, string) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	if e.facts.collection.node == nil && e.facts.collection.notReady == "" {
		return nil, "ssm-access did not run in this plan"
	}
	return e.facts.collection.node, e.facts.collection.notReady
}

func (e *Env) setCollectionDeadline(t time.Time) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	e.facts.collection.deadline = t
}

func (e *Env) collectionDeadline() time.Time {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return e.facts.collection.deadline
}

func (e *Env) setVolatilePending(pending bool) {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	e.facts.collection.volatilePending = pending
}

// volatilePending says whether a staged volatile-data collection of this
// run has not ended yet.
func (e *Env) volatilePending() bool {
	e.facts.mu.Lock()
	defer e.facts.mu.Unlock()
	return e.facts.collection.volatilePending
}
