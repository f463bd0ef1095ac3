package step

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-multierror"
)

type connTrackAPI interface {
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	interfaceReader
}

// The documented minimums of the connection tracking timeouts, in seconds
// (API reference, ConnectionTrackingSpecificationRequest), and the defaults a
// release restores when the interface had none set and EC2 did not give the
// instance type's own (TCP: 432,000 s on most types; Nitro v6 types default
// to 350 s, which DescribeInstanceTypes gives; an unset value can only be
// replaced, by the type's default).
const (
	minTCPEstablished = 60
	minUDPStream      = 60
	minUDP            = 30

	defaultTCPEstablished = 432000
	defaultUDPStream      = 180
	defaultUDP            = 30
)

// ConnectionTracking sets the connection tracking timeouts of every interface
// (ConnectionTrackingSpecification) to their documented minimums, so that a
// flow the security group still tracks after the quarantine (ICMP, and what
// the untracking move cannot cut) is dropped after at most a minute of
// silence instead of up to five days. Only Nitro instance types support it;
// on others the step records why and is not a failure. It runs after the
// quarantine, off the path to isolation.
type ConnectionTracking struct{}

func (ConnectionTracking) Name() string    { return "connection-tracking" }
func (ConnectionTracking) Phase() Phase    { return Contain }
func (ConnectionTracking) Needs() []string { return []string{quarantineStep} }
func (ConnectionTracking) Isolates() bool  { return true }

// connTrackState is the timeouts of each interface; a nil timeout was not
// set (the instance type's default applies).
type connTrackState struct {
	Interfaces  []connTrackTimeouts `json:"interfaces"`
	Unsupported string              `json:"unsupported,omitempty"`
	// TypeDefaults are, in a before, the instance type's defaults
	// (DescribeInstanceTypes): what an interface with no timeouts of its
	// own has, and what a release gives it back.
	TypeDefaults *connTrackTimeouts `json:"type_defaults,omitempty"`
}

type connTrackTimeouts struct {
	NetworkInterfaceID    string `json:"network_interface_id"`
	TCPEstablishedTimeout *int32 `json:"tcp_established_timeout,omitempty"`
	UDPStreamTimeout      *int32 `json:"udp_stream_timeout,omitempty"`
	UDPTimeout            *int32 `json:"udp_timeout,omitempty"`
}

// atMinimum reports whether every timeout is at its minimum.
func (t connTrackTimeouts) atMinimum() bool {
	return aws.ToInt32(t.TCPEstablishedTimeout) == minTCPEstablished &&
		aws.ToInt32(t.UDPStreamTimeout) == minUDPStream && aws.ToInt32(t.UDPTimeout) == minUDP
}

func (s ConnectionTracking) Run(ctx context.Context, env *Env) Result {
	var api connTrackAPI = env.Clients.EC2
	ids := s.interfaceIDs(env)
	if len(ids) == 0 {
		return Skipped("the instance has no network interface", nil).Held(true)
	}
	defaults, why, err := s.typeDefaults(ctx, api, env.Target.Instance.InstanceType)
	if err != nil {
		return Failed(err, nil).Unchecked()
	} else if why != "" {
		return Skipped(why, connTrackState{Interfaces: []connTrackTimeouts{}, Unsupported: why}).Held(true)
	}
	before, err := s.read(ctx, api, ids)
	if err != nil {
		return Failed(err, nil).Unchecked()
	}
	before.TypeDefaults = defaults
	want := map[string]connTrackTimeouts{}
	for _, t := range before.Interfaces {
		if !t.atMinimum() {
			want[t.NetworkInterfaceID] = connTrackTimeouts{NetworkInterfaceID: t.NetworkInterfaceID,
				TCPEstablishedTimeout: aws.Int32(minTCPEstablished), UDPStreamTimeout: aws.Int32(minUDPStream), UDPTimeout: aws.Int32(minUDP)}
		}
	}
	if len(want) == 0 {
		return Skipped("every interface's connection tracking timeouts are already at their minimums", before).Held(true)
	}
	return s.set(ctx, api, env, want, before, "set to their minimums (TCP established 60 s, UDP stream 60 s, UDP 30 s)")
}

func (ConnectionTracking) interfaceIDs(env *Env) []string {
	var ids []string
	for _, n := range env.Target.Instance.NetworkInterfaces {
		ids = append(ids, aws.ToString(n.NetworkInterfaceId))
	}
	sort.Strings(ids)
	return ids
}

