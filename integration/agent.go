package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/responder-ir/responder/internal/lab"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// Agent stands in for the SSM Agent on the lab instance, and for the parts
// of SSM that moto lacks or fakes. moto stores documents and commands
// (CreateDocument, SendCommand, ListCommands, GetDocument) but never runs a
// command: every invocation reports Success at once, with no output. It has
// no DescribeInstanceInformation and no CancelCommand.
//
// So the Agent, once Install has put it in a FaultProxy:
//   - answers DescribeInstanceInformation: the instance is an Online Linux
//     managed node only while an instance profile is associated with it (as
//     moto reports, DescribeIamInstanceProfileAssociations), and only
//     RegistrationDelay after it first saw that association, the way the
//     real agent needs credentials and a moment to register. Before any
//     profile it is not listed; after its profile is removed it is
//     ConnectionLost;
//   - records, from each SendCommand (forwarded to moto), the document
//     version asked for;
//   - watches moto's ListCommands for commands to the instance while it is
//     online, and runs each Responder document the way the SSM Agent does:
//     it takes the document's content from moto (GetDocument, the version
//     the command named), checks the parameters against their
//     allowedPattern (SendCommand does on AWS), substitutes them into the
//     aws:runShellScript lines of the steps whose precondition is Linux,
//     writes the script and runs it with sh, within timeoutSeconds;
//   - answers GetCommandInvocation for those commands (Pending, InProgress,
//     then Success or Failed with the script's exit code, its first 24,000
//     characters of standard output and 8,000 of standard error), and
//     CancelCommand (the script's process group is killed).
//
// Everything else goes to moto. The scripts run on the test machine, with
// the Agent's Env added: that is where a test points curl at its CA
// (CURL_CA_BUNDLE) and the memory capture at a stand-in memory file
// (RESPONDER_MEMORY_SOURCES, RESPONDER_IOMEM).
type Agent struct {
	InstanceID string
	// Env is added to the scripts' environment.
	Env []string
	// RegistrationDelay is how long after an instance profile appears the
	// node reports Online.
	RegistrationDelay time.Duration
	// Poll is the wait between two looks at moto's commands.
	Poll time.Duration

	ec2 *ec2.Client
	iam *iam.Client
	ssm *ssm.Client
	dir string

	syncMu sync.Mutex // one look at moto's commands at a time

	mu          sync.Mutex
	invocations map[string]*Invocation // by command ID
	versions    map[string]string      // command ID -> document version sent
	seenProfile map[string]time.Time   // association ID -> when first seen
	wasOnline   bool
	firstOnline time.Time
	ctx         context.Context
	stop        context.CancelFunc
	wg          sync.WaitGroup
}

// Invocation is one command as the Agent ran it.
type Invocation struct {
	CommandID       string
	Document        string
	DocumentVersion string
	Parameters      map[string][]string
	// Status is Pending, InProgress, Success, Failed, Cancelled or TimedOut.
	Status        string
	StatusDetails string
	ResponseCode  int
	Stdout        string
	Stderr        string
	// ProfileARN is the instance profile associated with the instance when
	// the Agent started the command.
	ProfileARN string
	StartedAt  time.Time
	EndedAt    time.Time

	cancel context.CancelFunc
}

// Output limits of GetCommandInvocation.
const (
	maxStdout = 24000
	maxStderr = 8000
)

// NewAgent makes an Agent for the instance, talking to moto with c (and an
// SSM client of its own); dir holds the scripts it writes.
func NewAgent(ctx context.Context, c *lab.Clients, motoURL, instanceID, dir string, env []string) (*Agent, error) {
	ssmClient, err := newMotoSSM(ctx, motoURL, c.Region)
	if err != nil {
		return nil, err
	}
	actx, stop := context.WithCancel(context.WithoutCancel(ctx))
	return &Agent{
		InstanceID: instanceID, Env: env,
		RegistrationDelay: 500 * time.Millisecond, Poll: 200 * time.Millisecond,
		ec2: c.EC2, iam: c.IAM, ssm: ssmClient, dir: dir,
		invocations: map[string]*Invocation{}, versions: map[string]string{}, seenProfile: map[string]time.Time{},
		ctx: actx, stop: stop,
	}, nil
}

