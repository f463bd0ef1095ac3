package step

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/cloud"
)

type forensicGroupAPI interface {
	quarantineGroupAPI
	DescribeVpcEndpoints(context.Context, *ec2.DescribeVpcEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribePrefixLists(context.Context, *ec2.DescribePrefixListsInput, ...func(*ec2.Options)) (*ec2.DescribePrefixListsOutput, error)
	AuthorizeSecurityGroupEgress(context.Context, *ec2.AuthorizeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error)
}

// ForensicAccessGroup prepares, for every VPC of the instance that has the
// endpoints SSM needs, the forensic access group: no ingress, and egress only
// HTTPS to the private IPs of the VPC's ssm, ssmmessages and ec2messages
// interface endpoints and to its S3 endpoint (the S3 prefix list of a gateway
// endpoint, or an S3 interface endpoint's IPs). The quarantine step then puts
// the interfaces in it instead of the closed quarantine group, so that SSM can
// still collect from an isolated instance; forensic-access-close moves them
// to the closed group when the collection is over.
//
// A VPC without those endpoints gets no forensic access group: its interfaces
// go straight to the closed group, and SSM cannot reach the instance.
type ForensicAccessGroup struct{}

func (ForensicAccessGroup) Name() string    { return "forensic-access-group" }
func (ForensicAccessGroup) Phase() Phase    { return Contain }
func (ForensicAccessGroup) Needs() []string { return nil }

// forensicAccessGroup is the forensic access group of a VPC: HTTPS to the
// VPC's SSM and S3 endpoints only.
var forensicAccessGroup = caseGroup{kind: "forensic access group", tagValue: ForensicAccessTagValue, name: ForensicAccessGroupName,
	description: "responder forensic access: HTTPS to the VPC's SSM and S3 endpoints only. Do not add rules."}

// ForensicAccessGroupName is the name of the forensic access group of a VPC.
func ForensicAccessGroupName(vpcID string) string { return "responder-forensic-access-" + vpcID }

// forensicAccess is what one VPC offers SSM and where the group stands.
type forensicAccess struct {
	VPC string `json:"vpc_id"`
	// Endpoints found, by service (ssm, ssmmessages, ec2messages, s3).
	Endpoints map[string][]string `json:"endpoints,omitempty"`
	Missing   []string            `json:"missing,omitempty"`
	GroupID   string              `json:"group_id,omitempty"`
	Created   bool                `json:"created,omitempty"`
	Rules     []string            `json:"rules,omitempty"`
}

// Services a forensic access group opens, by the endpoint service suffix.
var (
	ssmServices      = []string{"ssm", "ssmmessages", "ec2messages"}
	endpointServices = append(slices.Clone(ssmServices), "s3")
)

func (s ForensicAccessGroup) Run(ctx context.Context, env *Env) Result {
	var api forensicGroupAPI = env.Clients.EC2
	vpcs := instanceVPCs(env.Target.Instance)
	if len(vpcs) == 0 {
		return Skipped("the instance is in no VPC", nil)
	}
	var (
		before, after []forensicAccess
		done, without []string
		errs          *multierror.Error
	)
	for _, vpc := range vpcs {
		access, err := s.endpoints(ctx, api, env, vpc)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("VPC %s: %w", vpc, err))
			before = append(before, access)
			continue
		}
		if len(access.Missing) > 0 {
			before, after = append(before, access), append(after, access)
			without = append(without, fmt.Sprintf("%s lacks %s", vpc, strings.Join(access.Missing, ", ")))
			continue
		}
		b, a, what, err := s.ensure(ctx, api, env, access)
		before, after = append(before, b), append(after, a)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("VPC %s: %w", vpc, err))
			continue
		}
		done = append(done, what)
	}
	if err := errs.ErrorOrNil(); err != nil {
		return Failed(err, before)
	}
	if len(done) == 0 {
		return Skipped("no forensic access: "+strings.Join(without, "; ")+
			" (the instance will be fully quarantined, and SSM cannot reach it there)", before)
	}
	reason := strings.Join(done, "; ")
	if len(without) > 0 {
		reason += "; no forensic access: " + strings.Join(without, "; ")
	}
	return OK(reason, before, after)
}

