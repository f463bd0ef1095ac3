package cloud

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/guardduty"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/securityhub"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
)

// MaxAttempts is how many times one operation is tried before its error is
// reported. Throttling (RequestLimitExceeded, Throttling, SlowDown...) and
// transient errors are retried with the SDK's jittered exponential backoff.
const MaxAttempts = 10

// Options selects the credentials and Region. Empty fields fall back to the
// standard SDK configuration (environment, shared config files, IMDS).
type Options struct {
	Region  string
	Profile string
	// RoleARN, when set, is assumed for every call into the workload account.
	// The evidence store and the SNS topic keep the caller's own credentials,
	// so they may live in another (forensics) account.
	RoleARN     string
	ExternalID  string
	SessionName string
	// MaxBackoff caps the wait between two attempts (default: the SDK's 20 s).
	MaxBackoff time.Duration
	// Retry bounds and reports the retries of every operation (RetryWatch).
	Retry RetryWatch
	// APIOptions are extra SDK middleware (tests use them to inject latency
	// and faults in front of an emulator).
	APIOptions []func(*middleware.Stack) error
	// NoPacing leaves the workload EC2 client unpaced. By default its calls
	// wait on one Pacer per Clients (EC2's token buckets per action, see
	// pacer.go) and its concurrent reads coalesce: every response run
	// through the same Clients shares them.
	NoPacing bool
	// Pace configures the pacer (tests and benchmarks scale its clock).
	Pace PacerOptions
}

// Clients are the SDK clients of one response.
type Clients struct {
	// Workload-account clients (the assumed role when Options.RoleARN is set).
	EC2 EC2
	STS STS
	KMS KMS
	SSM SSM
	// AutoScaling, ELBv2 and ELB take the instance out of its Auto Scaling
	// group's service and its load balancers' traffic.
	AutoScaling AutoScaling
	ELBv2       ELBv2
	ELB         ELB
	IAM         IAM
	// CloudTrail, GuardDuty and SecurityHubFindings read the cloud's own
	// record of the instance: management events and findings.
	CloudTrail          CloudTrail
	GuardDuty           GuardDuty
	SecurityHubFindings SecurityHubFindings
	// Caller-credential clients, for the evidence store and notifications.
	S3  S3
	SNS SNS
	// Presign signs the S3 requests a suspect instance makes itself (its
	// uploads, the staged tools), with the caller's own credentials;
	// EvidenceCredentials are those credentials, whose expiry bounds how
	// long a presigned URL lives.
	Presign             Presigner
	EvidenceCredentials aws.CredentialsProvider
	// ForensicsEC2 is EC2 with the caller's own credentials, in the
	// forensics account: it copies the snapshots shared with it.
	ForensicsEC2 ForensicsEC2
	// InvestigationEC2 and InvestigationSSM act in the forensics account
	// too, with the caller's own credentials: responder investigate.
	InvestigationEC2 InvestigationEC2
	InvestigationSSM InvestigationSSM
	// InvestigationIAM writes, reads back and deletes the per-workspace
	// evidence policy on the analysis role (forensics account).
	InvestigationIAM InvestigationIAM
	// Signing is KMS with the caller's own credentials: it signs the case
	// records with the forensics account's signing key (--signing-key).
	Signing Signing
	// EBS reads snapshot copies in the forensics account block by block
	// (EBS direct APIs), with the caller's own credentials.
	EBS EBS
	// CallerSTS identifies the caller behind the assumed role; nil when no
	// role is assumed.
	CallerSTS STS
	Region    string
}

