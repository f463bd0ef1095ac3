package fakeaws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// What the fake SSM Agent does with a command: what the real agent does,
// on this machine. For each step of the document version the command runs,
// in order: a step whose platformType precondition is not the agent's is
// skipped (as the agent reports it); an aws:runShellScript step on a Linux
// agent has the parameters substituted into its runCommand, is written to a
// file and run with sh, in its own process group, within the step's
// timeoutSeconds. So the Responder-* Linux documents run their real scripts
// (bash, curl, zstd or gzip, and the tools staged for them). PowerShell does
// not run here: on a Windows agent the two Responder-* Windows documents
// have a stand-in (agent_powershell.go).
//
// The script runs on the test machine, which stands in for the instance:
//   - its network is the job's S3 endpoint (agent_http.go): HOME holds a
//     .curlrc that sends every connection there and trusts its CA, so
//     presigned URLs of any host reach the fake S3 of the bucket's account;
//   - its physical memory is Agent.Memory, as a LiME image (one System RAM
//     range at 0x100000) in the file RESPONDER_MEMORY_SOURCES names, with
//     the RESPONDER_IOMEM that goes with it (the memory capture script's
//     test settings; AVML would read /proc/kcore). The stand-in avml to
//     stage is StandInAVML;
//   - RC_RETRY_SLEEP=0 and RC_CURL_RETRY=0 (the scripts' own settings) make
//     a refused upload fail without waiting between attempts;
//   - everything else the scripts read (processes, files, kernel, hostname,
//     /proc/meminfo) is the test machine's: the fake does not model it.
//
// The agent faults that are not on the wire (agent_http.go) are injected
// here: source (the memory source cannot be read), exit-1 (bash dies at
// once) and hang (the agent never finishes; see advanceCommandLocked).

// agentJob is the work of one command, captured under the lock so that it
// runs without it.
type agentJob struct {
	instanceID  string
	document    string
	platform    string // the agent's platform type
	steps       []docStep
	params      map[string]string
	fault       string
	memory      []byte
	host        hostInfo
	s3s         []*S3
	s3Reachable bool
	now         func() time.Time
	keys        *sealingKeys
	// parent is the instance's RESPONDER_WORK_PARENT: it outlives one
	// command, as /dev/shm does on an instance, so that the key the
	// sealing-key command made is there for the collection command.
	parent string
}

// agentResult is how the document ended.
type agentResult struct {
	exitCode       int
	stdout, stderr string
}

func (c *Cloud) newJobLocked(cmd *command, inst *instance, a *agentState, content docContent) *agentJob {
	j := &agentJob{
		instanceID:  inst.ID,
		document:    cmd.DocumentName,
		platform:    a.cfg.PlatformType,
		steps:       content.MainSteps,
		params:      c.commandParamsLocked(cmd),
		fault:       a.cfg.Fault,
		memory:      a.cfg.Memory,
		host:        c.hostLocked(inst, a.cfg),
		s3s:         append([]*S3{c.s3}, c.agentS3...),
		s3Reachable: c.canReachS3Locked(inst),
		now:         c.now,
		keys:        a.sealingKeysLocked(),
		parent:      a.workParentLocked(),
	}
	if j.memory == nil {
		j.memory = defaultMemory()
	}
	if isSealingKeyDocument(j.document) {
		// Faults are the collection's: the key is made whatever they are.
		j.fault = ""
	}
	if j.fault == FaultVolatileExit1 {
		j.fault = ""
		if j.document == ssmdocuments.LinuxVolatileData || j.document == ssmdocuments.WindowsVolatileData {
			j.fault = FaultExit1
		}
	}
	return j
}

