// Package playbooks holds the responder's playbooks: named, reviewed plans of
// steps (package responder/step) with the extra ordering and the collection
// settings that make one set of steps run in a chosen order. The YAML files
// beside this one are embedded in every binary; README.md documents their
// format. A responder may also keep playbook files of its own (Load).
package playbooks

import (
	"bytes"
	"embed"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/responder-ir/responder/responder/step"
)

// Default is the playbook a response runs when none is named: step.DefaultPlan.
const Default = "default"

//go:embed *.yaml
var files embed.FS

// Playbook is a named plan of steps.
type Playbook struct {
	Name string
	// Summary is one line, for --help and listings.
	Summary string
	// Tradeoff says, for people, what this order gains and what it risks.
	Tradeoff string
	// Steps are the steps to run, in the order they are listed; the runner
	// starts each one as soon as what it waits for has finished.
	Steps []Entry
	// Collection configures the OS-level collection steps; zero when the
	// playbook has none.
	Collection step.Collection
	// TwoStep is true when the quarantine moves each interface through the
	// untracking group first (the plan runs untracking-group): see
	// Containment.
	TwoStep bool
	// AutoScaling is how the plan takes the instance out of its Auto Scaling
	// group: AutoScalingStandby, AutoScalingDetach or AutoScalingOff ("" for
	// a plan without quarantine): see Containment.
	AutoScaling string
	// RevokeCredentials is true when the plan revokes the role credentials
	// already delivered to the instance (credential-revocation): see
	// Containment.
	RevokeCredentials bool
	// NetworkACL is true when the plan runs network-acl, the network ACL
	// path of containment: see Containment.
	NetworkACL bool
	// SnapshotLock is how step snapshot-lock locks the case snapshots
	// (preserve.snapshot_lock; zero: governance, 90 days).
	SnapshotLock step.SnapshotLock
	// CloudRecord is how cloudtrail-events and findings read the cloud's
	// own record of the instance (cloud_record; zero: a 24-hour window).
	CloudRecord step.CloudRecord
	// Source is where the playbook was read from: "playbooks/<name>.yaml"
	// for an embedded one, or the path of a file.
	Source string
}

// Entry is one step of a playbook.
type Entry struct {
	Name string
	// After lists steps (or milestones, "metadata:read") that must finish
	// before this step starts, on top of the step's own needs.
	After []string

	line int // in the source, for error messages
}

// clone copies what a caller could change in place, so that the embedded
// playbooks stay as they were read.
func (p Playbook) clone() Playbook {
	p.Steps = slices.Clone(p.Steps)
	for i := range p.Steps {
		p.Steps[i].After = slices.Clone(p.Steps[i].After)
	}
	p.Collection.Memory.Tools = maps.Clone(p.Collection.Memory.Tools)
	if v := p.Collection.Memory.VerifyImage; v != nil {
		verify := *v
		p.Collection.Memory.VerifyImage = &verify
	}
	return p
}

// Names lists the steps, in playbook order.
func (p Playbook) Names() []string {
	names := make([]string, len(p.Steps))
	for i, e := range p.Steps {
		names[i] = e.Name
	}
	return names
}

// After is the extra ordering the playbook adds (step.PlanAfter); nil when it
// adds none.
func (p Playbook) After() map[string][]string {
	var after map[string][]string
	for _, e := range p.Steps {
		if len(e.After) == 0 {
			continue
		}
		if after == nil {
			after = map[string][]string{}
		}
		after[e.Name] = slices.Clone(e.After)
	}
	return after
}

// CollectsOS reports whether the playbook collects OS-level evidence through
// SSM (ssm-access, volatile-data, memory-capture): such a run needs an SSM
// client, an evidence bucket that can receive uploads, and minutes.
func (p Playbook) CollectsOS() bool { return CollectsOS(p.Names()) }

