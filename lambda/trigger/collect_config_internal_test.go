package trigger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder/step"
)

// A capture whose part URLs would outlive the hour the function signs them
// for is refused before anything is done, naming the limit.
func TestCaptureLongerThanTheSigningSessionIsRefused(t *testing.T) {
	c := Config{Collection: CollectionConfig{StagingBucket: "staging",
		MemoryTools: map[string]step.StagedTool{"avml-x86_64": {Key: "tools/avml", SHA256: strings.Repeat("a", 64)}}}}
	p, err := playbooks.Lookup("collect")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.runnable(p); err != nil {
		t.Fatalf("the collect playbook (capture timeout %s) is refused: %v", p.Collection.CaptureTimeout.Or(step.DefaultCaptureTimeout), err)
	}
	p.Collection.CaptureTimeout = step.Duration(2 * time.Hour)
	_, err = c.runnable(p)
	var unsupported *UnsupportedPlaybookError
	if !errors.As(err, &unsupported) || !strings.Contains(err.Error(), "2h0m0s is longer than the function's limit 55m0s") {
		t.Fatalf("error %v, want a refusal naming the limit", err)
	}
	p.Collection.CaptureTimeout = step.Duration(MaxStagedCapture)
	if _, err := c.runnable(p); err != nil {
		t.Errorf("a capture of exactly the limit is refused: %v", err)
	}
}

// The collection variables: each is read as documented, and bad values
// are named.
func TestCollectionConfig(t *testing.T) {
	base := map[string]string{
		EnvRegion: "us-east-1", EnvEvidenceBucket: "evidence", EnvAllowedAccounts: "111122223333",
		EnvStateMachineARN: "arn:aws:states:us-east-1:444455556666:stateMachine:responder-response",
	}
	load := func(extra map[string]string) (Config, error) {
		return LoadConfig(func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		})
	}
	sum := strings.Repeat("0", 64)
	c, err := load(map[string]string{
		EnvForensicProfile: "responder/responder-ir-member-forensic-ssm", EnvStagingBucket: "staging",
		EnvMemoryTools: "avml-x86_64=tools/avml@" + sum + ", avml-aarch64=tools/avml-arm@" + sum, EnvActionPlaybooks: "ResponderCapture=collect",
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Playbook("collect")
	if err != nil {
		t.Fatal(err)
	}
	col := c.collection(p, "111122223333")
	if col.ForensicProfileARN != "arn:aws:iam::111122223333:instance-profile/responder/responder-ir-member-forensic-ssm" ||
		col.StagingBucket != "staging" || col.Memory.Tools["avml-aarch64"].Key != "tools/avml-arm" || len(col.Memory.Tools) != 2 {
		t.Errorf("collection %+v", col)
	}
	if err := col.Validate(); err != nil {
		t.Errorf("the collection settings do not validate: %v", err)
	}
	if got := c.actionPlaybook("arn:aws:securityhub:us-east-1:444455556666:action/custom/ResponderCapture"); got != "collect" {
		t.Errorf("action playbook %s", got)
	}
	if got := c.actionPlaybook("arn:aws:securityhub:us-east-1:444455556666:action/custom/ResponderRespond"); got != DefaultPlaybook {
		t.Errorf("unmapped action playbook %s", got)
	}
	for _, bad := range []map[string]string{
		{EnvForensicProfile: "arn:aws:iam::1:role/x"},
		{EnvStagingBucket: "Not_A_Bucket"},
		{EnvMemoryTools: "avml-x86_64=tools/avml"},
		{EnvMemoryTools: "avml-x86_64=tools/avml@abc"},
		{EnvMemoryTools: "nmap=tools/nmap@" + sum},
		{EnvActionPlaybooks: "ResponderCapture=nuke"},
		{EnvActionPlaybooks: "Responder-Capture=collect"},
	} {
		_, err := load(bad)
		for name := range bad {
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%v: error %v, want one naming %s", bad, err, name)
			}
		}
	}
}