// newMotoSSM is an SSM client for moto, with the emulator's credentials.
func newMotoSSM(ctx context.Context, endpoint, region string) (*ssm.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region), config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(lab.DummyAccessKeyID, lab.DummySecretAccessKey, "")))
	if err != nil {
		return nil, fmt.Errorf("SSM client for %s: %w", endpoint, err)
	}
	return ssm.NewFromConfig(cfg), nil
}

// SSM is the Agent's client for moto's SSM.
func (a *Agent) SSM() *ssm.Client { return a.ssm }

// Install makes p answer, for this Agent, what moto's SSM lacks or fakes.
func (a *Agent) Install(p *FaultProxy) {
	p.Handle("DescribeInstanceInformation", http.HandlerFunc(a.describeInstanceInformation))
	p.Handle("GetCommandInvocation", a.orForward(p, a.getCommandInvocation))
	p.Handle("CancelCommand", http.HandlerFunc(a.cancelCommand))
	p.Handle("SendCommand", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.sendCommand(p, w, r) }))
}

// Start watches moto for commands until Stop.
func (a *Agent) Start() {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			if err := a.sync(a.ctx); err != nil && a.ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "agent for %s: %v\n", a.InstanceID, err)
			}
			select {
			case <-a.ctx.Done():
				return
			case <-time.After(a.Poll):
			}
		}
	}()
}

// Stop cancels running scripts and waits for them.
func (a *Agent) Stop() {
	a.mu.Lock()
	a.stop()
	a.mu.Unlock()
	a.wg.Wait()
}

// Invocations returns a copy of the commands the Agent has seen, oldest first.
func (a *Agent) Invocations() []Invocation {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Invocation
	for _, inv := range a.invocations {
		c := *inv
		c.cancel = nil
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y Invocation) int { return x.StartedAt.Compare(y.StartedAt) })
	return out
}

// FirstOnline is when DescribeInstanceInformation first answered Online
// (zero if it never did).
func (a *Agent) FirstOnline() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstOnline
}

// profile returns the ARN of the instance profile associated with the
// instance (moto's view), and since when the Agent has seen it.
func (a *Agent) profile(ctx context.Context) (arn string, since time.Time, err error) {
	out, err := a.ec2.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{a.InstanceID}}},
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("instance profile of %s: %w", a.InstanceID, err)
	}
	for _, as := range out.IamInstanceProfileAssociations {
		if as.State != ec2types.IamInstanceProfileAssociationStateAssociated && as.State != ec2types.IamInstanceProfileAssociationStateAssociating {
			continue
		}
		id := aws.ToString(as.AssociationId)
		a.mu.Lock()
		seen, ok := a.seenProfile[id]
		if !ok {
			seen = time.Now()
			a.seenProfile[id] = seen
		}
		a.mu.Unlock()
		if as.IamInstanceProfile != nil {
			arn = aws.ToString(as.IamInstanceProfile.Arn)
		}
		return arn, seen, nil
	}
	return "", time.Time{}, nil
}

// online returns the associated profile when the node is Online.
func (a *Agent) online(ctx context.Context) (string, error) {
	arn, since, err := a.profile(ctx)
	if err != nil || arn == "" || time.Since(since) < a.RegistrationDelay {
		return "", err
	}
	return arn, nil
}

// --- the SSM stand-in ---

