package fakeaws

import (
	"fmt"
	"math/rand/v2"
	"os"
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
	// one runs it and finishes it. Zero means 1.
	PollsToFinish int
	// InvocationLag is how many GetCommandInvocation calls on a new command
	// answer InvocationDoesNotExist before it shows (SSM's eventual
	// consistency right after SendCommand).
	InvocationLag int
	// Memory is the physical memory a capture reads: the memory capture
	// script finds it as a LiME image of one range (see agent_run.go). Nil
	// means DefaultMemory(): 12 MiB of a deterministic pseudo-random
	// pattern, which does not compress, so that with PartSizeMiB 5 an
	// image spans 3 parts.
	Memory []byte
	// Fault makes the agent misbehave in the collection documents; one of
	// the Fault* constants ("" for none). The sealing-key documents run
	// whatever the fault.
	Fault string
}

// Agent faults (Agent.Fault). The real scripts run; each fault is injected
// around them: on the wire by the instance's S3 endpoint (agent_http.go), in
// what the instance offers the script (agent_run.go), or by the agent
// itself. Windows agents take the faults on the wire and hang only.
const (
	// FaultSource: memory cannot be read (the memory source is not a
	// readable file). The capture reports status failed, failure "source",
	// every attempt failed, no memory read (only the compressor's frame of
	// the empty stream is uploaded, as part 1), and exits 1 (invocation
	// Failed). No effect on volatile-data documents.
	FaultSource = "source"
	// FaultUploadPart2: every UploadPart of part 2 answers 500
	// InternalError: the report says failed, failure "upload", failed_part
	// 2, exit 1. No effect when the image has one part, or on volatile-data
	// documents.
	FaultUploadPart2 = "upload-part-2"
	// FaultLieHash: the uploads are the real bytes, but the report that
	// reaches S3 gives a different compressed_sha256 (memory) or archive
	// sha256 (volatile), as a compromised instance's would (the endpoint
	// rewrites it; what the script printed keeps the true digest).
	FaultLieHash = "lie-hash"
	// FaultShort: a part under 5 MiB, which only the last part may be, is
	// answered 200 with its ETag but never stored: the report lists it as
	// ok and says succeeded, ListParts lacks it.
	FaultShort = "short"
	// FaultHang: the agent never finishes the command: it stays InProgress
	// until it is cancelled or its execution timeout passes (TimedOut);
	// nothing runs, nothing is uploaded.
	FaultHang = "hang"
	// FaultNoReport: everything is uploaded but the report: its PUT is
	// answered 200 with its ETag and never stored, so the script's stdout
	// is complete and claims the report upload succeeded.
	FaultNoReport = "no-report"
	// FaultExit1: the script dies at once (the instance's bash exits 1
	// before running anything): invocation Failed, ResponseCode 1, empty
	// stdout, nothing uploaded. Documents that do not run bash are not
	// affected.
	FaultExit1 = "exit-1"
	// FaultVolatileExit1 is FaultExit1 for the volatile-data documents
	// only: every other document runs as without a fault.
	FaultVolatileExit1 = "volatile-exit-1"
)

var agentFaults = []string{"", FaultSource, FaultUploadPart2, FaultLieHash, FaultShort, FaultHang, FaultNoReport, FaultExit1, FaultVolatileExit1}

// scriptFaults need a script to act on: the Windows stand-in has none.
var scriptFaults = []string{FaultSource, FaultExit1, FaultVolatileExit1}

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

// StandInAVML returns a stand-in for the avml binary, to stage for a fake
// Linux instance's memory capture (the script runs what it downloads): a
// bash script that answers --help and --version as avml does, and copies
// the memory source it is given (--source) to the image path.
func StandInAVML() []byte {
	return []byte(`#!/bin/bash
# avml stand-in (fakeaws): copies the memory source to the image path.
case ${1-} in
--help) echo "Usage: avml [OPTIONS] <FILENAME>"; exit 0 ;;
--version) echo "avml 0.14.0 (fakeaws stand-in)"; exit 0 ;;
esac
src=''
while (($# > 1)); do case $1 in --source) src=$2; shift 2 ;; *) shift ;; esac; done
exec cat -- "$src" >"$1"
`)
}

// agentState is an instance's agent: its configuration and where its
// registration stands.
type agentState struct {
	cfg        Agent
	registered bool                // has been Online once: DescribeInstanceInformation lists it
	ping       ssmtypes.PingStatus // as last evaluated
	lastPing   time.Time
	warmup     int          // DescribeInstanceInformation calls left before it connects
	keys       *sealingKeys // the sealing keys it holds (agent_seal.go)
	parent     string       // its work parent, made at the first command (agent_run.go)
}

// workParentLocked is the instance's lasting work folder (its /dev/shm).
// It is made once per instance, under the machine's temporary folder; an
// empty string when it cannot be made (the scripts then fall back to
// /dev/shm, /run and /tmp, as on an instance).
func (a *agentState) workParentLocked() string {
	if a.parent == "" {
		if dir, err := os.MkdirTemp("", "fakeaws-instance-"); err == nil {
			a.parent = dir
		}
	}
	return a.parent
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
	if a.PlatformType == "Windows" && slices.Contains(scriptFaults, a.Fault) {
		panic(fmt.Sprintf("fakeaws: SetAgent: fault %q is not modelled for Windows agents, whose documents have a stand-in (agent_powershell.go)", a.Fault))
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
