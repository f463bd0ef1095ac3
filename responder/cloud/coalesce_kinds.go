package cloud

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The reads that coalesce, and how each merges and splits.

func instancesKind(next EC2) readKind[*ec2.DescribeInstancesInput, *ec2.DescribeInstancesOutput] {
	return readKind[*ec2.DescribeInstancesInput, *ec2.DescribeInstancesOutput]{
		op: "DescribeInstances", max: maxInstanceIDs, call: next.DescribeInstances,
		keys: func(in *ec2.DescribeInstancesInput) ([]string, bool) {
			if in == nil || len(in.Filters) > 0 || in.MaxResults != nil || in.NextToken != nil || aws.ToBool(in.DryRun) {
				return nil, false
			}
			return in.InstanceIds, true
		},
		merged: func(ids []string) *ec2.DescribeInstancesInput {
			return &ec2.DescribeInstancesInput{InstanceIds: ids}
		},
		split: splitReservations,
	}
}

// splitReservations keeps, of each reservation, the instances asked for,
// and the reservations left with one, in the order of the IDs asked.
func splitReservations(out *ec2.DescribeInstancesOutput, ids []string) *ec2.DescribeInstancesOutput {
	want := keySet(ids)
	type one struct {
		r  types.Reservation
		id string
	}
	var found []one
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			if want[aws.ToString(inst.InstanceId)] {
				found = append(found, one{r, aws.ToString(inst.InstanceId)})
			}
		}
	}
	found = byKeyOrder(found, ids, func(o one) string { return o.id })
	res := &ec2.DescribeInstancesOutput{ResultMetadata: out.ResultMetadata, Reservations: []types.Reservation{}}
	index := map[string]int{} // reservation ID -> its place in res
	for _, o := range found {
		inst := instanceOf(o.r, o.id)
		if i, ok := index[aws.ToString(o.r.ReservationId)]; ok {
			res.Reservations[i].Instances = append(res.Reservations[i].Instances, inst)
			continue
		}
		r := o.r
		r.Instances = []types.Instance{inst}
		index[aws.ToString(r.ReservationId)] = len(res.Reservations)
		res.Reservations = append(res.Reservations, r)
	}
	return res
}

func instanceOf(r types.Reservation, id string) types.Instance {
	for _, inst := range r.Instances {
		if aws.ToString(inst.InstanceId) == id {
			return inst
		}
	}
	return types.Instance{}
}

func volumesKind(next EC2) readKind[*ec2.DescribeVolumesInput, *ec2.DescribeVolumesOutput] {
	return readKind[*ec2.DescribeVolumesInput, *ec2.DescribeVolumesOutput]{
		op: "DescribeVolumes", max: maxFilterValues, call: next.DescribeVolumes,
		keys: func(in *ec2.DescribeVolumesInput) ([]string, bool) {
			if in == nil || len(in.Filters) > 0 || in.MaxResults != nil || in.NextToken != nil || aws.ToBool(in.DryRun) {
				return nil, false
			}
			return in.VolumeIds, true
		},
		merged: func(ids []string) *ec2.DescribeVolumesInput { return &ec2.DescribeVolumesInput{VolumeIds: ids} },
		split: func(out *ec2.DescribeVolumesOutput, ids []string) *ec2.DescribeVolumesOutput {
			want := keySet(ids)
			vols := []types.Volume{}
			for _, v := range out.Volumes {
				if want[aws.ToString(v.VolumeId)] {
					vols = append(vols, v)
				}
			}
			vols = byKeyOrder(vols, ids, func(v types.Volume) string { return aws.ToString(v.VolumeId) })
			return &ec2.DescribeVolumesOutput{Volumes: vols, ResultMetadata: out.ResultMetadata}
		},
	}
}

func interfacesKind(next EC2) readKind[*ec2.DescribeNetworkInterfacesInput, *ec2.DescribeNetworkInterfacesOutput] {
	return readKind[*ec2.DescribeNetworkInterfacesInput, *ec2.DescribeNetworkInterfacesOutput]{
		op: "DescribeNetworkInterfaces", max: maxFilterValues, call: next.DescribeNetworkInterfaces,
		keys: func(in *ec2.DescribeNetworkInterfacesInput) ([]string, bool) {
			if in == nil || len(in.Filters) > 0 || in.MaxResults != nil || in.NextToken != nil || aws.ToBool(in.DryRun) {
				return nil, false
			}
			return in.NetworkInterfaceIds, true
		},
		merged: func(ids []string) *ec2.DescribeNetworkInterfacesInput {
			return &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids}
		},
		split: func(out *ec2.DescribeNetworkInterfacesOutput, ids []string) *ec2.DescribeNetworkInterfacesOutput {
			nis := interfacesWhere(out, keySet(ids), func(n types.NetworkInterface) string { return aws.ToString(n.NetworkInterfaceId) })
			nis = byKeyOrder(nis, ids, func(n types.NetworkInterface) string { return aws.ToString(n.NetworkInterfaceId) })
			return &ec2.DescribeNetworkInterfacesOutput{NetworkInterfaces: nis, ResultMetadata: out.ResultMetadata}
		},
	}
}

