package cloud

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRegionsAreTheSDKs compares the Region list with the partition
// metadata of the aws-sdk-go-v2 module that go.mod requires.
func TestRegionsAreTheSDKs(t *testing.T) {
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Fatalf("go list the SDK module: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "internal", "endpoints", "awsrulesfn", "partitions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Partitions []struct {
			ID      string                     `json:"id"`
			Regions map[string]json.RawMessage `json:"regions"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, p := range doc.Partitions {
		for r := range p.Regions {
			if !strings.HasSuffix(r, "-global") {
				want[p.ID] = append(want[p.ID], r)
			}
		}
		slices.Sort(want[p.ID])
	}
	for id, rs := range want {
		if got := slices.Sorted(slices.Values(regions[id])); !slices.Equal(got, rs) {
			t.Errorf("partition %s: regions.go has %v, the SDK %v", id, got, rs)
		}
	}
	for id := range regions {
		if _, ok := want[id]; !ok {
			t.Errorf("partition %s is not in the SDK's metadata", id)
		}
	}
}

func TestKnownRegion(t *testing.T) {
	for name, want := range map[string]bool{"eu-west-1": true, "us-gov-west-1": true, "cn-north-1": true, "eu-wset-1": false, "eu-west-9": false, "aws-global": false, "": false} {
		if got := KnownRegion(name); got != want {
			t.Errorf("KnownRegion(%q) = %v, want %v", name, got, want)
		}
	}
	// Every listed Region resolves to its partition.
	for id, rs := range regions {
		for _, r := range rs {
			if p, err := RegionPartition(r); err != nil || p != id {
				t.Errorf("RegionPartition(%s) = %q, %v; want %s", r, p, err, id)
			}
		}
	}
}
