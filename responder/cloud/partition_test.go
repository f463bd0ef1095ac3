package cloud_test

import (
	"testing"

	"github.com/responder-ir/responder/responder/cloud"
)

func TestRegionPartition(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":      "aws",
		"eu-west-3":      "aws",
		"ap-southeast-7": "aws",
		"eu-west-9":      "aws", // not (yet) a Region: the name fits the aws pattern
		"cn-north-1":     "aws-cn",
		"cn-northwest-1": "aws-cn",
		"us-gov-west-1":  "aws-us-gov",
		"us-iso-east-1":  "aws-iso",
		"us-isob-east-1": "aws-iso-b",
	} {
		got, err := cloud.RegionPartition(region)
		if err != nil || got != want {
			t.Errorf("RegionPartition(%q) = %q, %v; want %q", region, got, err, want)
		}
	}
	if p, err := cloud.RegionPartition(""); err == nil {
		t.Errorf("RegionPartition(\"\") = %q, want an error", p)
	}
}
