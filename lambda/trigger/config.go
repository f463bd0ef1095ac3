package trigger

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder/evidence"
)

// Environment variables read by LoadConfig. lambda/README.md documents each
// one with its default; keep the two in step.
const (
	EnvEvidenceBucket       = "RESPONDER_EVIDENCE_BUCKET"
	EnvEvidenceKMSKey       = "RESPONDER_EVIDENCE_KMS_KEY"
	EnvTopicARN             = "RESPONDER_TOPIC_ARN"
	EnvStateMachineARN      = "RESPONDER_STATE_MACHINE_ARN"
	EnvAllowedAccounts      = "RESPONDER_ALLOWED_ACCOUNTS"
	EnvMemberRoleName       = "RESPONDER_MEMBER_ROLE_NAME"
	EnvExternalID           = "RESPONDER_EXTERNAL_ID"
	EnvGuardDutyEnabled     = "RESPONDER_GUARDDUTY_ENABLED"
	EnvGuardDutyMinSeverity = "RESPONDER_GUARDDUTY_MIN_SEVERITY"
	EnvLockWindow           = "RESPONDER_LOCK_WINDOW"
	EnvLogLevel             = "RESPONDER_LOG_LEVEL"
	EnvForensicsKMSKey      = "RESPONDER_FORENSICS_KMS_KEY"
	EnvSourceKMSKeyAlias    = "RESPONDER_SOURCE_KMS_KEY_ALIAS"
	EnvProtectedTag         = "RESPONDER_PROTECTED_TAG"
	EnvBlastRadius          = "RESPONDER_BLAST_RADIUS"
	EnvSigningKey           = "RESPONDER_SIGNING_KEY"
	// EnvRegion is set by the Lambda runtime.
	EnvRegion = "AWS_REGION"
)

// Defaults of the optional settings.
const (
	DefaultMemberRoleName       = "responder-ir-member"
	DefaultGuardDutyMinSeverity = 7.0 // GuardDuty's "High" and above
	DefaultLockWindow           = 10 * time.Minute
)

// NoRole, as RESPONDER_MEMBER_ROLE_NAME, makes the function act with its own
// role instead of assuming one: a single-account deployment, where the only
// allowed account is the function's own.
const NoRole = "none"

// AnyAccount, as RESPONDER_ALLOWED_ACCOUNTS, allows every account: the trust
// policy of the member role is then the only boundary.
const AnyAccount = "*"

// Config is the function's configuration.
type Config struct {
	// EvidenceBucket holds the cases and the per-instance locks.
	EvidenceBucket string
	// EvidenceKMSKey, when set, asks for SSE-KMS with this key on every write.
	EvidenceKMSKey string
	// TopicARN is notified of every response; empty: no notification.
	TopicARN string
	// StateMachineARN runs the cases. Its partition and account are the
	// function's own (HomePartition, HomeAccount).
	StateMachineARN string
	HomePartition   string
	HomeAccount     string
	// AllowedAccounts are the accounts a response may act in; AnyAccount
	// allows all.
	AllowedAccounts []string
	// MemberRoleName is assumed in the instance's account (NoRole: none).
	MemberRoleName string
	ExternalID     string
	// GuardDuty findings start a response only when enabled, and only at or
	// above the threshold.
	GuardDutyEnabled     bool
	GuardDutyMinSeverity float64
	// LockWindow is how long an instance stays with the case that took it:
	// another event for it within the window joins that case.
	LockWindow time.Duration
	// Region is the function's Region (AWS_REGION): the default Region of a
	// target and the Region of the evidence bucket, topic and state machine.
	Region   string
	LogLevel slog.Level
	// ForensicsKMSKey encrypts the copies of the case snapshots that the
	// preserve task makes in the function's own account (HomeAccount, the
	// forensics account); empty: the snapshots are not copied.
	ForensicsKMSKey string
	// SourceKMSKeyAlias names (without "alias/") a customer managed key that
	// every member account holds under this alias and that the forensics
	// account may use: snapshots under the AWS managed key aws/ebs, which
	// cannot be shared, are re-encrypted with it first. Empty: such
	// snapshots are not preserved.
	SourceKMSKeyAlias string
	// ProtectedTag is the key of the tag that protects an instance
	// (responder.DefaultProtectedTag when empty); BlastRadius the limit of
	// instances contained per account in any 60 minutes (0: the default).
	ProtectedTag string
	BlastRadius  int
	// SigningKey is the KMS key (ECC_NIST_P256, SIGN_VERIFY) in the
	// function's account that signs every record the function saves;
	// empty: records are sealed, not signed.
	SigningKey string
	// Collection configures OS-level collection (collect_config.go).
	Collection CollectionConfig
	// Fleet configures the fan-out of a fleet (fleet_config.go).
	Fleet FleetConfig
	// Analysis holds the investigation workspace's defaults
	// (investigate_config.go).
	Analysis AnalysisConfig
}

