package fakeaws

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// Defaults of a new Cloud.
const (
	DefaultAccount = "111122223333"
	DefaultRegion  = "us-east-1"
)

// Service IDs as the SDK names them (ec2.ServiceID, s3.ServiceID, ...), used in
// recorded calls.
const (
	serviceEC2 = "EC2"
	serviceS3  = "S3"
	serviceSNS = "SNS"
	serviceSTS = "STS"
	serviceKMS = "KMS"
	serviceSSM = "SSM"
	serviceIAM = "IAM"
)

// Cloud is one fake AWS account in one Region. It is safe for concurrent use.
//
// The exported fields configure it. Set them before the code under test starts
// calling; they are read under the Cloud's lock.
type Cloud struct {
	// Account is the 12-digit account ID every resource belongs to.
	Account string
	// Region is the only Region of the account.
	Region string
	// Latency, when positive, is how long every call waits before it is
	// served. The wait ends early, with a canceled error, when the context is
	// done.
	Latency time.Duration
	// GroupPropagationCalls imitates eventual consistency: a group made by
	// CreateSecurityGroup is unknown (InvalidGroup.NotFound) to the next
	// GroupPropagationCalls ModifyNetworkInterfaceAttribute calls that name it.
	GroupPropagationCalls int
	// SnapshotCompletesAfter, when positive, completes a pending snapshot once
	// that many DescribeSnapshots calls have seen it pending: the next one shows
	// it completed. When zero, snapshots stay pending until CompleteSnapshots.
	SnapshotCompletesAfter int
	// ConcurrentCopyLimit is how many CopySnapshot copies may be pending in
	// the account at once; the next answers ResourceLimitExceeded. Zero means
	// AWS's default quota, DefaultConcurrentCopyLimit.
	ConcurrentCopyLimit int
	// NACLEntryQuota is how many entries a network ACL may hold per
	// direction (zero: DefaultNACLEntryQuota, AWS's default).
	NACLEntryQuota int
	// CallerArn and CallerUserID are what GetCallerIdentity answers. When
	// empty, an IAM user "responder-test" in Account.
	CallerArn    string
	CallerUserID string
	// Clock gives the time for creation and launch times. Defaults to time.Now.
	Clock func() time.Time
	// ServerClockSkew is how far AWS's clock is ahead of the local one in
	// the Date every answer carries (recorded as the call's server_date);
	// negative: behind. Zero: the clocks agree.
	ServerClockSkew time.Duration
	// LookupEventsRate and LookupEventsBurst are the request rate of
	// CloudTrail LookupEvents (zero: DefaultLookupEventsRate and
	// DefaultLookupEventsBurst); faster calls answer ThrottlingException.
	LookupEventsRate  float64
	LookupEventsBurst int
	// OnCall, when set, is called with the name of every operation before
	// it is served, outside the Cloud's lock: a test cancels a run at a
	// chosen call with it (the call then sees the cancelled context).
	OnCall func(op string)

	mu     sync.Mutex
	st     state
	seq    int
	rng    *rand.Rand
	faults map[string][]*fault // operation -> pending injected faults, in order
	denied map[string]bool     // operation -> answers its "access denied" code
	// ignored counts, per operation, the calls still to answer success
	// without a change (see Ignore; negative: every call).
	ignored map[string]int
	calls   map[string]int // operation -> number of calls served
	// inFlight counts the calls being served now, by service; maxInFlight
	// is the most seen at once (MaxConcurrentCalls).
	inFlight, maxInFlight map[string]int
	// groupPending counts, per security group made by CreateSecurityGroup, the
	// ModifyNetworkInterfaceAttribute calls that still do not see it.
	groupPending map[string]int
	// sources are the accounts whose snapshots shared with this one
	// CopySnapshot can read (see Link).
	sources []*Cloud
	// agents are the SSM Agents of the account's instances, by instance ID
	// (see SetAgent). Their configuration is test setup and their ping
	// status moves with DescribeInstanceInformation, a read, so they are
	// not part of st.
	agents map[string]*agentState
	// agentS3 are the other accounts' S3 services the agents reach through
	// presigned URLs, besides this account's own (see AgentS3).
	agentS3 []*S3
	// throttle is EC2's request rate limiting (SetRequestThrottle).
	throttle *throttle

	ec2 *EC2
	s3  *S3
	sns *SNS
	sts *STS
	kms *KMS
	ssm *SSM

	autoScaling *AutoScaling
	elbv2       *ELBv2
	elb         *ELB
	iam         *IAM

	// The cloud's own record: the CloudTrail Event history, GuardDuty and
	// Security Hub (cloudtrail.go, guardduty.go, securityhub.go).
	trail       trailState
	guardDuty   guardDutyState
	securityHub securityHubState
}

