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
	var enis []string
	eniService := map[string]string{}
	var prefixListNames []string
	for _, ep := range out.VpcEndpoints {
		if !strings.EqualFold(string(ep.State), "available") {
			continue
		}
		service := endpointService(aws.ToString(ep.ServiceName), env.Target.Region)
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
			for _, id := range ep.NetworkInterfaceIds {
				enis = append(enis, id)
				eniService[id] = service
			}
			access.Endpoints[service] = append(access.Endpoints[service], aws.ToString(ep.VpcEndpointId))
		case types.VpcEndpointTypeGateway:
			if service != "s3" {
				continue
			}
			prefixListNames = append(prefixListNames, aws.ToString(ep.ServiceName))
			access.Endpoints[service] = append(access.Endpoints[service], aws.ToString(ep.VpcEndpointId))
		}
	}
	for _, svc := range []string{"ssm", "s3"} {
		if len(access.Endpoints[svc]) == 0 {
			access.Missing = append(access.Missing, svc)
		}
	}
	if len(access.Endpoints["ssmmessages"]) == 0 && len(access.Endpoints["ec2messages"]) == 0 {
		access.Missing = append(access.Missing, "ssmmessages or ec2messages")
	}
	if len(access.Missing) > 0 {
		return access, nil
	}
	var rules []string
	if len(enis) > 0 {
		nis, err := api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: enis})
		if err != nil {
			return access, fmt.Errorf("describe endpoint interfaces: %w", err)
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
			return access, fmt.Errorf("describe the S3 prefix list: %w", err)
		}
		for _, pl := range pls.PrefixLists {
			rules = append(rules, "pl:"+aws.ToString(pl.PrefixListId))
		}
		if len(pls.PrefixLists) == 0 {
			return access, fmt.Errorf("the S3 gateway endpoint's prefix list %s was not found", strings.Join(prefixListNames, ", "))
		}
	}
	sort.Strings(rules)
	access.Rules = slices.Compact(rules)
	return access, nil
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
// ones.
func (s ForensicAccessGroup) ensure(ctx context.Context, api forensicGroupAPI, env *Env, want forensicAccess) (before, after forensicAccess, what string, err error) {
	before = want
	before.Rules = nil
	name := ForensicAccessGroupName(want.VPC)
	found, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{want.VPC}},
		{Name: aws.String("tag:" + TagQuarantine), Values: []string{ForensicAccessTagValue}},
	}})
	if err != nil {
		return before, before, "", fmt.Errorf("find forensic access group: %w", err)
	}
	var g *types.SecurityGroup
	if len(found.SecurityGroups) > 0 {
		groups := found.SecurityGroups
		sort.Slice(groups, func(i, j int) bool { return aws.ToString(groups[i].GroupId) < aws.ToString(groups[j].GroupId) })
		g = &groups[0]
	}
	created := false
	if g == nil {
		in := &ec2.CreateSecurityGroupInput{
			GroupName:   aws.String(name),
			Description: aws.String("responder forensic access: HTTPS to the VPC's SSM and S3 endpoints only. Do not add rules."),
			VpcId:       aws.String(want.VPC),
			TagSpecifications: []types.TagSpecification{{
				ResourceType: types.ResourceTypeSecurityGroup,
				Tags: []types.Tag{
					{Key: aws.String(TagQuarantine), Value: aws.String(ForensicAccessTagValue)},
					{Key: aws.String("Name"), Value: aws.String(name)},
					{Key: aws.String(TagCaseID), Value: aws.String(env.Target.CaseID)},
				},
			}},
			DryRun: aws.Bool(env.Target.DryRun),
		}
		out, err := api.CreateSecurityGroup(ctx, in)
		if env.Target.DryRun {
			r := dryRun(err, "create forensic access group "+name+" with "+strings.Join(want.Rules, ", "), nil)
			return before, before, r.Reason, r.Err
		}
		if cloud.IsErrorCode(err, "InvalidGroup.Duplicate") {
			// An untagged group holds the name: not ours to change.
			in.GroupName = aws.String(name + "-" + env.Target.CaseID)
			out, err = api.CreateSecurityGroup(ctx, in)
		}
		if err != nil {
			return before, before, "", fmt.Errorf("create forensic access group: %w", err)
		}
		created = true
		id := aws.ToString(out.GroupId)
		if g, err = describeNewGroup(ctx, api, id); err != nil {
			return before, before, "", err
		}
	} else {
		before.GroupID = aws.ToString(g.GroupId)
		before.Rules = describeRules(*g)
	}
	id := aws.ToString(g.GroupId)
	after = want
	after.GroupID, after.Created = id, created

	// Revoke whatever is not one of the wanted rules (the default egress rule
	// of a new group, anything someone added), then add the missing ones.
	wanted := map[string]bool{}
	for _, r := range want.Rules {
		wanted[r] = true
	}
	var revokeEgress []types.IpPermission
	have := map[string]bool{}
	for _, p := range g.IpPermissionsEgress {
		for _, one := range splitPermission(p) {
			key := egressKey(one)
			if key != "" && wanted[key] {
				have[key] = true
				continue
			}
			revokeEgress = append(revokeEgress, one)
		}
	}
	var errs *multierror.Error
	if len(revokeEgress) > 0 {
		_, err := api.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: revokeEgress, DryRun: aws.Bool(env.Target.DryRun)})
		if err != nil && !ignorableRevokeError(err, env.Target.DryRun) {
			errs = multierror.Append(errs, fmt.Errorf("revoke egress rules of %s: %w", id, err))
		}
	}
	if len(g.IpPermissions) > 0 {
		_, err := api.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: g.IpPermissions, DryRun: aws.Bool(env.Target.DryRun)})
		if err != nil && !ignorableRevokeError(err, env.Target.DryRun) {
			errs = multierror.Append(errs, fmt.Errorf("revoke ingress rules of %s: %w", id, err))
		}
	}
	var add []types.IpPermission
	for _, r := range want.Rules {
		if !have[r] {
			add = append(add, httpsEgress(r))
		}
	}
	if len(add) > 0 {
		_, err := api.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: add, DryRun: aws.Bool(env.Target.DryRun)})
		switch {
		case env.Target.DryRun && cloud.IsErrorCode(err, "DryRunOperation"):
		case cloud.IsErrorCode(err, "InvalidPermission.Duplicate"):
			// Another response added them meanwhile.
		case err != nil:
			errs = multierror.Append(errs, fmt.Errorf("allow HTTPS to the endpoints from %s: %w", id, err))
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
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