// typeDefaults reads the instance type's connection tracking defaults (nil
// when EC2 gives none), or says why the type cannot have the timeouts set
// (they are a Nitro feature).
func (ConnectionTracking) typeDefaults(ctx context.Context, api connTrackAPI, it types.InstanceType) (*connTrackTimeouts, string, error) {
	out, err := api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{it}})
	if err != nil {
		return nil, "", fmt.Errorf("describe instance type %s: %w", it, err)
	}
	if len(out.InstanceTypes) != 1 {
		return nil, "", fmt.Errorf("describe instance type %s: not in the answer", it)
	}
	info := out.InstanceTypes[0]
	if h := info.Hypervisor; h != types.InstanceTypeHypervisorNitro {
		return nil, fmt.Sprintf("instance type %s is not Nitro-based (hypervisor %q): its connection tracking timeouts cannot be set; tracked flows end only when idle by the type's defaults", it, h), nil
	}
	if info.NetworkInfo == nil || info.NetworkInfo.ConnectionTrackingConfiguration == nil {
		return nil, "", nil
	}
	d := info.NetworkInfo.ConnectionTrackingConfiguration
	return &connTrackTimeouts{TCPEstablishedTimeout: d.DefaultTcpEstablishedTimeout, UDPStreamTimeout: d.DefaultUdpStreamTimeout, UDPTimeout: d.DefaultUdpTimeout}, "", nil
}

// read reads the timeouts of the interfaces as EC2 has them now.
func (ConnectionTracking) read(ctx context.Context, api connTrackAPI, ids []string) (connTrackState, error) {
	out, err := api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids})
	if err != nil {
		return connTrackState{}, fmt.Errorf("describe interfaces %s: %w", strings.Join(ids, ", "), err)
	}
	st := connTrackState{Interfaces: []connTrackTimeouts{}}
	for _, n := range out.NetworkInterfaces {
		t := connTrackTimeouts{NetworkInterfaceID: aws.ToString(n.NetworkInterfaceId)}
		if c := n.ConnectionTrackingConfiguration; c != nil {
			t.TCPEstablishedTimeout, t.UDPStreamTimeout, t.UDPTimeout = c.TcpEstablishedTimeout, c.UdpStreamTimeout, c.UdpTimeout
		}
		st.Interfaces = append(st.Interfaces, t)
	}
	sort.Slice(st.Interfaces, func(i, j int) bool { return st.Interfaces[i].NetworkInterfaceID < st.Interfaces[j].NetworkInterfaceID })
	return st, nil
}