// state is everything a call can change. StateDigest hashes its JSON form, so
// every field that is not part of the account's resources (counters, caches)
// lives in Cloud instead, or carries `json:"-"`.
type state struct {
	VPCs         map[string]*vpc
	Subnets      map[string]*subnet
	NACLs        map[string]*networkACL // network ACLs, by ID (nacls.go)
	Groups       map[string]*securityGroup
	Instances    map[string]*instance
	Volumes      map[string]*volume
	Interfaces   map[string]*netInterface
	Associations map[string]*profileAssociation
	Snapshots    map[string]*snapshot
	Buckets      map[string]*bucket
	Topics       map[string]*topic  // by ARN
	Keys         map[string]*kmsKey // customer managed KMS keys, by key ID
	Messages     []PublishedMessage
	Endpoints    map[string]*vpcEndpoint // VPC endpoints, by ID
	Documents    map[string]*ssmDocument // SSM documents, by name
	Commands     map[string]*command     // SSM commands, by command ID
	// Auto Scaling groups by name, target groups by ARN, Classic Load
	// Balancers by name.
	AutoScalingGroups    map[string]*asGroup         `json:",omitempty"`
	TargetGroups         map[string]*targetGroup     `json:",omitempty"`
	ClassicLoadBalancers map[string]*classicLB       `json:",omitempty"`
	Roles                map[string]*role            // IAM roles, by name
	Profiles             map[string]*instanceProfile // IAM instance profiles, by name
	// LaunchTokens are the RunInstances client tokens, to the instance
	// each launched (a retried launch answers the same instance).
	LaunchTokens map[string]string `json:",omitempty"`
}

// Option configures a Cloud made by New.
type Option func(*Cloud)

// WithAccount sets the account ID.
func WithAccount(id string) Option { return func(c *Cloud) { c.Account = id } }

// WithRegion sets the Region.
func WithRegion(region string) Option { return func(c *Cloud) { c.Region = region } }

// New returns an empty account: no VPC, no instance, no bucket.
func New(opts ...Option) *Cloud {
	c := &Cloud{
		Account: DefaultAccount,
		Region:  DefaultRegion,
		// A fixed seed: the same sequence of calls gives the same IDs.
		rng:          rand.New(rand.NewPCG(0x5eed, 0xfa4e)),
		faults:       map[string][]*fault{},
		denied:       map[string]bool{},
		ignored:      map[string]int{},
		calls:        map[string]int{},
		groupPending: map[string]int{},
		agents:       map[string]*agentState{},
		st: state{
			VPCs:         map[string]*vpc{},
			Subnets:      map[string]*subnet{},
			NACLs:        map[string]*networkACL{},
			Groups:       map[string]*securityGroup{},
			Instances:    map[string]*instance{},
			Volumes:      map[string]*volume{},
			Interfaces:   map[string]*netInterface{},
			Associations: map[string]*profileAssociation{},
			Snapshots:    map[string]*snapshot{},
			Buckets:      map[string]*bucket{},
			Topics:       map[string]*topic{},
			Keys:         map[string]*kmsKey{},
			Endpoints:    map[string]*vpcEndpoint{},
			Documents:    map[string]*ssmDocument{},
			Commands:     map[string]*command{},

			AutoScalingGroups:    map[string]*asGroup{},
			TargetGroups:         map[string]*targetGroup{},
			ClassicLoadBalancers: map[string]*classicLB{},
			Roles:                map[string]*role{},
			LaunchTokens:         map[string]string{},
			Profiles:             map[string]*instanceProfile{},
		},
	}
	for _, o := range opts {
		o(c)
	}
	c.ec2, c.s3, c.sns, c.sts, c.kms, c.ssm = &EC2{c}, &S3{c}, &SNS{c}, &STS{c}, &KMS{c}, &SSM{c}
	c.autoScaling, c.elbv2, c.elb = &AutoScaling{c}, &ELBv2{c}, &ELB{c}
	c.iam = &IAM{c}
	return c
}