// run does the document's work, step by step, until a step fails.
func (j *agentJob) run() agentResult {
	var res agentResult
	for _, st := range j.steps {
		if want := st.platform(); want != "" && want != j.platform {
			// What the agent answers for a step whose precondition fails:
			// the step is skipped and the invocation succeeds.
			res.stdout += fmt.Sprintf("Step execution skipped due to unsatisfied preconditions: '\"StringEquals\": [platformType, %s]'. Step name: %s", want, st.Name)
			continue
		}
		var one agentResult
		switch {
		case st.Action == "aws:runShellScript" && j.platform == "Linux":
			one = j.runShell(st)
		case j.platform == "Windows" && isSealingKeyDocument(j.document):
			one = j.makeSealingKey(true)
		case j.platform == "Windows" && windowsStandIns[j.document] != nil:
			// The Linux scripts open their sealed parameters themselves; the
			// Windows stand-in is opened here, as its wrapper would.
			if failed, ok := j.unseal(); !ok {
				one = failed
			} else {
				one = j.runWindowsStandIn(windowsStandIns[j.document])
			}
		default:
			one = agentResult{exitCode: 1, stderr: fmt.Sprintf("fakeaws: the fake %s agent cannot run step %s (%s) of %s: it runs aws:runShellScript steps on Linux and stands in for the Responder-* Windows documents",
				j.platform, st.Name, st.Action, j.document)}
		}
		res.stdout += one.stdout
		res.stderr += one.stderr
		res.exitCode = one.exitCode
		if one.exitCode != 0 {
			break
		}
	}
	return res
}

// platform is the platformType a step's precondition requires, or "".
func (s docStep) platform() string {
	if pre := s.Precondition["StringEquals"]; len(pre) == 2 && pre[0] == "platformType" {
		return pre[1]
	}
	return ""
}

var paramRef = regexp.MustCompile(`\{\{ *([A-Za-z0-9_.-]+) *\}\}`)

// substitute replaces {{ Param }} with the parameter's value, as the agent
// does in runCommand.
func (j *agentJob) substitute(s string) string {
	return paramRef.ReplaceAllStringFunc(s, func(m string) string { return j.params[paramRef.FindStringSubmatch(m)[1]] })
}

// instanceTools are what the fake instance needs on this machine's PATH.
var instanceTools = []string{"sh", "bash", "curl"}

// runShell runs one aws:runShellScript step.
func (j *agentJob) runShell(st docStep) agentResult {
	fail := func(err error) agentResult { return agentResult{exitCode: 1, stderr: err.Error()} }
	for _, tool := range instanceTools {
		if _, err := exec.LookPath(tool); err != nil {
			return fail(fmt.Errorf("fakeaws: the fake instance runs the documents' scripts with %s, which this machine lacks (CI installs it): %w",
				strings.Join(instanceTools, ", "), err))
		}
	}
	dir, err := os.MkdirTemp("", "fakeaws-"+j.instanceID+"-")
	if err != nil {
		return fail(fmt.Errorf("fakeaws: the instance's directory: %w", err))
	}
	defer os.RemoveAll(dir)
	ca, err := theCA()
	if err != nil {
		return fail(err)
	}
	ep, err := startEndpoint(ca, j.s3s, j.fault, j.s3Reachable)
	if err != nil {
		return fail(err)
	}
	defer ep.close()
	env, err := j.prepareInstance(dir, ca, ep)
	if err != nil {
		return fail(err)
	}
	var lines []string
	for _, l := range st.Inputs.RunCommand {
		lines = append(lines, j.substitute(l))
	}
	script := filepath.Join(dir, "_script.sh")
	if err := os.WriteFile(script, []byte(strings.Join(lines, "\n")+"\n"), 0o700); err != nil {
		return fail(fmt.Errorf("fakeaws: write the step's script: %w", err))
	}
	return runScript(script, env, st.timeout(j.params))
}

