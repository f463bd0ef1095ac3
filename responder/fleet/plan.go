package fleet

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// Connector builds the engine of a scope: one cloud.Clients (with its
// pacing) and one responder.Responder per account and Region, through which
// every response of the scope runs.
type Connector func(ctx context.Context, sc Scope) (*responder.Responder, error)

// Plan is what a fleet run will act on, resolved with DescribeInstances.
type Plan struct {
	Scopes []*ScopePlan
	// Missing are the targets that will not be acted on: not found, or
	// terminated.
	Missing []evidence.FleetCase
	// Unreachable are the scopes whose engine could not be built or whose
	// describe failed; their targets are in Missing when no other scope
	// found them.
	Unreachable []ScopeError
}

// ScopePlan is one account and Region of a plan.
type ScopePlan struct {
	Scope
	// AccountID and Region are the ones the instances were found in.
	Engine    *responder.Responder
	Instances []responder.DescribedInstance
	// Contained are the instances whose case is contained already
	// (FindContained): left alone.
	Contained map[string]bool
}

// ScopeError is a scope that could not be resolved.
type ScopeError struct {
	Scope Scope
	Err   error
}

// Count is the number of instances the plan found (Acting: those it acts
// on).
func (p *Plan) Count() int {
	n := 0
	for _, s := range p.Scopes {
		n += len(s.Instances)
	}
	return n
}

// PerAccount counts the instances the plan acts on in each account (not
// those contained already).
func (p *Plan) PerAccount() map[string]int {
	out := map[string]int{}
	for _, s := range p.Scopes {
		for _, in := range s.Instances {
			if !s.Contained[aws.ToString(in.Instance.InstanceId)] {
				out[in.AccountID]++
			}
		}
	}
	return out
}

// MaxIDsPerCall is how many instance IDs one DescribeInstances call takes
// (the EC2 API reference: up to 1000).
const MaxIDsPerCall = 1000

// NewPlan resolves the targets: for each scope, at once, it builds the
// scope's engine and describes its instance IDs (in calls of up to 1000)
// and its filters (paged). An instance found in several scopes is taken
// once, in the first.
func NewPlan(ctx context.Context, t *Targets, connect Connector) *Plan {
	results := make([]scopeResult, len(t.Groups))
	var wg sync.WaitGroup
	for i, g := range t.Groups {
		wg.Go(func() { results[i] = resolveGroup(ctx, g, connect) })
	}
	wg.Wait()
	return merge(t, results)
}

type scopeResult struct {
	scope    *ScopePlan
	found    []responder.DescribedInstance
	notFound []string
	// wrongAccount: a finding's instance owned by another account than the
	// finding says.
	wrongAccount map[string]string
	err          error
}

func resolveGroup(ctx context.Context, g *Group, connect Connector) scopeResult {
	engine, err := connect(ctx, g.Scope)
	if err != nil {
		return scopeResult{scope: &ScopePlan{Scope: g.Scope}, err: err}
	}
	sc := g.Scope
	sc.Region = engine.Clients.Region
	res := scopeResult{scope: &ScopePlan{Scope: sc, Engine: engine}, wrongAccount: map[string]string{}}
	if len(g.InstanceIDs) > 0 {
		res.found, res.notFound, err = describeIDs(ctx, engine.Clients.EC2, g.InstanceIDs)
		if err != nil {
			res.err = err
			return res
		}
	}
	if len(g.Filters) > 0 {
		more, err := describeFiltered(ctx, engine.Clients.EC2, g.Filters)
		if err != nil {
			res.err = err
			return res
		}
		res.found = append(res.found, more...)
	}
	for _, in := range res.found {
		if want, ok := g.exact[aws.ToString(in.Instance.InstanceId)]; ok && want != "" && want != in.AccountID {
			res.wrongAccount[aws.ToString(in.Instance.InstanceId)] = in.AccountID
		}
	}
	return res
}