// ConfigError is a missing or invalid environment variable.
type ConfigError struct {
	Var     string
	Problem string
}

func (e *ConfigError) Error() string { return e.Var + ": " + e.Problem }

var (
	bucketPattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	stateMachinePattern = regexp.MustCompile(`^arn:(aws[a-z-]*):states:([a-z0-9-]+):([0-9]{12}):stateMachine:([A-Za-z0-9_-]{1,80})$`)
	topicPattern        = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)
	roleNamePattern     = regexp.MustCompile(`^([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	externalIDPattern   = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	kmsKeyPattern       = regexp.MustCompile(`^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+|alias/[A-Za-z0-9/_-]+|[0-9a-f-]{36}|mrk-[0-9a-f]{32})$`)
	aliasNamePattern    = regexp.MustCompile(`^[A-Za-z0-9/_-]{1,250}$`)
)

// LoadConfig reads the configuration from getenv (os.Getenv in the function).
// It reports every missing or invalid variable at once, each error naming its
// variable, so that a deployment is fixed in one go.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		MemberRoleName:       DefaultMemberRoleName,
		GuardDutyMinSeverity: DefaultGuardDutyMinSeverity,
		LockWindow:           DefaultLockWindow,
		LogLevel:             slog.LevelInfo,
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, &ConfigError{Var: name, Problem: fmt.Sprintf(format, args...)})
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	required := func(name string) string {
		v := get(name)
		if v == "" {
			bad(name, "required, but not set")
		}
		return v
	}

	c.Region = required(EnvRegion)
	if c.Region != "" && ValidateRegion(c.Region) != nil {
		bad(EnvRegion, "%q is not a Region name", c.Region)
	}
	if c.EvidenceBucket = required(EnvEvidenceBucket); c.EvidenceBucket != "" && !bucketPattern.MatchString(c.EvidenceBucket) {
		bad(EnvEvidenceBucket, "%q is not an S3 bucket name", c.EvidenceBucket)
	}
	c.EvidenceKMSKey = get(EnvEvidenceKMSKey)
	if c.TopicARN = get(EnvTopicARN); c.TopicARN != "" && !topicPattern.MatchString(c.TopicARN) {
		bad(EnvTopicARN, "%q is not an SNS topic ARN", c.TopicARN)
	}
	if c.StateMachineARN = required(EnvStateMachineARN); c.StateMachineARN != "" {
		m := stateMachinePattern.FindStringSubmatch(c.StateMachineARN)
		if m == nil {
			bad(EnvStateMachineARN, "%q is not an unqualified state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>)", c.StateMachineARN)
		} else {
			c.HomePartition, c.HomeAccount = m[1], m[3]
		}
	}
	if c.Region != "" && ValidateRegion(c.Region) == nil && c.HomePartition != "" && ValidateRegionIn(c.Region, c.HomePartition) != nil {
		bad(EnvRegion, "%q is not a Region of the state machine's partition %s (%s)", c.Region, c.HomePartition, EnvStateMachineARN)
	}
	if accounts := required(EnvAllowedAccounts); accounts != "" {
		for _, a := range strings.FieldsFunc(accounts, func(r rune) bool { return r == ',' || r == ' ' }) {
			if a != AnyAccount && ValidateAccountID(a) != nil {
				bad(EnvAllowedAccounts, "%q is not a 12-digit account ID", a)
				continue
			}
			if !slices.Contains(c.AllowedAccounts, a) {
				c.AllowedAccounts = append(c.AllowedAccounts, a)
			}
		}
		if slices.Contains(c.AllowedAccounts, AnyAccount) && len(c.AllowedAccounts) > 1 {
			bad(EnvAllowedAccounts, "%q allows every account: list accounts or give %q alone", AnyAccount, AnyAccount)
		}
	}
	if v := get(EnvMemberRoleName); v != "" {
		c.MemberRoleName = v
	}
	if c.MemberRoleName != NoRole && !roleNamePattern.MatchString(c.MemberRoleName) {
		bad(EnvMemberRoleName, "%q is not an IAM role name", c.MemberRoleName)
	}
	if c.MemberRoleName == NoRole && c.HomeAccount != "" {
		for _, a := range c.AllowedAccounts {
			if a != c.HomeAccount {
				bad(EnvAllowedAccounts, "%s is %q, so the function acts with its own role and can reach only its own account %s, not %s",
					EnvMemberRoleName, NoRole, c.HomeAccount, a)
			}
		}
	}
	if c.ExternalID = get(EnvExternalID); c.ExternalID != "" && (len(c.ExternalID) < 2 || len(c.ExternalID) > 1224 || !externalIDPattern.MatchString(c.ExternalID)) {
		bad(EnvExternalID, "not a valid sts:ExternalId (2-1224 characters of [\\w+=,.@:/-])")
	}
	if v := get(EnvGuardDutyEnabled); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			bad(EnvGuardDutyEnabled, "%q is not true or false", v)
		}
		c.GuardDutyEnabled = on
	}
	if v := get(EnvGuardDutyMinSeverity); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s < 0 || s > 10 {
			bad(EnvGuardDutyMinSeverity, "%q is not a severity from 0 to 10", v)
		}
		c.GuardDutyMinSeverity = s
	}
	if v := get(EnvLockWindow); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour || d%time.Minute != 0 {
			bad(EnvLockWindow, "%q is not a whole number of minutes from 1m to 24h (for example 10m)", v)
		}
		c.LockWindow = d
	}
	if c.ProtectedTag = get(EnvProtectedTag); len(c.ProtectedTag) > 128 || strings.HasPrefix(strings.ToLower(c.ProtectedTag), "aws:") {
		bad(EnvProtectedTag, "%q is not a tag key (at most 128 characters, not aws:...)", c.ProtectedTag)
	}
	if v := get(EnvBlastRadius); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > evidence.MaxBlastRadius {
			bad(EnvBlastRadius, "%q is not a number of instances from 1 to %d", v, evidence.MaxBlastRadius)
		}
		c.BlastRadius = n
	}
	if v := get(EnvLogLevel); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad(EnvLogLevel, "%q is not debug, info, warn or error", v)
		}
	}
	if c.SigningKey = get(EnvSigningKey); c.SigningKey != "" && evidence.ValidateSigningKey(c.SigningKey) != nil {
		bad(EnvSigningKey, "%q is not a KMS key ARN, key ID or alias", c.SigningKey)
	}
	if c.ForensicsKMSKey = get(EnvForensicsKMSKey); c.ForensicsKMSKey != "" && !kmsKeyPattern.MatchString(c.ForensicsKMSKey) {
		bad(EnvForensicsKMSKey, "%q is not a KMS key ARN, key ID or alias", c.ForensicsKMSKey)
	}
	if v := get(EnvSourceKMSKeyAlias); v != "" {
		c.SourceKMSKeyAlias = strings.TrimPrefix(v, "alias/")
		if !aliasNamePattern.MatchString(c.SourceKMSKeyAlias) || strings.HasPrefix(c.SourceKMSKeyAlias, "aws/") {
			bad(EnvSourceKMSKeyAlias, "%q is not the name of a customer managed key's alias (for example responder-evidence)", v)
		}
	}
	c.loadCollection(get, bad)
	c.loadFleet(get, bad)
	c.loadAnalysis(get, bad)
	return c, errlist.Join(errs...)
}

// PreserveConfigured reports whether the preserve task copies the case
// snapshots into the forensics account.
func (c Config) PreserveConfigured() bool { return c.ForensicsKMSKey != "" }

// SourceKMSKeyARN is the alias ARN of SourceKMSKeyAlias in a member account
// and Region; "" when no alias is configured.
func (c Config) SourceKMSKeyARN(account, region string) string {
	if c.SourceKMSKeyAlias == "" {
		return ""
	}
	return "arn:" + c.partition() + ":kms:" + region + ":" + account + ":alias/" + c.SourceKMSKeyAlias
}

func (c Config) partition() string {
	if c.HomePartition == "" {
		return "aws"
	}
	return c.HomePartition
}

// AccountAllowed reports whether a response may act in the account.
func (c Config) AccountAllowed(account string) bool {
	return slices.Contains(c.AllowedAccounts, AnyAccount) || slices.Contains(c.AllowedAccounts, account)
}

// RoleARN is the role assumed in an account; "" with NoRole.
func (c Config) RoleARN(account string) string {
	if c.MemberRoleName == NoRole {
		return ""
	}
	return "arn:" + c.HomePartition + ":iam::" + account + ":role/" + c.MemberRoleName
}
