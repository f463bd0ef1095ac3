package fakeaws

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Agent configures the SSM Agent of an instance (see SetAgent). What the
// agent does with a command is in agent_run.go.
type Agent struct {
	// PlatformType is "Linux" or "Windows"; PlatformName, PlatformVersion and
	// AgentVersion are what DescribeInstanceInformation shows (see
	// LinuxAgent and WindowsAgent).
	PlatformType    string
	PlatformName    string
	PlatformVersion string
	AgentVersion    string
	// Online makes the instance a managed node at all. Without it the
	// instance never appears in DescribeInstanceInformation.
	Online bool
	// NeedsProfile makes the agent online only while the instance has an
	// instance profile associated (its credentials come from the profile):
	// DisassociateIamInstanceProfile loses the connection at once (ping
	// status ConnectionLost), AssociateIamInstanceProfile starts the
	// warm-up below.
	NeedsProfile bool
	// OnlineAfterCalls is the warm-up after a profile is associated: the
	// node shows Online only after that many DescribeInstanceInformation
	// calls have covered it; before that it is absent, or ConnectionLost if
	// it had registered before. Zero: online at once.
	OnlineAfterCalls int
	// PollsToFinish is how many GetCommandInvocation calls a command stays
	// InProgress (the poll that delivers it is the first) before the next
	// one finishes it. Zero means 1.
	PollsToFinish int
	// InvocationLag is how many GetCommandInvocation calls on a new command
	// answer InvocationDoesNotExist before it shows (SSM's eventual
	// consistency right after SendCommand).
	InvocationLag int
	// Memory is the physical memory a capture reads. Nil means
	// DefaultMemory(): 12 MiB of a deterministic pseudo-random pattern, which
	// does not compress, so that with PartSizeMiB 5 an image spans 3 parts.
	Memory []byte
	// Fault makes the agent misbehave in the collection documents; one of
	// the Fault* constants ("" for none). The sealing-key documents run
	// whatever the fault.
	Fault string
}

// Agent faults (Agent.Fault).
const (
	// FaultSource: memory cannot be read. The capture reports status
	// failed, failure "source", every attempt failed, no part uploaded, and
	// exits 1 (invocation Failed). No effect on volatile-data documents.
	FaultSource = "source"
	// FaultUploadPart2: every attempt to upload part 2 fails (HTTP 500):
	// the report says failed, failure "upload", failed_part 2, exit 1. No
	// effect when the image has one part, or on volatile-data documents.
	FaultUploadPart2 = "upload-part-2"
	// FaultLieHash: the uploads are the real bytes, but the report gives a
	// different compressed_sha256 (memory) or archive sha256 (volatile).
	FaultLieHash = "lie-hash"
	// FaultShort: the last part is never uploaded, but the report lists it
	// as ok (with the ETag it would have had) and says succeeded.
	FaultShort = "short"
	// FaultHang: the command stays InProgress until it is cancelled or its
	// execution timeout passes (TimedOut); nothing is uploaded.
	FaultHang = "hang"
	// FaultNoReport: everything is uploaded but the report: the agent never
	// PUTs it to ResultUrl, yet its stdout line is complete and claims the
	// report upload succeeded.
	FaultNoReport = "no-report"
	// FaultExit1: the script dies at once: invocation Failed, ResponseCode
	// 1, empty stdout, nothing uploaded.
	FaultExit1 = "exit-1"
)

var agentFaults = []string{"", FaultSource, FaultUploadPart2, FaultLieHash, FaultShort, FaultHang, FaultNoReport, FaultExit1}

// LinuxAgent returns an online Amazon Linux 2023 agent.
func LinuxAgent() Agent {
	return Agent{PlatformType: "Linux", PlatformName: "Amazon Linux", PlatformVersion: "2023",
		AgentVersion: "3.3.1142.0", Online: true}
}

// WindowsAgent returns an online Windows Server 2022 agent.
func WindowsAgent() Agent {
	return Agent{PlatformType: "Windows", PlatformName: "Microsoft Windows Server 2022 Datacenter",
		PlatformVersion: "10.0.20348", AgentVersion: "3.3.1142.0", Online: true}
}

// defaultMemorySize is the size of DefaultMemory.
const defaultMemorySize = 12 << 20

var defaultMemory = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(0x6d656d, 0x6f7279))
	b := make([]byte, defaultMemorySize)
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
})