// Load builds the clients from the standard SDK configuration chain.
func Load(ctx context.Context, opts Options) (*Clients, error) {
	base, err := loadBase(ctx, opts)
	if err != nil {
		return nil, err
	}
	workload := base.Copy()
	if opts.RoleARN != "" {
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), opts.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = opts.SessionName
			if opts.ExternalID != "" {
				o.ExternalID = aws.String(opts.ExternalID)
			}
		})
		workload.Credentials = aws.NewCredentialsCache(provider)
	}
	s3Client := s3.NewFromConfig(base, usePathStyleOnCustomEndpoint)
	c := &Clients{
		EC2:                 ec2.NewFromConfig(workload),
		STS:                 sts.NewFromConfig(workload),
		KMS:                 kms.NewFromConfig(workload),
		SSM:                 ssm.NewFromConfig(workload),
		AutoScaling:         autoscaling.NewFromConfig(workload),
		ELBv2:               elbv2.NewFromConfig(workload),
		ELB:                 elb.NewFromConfig(workload),
		IAM:                 iam.NewFromConfig(workload),
		CloudTrail:          cloudtrail.NewFromConfig(workload),
		GuardDuty:           guardduty.NewFromConfig(workload),
		SecurityHubFindings: securityhub.NewFromConfig(workload),
		S3:                  s3Client,
		SNS:                 sns.NewFromConfig(base),
		Presign:             s3.NewPresignClient(s3Client),
		EvidenceCredentials: base.Credentials,
		ForensicsEC2:        ec2.NewFromConfig(base),
		InvestigationEC2:    ec2.NewFromConfig(base),
		InvestigationSSM:    ssm.NewFromConfig(base),
		InvestigationIAM:    iam.NewFromConfig(base),
		Signing:             kms.NewFromConfig(base),
		EBS:                 ebs.NewFromConfig(base),
		Region:              base.Region,
	}
	if opts.RoleARN != "" {
		c.CallerSTS = sts.NewFromConfig(base)
	}
	if !opts.NoPacing {
		c.EC2 = PaceEC2(c.EC2, NewPacer(opts.Pace))
	}
	return c, nil
}

// loadBase loads the caller's configuration: Region and profile from opts or
// the standard chain, the toolkit's retryer, the call recorder and any extra
// middleware.
func loadBase(ctx context.Context, opts Options) (aws.Config, error) {
	var loaders []func(*config.LoadOptions) error
	if opts.Region != "" {
		loaders = append(loaders, config.WithRegion(opts.Region))
	}
	if opts.Profile != "" {
		loaders = append(loaders, config.WithSharedConfigProfile(opts.Profile))
	}
	loaders = append(loaders, config.WithRetryer(func() aws.Retryer { return newRetryer(opts.MaxBackoff) }))
	base, err := config.LoadDefaultConfig(ctx, loaders...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if base.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS Region: set --region, AWS_REGION or a profile with a region")
	}
	base.APIOptions = append(base.APIOptions, AddCallRecorder, opts.Retry.middleware)
	base.APIOptions = append(base.APIOptions, opts.APIOptions...)
	return base, nil
}

// usePathStyleOnCustomEndpoint addresses buckets by path when a custom S3
// endpoint is configured (AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3): emulators
// and S3-compatible stores on loopback do not serve virtual-hosted buckets.
func usePathStyleOnCustomEndpoint(o *s3.Options) {
	if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
		o.UsePathStyle = true
	}
}

func newRetryer(maxBackoff time.Duration) aws.Retryer {
	return boundedRetryer{retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		if maxBackoff > 0 {
			o.MaxBackoff = maxBackoff
			o.Backoff = retry.NewExponentialJitterBackoff(maxBackoff)
		}
		// No client-side retry quota: a response under throttling must keep
		// trying rather than give up after a burst of throttle errors.
		o.RateLimiter = ratelimit.None
	})}
}

// UrgentMaxBackoff caps the wait between two attempts of a call isolation
// waits on: with the SDK's 20 s cap, one throttled read could hold the
// quarantine for as long; with this cap, MaxAttempts attempts take at most
// about MaxAttempts seconds, and throttling stays the retryer's job.
const UrgentMaxBackoff = time.Second

// Urgent is the option of the EC2 calls on isolation's path (the first
// DescribeInstances, the snapshot request, the group lookups, the interface
// moves and their read-back): the same attempts, with waits capped at
// UrgentMaxBackoff.
func Urgent(o *ec2.Options) {
	if o.Retryer != nil {
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, UrgentMaxBackoff)
	}
}