// EC2 returns the account's Amazon EC2 service.
func (c *Cloud) EC2() *EC2 { return c.ec2 }

// S3 returns the account's Amazon S3 service.
func (c *Cloud) S3() *S3 { return c.s3 }

// SNS returns the account's Amazon SNS service.
func (c *Cloud) SNS() *SNS { return c.sns }

// STS returns the account's AWS STS service.
func (c *Cloud) STS() *STS { return c.sts }

// KMS returns the account's AWS KMS service.
func (c *Cloud) KMS() *KMS { return c.kms }

// SSM returns the account's AWS Systems Manager service.
func (c *Cloud) SSM() *SSM { return c.ssm }

// AutoScaling returns the account's Amazon EC2 Auto Scaling service.
func (c *Cloud) AutoScaling() *AutoScaling { return c.autoScaling }

// ELBv2 returns the account's Elastic Load Balancing v2 service.
func (c *Cloud) ELBv2() *ELBv2 { return c.elbv2 }

// ELB returns the account's Classic Load Balancer service.
func (c *Cloud) ELB() *ELB { return c.elb }

// The fakes serve the operation registry.
var (
	_ cloud.EC2          = (*EC2)(nil)
	_ cloud.ForensicsEC2 = (*EC2)(nil)
	_ cloud.KMS          = (*KMS)(nil)
	_ cloud.Signing      = (*KMS)(nil)
	_ cloud.S3           = (*S3)(nil)
	_ cloud.SNS          = (*SNS)(nil)
	_ cloud.SSM          = (*SSM)(nil)
	_ cloud.STS          = (*STS)(nil)
	_ cloud.AutoScaling  = (*AutoScaling)(nil)
	_ cloud.ELBv2        = (*ELBv2)(nil)
	_ cloud.ELB          = (*ELB)(nil)
	_ cloud.IAM          = (*IAM)(nil)

	_ cloud.CloudTrail          = (*CloudTrail)(nil)
	_ cloud.GuardDuty           = (*GuardDuty)(nil)
	_ cloud.SecurityHubFindings = (*SecurityHub)(nil)
)

// CallCount returns how many calls of operation op (for example
// "CreateSnapshots") were served, failed ones included.
func (c *Cloud) CallCount(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// MaxConcurrentCalls is the most calls of a service ("EC2", "S3", "SNS",
// "STS", "KMS", "SSM", "IAM") or of one operation ("CreateSnapshots") this
// account and Region served at once, each call counted from its arrival,
// its Latency included, to its answer: what a test of bounded concurrency
// per account and Region asserts on.
func (c *Cloud) MaxConcurrentCalls(serviceOrOperation string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxInFlight[serviceOrOperation]
}

// TotalCalls returns how many calls of any operation were served, failed
// ones included: zero proves that nothing reached the (fake) cloud.
func (c *Cloud) TotalCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, count := range c.calls {
		n += count
	}
	return n
}

