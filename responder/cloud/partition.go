package cloud

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// RegionPartition returns the partition of a Region name ("aws", "aws-cn",
// "aws-us-gov", ...) as the AWS SDK decides it, resolving no endpoint on the
// network.
//
// The SDK keeps its partition metadata (each partition's Regions and Region
// name pattern, partitions.json) in an internal package: it exposes no list
// of Regions. What it exposes is a service's default endpoint resolver, whose
// answer names the partition. That resolver takes a Region the SDK lists,
// then a name that fits a partition's pattern (so a Region newer than the
// SDK still resolves: "eu-west-9" is in "aws"), and puts a name that fits no
// pattern in "aws". The answer therefore says which partition a Region name
// belongs to, not that the Region exists: a caller checks the name's format
// first (as trigger.ValidateRegion does).
func RegionPartition(region string) (string, error) {
	if region == "" {
		return "", fmt.Errorf("no Region")
	}
	// EC2's resolver: EC2 is in every partition the responder can act in.
	ep, err := ec2.NewDefaultEndpointResolver().ResolveEndpoint(region, ec2.EndpointResolverOptions{})
	if err != nil {
		return "", fmt.Errorf("partition of Region %q: %w", region, err)
	}
	if ep.PartitionID == "" {
		return "", fmt.Errorf("partition of Region %q: the SDK names none", region)
	}
	return ep.PartitionID, nil
}