const jsonContentType = "application/x-amz-json-1.1"

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"__type":"InternalServerError","message":"agent stand-in: `+err.Error()+`"}`)
	}
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"__type": code, "message": message})
}

// readJSON decodes a JSON-protocol request body into v and leaves the body
// readable again.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return json.Unmarshal(body, v)
}

func (a *Agent) describeInstanceInformation(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Filters []struct {
			Key    string
			Values []string
		}
		InstanceInformationFilterList []struct {
			Key      string   `json:"key"`
			ValueSet []string `json:"valueSet"`
		}
	}
	if err := readJSON(r, &in); err != nil {
		writeJSONError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	wanted := true
	for _, f := range in.Filters {
		if f.Key == "InstanceIds" && !slices.Contains(f.Values, a.InstanceID) {
			wanted = false
		}
	}
	for _, f := range in.InstanceInformationFilterList {
		if f.Key == "InstanceIds" && !slices.Contains(f.ValueSet, a.InstanceID) {
			wanted = false
		}
	}
	list := []map[string]any{}
	if wanted {
		arn, err := a.online(r.Context())
		if err != nil {
			writeJSONError(w, http.StatusInternalServerError, "InternalServerError", err.Error())
			return
		}
		a.mu.Lock()
		status := ""
		switch {
		case arn != "":
			status = "Online"
			a.wasOnline = true
			if a.firstOnline.IsZero() {
				a.firstOnline = time.Now()
			}
		case a.wasOnline:
			status = "ConnectionLost"
		}
		a.mu.Unlock()
		if status != "" {
			list = append(list, map[string]any{
				"InstanceId": a.InstanceID, "PingStatus": status, "LastPingDateTime": float64(time.Now().UnixMilli()) / 1000,
				"PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023",
				"AgentVersion": "3.3.1000.0", "IsLatestVersion": true, "ResourceType": "EC2Instance",
				"IamRole": a.roleName(r.Context(), arn),
			})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"InstanceInformationList": list})
}

// roleName is the role of an instance profile, as DescribeInstanceInformation
// reports it.
func (a *Agent) roleName(ctx context.Context, profileARN string) string {
	if profileARN == "" {
		return ""
	}
	name := profileARN[strings.LastIndex(profileARN, "/")+1:]
	out, err := a.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if err != nil || len(out.InstanceProfile.Roles) == 0 {
		return ""
	}
	return aws.ToString(out.InstanceProfile.Roles[0].RoleName)
}

// sendCommand forwards SendCommand to moto and records the document version
// it names, which moto forgets.
func (a *Agent) sendCommand(p *FaultProxy, w http.ResponseWriter, r *http.Request) {
	var in struct {
		DocumentVersion string
		InstanceIds     []string
	}
	if err := readJSON(r, &in); err != nil {
		writeJSONError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	rec := httptest.NewRecorder()
	p.backend.ServeHTTP(rec, r)
	var out struct{ Command struct{ CommandId string } }
	if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &out) == nil && out.Command.CommandId != "" {
		a.mu.Lock()
		a.versions[out.Command.CommandId] = in.DocumentVersion
		a.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// orForward answers with h for the Agent's commands, and forwards the
// request to moto when h returns false.
func (a *Agent) orForward(p *FaultProxy, h func(http.ResponseWriter, *http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h(w, r) {
			p.backend.ServeHTTP(w, r)
		}
	})
}

func (a *Agent) getCommandInvocation(w http.ResponseWriter, r *http.Request) bool {
	var in struct{ CommandId, InstanceId string }
	if err := readJSON(r, &in); err != nil {
		writeJSONError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return true
	}
	if in.InstanceId != a.InstanceID {
		return false
	}
	inv, ok := a.invocation(in.CommandId)
	if !ok {
		// Not seen yet: look at moto now rather than at the next poll.
		if err := a.sync(r.Context()); err != nil {
			writeJSONError(w, http.StatusInternalServerError, "InternalServerError", err.Error())
			return true
		}
		if inv, ok = a.invocation(in.CommandId); !ok {
			return false // not a command the Agent runs: moto answers
		}
	}
	out := map[string]any{
		"CommandId": inv.CommandID, "InstanceId": a.InstanceID, "DocumentName": inv.Document,
		"DocumentVersion": inv.DocumentVersion, "PluginName": "aws:runShellScript",
		"Status": inv.Status, "StatusDetails": inv.StatusDetails, "ResponseCode": inv.ResponseCode,
		"StandardOutputContent": truncate(inv.Stdout, maxStdout), "StandardErrorContent": truncate(inv.Stderr, maxStderr),
	}
	if !inv.StartedAt.IsZero() {
		out["ExecutionStartDateTime"] = inv.StartedAt.UTC().Format(time.RFC3339Nano)
	}
	if !inv.EndedAt.IsZero() {
		out["ExecutionEndDateTime"] = inv.EndedAt.UTC().Format(time.RFC3339Nano)
	}
	writeJSON(w, http.StatusOK, out)
	return true
}

func (a *Agent) cancelCommand(w http.ResponseWriter, r *http.Request) {
	var in struct{ CommandId string }
	if err := readJSON(r, &in); err != nil {
		writeJSONError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	a.mu.Lock()
	inv, ok := a.invocations[in.CommandId]
	if ok && (inv.Status == "Pending" || inv.Status == "InProgress") {
		inv.Status, inv.StatusDetails = "Cancelled", "Cancelled"
		if inv.cancel != nil {
			inv.cancel()
		}
	}
	a.mu.Unlock()
	if !ok {
		writeJSONError(w, http.StatusBadRequest, "InvalidCommandId", "the agent stand-in does not know command "+in.CommandId)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (a *Agent) invocation(id string) (Invocation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	inv, ok := a.invocations[id]
	if !ok {
		return Invocation{}, false
	}
	c := *inv
	c.cancel = nil
	return c, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// --- the agent ---

// sync looks at moto's commands to the instance, and starts those the
// Agent runs when the node is online.
func (a *Agent) sync(ctx context.Context) error {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	var pending []*Invocation
	p := ssm.NewListCommandsPaginator(a.ssm, &ssm.ListCommandsInput{InstanceId: aws.String(a.InstanceID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list commands of %s: %w", a.InstanceID, err)
		}
		a.mu.Lock()
		for _, c := range page.Commands {
			id, doc := aws.ToString(c.CommandId), aws.ToString(c.DocumentName)
			if !strings.HasPrefix(doc, "Responder-") {
				continue
			}
			inv, ok := a.invocations[id]
			if !ok {
				inv = &Invocation{CommandID: id, Document: doc, DocumentVersion: a.versions[id],
					Parameters: c.Parameters, Status: "Pending", ResponseCode: -1}
				a.invocations[id] = inv
			}
			if inv.Status == "Pending" {
				pending = append(pending, inv)
			}
		}
		a.mu.Unlock()
	}
	if len(pending) == 0 {
		return nil
	}
	arn, err := a.online(ctx)
	if err != nil || arn == "" {
		return err // offline: the commands wait, as SSM keeps them
	}
	for _, inv := range pending {
		a.begin(inv, arn)
	}
	return nil
}

// begin starts running one command.
func (a *Agent) begin(inv *Invocation, profileARN string) {
	ctx, cancel := context.WithCancel(a.ctx)
	a.mu.Lock()
	if inv.Status != "Pending" || ctx.Err() != nil { // cancelled meanwhile, or stopping
		a.mu.Unlock()
		cancel()
		return
	}
	inv.Status, inv.StatusDetails, inv.ProfileARN, inv.StartedAt, inv.cancel = "InProgress", "InProgress", profileARN, time.Now(), cancel
	params := inv.Parameters
	doc, version := inv.Document, inv.DocumentVersion
	a.wg.Add(1) // under a.mu, so never after Stop's Wait began
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer cancel()
		res := a.run(ctx, doc, version, params)
		a.mu.Lock()
		defer a.mu.Unlock()
		inv.EndedAt, inv.Stdout, inv.Stderr, inv.ResponseCode = time.Now(), res.stdout, res.stderr, res.code
		switch {
		case inv.Status == "Cancelled":
		case res.timedOut:
			inv.Status, inv.StatusDetails = "TimedOut", "ExecutionTimedOut"
		case res.code == 0:
			inv.Status, inv.StatusDetails = "Success", "Success"
		default:
			inv.Status, inv.StatusDetails = "Failed", "Failed"
		}
	}()
}

type scriptResult struct {
	stdout, stderr string
	code           int
	timedOut       bool
}

// ssmDocument is the part of a Command document the Agent reads.
type ssmDocument struct {
	Parameters map[string]struct {
		Default        any    `json:"default"`
		AllowedPattern string `json:"allowedPattern"`
	} `json:"parameters"`
	MainSteps []struct {
		Action       string              `json:"action"`
		Name         string              `json:"name"`
		Precondition map[string][]string `json:"precondition"`
		Inputs       struct {
			RunCommand     []string `json:"runCommand"`
			TimeoutSeconds string   `json:"timeoutSeconds"`
		} `json:"inputs"`
	} `json:"mainSteps"`
}

var paramRef = regexp.MustCompile(`\{\{ *([A-Za-z0-9]+) *\}\}`)

// run runs the document's Linux shell steps with the parameters.
func (a *Agent) run(ctx context.Context, name, version string, params map[string][]string) scriptResult {
	fail := func(format string, args ...any) scriptResult {
		return scriptResult{stderr: fmt.Sprintf(format, args...), code: 1}
	}
	in := &ssm.GetDocumentInput{Name: aws.String(name)}
	if version != "" {
		in.DocumentVersion = aws.String(version)
	}
	got, err := a.ssm.GetDocument(ctx, in)
	if err != nil {
		return fail("agent stand-in: get document %s version %q: %v", name, version, err)
	}
	var doc ssmDocument
	if err := json.Unmarshal([]byte(aws.ToString(got.Content)), &doc); err != nil {
		return fail("agent stand-in: document %s: %v", name, err)
	}
	values := map[string]string{}
	for pname, spec := range doc.Parameters {
		v, given := params[pname]
		switch {
		case given && len(v) == 1:
			values[pname] = v[0]
		case given:
			return fail("InvalidParameters: %s takes one value, got %d", pname, len(v))
		case spec.Default != nil:
			values[pname] = fmt.Sprint(spec.Default)
		default:
			return fail("InvalidParameters: %s is required", pname)
		}
		if spec.AllowedPattern != "" {
			re, err := regexp.Compile(spec.AllowedPattern)
			if err != nil {
				return fail("agent stand-in: %s allowedPattern: %v", pname, err)
			}
			if !re.MatchString(values[pname]) {
				// SendCommand refuses this on AWS; the value is not echoed.
				return fail("InvalidParameters: %s does not match its allowedPattern", pname)
			}
		}
	}
	for pname := range params {
		if _, ok := doc.Parameters[pname]; !ok {
			return fail("InvalidParameters: %s is not a parameter of %s", pname, name)
		}
	}
	subst := func(s string) string {
		return paramRef.ReplaceAllStringFunc(s, func(m string) string { return values[paramRef.FindStringSubmatch(m)[1]] })
	}
	var res scriptResult
	ran := 0
	for i, st := range doc.MainSteps {
		if st.Action != "aws:runShellScript" {
			continue
		}
		if pt, ok := st.Precondition["StringEquals"]; ok && !(len(pt) == 2 && pt[0] == "platformType" && pt[1] == "Linux") {
			continue
		}
		ran++
		timeout := 3600
		if t := subst(st.Inputs.TimeoutSeconds); t != "" {
			if timeout, err = strconv.Atoi(t); err != nil {
				return fail("agent stand-in: step %s timeoutSeconds %q: %v", st.Name, t, err)
			}
		}
		script := filepath.Join(a.dir, fmt.Sprintf("%s-%d-%d", name, time.Now().UnixNano(), i), "_script.sh")
		if err := os.MkdirAll(filepath.Dir(script), 0o700); err != nil {
			return fail("agent stand-in: %v", err)
		}
		var lines []string
		for _, l := range st.Inputs.RunCommand {
			lines = append(lines, subst(l))
		}
		if err := os.WriteFile(script, []byte(strings.Join(lines, "\n")+"\n"), 0o700); err != nil {
			return fail("agent stand-in: %v", err)
		}
		one := a.shell(ctx, script, time.Duration(timeout)*time.Second)
		res.stdout += one.stdout
		res.stderr += one.stderr
		res.code, res.timedOut = one.code, one.timedOut
		if one.code != 0 {
			break
		}
	}
	if ran == 0 {
		return fail("agent stand-in: %s has no Linux shell step", name)
	}
	return res
}

// shell runs one script as the SSM Agent runs a document's shell step
// (fakeaws.RunScript), killed on cancellation or timeout.
func (a *Agent) shell(ctx context.Context, script string, timeout time.Duration) scriptResult {
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Dir(script), "LANG=C.UTF-8"}, a.Env...)
	run := fakeaws.RunScript(ctx, script, env, timeout)
	res := scriptResult{stdout: run.Stdout, stderr: run.Stderr, code: run.Code, timedOut: run.TimedOut}
	if run.Err != nil && !run.TimedOut {
		res.stderr += "\nagent stand-in: " + run.Err.Error()
	}
	return res
}