// call serves one API operation. prepare runs under the lock: it validates the
// input without changing anything and returns commit, which applies the
// change (or fills the output) and cannot fail. Between the two, call answers
// the operation's access-denied code when it is denied, and DryRunOperation
// when dryRun is set. md receives the request ID, as the SDK's does.
func (c *Cloud) call(ctx context.Context, service, op string, dryRun bool, md *middleware.Metadata,
	prepare func() (commit func(), err error)) error {
	start := time.Now()
	c.mu.Lock()
	requestID := c.uuidLocked()
	latency := c.Latency
	if c.inFlight == nil {
		c.inFlight, c.maxInFlight = map[string]int{}, map[string]int{}
	}
	for _, k := range []string{service, op} {
		c.inFlight[k]++
		c.maxInFlight[k] = max(c.maxInFlight[k], c.inFlight[k])
	}
	c.mu.Unlock()

	err := c.serve(ctx, service, op, dryRun, latency, prepare)
	c.mu.Lock()
	c.inFlight[service]--
	c.inFlight[op]--
	c.mu.Unlock()
	received := time.Now()
	rec := evidence.Call{Service: service, Operation: op, RequestID: requestID, Duration: received.Sub(start)}
	c.mu.Lock()
	date := received.Add(c.ServerClockSkew).UTC().Truncate(time.Second) // the Date header: whole seconds
	c.mu.Unlock()
	rec.ServerDate, rec.LocalTime = &date, &received
	if err != nil {
		if isCanceled(err) {
			rec.RequestID = "" // the request never reached AWS
			rec.ServerDate, rec.LocalTime = nil, nil
		} else {
			rec.ErrorCode = cloud.ErrorCode(err)
		}
		cloud.RecordCall(ctx, rec)
		return wrapError(service, op, requestID, err)
	}
	cloud.RecordCall(ctx, rec)
	if md != nil {
		awsmiddleware.SetRequestIDMetadata(md, requestID)
	}
	return nil
}

func (c *Cloud) serve(ctx context.Context, service, op string, dryRun bool, latency time.Duration,
	prepare func() (func(), error)) error {
	c.mu.Lock()
	onCall := c.OnCall
	c.mu.Unlock()
	if onCall != nil {
		onCall(op)
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return &smithy.CanceledError{Err: ctx.Err()}
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return &smithy.CanceledError{Err: err}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
	if err := c.takeTokenLocked(service, op); err != nil {
		return err
	}
	if err := c.takeFaultLocked(service, op); err != nil {
		return err
	}
	commit, err := prepare()
	if err != nil {
		return err
	}
	if c.denied[op] {
		return deniedError(service, op, c.callerArnLocked())
	}
	if dryRun {
		return apiError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
	}
	if c.takeIgnoreLocked(op) {
		return nil
	}
	commit()
	return nil
}

// now returns the fake's current time. c.mu need not be held.
func (c *Cloud) now() time.Time {
	if c.Clock != nil {
		return c.Clock().UTC()
	}
	return time.Now().UTC()
}

// nextSeqLocked numbers resources in creation order, which is the order
// Describe calls list them in.
func (c *Cloud) nextSeqLocked() int {
	c.seq++
	return c.seq
}

// hexIDLocked returns prefix-<17 hex digits>, the format of current EC2 IDs.
func (c *Cloud) hexIDLocked(prefix string) string {
	return fmt.Sprintf("%s-%016x%x", prefix, c.rng.Uint64(), c.rng.IntN(16))
}

// uuidLocked returns a random version 4 UUID, the format of AWS request IDs.
func (c *Cloud) uuidLocked() string {
	hi, lo := c.rng.Uint64(), c.rng.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
		hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// alnumLocked returns n random characters from alphabet.
func (c *Cloud) alnumLocked(n int, alphabet string) string {
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[c.rng.IntN(len(alphabet))])
	}
	return b.String()
}

// sortedBySeq returns the values of m in creation order.
func sortedBySeq[T any](m map[string]*T, seq func(*T) int) []*T {
	out := make([]*T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return seq(out[i]) < seq(out[j]) })
	return out
}

// stableUUID derives a UUID-formatted string from its parts, for identifiers
// that must not depend on call order (managed key IDs, profile IDs).
func stableUUID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}