// DefaultMemory returns a copy of the memory an agent without Memory reads:
// 12 MiB of a deterministic pseudo-random pattern.
func DefaultMemory() []byte { return slices.Clone(defaultMemory()) }

// agentState is an instance's agent: its configuration and where its
// registration stands.
type agentState struct {
	cfg        Agent
	registered bool                // has been Online once: DescribeInstanceInformation lists it
	ping       ssmtypes.PingStatus // as last evaluated
	lastPing   time.Time
	warmup     int          // DescribeInstanceInformation calls left before it connects
	keys       *sealingKeys // the sealing keys it holds (agent_seal.go)
}

// SetAgent gives an instance an SSM Agent, or replaces its configuration.
// When the agent is Online and healthy now (instance running, a profile if
// it needs one, SSM reachable: see CanReach) the node is registered and
// Online at once, as a node that was managed before the incident; when only
// SSM is unreachable it is registered with ping status ConnectionLost.
// SetAgent panics on an unknown instance, platform type or fault.
func (c *Cloud) SetAgent(instanceID string, a Agent) {
	if a.PlatformType != "Linux" && a.PlatformType != "Windows" {
		panic(fmt.Sprintf("fakeaws: SetAgent: platform type %q is neither Linux nor Windows", a.PlatformType))
	}
	if !slices.Contains(agentFaults, a.Fault) {
		panic(fmt.Sprintf("fakeaws: SetAgent: unknown fault %q", a.Fault))
	}
	a.Memory = slices.Clone(a.Memory)
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, ok := c.st.Instances[instanceID]
	if !ok {
		panic(fmt.Sprintf("fakeaws: SetAgent: no instance %q", instanceID))
	}
	st, ok := c.agents[instanceID]
	if !ok {
		st = &agentState{}
		c.agents[instanceID] = st
	}
	st.cfg = a
	switch {
	case !a.Online || inst.State != ec2types.InstanceStateNameRunning || (a.NeedsProfile && inst.AssociationID == ""):
		if st.registered {
			st.ping = ssmtypes.PingStatusConnectionLost
		}
	case c.canReachSSMLocked(inst):
		st.registered, st.ping, st.lastPing = true, ssmtypes.PingStatusOnline, c.now()
	default:
		st.registered, st.ping, st.lastPing = true, ssmtypes.PingStatusConnectionLost, c.now()
	}
}

// Agent returns the configuration of an instance's agent (as given to
// SetAgent), and whether it has one.
func (c *Cloud) Agent(instanceID string) (Agent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.agents[instanceID]
	if !ok {
		return Agent{}, false
	}
	a := st.cfg
	a.Memory = slices.Clone(a.Memory)
	return a, true
}

// AgentS3 lets the account's agents reach buckets of other accounts through
// presigned URLs: a URL is served by the S3 of whichever account has the
// bucket, this account's own first. Register the forensics account's S3
// (the evidence bucket) before the code under test runs.
func (c *Cloud) AgentS3(others ...*S3) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range others {
		if s != nil && s != c.s3 && !slices.Contains(c.agentS3, s) {
			c.agentS3 = append(c.agentS3, s)
		}
	}
}

// hostInfo is the instance as the agent's scripts see it.
type hostInfo struct {
	Hostname, IP, Kernel, Arch, OS, BootID string
}

func (c *Cloud) hostLocked(inst *instance, a Agent) hostInfo {
	h := hostInfo{BootID: stableUUID("boot", inst.ID, inst.LaunchTime.String())}
	for _, id := range inst.InterfaceIDs {
		if n := c.st.Interfaces[id]; n.DeviceIndex == 0 {
			h.IP = n.PrivateIP
		}
	}
	arm := inst.Architecture == ec2types.ArchitectureValuesArm64
	if a.PlatformType == "Windows" {
		h.Hostname = "EC2AMAZ-" + strings.ToUpper(strings.TrimPrefix(inst.ID, "i-"))[:7]
		h.Kernel, h.Arch = a.PlatformVersion, "AMD64"
		if arm {
			h.Arch = "ARM64"
		}
	} else {
		h.Hostname = privateDNSName(h.IP)
		h.Arch = "x86_64"
		if arm {
			h.Arch = "aarch64"
		}
		h.Kernel = "6.1.115-126.197.amzn2023." + h.Arch
	}
	h.OS = strings.TrimSpace(a.PlatformName + " " + a.PlatformVersion)
	return h
}