// set gives each interface of want its timeouts, in parallel, then reads
// every interface back: the step holds when each one has what want says.
func (s ConnectionTracking) set(ctx context.Context, api connTrackAPI, env *Env, want map[string]connTrackTimeouts, before connTrackState, what string) Result {
	var (
		mu   sync.Mutex
		errs *multierror.Error
		wg   sync.WaitGroup
	)
	ids := make([]string, 0, len(want))
	for id, t := range want {
		ids = append(ids, id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := api.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String(id),
				ConnectionTrackingSpecification: &types.ConnectionTrackingSpecificationRequest{
					TcpEstablishedTimeout: t.TCPEstablishedTimeout, UdpStreamTimeout: t.UDPStreamTimeout, UdpTimeout: t.UDPTimeout,
				},
				DryRun: aws.Bool(env.Target.DryRun),
			})
			if env.Target.DryRun {
				err = dryRun(err, "set connection tracking timeouts of "+id, nil).Err
			}
			if err != nil {
				mu.Lock()
				errs = multierror.Append(errs, fmt.Errorf("set connection tracking timeouts of %s: %w", id, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(ids)
	if env.Target.DryRun {
		if err := errs.ErrorOrNil(); err != nil {
			return dryRunContainment(Failed(err, before))
		}
		return dryRunContainment(OK("dry run: permitted; would set connection tracking timeouts of "+strings.Join(ids, ", "), before, nil))
	}
	after, rerr := s.read(ctx, api, ids)
	if rerr != nil {
		return failWith(Result{Err: errs.ErrorOrNil(), Before: before}, fmt.Errorf("read back: %w", rerr)).Unchecked()
	}
	for _, got := range after.Interfaces {
		w := want[got.NetworkInterfaceID]
		if aws.ToInt32(got.TCPEstablishedTimeout) != aws.ToInt32(w.TCPEstablishedTimeout) ||
			aws.ToInt32(got.UDPStreamTimeout) != aws.ToInt32(w.UDPStreamTimeout) || aws.ToInt32(got.UDPTimeout) != aws.ToInt32(w.UDPTimeout) {
			errs = multierror.Append(errs, fmt.Errorf("%s read back with TCP established %d s, UDP stream %d s, UDP %d s", got.NetworkInterfaceID,
				aws.ToInt32(got.TCPEstablishedTimeout), aws.ToInt32(got.UDPStreamTimeout), aws.ToInt32(got.UDPTimeout)))
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		r := Failed(err, before)
		r.After = after
		return r.Held(false)
	}
	return OK("connection tracking timeouts of "+strings.Join(ids, ", ")+" "+what, before, after).Held(true)
}

// Release gives each interface still attached the timeouts it had before;
// a timeout that was not set gets the instance type's default (recorded
// before; read now for a record without it), else the documented default
// of most types.
func (s ConnectionTracking) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var before connTrackState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	defaults := connTrackTimeouts{TCPEstablishedTimeout: aws.Int32(defaultTCPEstablished), UDPStreamTimeout: aws.Int32(defaultUDPStream), UDPTimeout: aws.Int32(defaultUDP)}
	typed := before.TypeDefaults
	if typed == nil && len(before.Interfaces) > 0 {
		typed, _, _ = s.typeDefaults(ctx, env.Clients.EC2, env.Target.Instance.InstanceType)
	}
	if typed != nil {
		defaults.TCPEstablishedTimeout = aws.Int32(orDefault(typed.TCPEstablishedTimeout, defaultTCPEstablished))
		defaults.UDPStreamTimeout = aws.Int32(orDefault(typed.UDPStreamTimeout, defaultUDPStream))
		defaults.UDPTimeout = aws.Int32(orDefault(typed.UDPTimeout, defaultUDP))
	}
	attached := map[string]bool{}
	for _, id := range s.interfaceIDs(env) {
		attached[id] = true
	}
	want := map[string]connTrackTimeouts{}
	for _, t := range before.Interfaces {
		if attached[t.NetworkInterfaceID] && !t.atMinimum() {
			want[t.NetworkInterfaceID] = connTrackTimeouts{NetworkInterfaceID: t.NetworkInterfaceID,
				TCPEstablishedTimeout: aws.Int32(orDefault(t.TCPEstablishedTimeout, *defaults.TCPEstablishedTimeout)),
				UDPStreamTimeout:      aws.Int32(orDefault(t.UDPStreamTimeout, *defaults.UDPStreamTimeout)),
				UDPTimeout:            aws.Int32(orDefault(t.UDPTimeout, *defaults.UDPTimeout))}
		}
	}
	if len(want) == 0 {
		return Skipped("no attached interface had other connection tracking timeouts before the response", before)
	}
	return s.set(ctx, env.Clients.EC2, env, want, before, "restored (a timeout not set before is set to the instance type's default)")
}

func orDefault(v *int32, def int32) int32 {
	if v == nil {
		return def
	}
	return *v
}

// Describe: the connection tracking timeouts of each interface.
func (ConnectionTracking) Describe() Description {
	return Description{
		Aspect: "Connection tracking timeouts of the interface",
		View:   viewConnTrack,
		Order:  15,
		OnFailure: "Flows the security groups still track (ICMP, and flows through NAT gateways, load balancers, " +
			"Global Accelerator, Network Firewall or transit gateway attachments) may go on for up to five days " +
			"of idle time: cut them with a network ACL on the subnet, or stop the instance once memory is captured.",
	}
}

// viewConnTrack reads a connTrackState: the timeouts of each interface.
func viewConnTrack(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	if err := requireField(raw, "interfaces"); err != nil {
		return nil, err
	}
	var v connTrackState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if v.Unsupported != "" {
		return []SubjectState{{Subject: instanceID, Text: v.Unsupported}}, nil
	}
	seconds := func(p *int32) string {
		if p == nil {
			return "default"
		}
		return fmt.Sprintf("%d s", *p)
	}
	var out []SubjectState
	for _, t := range v.Interfaces {
		out = append(out, SubjectState{Subject: t.NetworkInterfaceID, Text: fmt.Sprintf("TCP established %s, UDP stream %s, UDP %s",
			seconds(t.TCPEstablishedTimeout), seconds(t.UDPStreamTimeout), seconds(t.UDPTimeout))})
	}
	return out, nil
}