// endpoints finds the VPC's endpoints for SSM and S3 and the egress rules
// that reach them.
func (s ForensicAccessGroup) endpoints(ctx context.Context, api forensicGroupAPI, env *Env, vpc string) (forensicAccess, error) {
	access := forensicAccess{VPC: vpc, Endpoints: map[string][]string{}}
	out, err := api.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
	}})
	if err != nil {
		return access, fmt.Errorf("describe VPC endpoints: %w", err)
	}
	enis, prefixListNames := access.addEndpoints(out.VpcEndpoints, env.Target.Region)
	access.Missing = missingEndpoints(access.Endpoints)
	if len(access.Missing) > 0 {
		return access, nil
	}
	rules, err := endpointRules(ctx, api, enis, prefixListNames)
	if err != nil {
		return access, err
	}
	sort.Strings(rules)
	access.Rules = slices.Compact(rules)
	return access, nil
}

// addEndpoints records the available endpoints SSM can use, by service, and
// returns how to reach them: the network interfaces of interface endpoints
// and the prefix list names of an S3 gateway endpoint.
func (a *forensicAccess) addEndpoints(endpoints []types.VpcEndpoint, region string) (enis, prefixListNames []string) {
	for _, ep := range endpoints {
		if !strings.EqualFold(string(ep.State), "available") {
			continue
		}
		service := endpointService(aws.ToString(ep.ServiceName), region)
		if service == "" {
			continue
		}
		switch ep.VpcEndpointType {
		case types.VpcEndpointTypeInterface:
			// Without private DNS the agent resolves the public endpoint,
			// which a quarantined instance cannot reach. (S3 interface
			// endpoints are addressed by the URL the toolkit signs, which
			// names the public endpoint too.)
			if !aws.ToBool(ep.PrivateDnsEnabled) {
				continue
			}
			enis = append(enis, ep.NetworkInterfaceIds...)
			a.Endpoints[service] = append(a.Endpoints[service], aws.ToString(ep.VpcEndpointId))
		case types.VpcEndpointTypeGateway:
			if service != "s3" {
				continue
			}
			prefixListNames = append(prefixListNames, aws.ToString(ep.ServiceName))
			a.Endpoints[service] = append(a.Endpoints[service], aws.ToString(ep.VpcEndpointId))
		}
	}
	return enis, prefixListNames
}

// missingEndpoints names what SSM lacks among the endpoints found: ssm, s3,
// and one of ssmmessages or ec2messages.
func missingEndpoints(found map[string][]string) []string {
	var missing []string
	for _, svc := range []string{"ssm", "s3"} {
		if len(found[svc]) == 0 {
			missing = append(missing, svc)
		}
	}
	if len(found["ssmmessages"]) == 0 && len(found["ec2messages"]) == 0 {
		missing = append(missing, "ssmmessages or ec2messages")
	}
	return missing
}

// endpointRules are the egress rules that reach the endpoints: the private
// IP of every interface endpoint's network interface ("cidr:<ip>/32") and
// the S3 prefix list of a gateway endpoint ("pl:<id>").
func endpointRules(ctx context.Context, api forensicGroupAPI, enis, prefixListNames []string) ([]string, error) {
	var rules []string
	if len(enis) > 0 {
		nis, err := api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: enis})
		if err != nil {
			return nil, fmt.Errorf("describe endpoint interfaces: %w", err)
		}
		for _, ni := range nis.NetworkInterfaces {
			if ip := aws.ToString(ni.PrivateIpAddress); ip != "" {
				rules = append(rules, "cidr:"+ip+"/32")
			}
		}
	}
	if len(prefixListNames) > 0 {
		pls, err := api.DescribePrefixLists(ctx, &ec2.DescribePrefixListsInput{Filters: []types.Filter{
			{Name: aws.String("prefix-list-name"), Values: prefixListNames},
		}})
		if err != nil {
			return nil, fmt.Errorf("describe the S3 prefix list: %w", err)
		}
		for _, pl := range pls.PrefixLists {
			rules = append(rules, "pl:"+aws.ToString(pl.PrefixListId))
		}
		if len(pls.PrefixLists) == 0 {
			return nil, fmt.Errorf("the S3 gateway endpoint's prefix list %s was not found", strings.Join(prefixListNames, ", "))
		}
	}
	return rules, nil
}

