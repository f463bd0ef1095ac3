// Package investigate builds and tears down the investigation workspace of a
// case in the forensics account: a fresh analysis instance, working volumes
// restored from the case's snapshot copies in the instance's Availability
// Zone, their filesystems mounted read-only through an SSM document that
// proves nothing wrote to them, and the case's memory image fetched onto the
// instance ("Forensic investigation environment strategies in the AWS
// Cloud"). Everything is recorded in the case as record-only
// "investigation" entries; the snapshot copies themselves are never changed
// or deleted.
package investigate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// Playbooks of the runs the workspace records.
const (
	PlaybookStart = "investigate"
	PlaybookStop  = "investigate-stop"
)

// Tags on the analysis instance and the working volumes.
const (
	TagCaseID      = "responder:case-id" // as on the snapshot copies
	TagWorkspaceID = "responder:workspace-id"
	TagRole        = "responder:role"
	RoleAnalysis   = "analysis"
)

// Defaults.
const (
	DefaultInstanceType    = "m7i.large"
	DefaultInstanceProfile = "responder-ir-analysis"
	DefaultPoll            = 5 * time.Second
	DefaultTimeout         = 30 * time.Minute
	// firstDevice is the device name of the first working volume; the
	// others follow (sdg, sdh, ... sdp): ten at most.
	firstDevice = 'f'
	maxVolumes  = 11
)

// Errors that refuse a start before anything is changed.
var (
	ErrNoCopies        = errors.New("the case has no completed snapshot copy in the forensics account (run responder preserve --wait first)")
	ErrWorkspaceExists = errors.New("the case already has an investigation workspace")
	ErrNoWorkspace     = errors.New("the case has no investigation workspace to stop")
)

// Request asks for a new workspace.
type Request struct {
	CaseID       string
	SubnetID     string
	AMIID        string
	InstanceType string
	// InstanceProfile is the analysis instance profile (name or ARN): the
	// forensics stack's. Its role reads no evidence by itself: the
	// workspace puts an evidence policy on it for its instance alone.
	InstanceProfile string
	// AnalysisRole is the instance profile's role, which the workspace's
	// evidence policy goes on; default: the profile's name (the forensics
	// stack gives both AnalysisRoleName).
	AnalysisRole     string
	SecurityGroupIDs []string
	// KMSKeyID encrypts the working volumes; default: the key the copies
	// were made under (the forensics key).
	KMSKeyID string
	// New allows a second workspace for a case that has one.
	New bool
	// HashDevices makes the mount document hash every device before and
	// after mounting (reads each volume whole).
	HashDevices bool
	// Volatility and Plaso run those tools of the analysis image on the
	// memory image and on the mounts (Responder-AnalysisJob); their
	// outputs become artifacts of the case under analysis/<workspace>/.
	Volatility   bool
	Plaso        bool
	PollInterval time.Duration
	Timeout      time.Duration
}

// Result is the outcome of Start or Stop.
type Result struct {
	Manifest  *evidence.Manifest
	Workspace evidence.Workspace
	// Err aggregates what did not go as asked (also in Workspace.Problems)
	// and a failure to save.
	Err     error
	SaveErr error
}

// Investigator runs workspaces in the forensics account.
type Investigator struct {
	EC2 cloud.InvestigationEC2
	SSM cloud.InvestigationSSM
	// IAM puts, reads back and deletes the workspaces' evidence policies on
	// the analysis role.
	IAM    cloud.InvestigationIAM
	Caller cloud.STS
	Store  evidence.Store
	Region string
	// Account is the forensics account, recorded when Caller cannot tell.
	Account string
	// Signer signs the records saved (optional).
	Signer evidence.Signer
	Log    *slog.Logger
	Now    func() time.Time
	// AccessSettle is how long after the evidence policy is put the
	// evidence is first fetched (default DefaultAccessSettle; IAM is
	// eventually consistent). Negative: no wait.
	AccessSettle time.Duration
}