// merge gathers the scopes' results: each instance once, the missing ones
// with why.
func merge(t *Targets, results []scopeResult) *Plan {
	p := &Plan{}
	taken := map[string]bool{}
	missing := map[string]evidence.FleetCase{}
	for i, r := range results {
		g := t.Groups[i]
		if r.err != nil {
			p.Unreachable = append(p.Unreachable, ScopeError{Scope: r.scope.Scope, Err: r.err})
			for _, id := range g.InstanceIDs {
				missing[id] = evidence.FleetCase{InstanceID: id, AccountID: g.AccountID, Region: r.scope.Region, Status: NotStarted,
					Reason: fmt.Sprintf("%s: %v", r.scope.Scope, r.err)}
			}
			continue
		}
		for _, id := range r.notFound {
			if _, seen := missing[id]; !seen {
				missing[id] = evidence.FleetCase{InstanceID: id, AccountID: g.AccountID, Region: r.scope.Region, Status: NotFound,
					Reason: "DescribeInstances does not know it in " + r.scope.Scope.String()}
			}
		}
		for _, in := range r.found {
			id := aws.ToString(in.Instance.InstanceId)
			if taken[id] {
				continue
			}
			if owner, wrong := r.wrongAccount[id]; wrong {
				missing[id] = evidence.FleetCase{InstanceID: id, AccountID: owner, Region: r.scope.Region, Status: NotFound,
					Reason: fmt.Sprintf("the finding says account %s, but the instance found is owned by %s", g.exact[id], owner)}
				continue
			}
			if st := in.Instance.State; st != nil && (st.Name == types.InstanceStateNameTerminated || st.Name == types.InstanceStateNameShuttingDown) {
				missing[id] = evidence.FleetCase{InstanceID: id, AccountID: in.AccountID, Region: r.scope.Region, Status: Terminated,
					Reason: fmt.Sprintf("the instance is %s; its volumes and memory are gone", st.Name)}
				continue
			}
			taken[id] = true
			delete(missing, id)
			r.scope.Instances = append(r.scope.Instances, in)
		}
		p.Scopes = append(p.Scopes, r.scope)
	}
	for id, m := range missing {
		if !taken[id] {
			p.Missing = append(p.Missing, m)
		}
	}
	sort.Slice(p.Missing, func(i, j int) bool { return p.Missing[i].InstanceID < p.Missing[j].InstanceID })
	return p
}

// notFoundIDs finds the instance IDs an InvalidInstanceID.NotFound message
// names ("The instance IDs 'i-1, i-2' do not exist").
var notFoundIDs = regexp.MustCompile(`i-(?:[0-9a-f]{17}|[0-9a-f]{8})\b`)

// describeIDs describes instances by ID, up to MaxIDsPerCall a call. EC2
// answers InvalidInstanceID.NotFound for the whole call when one ID does not
// exist, naming the missing ones: those are taken out and the call made
// again with the others.
func describeIDs(ctx context.Context, api cloud.EC2, ids []string) (found []responder.DescribedInstance, notFound []string, err error) {
	for chunk := range slices.Chunk(ids, MaxIDsPerCall) {
		left := slices.Clone(chunk)
		for len(left) > 0 {
			got, err := describePages(ctx, api, &ec2.DescribeInstancesInput{InstanceIds: left})
			if err == nil {
				found = append(found, got...)
				break
			}
			if !cloud.IsErrorCode(err, "InvalidInstanceID.NotFound") {
				return nil, nil, fmt.Errorf("describe %d instances: %w", len(left), err)
			}
			gone := missingIn(err, left)
			if len(gone) == 0 {
				return nil, nil, fmt.Errorf("describe %d instances: EC2 says some do not exist but names none of them: %w", len(left), err)
			}
			notFound = append(notFound, gone...)
			left = slices.DeleteFunc(left, func(id string) bool { return slices.Contains(gone, id) })
		}
	}
	return found, notFound, nil
}

func missingIn(err error, asked []string) []string {
	var gone []string
	for _, id := range notFoundIDs.FindAllString(err.Error(), -1) {
		if slices.Contains(asked, id) && !slices.Contains(gone, id) {
			gone = append(gone, id)
		}
	}
	return gone
}

// describeFiltered describes the instances that match every filter, 1000 a
// page.
func describeFiltered(ctx context.Context, api cloud.EC2, filters []types.Filter) ([]responder.DescribedInstance, error) {
	got, err := describePages(ctx, api, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(MaxIDsPerCall)})
	if err != nil {
		return nil, fmt.Errorf("describe the instances of the filters: %w", err)
	}
	return got, nil
}

// describePages follows NextToken to the last page.
func describePages(ctx context.Context, api cloud.EC2, in *ec2.DescribeInstancesInput) ([]responder.DescribedInstance, error) {
	var out []responder.DescribedInstance
	for {
		page, err := api.DescribeInstances(ctx, in, cloud.Urgent)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				out = append(out, responder.DescribedInstance{Instance: inst, AccountID: aws.ToString(r.OwnerId)})
			}
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		next := *in
		next.NextToken = page.NextToken
		in = &next
		if ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), errors.New("interrupted while describing"))
		}
	}
}

// FindContained marks the instances whose case in this fleet is contained
// already (an earlier run of the fleet): a run leaves them alone, so they
// take no slot of the blast radius either. The case records are read from
// the store, 32 at once; a record that cannot be read marks nothing (the
// run then continues that case).
func (p *Plan) FindContained(ctx context.Context, store evidence.Store, fleetID string) {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 32)
	)
	for _, sc := range p.Scopes {
		sc.Contained = map[string]bool{}
		for _, in := range sc.Instances {
			id := aws.ToString(in.Instance.InstanceId)
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				m, err := evidence.LoadManifest(ctx, store, evidence.FleetCaseID(fleetID, id))
				if err == nil && m.Status == evidence.CaseContained {
					mu.Lock()
					sc.Contained[id] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
}

// Acting counts the instances the plan acts on: those not contained
// already.
func (p *Plan) Acting() int {
	n := 0
	for _, s := range p.Scopes {
		n += len(s.Instances) - len(s.Contained)
	}
	return n
}