// Order is the collection order (step.IsolateFirst or step.CaptureFirst) of a
// playbook that collects OS-level evidence; "" for one that does not.
func (p Playbook) Order() string {
	if !p.CollectsOS() {
		return ""
	}
	if p.Collection.Order == "" {
		return step.IsolateFirst
	}
	return p.Collection.Order
}

// CollectsOS reports whether a plan of step names collects OS-level evidence
// through SSM: whether it has a step of the collect phase.
func CollectsOS(names []string) bool {
	for _, n := range names {
		if s, err := step.Lookup(n); err == nil && s.Phase() == step.Collect {
			return true
		}
	}
	return false
}

// isolating are the containment steps that take away what SSM uses to reach
// the instance: its network (quarantine) and its credentials
// (instance-profile). The collection order is about these two, and, in a
// capture-first plan, credential-revocation: the SSM Agent collects with
// the instance's own role credentials, which it revokes.
var isolating = []string{"quarantine", "instance-profile"}

// All returns the embedded playbooks, sorted by name.
func All() []Playbook {
	out := make([]Playbook, len(builtin))
	for i, p := range builtin {
		out[i] = p.clone()
	}
	return out
}

// Lookup returns the embedded playbook with the given name.
func Lookup(name string) (Playbook, error) {
	for _, p := range builtin {
		if p.Name == name {
			return p.clone(), nil
		}
	}
	return Playbook{}, fmt.Errorf("unknown playbook %q (known: %s)", name, strings.Join(names(builtin), ", "))
}

// Load returns a playbook by name or from a file of the responder's own: an
// argument without a slash and without a .yaml (or .yml) suffix names an
// embedded playbook; anything else is read as a file. A file may not take the
// name of an embedded playbook, so that the name recorded in a case always
// says which plan ran. A file must be a regular file of at most MaxFileBytes
// (readFile).
func Load(arg string) (Playbook, error) {
	if !isFile(arg) {
		return Lookup(arg)
	}
	data, err := readFile(arg)
	if err != nil {
		return Playbook{}, err
	}
	p, err := Parse(data, arg)
	if err != nil {
		return Playbook{}, err
	}
	if _, err := Lookup(p.Name); err == nil {
		return Playbook{}, fmt.Errorf("%s: name %q is a built-in playbook's: give your own playbook another name (and file name)", arg, p.Name)
	}
	return p, nil
}

