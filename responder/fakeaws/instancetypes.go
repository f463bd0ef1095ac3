package fakeaws

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// instanceTypeSpec is one row of the fake's instance type catalogue.
type instanceTypeSpec struct {
	Name      types.InstanceType
	MemoryMiB int64
	VCPUs     int32
	Arch      types.ArchitectureType
	Burstable bool
	// Xen marks a previous-generation type on the Xen hypervisor: no
	// connection tracking timeouts on its interfaces.
	Xen bool
}

// instanceTypes is the catalogue DescribeInstanceTypes answers from, in the
// order it lists them. It holds the types AddInstance gives by default
// (t3.micro, t4g.micro) and a few common ones of each memory size.
var instanceTypes = []instanceTypeSpec{
	{"t3.micro", 1024, 2, types.ArchitectureTypeX8664, true, false},
	{"t3.small", 2048, 2, types.ArchitectureTypeX8664, true, false},
	{"t3.medium", 4096, 2, types.ArchitectureTypeX8664, true, false},
	{"t3.large", 8192, 2, types.ArchitectureTypeX8664, true, false},
	{"t4g.micro", 1024, 2, types.ArchitectureTypeArm64, true, false},
	{"m5.large", 8192, 2, types.ArchitectureTypeX8664, false, false},
	{"m5.xlarge", 16384, 4, types.ArchitectureTypeX8664, false, false},
	{"r5.large", 16384, 2, types.ArchitectureTypeX8664, false, false},
	{"c6g.large", 4096, 2, types.ArchitectureTypeArm64, false, false},
	{"m6g.large", 8192, 2, types.ArchitectureTypeArm64, false, false},
	{"t2.micro", 1024, 1, types.ArchitectureTypeX8664, true, true},
	{"m8i.large", 8192, 2, types.ArchitectureTypeX8664, false, false},
}

// nitroV6 are the catalogue's Nitro v6 types: their interfaces idle
// established TCP flows out after 350 s by default, not 432,000 s (API
// reference, ConnectionTrackingConfiguration).
var nitroV6 = map[types.InstanceType]bool{"m8i.large": true}

func lookupInstanceType(name types.InstanceType) (instanceTypeSpec, bool) {
	for _, t := range instanceTypes {
		if t.Name == name {
			return t, true
		}
	}
	return instanceTypeSpec{}, false
}

func renderInstanceType(t instanceTypeSpec) types.InstanceTypeInfo {
	manufacturer := "Intel"
	if t.Arch == types.ArchitectureTypeArm64 {
		manufacturer = "AWS"
	}
	hypervisor := types.InstanceTypeHypervisorNitro
	if t.Xen {
		hypervisor = types.InstanceTypeHypervisorXen
	}
	var network *types.NetworkInfo
	if !t.Xen {
		tcp := int32(432000)
		if nitroV6[t.Name] {
			tcp = 350
		}
		network = &types.NetworkInfo{ConnectionTrackingConfiguration: &types.DefaultConnectionTrackingConfiguration{
			DefaultTcpEstablishedTimeout: aws.Int32(tcp), DefaultUdpStreamTimeout: aws.Int32(180), DefaultUdpTimeout: aws.Int32(30)}}
	}
	return types.InstanceTypeInfo{
		NetworkInfo:                   network,
		InstanceType:                  t.Name,
		CurrentGeneration:             aws.Bool(true),
		BareMetal:                     aws.Bool(false),
		BurstablePerformanceSupported: aws.Bool(t.Burstable),
		FreeTierEligible:              aws.Bool(t.Name == "t3.micro" || t.Name == "t4g.micro"),
		Hypervisor:                    hypervisor,
		MemoryInfo:                    &types.MemoryInfo{SizeInMiB: aws.Int64(t.MemoryMiB)},
		ProcessorInfo: &types.ProcessorInfo{
			SupportedArchitectures: []types.ArchitectureType{t.Arch},
			Manufacturer:           aws.String(manufacturer),
		},
		VCpuInfo:                     &types.VCpuInfo{DefaultVCpus: aws.Int32(t.VCPUs)},
		SupportedRootDeviceTypes:     []types.RootDeviceType{types.RootDeviceTypeEbs},
		SupportedVirtualizationTypes: []types.VirtualizationType{types.VirtualizationTypeHvm},
		SupportedUsageClasses:        []types.UsageClassType{types.UsageClassTypeOnDemand, types.UsageClassTypeSpot},
		InstanceStorageSupported:     aws.Bool(false),
		SupportedInRegion:            aws.Bool(true),
	}
}

var instanceTypeFields = fields[instanceTypeSpec]{
	"instance-type": func(t instanceTypeSpec) []string { return one(string(t.Name)) },
	"processor-info.supported-architecture": func(t instanceTypeSpec) []string {
		return one(string(t.Arch))
	},
	"memory-info.size-in-mib": func(t instanceTypeSpec) []string { return one(fmt.Sprint(t.MemoryMiB)) },
	"vcpu-info.default-vcpus": func(t instanceTypeSpec) []string { return one(fmt.Sprint(t.VCPUs)) },
	"current-generation":      func(instanceTypeSpec) []string { return one("true") },
	"burstable-performance-supported": func(t instanceTypeSpec) []string {
		return one(fmt.Sprint(t.Burstable))
	},
}

// DescribeInstanceTypes describes instance types from a small built-in
// catalogue (t3.micro to t3.large, t4g.micro, m5.large, m5.xlarge, r5.large,
// c6g.large, m6g.large): memory (MemoryInfo.SizeInMiB), architectures
// (ProcessorInfo.SupportedArchitectures) and vCPUs. A type the catalogue
// lacks answers InvalidInstanceType, as AWS does for a type that does not
// exist. Filters: instance-type, processor-info.supported-architecture,
// memory-info.size-in-mib, vcpu-info.default-vcpus, current-generation,
// burstable-performance-supported.
func (e *EC2) DescribeInstanceTypes(ctx context.Context, in *ec2.DescribeInstanceTypesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error) {
	if in == nil {
		in = &ec2.DescribeInstanceTypesInput{}
	}
	c := e.c
	out := &ec2.DescribeInstanceTypesOutput{}
	err := c.call(ctx, serviceEC2, "DescribeInstanceTypes", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		var unknown []string
		for _, name := range in.InstanceTypes {
			if _, ok := lookupInstanceType(name); !ok {
				unknown = append(unknown, string(name))
			}
		}
		if len(unknown) > 0 {
			return nil, apiError("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(unknown, ", "))
		}
		if err := checkFilters(in.Filters, instanceTypeFields); err != nil {
			return nil, err
		}
		list := instanceTypes
		if len(in.InstanceTypes) > 0 {
			list = nil
			for _, t := range instanceTypes {
				if slices.Contains(in.InstanceTypes, t.Name) {
					list = append(list, t)
				}
			}
		}
		list = filter(list, in.Filters, instanceTypeFields, nil)
		result := []types.InstanceTypeInfo{}
		for _, t := range list {
			result = append(result, renderInstanceType(t))
		}
		return func() { out.InstanceTypes = result }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