// prepareInstance writes what the script sees of the instance into dir and
// returns the script's environment.
func (j *agentJob) prepareInstance(dir string, ca *agentCA, ep *endpoint) ([]string, error) {
	caFile, memory, iomem := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "memory.lime"), filepath.Join(dir, "iomem")
	curlrc := fmt.Sprintf("connect-to = \"::%s\"\ncacert = \"%s\"\n", ep.addr(), caFile)
	files := map[string][]byte{caFile: ca.pem, filepath.Join(dir, ".curlrc"): []byte(curlrc)}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LANG=C.UTF-8",
		"RC_RETRY_SLEEP=0", "RC_CURL_RETRY=0",
		"RESPONDER_WORK_PARENT=" + j.parent,
		"RESPONDER_MEMORY_SOURCES=" + memory, "RESPONDER_IOMEM=" + iomem,
	}
	switch j.fault {
	case FaultSource:
		// Something at the memory source's path that cannot be read as
		// memory: reading a directory fails, even as root.
		if err := os.Mkdir(memory, 0o700); err != nil {
			return nil, fmt.Errorf("fakeaws: the unreadable memory source: %w", err)
		}
	default:
		files[memory] = limeImage(j.memory)
	}
	if j.fault == FaultExit1 {
		// bash reads BASH_ENV before anything else when it runs a script:
		// the documents' scripts (bash -c) die at once.
		bashEnv := filepath.Join(dir, "bash_env")
		files[bashEnv] = []byte("exit 1\n")
		env = append(env, "BASH_ENV="+bashEnv)
	}
	files[iomem] = fmt.Appendf(nil, "00000000-00000fff : Reserved\n%08x-%08x : System RAM\n", limeBase, limeBase+len(j.memory)-1)
	for name, body := range files {
		if err := os.WriteFile(name, body, 0o600); err != nil {
			return nil, fmt.Errorf("fakeaws: prepare the instance: %w", err)
		}
	}
	return env, nil
}

// limeBase is the physical address of the fake instance's memory.
const limeBase = 0x100000

// limeImage is memory as a LiME image of one range at limeBase, as AVML
// writes it.
func limeImage(memory []byte) []byte {
	hdr := make([]byte, 32)
	binary.LittleEndian.PutUint32(hdr[0:], 0x4C694D45) // "EMiL"
	binary.LittleEndian.PutUint32(hdr[4:], 1)
	binary.LittleEndian.PutUint64(hdr[8:], limeBase)
	binary.LittleEndian.PutUint64(hdr[16:], uint64(limeBase+len(memory)-1))
	return append(hdr, memory...)
}

// runScript runs a script as the fake's agent does: an exit code as the
// script left it, or 1 with the reason when it was killed (at the timeout,
// which bounds the real time; the fake's own clock decides
// ExecutionTimedOut) or did not start.
func runScript(script string, env []string, timeout time.Duration) agentResult {
	run := RunScript(context.Background(), script, env, timeout)
	res := agentResult{stdout: run.Stdout, stderr: run.Stderr, exitCode: run.Code}
	if run.Err != nil {
		res.exitCode = 1
		res.stderr += fmt.Sprintf("\nfakeaws: the script was killed or did not start (step timeout %s): %v", timeout, run.Err)
	}
	return res
}

// ScriptRun is how a script run by RunScript ended.
type ScriptRun struct {
	Stdout, Stderr string
	// Code is the exit code; Err says why there is none (killed, not
	// started), and TimedOut that the timeout killed it.
	Code     int
	Err      error
	TimedOut bool
}

// RunScript runs a script with sh, in its folder and with env as its whole
// environment, in its own process group, which is killed when ctx ends or
// the timeout passes. The fake's agent and the moto tier's stand-in agent
// both run the collection scripts through it, as the SSM Agent runs a
// document's shell step.
func RunScript(ctx context.Context, script string, env []string, timeout time.Duration) ScriptRun {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Dir, cmd.Env = filepath.Dir(script), env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := ScriptRun{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		run.Code = exit.ExitCode()
	default:
		run.Code, run.Err = -1, err
		run.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	}
	return run
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
