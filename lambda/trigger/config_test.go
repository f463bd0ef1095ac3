package trigger_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/lambda/trigger"
)

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func validVars() map[string]string {
	return map[string]string{
		"AWS_REGION":                  "eu-west-3",
		"RESPONDER_EVIDENCE_BUCKET":   "forensics-evidence-111122223333",
		"RESPONDER_STATE_MACHINE_ARN": "arn:aws:states:eu-west-3:111122223333:stateMachine:responder-response",
		"RESPONDER_ALLOWED_ACCOUNTS":  "111122223333, 444455556666",
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := trigger.LoadConfig(getenv(validVars()))
	if err != nil {
		t.Fatal(err)
	}
	if c.MemberRoleName != "responder-ir-member" || c.GuardDutyEnabled || c.GuardDutyMinSeverity != 7 ||
		c.LockWindow != 10*time.Minute || c.TopicARN != "" || c.ExternalID != "" ||
		c.PreserveConfigured() || c.SourceKMSKeyARN("444455556666", "eu-west-3") != "" {
		t.Errorf("defaults: %+v", c)
	}
	if c.HomeAccount != "111122223333" || c.HomePartition != "aws" || c.Region != "eu-west-3" {
		t.Errorf("derived: account %s partition %s region %s", c.HomeAccount, c.HomePartition, c.Region)
	}
	if !slices.Equal(c.AllowedAccounts, []string{"111122223333", "444455556666"}) {
		t.Errorf("allowed accounts %v", c.AllowedAccounts)
	}
	if got := c.RoleARN("444455556666"); got != "arn:aws:iam::444455556666:role/responder-ir-member" {
		t.Errorf("role ARN %s", got)
	}
	if c.AccountAllowed("999988887777") || !c.AccountAllowed("444455556666") {
		t.Error("AccountAllowed")
	}
}

func TestLoadConfigSettings(t *testing.T) {
	v := validVars()
	v["RESPONDER_GUARDDUTY_ENABLED"] = "true"
	v["RESPONDER_GUARDDUTY_MIN_SEVERITY"] = "8.5"
	v["RESPONDER_LOCK_WINDOW"] = "30m"
	v["RESPONDER_MEMBER_ROLE_NAME"] = "ir/responder-member"
	v["RESPONDER_EXTERNAL_ID"] = "responder-ext-42"
	v["RESPONDER_TOPIC_ARN"] = "arn:aws:sns:eu-west-3:111122223333:incidents"
	v["RESPONDER_LOG_LEVEL"] = "debug"
	v["RESPONDER_ALLOWED_ACCOUNTS"] = "*"
	v["RESPONDER_FORENSICS_KMS_KEY"] = "arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	v["RESPONDER_SOURCE_KMS_KEY_ALIAS"] = "alias/responder-evidence"
	c, err := trigger.LoadConfig(getenv(v))
	if err != nil {
		t.Fatal(err)
	}
	if !c.PreserveConfigured() || c.ForensicsKMSKey != v["RESPONDER_FORENSICS_KMS_KEY"] {
		t.Errorf("forensics key %q", c.ForensicsKMSKey)
	}
	// The alias is taken with or without its "alias/" prefix.
	if got := c.SourceKMSKeyARN("123456789012", "eu-central-1"); got != "arn:aws:kms:eu-central-1:123456789012:alias/responder-evidence" {
		t.Errorf("source key ARN %s", got)
	}
	if !c.GuardDutyEnabled || c.GuardDutyMinSeverity != 8.5 || c.LockWindow != 30*time.Minute ||
		c.RoleARN("123456789012") != "arn:aws:iam::123456789012:role/ir/responder-member" || !c.AccountAllowed("123456789012") {
		t.Errorf("settings: %+v", c)
	}
}

// A missing or invalid variable is an error that names it; all of them are
// reported at once.
func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(v map[string]string)
		vars []string
	}{
		{"nothing set", func(v map[string]string) { clear(v) },
			[]string{"AWS_REGION", "RESPONDER_EVIDENCE_BUCKET", "RESPONDER_STATE_MACHINE_ARN", "RESPONDER_ALLOWED_ACCOUNTS"}},
		{"no bucket", func(v map[string]string) { delete(v, "RESPONDER_EVIDENCE_BUCKET") }, []string{"RESPONDER_EVIDENCE_BUCKET"}},
		{"bad bucket", func(v map[string]string) { v["RESPONDER_EVIDENCE_BUCKET"] = "Evidence Bucket" }, []string{"RESPONDER_EVIDENCE_BUCKET"}},
		{"state machine alias", func(v map[string]string) { v["RESPONDER_STATE_MACHINE_ARN"] += ":prod" }, []string{"RESPONDER_STATE_MACHINE_ARN"}},
		{"bad account", func(v map[string]string) { v["RESPONDER_ALLOWED_ACCOUNTS"] = "111122223333,12345" }, []string{"RESPONDER_ALLOWED_ACCOUNTS"}},
		{"star and accounts", func(v map[string]string) { v["RESPONDER_ALLOWED_ACCOUNTS"] = "*,111122223333" }, []string{"RESPONDER_ALLOWED_ACCOUNTS"}},
		{"bad switch", func(v map[string]string) { v["RESPONDER_GUARDDUTY_ENABLED"] = "maybe" }, []string{"RESPONDER_GUARDDUTY_ENABLED"}},
		{"bad severity", func(v map[string]string) { v["RESPONDER_GUARDDUTY_MIN_SEVERITY"] = "11" }, []string{"RESPONDER_GUARDDUTY_MIN_SEVERITY"}},
		{"bad window", func(v map[string]string) { v["RESPONDER_LOCK_WINDOW"] = "30s" }, []string{"RESPONDER_LOCK_WINDOW"}},
		{"bad role", func(v map[string]string) { v["RESPONDER_MEMBER_ROLE_NAME"] = "role name" }, []string{"RESPONDER_MEMBER_ROLE_NAME"}},
		{"bad external ID", func(v map[string]string) { v["RESPONDER_EXTERNAL_ID"] = "x" }, []string{"RESPONDER_EXTERNAL_ID"}},
		{"bad topic", func(v map[string]string) { v["RESPONDER_TOPIC_ARN"] = "incidents" }, []string{"RESPONDER_TOPIC_ARN"}},
		{"bad forensics key", func(v map[string]string) { v["RESPONDER_FORENSICS_KMS_KEY"] = "my key" }, []string{"RESPONDER_FORENSICS_KMS_KEY"}},
		{"AWS managed source alias", func(v map[string]string) { v["RESPONDER_SOURCE_KMS_KEY_ALIAS"] = "aws/ebs" }, []string{"RESPONDER_SOURCE_KMS_KEY_ALIAS"}},
		{"bad source alias", func(v map[string]string) { v["RESPONDER_SOURCE_KMS_KEY_ALIAS"] = "my alias" }, []string{"RESPONDER_SOURCE_KMS_KEY_ALIAS"}},
		{"bad level", func(v map[string]string) { v["RESPONDER_LOG_LEVEL"] = "loud" }, []string{"RESPONDER_LOG_LEVEL"}},
		{"no role, other account", func(v map[string]string) { v["RESPONDER_MEMBER_ROLE_NAME"] = "none" }, []string{"RESPONDER_ALLOWED_ACCOUNTS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := validVars()
			tc.edit(v)
			_, err := trigger.LoadConfig(getenv(v))
			if err == nil {
				t.Fatal("no error")
			}
			for _, name := range tc.vars {
				if !strings.Contains(err.Error(), name+": ") {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
			var ce *trigger.ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *ConfigError", err)
			}
		})
	}
}
