package trigger

import (
	"fmt"

	"github.com/responder-ir/responder/responder/cloud"
)

// ValidateRegionIn checks that a Region name is well formed and belongs to
// the partition given, the function's own: its credentials, state machine
// and evidence bucket live in that partition, and it cannot assume a role in
// another. The partition is the AWS SDK's (cloud.RegionPartition), which
// knows a partition by its Regions and its Region name pattern; whether a
// well-formed Region of the partition exists is for AWS to say.
func ValidateRegionIn(region, partition string) error {
	if err := ValidateRegion(region); err != nil {
		return err
	}
	p, err := cloud.RegionPartition(region)
	if err != nil {
		return fmt.Errorf("invalid Region %s: %v", quote(region), err)
	}
	if p != partition {
		return fmt.Errorf("region %s is in the %s partition, not in this function's (%s): a response acts only in its own partition", quote(region), p, partition)
	}
	return nil
}
