package trigger

import (
	"strings"

	"github.com/responder-ir/responder/responder/investigate"
)

// The investigation workspace's defaults (the forensics stack's outputs):
// POST /cases/{id}/investigation uses them for what its body leaves out.
const (
	EnvAnalysisSubnet         = "RESPONDER_ANALYSIS_SUBNET"
	EnvAnalysisAMI            = "RESPONDER_ANALYSIS_AMI"
	EnvAnalysisInstanceType   = "RESPONDER_ANALYSIS_INSTANCE_TYPE"
	EnvAnalysisProfile        = "RESPONDER_ANALYSIS_PROFILE"
	EnvAnalysisSecurityGroups = "RESPONDER_ANALYSIS_SECURITY_GROUPS"
)

// AnalysisConfig holds the investigation workspace's defaults.
type AnalysisConfig struct {
	SubnetID         string
	AMIID            string
	InstanceType     string
	InstanceProfile  string
	SecurityGroupIDs []string
}

func (c *Config) loadAnalysis(get func(string) string, bad func(name, format string, args ...any)) {
	a := AnalysisConfig{SubnetID: get(EnvAnalysisSubnet), AMIID: get(EnvAnalysisAMI),
		InstanceType: get(EnvAnalysisInstanceType), InstanceProfile: get(EnvAnalysisProfile)}
	if v := get(EnvAnalysisSecurityGroups); v != "" {
		a.SecurityGroupIDs = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	}
	checks := []struct {
		name string
		req  investigate.Request
	}{
		{EnvAnalysisSubnet, investigate.Request{SubnetID: a.SubnetID}},
		{EnvAnalysisAMI, investigate.Request{AMIID: a.AMIID}},
		{EnvAnalysisInstanceType, investigate.Request{InstanceType: a.InstanceType}},
		{EnvAnalysisProfile, investigate.Request{InstanceProfile: a.InstanceProfile}},
		{EnvAnalysisSecurityGroups, investigate.Request{SecurityGroupIDs: a.SecurityGroupIDs}},
	}
	for _, ch := range checks {
		r := ch.req
		r.CaseID = "config-check"
		if r.SubnetID == "" {
			r.SubnetID = "subnet-00000000"
		}
		if r.AMIID == "" {
			r.AMIID = "ami-00000000"
		}
		if err := r.Validate(); err != nil {
			bad(ch.name, "%v", err)
		}
	}
	c.Analysis = a
}