// attachmentsKind: the interfaces attached to instances, by the one filter
// attachment.instance-id. The merged call follows NextToken to the end, so
// no caller's interfaces fall on a page it did not see.
func attachmentsKind(next EC2) readKind[*ec2.DescribeNetworkInterfacesInput, *ec2.DescribeNetworkInterfacesOutput] {
	const filter = "attachment.instance-id"
	return readKind[*ec2.DescribeNetworkInterfacesInput, *ec2.DescribeNetworkInterfacesOutput]{
		op: "DescribeNetworkInterfaces", max: maxFilterValues,
		call: func(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, o ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
			return allPages(ctx, in, o, next.DescribeNetworkInterfaces,
				func(in *ec2.DescribeNetworkInterfacesInput, t *string) { in.NextToken = t },
				func(out *ec2.DescribeNetworkInterfacesOutput) *string { return out.NextToken },
				func(all, page *ec2.DescribeNetworkInterfacesOutput) {
					all.NetworkInterfaces = append(all.NetworkInterfaces, page.NetworkInterfaces...)
					all.NextToken = page.NextToken
				})
		},
		keys: func(in *ec2.DescribeNetworkInterfacesInput) ([]string, bool) {
			if in == nil || len(in.NetworkInterfaceIds) > 0 || in.MaxResults != nil || in.NextToken != nil || aws.ToBool(in.DryRun) {
				return nil, false
			}
			return singleFilter(in.Filters, filter)
		},
		merged: func(ids []string) *ec2.DescribeNetworkInterfacesInput {
			return &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String(filter), Values: ids}}}
		},
		split: func(out *ec2.DescribeNetworkInterfacesOutput, ids []string) *ec2.DescribeNetworkInterfacesOutput {
			nis := interfacesWhere(out, keySet(ids), func(n types.NetworkInterface) string {
				if n.Attachment == nil {
					return ""
				}
				return aws.ToString(n.Attachment.InstanceId)
			})
			return &ec2.DescribeNetworkInterfacesOutput{NetworkInterfaces: nis, ResultMetadata: out.ResultMetadata}
		},
	}
}

func interfacesWhere(out *ec2.DescribeNetworkInterfacesOutput, want map[string]bool, key func(types.NetworkInterface) string) []types.NetworkInterface {
	nis := []types.NetworkInterface{}
	for _, n := range out.NetworkInterfaces {
		if want[key(n)] {
			nis = append(nis, n)
		}
	}
	return nis
}

// associationsKind: the profile associations of instances, by the one
// filter instance-id, all pages.
func associationsKind(next EC2) readKind[*ec2.DescribeIamInstanceProfileAssociationsInput, *ec2.DescribeIamInstanceProfileAssociationsOutput] {
	type in = ec2.DescribeIamInstanceProfileAssociationsInput
	type out = ec2.DescribeIamInstanceProfileAssociationsOutput
	const filter = "instance-id"
	return readKind[*in, *out]{
		op: "DescribeIamInstanceProfileAssociations", max: maxFilterValues,
		call: func(ctx context.Context, i *in, o ...func(*ec2.Options)) (*out, error) {
			return allPages(ctx, i, o, next.DescribeIamInstanceProfileAssociations,
				func(i *in, t *string) { i.NextToken = t },
				func(page *out) *string { return page.NextToken },
				func(all, page *out) {
					all.IamInstanceProfileAssociations = append(all.IamInstanceProfileAssociations, page.IamInstanceProfileAssociations...)
					all.NextToken = page.NextToken
				})
		},
		keys: func(i *in) ([]string, bool) {
			if i == nil || len(i.AssociationIds) > 0 || i.MaxResults != nil || i.NextToken != nil {
				return nil, false
			}
			return singleFilter(i.Filters, filter)
		},
		merged: func(ids []string) *in {
			return &in{Filters: []types.Filter{{Name: aws.String(filter), Values: ids}}}
		},
		split: func(o *out, ids []string) *out {
			want := keySet(ids)
			res := &out{ResultMetadata: o.ResultMetadata, IamInstanceProfileAssociations: []types.IamInstanceProfileAssociation{}}
			for _, a := range o.IamInstanceProfileAssociations {
				if want[aws.ToString(a.InstanceId)] {
					res.IamInstanceProfileAssociations = append(res.IamInstanceProfileAssociations, a)
				}
			}
			return res
		},
	}
}

// singleFilter returns the values of filters when they are exactly one
// filter named name.
func singleFilter(filters []types.Filter, name string) ([]string, bool) {
	if len(filters) != 1 || aws.ToString(filters[0].Name) != name {
		return nil, false
	}
	return filters[0].Values, true
}

// allPages calls until the answer carries no NextToken, and returns every
// page's items in one answer. The pages after the first take no token of
// the pacer (the read took one); with at most 200 instances a batch, they
// are rare.
func allPages[I, O any](ctx context.Context, in I, opts []func(*ec2.Options),
	call func(context.Context, I, ...func(*ec2.Options)) (O, error),
	setToken func(I, *string), token func(O) *string, appendPage func(all, page O)) (O, error) {
	all, err := call(ctx, in, opts...)
	if err != nil {
		return all, err
	}
	for next := token(all); next != nil && *next != ""; next = token(all) {
		setToken(in, next)
		page, err := call(ctx, in, opts...)
		if err != nil {
			return page, err
		}
		appendPage(all, page) // and takes the page's NextToken
	}
	return all, nil
}
