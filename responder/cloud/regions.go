package cloud

import (
	"slices"
	"sort"
)

// regions are the Regions of the AWS SDK's partition metadata, by
// partition: the regions of each partition of partitions.json in
// aws-sdk-go-v2's internal/endpoints/awsrulesfn (an internal package: the
// SDK exposes no list), less the *-global pseudo-Regions.
// TestRegionsAreTheSDKs keeps the list equal to the SDK that go.mod
// requires: a newer SDK with a new Region fails it until the Region is added.
var regions = map[string][]string{
	"aws":        {"af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "me-west-1", "mx-central-1", "sa-east-1", "sa-west-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2"},
	"aws-cn":     {"cn-north-1", "cn-northwest-1"},
	"aws-eusc":   {"eusc-de-east-1"},
	"aws-iso":    {"us-iso-east-1", "us-iso-west-1"},
	"aws-iso-b":  {"us-isob-east-1", "us-isob-west-1"},
	"aws-iso-e":  {"eu-isoe-west-1"},
	"aws-iso-f":  {"us-isof-east-1", "us-isof-south-1"},
	"aws-us-gov": {"us-gov-east-1", "us-gov-west-1"},
}

// KnownRegion reports whether name is a Region of the SDK's partition
// metadata. A name that only fits a partition's pattern (eu-wset-1) is not.
func KnownRegion(name string) bool {
	for _, rs := range regions {
		if slices.Contains(rs, name) {
			return true
		}
	}
	return false
}

// Regions lists every Region of the SDK's partition metadata, sorted.
func Regions() []string {
	var all []string
	for _, rs := range regions {
		all = append(all, rs...)
	}
	sort.Strings(all)
	return all
}