func isFile(arg string) bool {
	return strings.ContainsAny(arg, `/\`) || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml")
}

// builtin are the embedded playbooks, sorted by name. A broken embedded file
// is a programming error, caught by the package's tests; it panics here.
var builtin = mustLoadEmbedded()

func mustLoadEmbedded() []Playbook {
	entries, err := fs.Glob(files, "*.yaml")
	if err != nil {
		panic(err)
	}
	var all []Playbook
	for _, name := range entries {
		data, err := files.ReadFile(name)
		if err != nil {
			panic(err)
		}
		p, err := Parse(data, path.Join("playbooks", name))
		if err != nil {
			panic(fmt.Sprintf("embedded playbook: %v", err))
		}
		all = append(all, p)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}

func names(ps []Playbook) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// Containment is the containment settings of a playbook file.
type Containment struct {
	// TwoStep (default true) moves each interface first into the untracking
	// group, then into the quarantine group, so that the TCP and UDP
	// connections the old groups tracked are cut (step untracking-group,
	// added to a plan that runs quarantine without it). False moves each
	// interface in one call, one round trip faster: tracked connections then
	// go on until they are idle, and nothing claims them cut.
	TwoStep *bool `yaml:"two_step"`
	// AutoScaling (default standby) says how an instance of an Auto Scaling
	// group is taken out of the group's service: standby (step auto-scaling:
	// it stays in the group, not health-checked, protected from scale-in),
	// detach (step auto-scaling-detach: out of the group) or off (the group
	// may still terminate it). Standby and detach keep the desired capacity,
	// so the group launches a replacement. A plan that runs quarantine gets
	// the step unless it is off.
	AutoScaling string `yaml:"auto_scaling"`
	// RevokeCredentials (default true) revokes the role credentials already
	// delivered to the instance (step credential-revocation, added beside a
	// plan's instance-profile, with the same ordering): an inline deny on
	// the role for the sessions issued to this instance before the
	// response. False leaves them valid until they expire (up to hours),
	// for a role the responder may not change.
	RevokeCredentials *bool `yaml:"revoke_credentials"`
	// NetworkACL (default false) adds the network ACL path (step
	// network-acl, after quarantine): deny entries for the instance's
	// addresses in every network ACL of its VPCs that serves a subnet.
	// Stateless, so it cuts established flows and ICMP too, through NAT
	// gateways, load balancers and the other subnets; but it changes ACLs
	// that serve whole subnets, shared with other workloads.
	NetworkACL *bool `yaml:"network_acl"`
}

// The values of containment.auto_scaling.
const (
	AutoScalingStandby = "standby"
	AutoScalingDetach  = "detach"
	AutoScalingOff     = "off"
)

// autoScalingSteps are the step of each containment.auto_scaling value.
var autoScalingSteps = map[string]string{AutoScalingStandby: "auto-scaling", AutoScalingDetach: "auto-scaling-detach"}

// file is the YAML document of a playbook.
type file struct {
	Name        string            `yaml:"name"`
	Summary     string            `yaml:"summary"`
	Tradeoff    string            `yaml:"tradeoff"`
	Steps       []Entry           `yaml:"steps"`
	Collection  *step.Collection  `yaml:"collection"`
	Containment *Containment      `yaml:"containment"`
	Preserve    *Preserve         `yaml:"preserve"`
	CloudRecord *step.CloudRecord `yaml:"cloud_record"`
}

// Preserve is the evidence-keeping settings of a playbook file.
type Preserve struct {
	// SnapshotLock is the EBS snapshot lock of the case snapshots (step
	// snapshot-lock) and of their copies (responder preserve): mode
	// governance or compliance, days, and a compliance lock's
	// cool_off_hours. Default: governance, 90 days; compliance, which
	// nobody can undo after its cooling-off period, only when written here.
	SnapshotLock *step.SnapshotLock `yaml:"snapshot_lock"`
}

// untrackingStep is the step the two-step quarantine needs.
const untrackingStep = "untracking-group"

// networkACLStep is the step of the network ACL path.
const networkACLStep = "network-acl"

// applyContainment applies the containment settings to the steps: with
// two_step (the default) a plan that runs quarantine also runs
// untracking-group; with two_step false it may not.
func (p *Playbook) applyContainment(c *Containment) error {
	names := p.Names()
	q := slices.Index(names, "quarantine")
	if c != nil && q < 0 && (c.RevokeCredentials == nil || c.TwoStep != nil) {
		return errors.New("containment: the playbook runs no quarantine step; remove the containment settings")
	}
	if err := p.applyRevocation(c); err != nil {
		return err
	}
	names = p.Names()
	q = slices.Index(names, "quarantine")
	twoStep := c == nil || c.TwoStep == nil || *c.TwoStep
	has := slices.Contains(names, untrackingStep)
	switch {
	case q < 0:
	case twoStep && !has:
		p.Steps = slices.Insert(p.Steps, q, Entry{Name: untrackingStep, line: p.Steps[q].line})
	case !twoStep && has:
		return fmt.Errorf("containment: two_step is false, but steps lists %s (the two-step move): remove one of them", untrackingStep)
	}
	p.TwoStep = q >= 0 && twoStep
	if q < 0 {
		return nil
	}
	if err := p.applyAutoScaling(c); err != nil {
		return err
	}
	return p.applyNetworkACL(c)
}

// applyAutoScaling gives a plan that runs quarantine the Auto Scaling step
// of containment.auto_scaling (standby when unset), next to quarantine,
// unless it lists it already; a step of another value is an error.
func (p *Playbook) applyAutoScaling(c *Containment) error {
	mode := AutoScalingStandby
	if c != nil && c.AutoScaling != "" {
		mode = c.AutoScaling
	}
	want, ok := autoScalingSteps[mode]
	if !ok && mode != AutoScalingOff {
		return fmt.Errorf("containment: auto_scaling %q: want %s, %s or %s", mode, AutoScalingStandby, AutoScalingDetach, AutoScalingOff)
	}
	names := p.Names()
	for _, step := range autoScalingSteps {
		if step != want && slices.Contains(names, step) {
			return fmt.Errorf("containment: auto_scaling is %s, but steps lists %s: remove one of them", mode, step)
		}
	}
	if want != "" && !slices.Contains(names, want) {
		q := slices.Index(names, "quarantine")
		p.Steps = slices.Insert(p.Steps, q+1, Entry{Name: want, line: p.Steps[q].line})
	}
	p.AutoScaling = mode
	return nil
}

// revocationStep revokes the role credentials already on the instance.
const revocationStep = "credential-revocation"

// applyRevocation applies revoke_credentials: by default a plan that runs
// instance-profile also runs credential-revocation, added after it with the
// same ordering (so that a capture-first plan revokes after its collection,
// whose SSM Agent may use those credentials); with false it may not.
func (p *Playbook) applyRevocation(c *Containment) error {
	names := p.Names()
	revoke := c == nil || c.RevokeCredentials == nil || *c.RevokeCredentials
	i := slices.Index(names, "instance-profile")
	has := slices.Contains(names, revocationStep)
	switch {
	case c != nil && c.RevokeCredentials != nil && i < 0 && !has:
		return errors.New("containment: revoke_credentials is set, but the playbook runs no instance-profile step")
	case revoke && i >= 0 && !has:
		p.Steps = slices.Insert(p.Steps, i+1, Entry{Name: revocationStep, After: slices.Clone(p.Steps[i].After), line: p.Steps[i].line})
	case !revoke && has:
		return fmt.Errorf("containment: revoke_credentials is false, but steps lists %s: remove one of them", revocationStep)
	}
	p.RevokeCredentials = slices.Contains(p.Names(), revocationStep)
	return nil
}

// applyNetworkACL adds network-acl after quarantine when network_acl is
// true; with network_acl false the steps may not list it.
func (p *Playbook) applyNetworkACL(c *Containment) error {
	names := p.Names()
	has := slices.Contains(names, networkACLStep)
	switch {
	case c == nil || c.NetworkACL == nil:
	case *c.NetworkACL && !has:
		q := slices.Index(names, "quarantine")
		p.Steps = slices.Insert(p.Steps, q+1, Entry{Name: networkACLStep, line: p.Steps[q].line})
		has = true
	case !*c.NetworkACL && has:
		return fmt.Errorf("containment: network_acl is false, but steps lists %s: remove one of them", networkACLStep)
	}
	p.NetworkACL = has
	return nil
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Parse decodes and validates a playbook. source names the data in error
// messages; when it ends in .yaml or .yml, the playbook's name must be the
// file's name without that suffix. Decoding is strict: an unknown field, a
// second document or a value of the wrong type is an error with its line.
func Parse(data []byte, source string) (Playbook, error) {
	fail := func(format string, args ...any) (Playbook, error) {
		return Playbook{}, fmt.Errorf("%s: %s", source, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return fail("empty playbook")
	} else if err != nil {
		return fail("%s", yamlError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fail("more than one YAML document (a playbook is one)")
	}
	// Values decoded with UnmarshalText (durations) report no line when
	// they fail; check them first, with their line.
	if err := checkText(&doc, reflect.TypeFor[file]()); err != nil {
		return fail("%v", err)
	}
	var f file
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return fail("%s", yamlError(err))
	}

	p := Playbook{Name: f.Name, Summary: strings.TrimSpace(f.Summary), Tradeoff: strings.TrimSpace(f.Tradeoff), Steps: f.Steps, Source: source}
	switch {
	case p.Name == "":
		return fail("name is required")
	case !namePattern.MatchString(p.Name):
		return fail("name %q: use 1-63 lowercase letters, digits and '-', starting with a letter or digit", p.Name)
	case p.Summary == "":
		return fail("summary is required (one line, for --help)")
	case strings.Contains(p.Summary, "\n"):
		return fail("summary must be one line")
	case p.Tradeoff == "":
		return fail("tradeoff is required: say what this order gains and what it risks")
	case len(p.Steps) == 0:
		return fail("steps: the playbook runs no step")
	}
	if ext := filepath.Ext(source); ext == ".yaml" || ext == ".yml" {
		if base := strings.TrimSuffix(filepath.Base(source), ext); base != p.Name {
			return fail("name %q does not match the file name %q: rename one of them", p.Name, filepath.Base(source))
		}
	}
	if err := p.applyContainment(f.Containment); err != nil {
		return fail("%v", err)
	}
	if err := p.validateSteps(); err != nil {
		return fail("%v", err)
	}
	if f.Collection != nil {
		if !p.CollectsOS() {
			return fail("collection: the playbook runs no collection step (ssm-access, volatile-data, memory-capture); remove the collection settings")
		}
		p.Collection = *f.Collection
	}
	if err := p.Collection.Validate(); err != nil {
		if msg := err.Error(); !strings.HasPrefix(msg, "collection") {
			return fail("collection: %s", msg)
		}
		return fail("%v", err)
	}
	if err := p.checkOrder(); err != nil {
		return fail("%v", err)
	}
	if f.Preserve != nil && f.Preserve.SnapshotLock != nil {
		if err := f.Preserve.SnapshotLock.Validate(); err != nil {
			return fail("preserve: %v", err)
		}
		p.SnapshotLock = *f.Preserve.SnapshotLock
	}
	if f.CloudRecord != nil {
		if err := f.CloudRecord.Validate(); err != nil {
			return fail("%v", err)
		}
		p.CloudRecord = *f.CloudRecord
	}
	return p, nil
}

// validateSteps checks every step and its ordering, with the line of the
// entry where one is at fault, then the plan as a whole (step.PlanAfter:
// milestones, cycles).
func (p Playbook) validateSteps() error {
	planned := p.Names()
	for _, e := range p.Steps {
		if _, err := step.Lookup(e.Name); err != nil {
			return fmt.Errorf("line %d: %v", e.line, err)
		}
		for _, a := range e.After {
			name, _, _ := strings.Cut(a, ":")
			if name == e.Name {
				return fmt.Errorf("line %d: step %q: after names the step itself", e.line, e.Name)
			}
			if !slices.Contains(planned, name) {
				return fmt.Errorf("line %d: step %q: after names %q, which the playbook does not run", e.line, e.Name, a)
			}
		}
	}
	if _, err := step.PlanAfter(planned, p.After()); err != nil {
		return fmt.Errorf("steps: %v", err)
	}
	return nil
}

// checkOrder makes the step graph agree with the collection order, so that
// a playbook cannot say isolate-first and collect before isolating, or the
// reverse: with isolate-first, every collection step waits for quarantine
// and instance-profile; with capture-first, those two wait for every
// collection step.
func (p Playbook) checkOrder() error {
	if !p.CollectsOS() {
		return nil
	}
	plan, err := step.PlanAfter(p.Names(), p.After())
	if err != nil {
		return err
	}
	index := map[string]step.Step{}
	for _, s := range plan {
		index[s.Name()] = s
	}
	var collect, isolate []string
	for _, s := range plan {
		if s.Phase() == step.Collect {
			collect = append(collect, s.Name())
		}
		if slices.Contains(isolating, s.Name()) || (p.Order() == step.CaptureFirst && s.Name() == revocationStep) {
			isolate = append(isolate, s.Name())
		}
	}
	for _, c := range collect {
		for _, i := range isolate {
			switch order := p.Order(); {
			case order == step.IsolateFirst && !waitsFor(index, c, i):
				return fmt.Errorf("collection order %s: step %q must run after %q, or it collects before the instance is isolated (add %q to its after, or choose order %s)",
					order, c, i, i, step.CaptureFirst)
			case order == step.CaptureFirst && !waitsFor(index, i, c):
				return fmt.Errorf("collection order %s: step %q must run after %q, or isolation cuts the collection short (add forensic-access-close to its after, or choose order %s)",
					order, i, c, step.IsolateFirst)
			}
		}
	}
	return nil
}

// waitsFor reports whether step from waits, directly or through other steps
// of the plan, for step to.
func waitsFor(index map[string]step.Step, from, to string) bool {
	seen := map[string]bool{}
	var walk func(name string) bool
	walk = func(name string) bool {
		if seen[name] {
			return false
		}
		seen[name] = true
		s, ok := index[name]
		if !ok {
			return false
		}
		for _, n := range append(s.Needs(), step.Awaits(s)...) {
			n, _, _ = strings.Cut(n, ":")
			if n == to || walk(n) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

// UnmarshalYAML reads an entry: a step name, or a mapping with name and
// after. It is strict like the rest of the file (the decoder's KnownFields
// does not reach a custom unmarshaler).
func (e *Entry) UnmarshalYAML(n *yaml.Node) error {
	e.line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!str" {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a step is a name or a mapping with name and after, not %s", n.Line, n.Value)}}
		}
		e.Name = n.Value
		return nil
	case yaml.MappingNode:
	default:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a step is a name or a mapping with name and after", n.Line)}}
	}
	var errs []string
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			errs = append(errs, fmt.Sprintf("line %d: field %s given twice", k.Line, k.Value))
			continue
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "name":
			err = v.Decode(&e.Name)
		case "after":
			err = v.Decode(&e.After)
		default:
			errs = append(errs, fmt.Sprintf("line %d: field %s not found in type playbooks.Entry", k.Line, k.Value))
		}
		var te *yaml.TypeError
		switch {
		case errors.As(err, &te):
			errs = append(errs, te.Errors...)
		case err != nil:
			errs = append(errs, fmt.Sprintf("line %d: %v", v.Line, err))
		}
	}
	if len(errs) == 0 && e.Name == "" {
		errs = append(errs, fmt.Sprintf("line %d: a step mapping needs a name", n.Line))
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

// Section names of the decoded types, for error messages.
var sections = map[string]string{
	"playbooks.file":      "the playbook",
	"playbooks.Entry":     "a step entry (known: name, after)",
	"step.Collection":     "collection",
	"step.MemorySettings": "collection.memory",
	"step.StagedTool":     "a collection.memory.tools entry (known: key, sha256)",
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// yamlError turns a yaml.v3 error into one line: "line 12: unknown field
// "foo" in collection; line 14: ...".
func yamlError(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = unknownField.ReplaceAllStringFunc(m, func(s string) string {
			sub := unknownField.FindStringSubmatch(s)
			section, ok := sections[sub[2]]
			if !ok {
				section = sub[2]
			}
			return fmt.Sprintf("unknown field %q in %s", sub[1], section)
		})
	}
	return strings.Join(msgs, "; ")
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// checkText walks a YAML node along the Go type it decodes into and runs
// UnmarshalText on every scalar whose field implements it, so that a bad
// value (a duration of "30 minutes") is reported with its line. Unknown
// fields and type mismatches are left to the decoder.
func checkText(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			if err := checkText(c, t); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind == yaml.ScalarNode && reflect.PointerTo(t).Implements(textUnmarshaler) {
		if n.Tag == "!!null" {
			return nil
		}
		v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := v.UnmarshalText([]byte(n.Value)); err != nil {
			return fmt.Errorf("line %d: %v", n.Line, err)
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch t.Kind() {
		case reflect.Map:
			if err := checkText(v, t.Elem()); err != nil {
				return err
			}
		case reflect.Struct:
			if f, ok := fieldByTag(t, k.Value); ok {
				if err := checkText(v, f.Type); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