// New builds the investigation engine from the clients cloud.Load built:
// the forensics account's, with the caller's own credentials.
func New(c *cloud.Clients, store evidence.Store) *Investigator {
	caller := c.STS
	if c.CallerSTS != nil {
		caller = c.CallerSTS
	}
	return &Investigator{EC2: c.InvestigationEC2, SSM: c.InvestigationSSM, IAM: c.InvestigationIAM, Caller: caller, Store: store, Region: c.Region}
}

var (
	subnetPattern   = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	amiPattern      = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	groupPattern    = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	typePattern     = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	profilePattern  = regexp.MustCompile(`^([\w+=,.@-]{1,128}|arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/[\w+=,.@/-]{1,128})$`)
	keyPattern      = regexp.MustCompile(`^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[\w/+=,.@-]+|alias/[\w/+=,.@-]+|[0-9a-f-]{36})$`)
	workspacePatten = regexp.MustCompile(`^ws-[0-9]{3,}$`)
	rolePattern     = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

// Validate checks a request without calling AWS.
func (req *Request) Validate() error {
	var errs *multierror.Error
	add := func(format string, args ...any) { errs = multierror.Append(errs, fmt.Errorf(format, args...)) }
	if err := evidence.ValidateCaseID(req.CaseID); err != nil {
		errs = multierror.Append(errs, err)
	}
	if !subnetPattern.MatchString(req.SubnetID) {
		add("invalid subnet ID %q: want subnet- and 8 or 17 hex digits", req.SubnetID)
	}
	if !amiPattern.MatchString(req.AMIID) {
		add("invalid AMI ID %q: want ami- and 8 or 17 hex digits", req.AMIID)
	}
	if req.InstanceType != "" && !typePattern.MatchString(req.InstanceType) {
		add("invalid instance type %q", req.InstanceType)
	}
	if req.InstanceProfile != "" && !profilePattern.MatchString(req.InstanceProfile) {
		add("invalid instance profile %q: want a name or an instance-profile ARN", req.InstanceProfile)
	}
	if req.AnalysisRole != "" && !rolePattern.MatchString(req.AnalysisRole) {
		add("invalid analysis role %q: want a role name", req.AnalysisRole)
	}
	for _, g := range req.SecurityGroupIDs {
		if !groupPattern.MatchString(g) {
			add("invalid security group ID %q", g)
		}
	}
	if req.KMSKeyID != "" && !keyPattern.MatchString(req.KMSKeyID) {
		add("invalid KMS key %q: want a key ARN, alias ARN, alias/NAME or key ID", req.KMSKeyID)
	}
	if req.PollInterval < 0 || req.Timeout < 0 {
		add("poll interval and timeout must not be negative")
	}
	if err := errlist.OneLine(errs); err != nil {
		return &responder.InputError{Err: err}
	}
	return nil
}

func (req *Request) defaults() {
	if req.InstanceType == "" {
		req.InstanceType = DefaultInstanceType
	}
	if req.InstanceProfile == "" {
		req.InstanceProfile = DefaultInstanceProfile
	}
	if req.PollInterval == 0 {
		req.PollInterval = DefaultPoll
	}
	if req.Timeout == 0 {
		req.Timeout = DefaultTimeout
	}
}

func (iv *Investigator) now() time.Time {
	if iv.Now != nil {
		return iv.Now().UTC()
	}
	return time.Now().UTC()
}

func (iv *Investigator) log() *slog.Logger {
	if iv.Log != nil {
		return iv.Log
	}
	return slog.Default()
}

// actor is who runs the investigation ("" when STS cannot tell).
func (iv *Investigator) actor(ctx context.Context) (arn, account string) {
	if iv.Caller == nil {
		return "", ""
	}
	out, err := iv.Caller.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		iv.log().Warn("could not identify the caller", "error", err)
		return "", ""
	}
	return aws.ToString(out.Arn), aws.ToString(out.Account)
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// poll calls check every interval until it reports done or an error, or
// ctx ends (the error then wraps ctx's).
func poll(ctx context.Context, interval time.Duration, what string, check func() (bool, error)) error {
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if err := sleep(ctx, interval); err != nil {
			return fmt.Errorf("%s: gave up waiting: %w", what, err)
		}
	}
}