// endpointService returns ssm, ssmmessages, ec2messages or s3 for an
// endpoint service name of the Region (com.amazonaws.<region>.<service>),
// or "".
func endpointService(name, region string) string {
	for _, svc := range endpointServices {
		if strings.HasSuffix(name, "."+region+"."+svc) {
			return svc
		}
	}
	return ""
}

// ensure finds or creates the group and makes its rules exactly the wanted
// ones. before is the group as found (without a group: want, without
// rules); after is as it was left, or before until the group exists.
func (s ForensicAccessGroup) ensure(ctx context.Context, api forensicGroupAPI, env *Env, want forensicAccess) (before, after forensicAccess, what string, err error) {
	before = want
	before.Rules = nil
	g, err := env.findCaseGroup(ctx, api, want.VPC, ForensicAccessTagValue)
	if err != nil {
		return before, before, "", fmt.Errorf("find forensic access group: %w", err)
	}
	created := g == nil
	switch {
	case created && env.Target.DryRun:
		_, err := api.CreateSecurityGroup(ctx, forensicAccessGroup.createInput(env, want.VPC, ForensicAccessGroupName(want.VPC), true))
		r := dryRun(err, "create forensic access group "+ForensicAccessGroupName(want.VPC)+" with "+strings.Join(want.Rules, ", "), nil)
		return before, before, r.Reason, r.Err
	case created:
		if g, err = s.create(ctx, api, env, want.VPC); err != nil {
			return before, before, "", err
		}
	default:
		before.GroupID, before.Rules = aws.ToString(g.GroupId), describeRules(*g)
	}
	id := aws.ToString(g.GroupId)
	after = want
	after.GroupID, after.Created = id, created
	if err := setEgress(ctx, api, *g, want.Rules, env.Target.DryRun); err != nil {
		return before, after, "", err
	}
	if env.Target.DryRun {
		return before, before, fmt.Sprintf("dry run: permitted; %s would allow only %s", id, strings.Join(want.Rules, ", ")), nil
	}
	env.SetForensicGroup(want.VPC, id)
	verb := "reusing"
	if created {
		verb = "created"
	}
	return before, after, fmt.Sprintf("%s %s in %s: egress HTTPS to %s only", verb, id, want.VPC, strings.Join(want.Rules, ", ")), nil
}

// create makes the group and describes it (see caseGroup.create).
func (s ForensicAccessGroup) create(ctx context.Context, api forensicGroupAPI, env *Env, vpc string) (*types.SecurityGroup, error) {
	id, _, err := forensicAccessGroup.create(ctx, api, env, vpc)
	if err != nil {
		return nil, err
	}
	return describeNewGroup(ctx, api, id)
}

// setEgress makes the group's rules exactly the wanted ones: it revokes
// whatever else the group allows (the default egress rule of a new group,
// anything someone added, any ingress), then adds the wanted rules it lacks.
func setEgress(ctx context.Context, api forensicGroupAPI, g types.SecurityGroup, rules []string, dryRun bool) error {
	id := aws.ToString(g.GroupId)
	revoke, add := egressChanges(g, rules)
	var errs *multierror.Error
	if len(revoke) > 0 {
		_, err := api.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: revoke, DryRun: aws.Bool(dryRun)})
		if err != nil && !ignorableRevokeError(err, dryRun) {
			errs = multierror.Append(errs, fmt.Errorf("revoke egress rules of %s: %w", id, err))
		}
	}
	if len(g.IpPermissions) > 0 {
		_, err := api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: g.IpPermissions, DryRun: aws.Bool(dryRun)})
		if err != nil && !ignorableRevokeError(err, dryRun) {
			errs = multierror.Append(errs, fmt.Errorf("revoke ingress rules of %s: %w", id, err))
		}
	}
	if len(add) > 0 {
		_, err := api.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: add, DryRun: aws.Bool(dryRun)})
		switch {
		case dryRun && cloud.IsErrorCode(err, "DryRunOperation"):
		case cloud.IsErrorCode(err, "InvalidPermission.Duplicate"):
			// Another response added them meanwhile.
		case err != nil:
			errs = multierror.Append(errs, fmt.Errorf("allow HTTPS to the endpoints from %s: %w", id, err))
		}
	}
	return errs.ErrorOrNil()
}

// egressChanges compares the group's egress rules with the wanted ones:
// what to revoke (one permission per peer, so that a wanted peer sharing a
// permission with an unwanted one stays) and what to add.
func egressChanges(g types.SecurityGroup, rules []string) (revoke, add []types.IpPermission) {
	wanted, have := map[string]bool{}, map[string]bool{}
	for _, r := range rules {
		wanted[r] = true
	}
	for _, p := range g.IpPermissionsEgress {
		for _, one := range splitPermission(p) {
			if key := egressKey(one); key != "" && wanted[key] {
				have[key] = true
				continue
			}
			revoke = append(revoke, one)
		}
	}
	for _, r := range rules {
		if !have[r] {
			add = append(add, httpsEgress(r))
		}
	}
	return revoke, add
}

// splitPermission splits a permission into one per peer, so that each can be
// kept or revoked on its own.
func splitPermission(p types.IpPermission) []types.IpPermission {
	var out []types.IpPermission
	base := types.IpPermission{IpProtocol: p.IpProtocol, FromPort: p.FromPort, ToPort: p.ToPort}
	for _, r := range p.IpRanges {
		one := base
		one.IpRanges = []types.IpRange{r}
		out = append(out, one)
	}
	for _, r := range p.Ipv6Ranges {
		one := base
		one.Ipv6Ranges = []types.Ipv6Range{r}
		out = append(out, one)
	}
	for _, r := range p.PrefixListIds {
		one := base
		one.PrefixListIds = []types.PrefixListId{r}
		out = append(out, one)
	}
	for _, r := range p.UserIdGroupPairs {
		one := base
		one.UserIdGroupPairs = []types.UserIdGroupPair{r}
		out = append(out, one)
	}
	return out
}

// egressKey names an HTTPS rule to one CIDR or prefix list as the wanted
// rules do ("cidr:10.0.1.5/32", "pl:pl-63a5400a"); "" for anything else.
func egressKey(p types.IpPermission) string {
	if aws.ToString(p.IpProtocol) != "tcp" || aws.ToInt32(p.FromPort) != 443 || aws.ToInt32(p.ToPort) != 443 {
		return ""
	}
	switch {
	case len(p.IpRanges) == 1:
		return "cidr:" + aws.ToString(p.IpRanges[0].CidrIp)
	case len(p.PrefixListIds) == 1:
		return "pl:" + aws.ToString(p.PrefixListIds[0].PrefixListId)
	}
	return ""
}

// httpsEgress is the permission a wanted rule names.
func httpsEgress(rule string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443)}
	kind, peer, _ := strings.Cut(rule, ":")
	desc := aws.String("responder forensic access: SSM and S3 endpoints")
	if kind == "pl" {
		p.PrefixListIds = []types.PrefixListId{{PrefixListId: aws.String(peer), Description: desc}}
	} else {
		p.IpRanges = []types.IpRange{{CidrIp: aws.String(peer), Description: desc}}
	}
	return p
}

// Describe: the forensic access groups are shown as recorded.
func (s ForensicAccessGroup) Describe() Description {
	d := RawState(s.Name())
	d.OnFailure = "No forensic access group was prepared: the interfaces went to the closed quarantine " +
		"group, where SSM cannot reach the instance, so OS-level evidence could not be collected after isolation."
	return d
}
