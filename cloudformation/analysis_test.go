package cloudformation

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// The markers around the analysis documents in the forensics template.
const (
	analysisDocsBegin = "  # BEGIN analysis documents"
	analysisDocsEnd   = "  # END analysis documents"
	analysisCondition = "HasAnalysisEnvironment"
)

// The forensics stack creates the analysis documents (responder
// investigate runs them on the analysis instance), behind the investigation
// environment's condition, each with the Content of its committed file.
// After a change to a document:
//
//	go test ./cloudformation/ -run TestAnalysisDocuments -update
func TestAnalysisDocuments(t *testing.T) {
	if *update {
		if err := embedAnalysisDocuments(forensicsTemplate); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := load(t, forensicsTemplate)
	for _, d := range ssmdocuments.AnalysisDocuments() {
		id := strings.TrimPrefix(d.Name, "Responder-") + "Document"
		r, ok := tmpl.Resources[id]
		if !ok || r.Type != "AWS::SSM::Document" || str(r.Properties["Name"]) != d.Name {
			t.Errorf("%s creates no document %s as %s: run go test ./cloudformation/ -run TestAnalysisDocuments -update", forensicsTemplate, d.Name, id)
			continue
		}
		if r.Condition != analysisCondition {
			t.Errorf("%s: condition %q, want %s", id, r.Condition, analysisCondition)
		}
		file, err := os.ReadFile("../ssm-documents/" + d.FileName())
		if err != nil {
			t.Fatal(err)
		}
		if !sameDocument(r.Properties["Content"], file) {
			t.Errorf("%s: Content is not %s: run go test ./cloudformation/ -run TestAnalysisDocuments -update", id, d.FileName())
		}
	}
}

// embedAnalysisDocuments rewrites the block between the markers.
func embedAnalysisDocuments(path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin := bytes.Index(text, []byte(analysisDocsBegin+"\n"))
	end := bytes.Index(text, []byte(analysisDocsEnd+"\n"))
	if begin < 0 || end < begin {
		return fmt.Errorf("%s: no %q ... %q block", path, analysisDocsBegin, analysisDocsEnd)
	}
	var b bytes.Buffer
	b.Write(text[:begin])
	b.WriteString(analysisDocsBegin + "\n  # GENERATED from ssm-documents/documents: go test ./cloudformation/ -run TestAnalysisDocuments -update\n")
	for _, d := range ssmdocuments.AnalysisDocuments() {
		file, err := os.ReadFile("../ssm-documents/" + d.FileName())
		if err != nil {
			return err
		}
		if bytes.ContainsRune(file, '\t') || !bytes.HasSuffix(file, []byte("}\n")) {
			return fmt.Errorf("%s cannot be embedded as a YAML literal block as it is", d.FileName())
		}
		fmt.Fprintf(&b, "\n  %sDocument:\n    Type: AWS::SSM::Document\n    Condition: %s\n    Properties:\n", strings.TrimPrefix(d.Name, "Responder-"), analysisCondition)
		fmt.Fprintf(&b, "      Name: %s\n      DocumentType: Command\n      DocumentFormat: JSON\n      UpdateMethod: NewVersion\n", d.Name)
		fmt.Fprintf(&b, "      # ssm-documents/%s\n      Content:\n", d.FileName())
		for _, line := range strings.SplitAfter(strings.TrimSuffix(string(file), "\n"), "\n") {
			b.WriteString("        " + line)
		}
		b.WriteString("\n")
	}
	b.Write(text[end:])
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// The analysis VPC has no way to the internet: no internet, egress-only,
// NAT, VPN or transit gateway, no peering, no route besides the VPC's own
// and the S3 gateway endpoint's, no public addresses on launch; it reaches
// SSM through interface endpoints (ssm, ssmmessages, ec2messages) and S3
// through a gateway endpoint; its traffic is logged; the analysis security
// group lets nothing in. Everything of it exists only with
// AnalysisEnvironment=true.
func TestAnalysisVpcHasNoInternetPath(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	for _, typ := range []string{"AWS::EC2::InternetGateway", "AWS::EC2::EgressOnlyInternetGateway", "AWS::EC2::NatGateway",
		"AWS::EC2::VPCGatewayAttachment", "AWS::EC2::VPNGateway", "AWS::EC2::TransitGatewayAttachment",
		"AWS::EC2::TransitGatewayVpcAttachment", "AWS::EC2::VPCPeeringConnection", "AWS::EC2::Route", "AWS::EC2::EIP",
		"AWS::EC2::SecurityGroupIngress", "AWS::EC2::CarrierGateway"} {
		if rs := tmpl.ResourcesOfType(typ); len(rs) > 0 {
			t.Errorf("the template has %s %s", typ, rs[0].ID)
		}
	}
	vpcs := tmpl.ResourcesOfType("AWS::EC2::VPC")
	if len(vpcs) != 1 || vpcs[0].ID != "AnalysisVpc" {
		t.Fatalf("VPCs %v, want AnalysisVpc only", vpcs)
	}
	subnets := tmpl.ResourcesOfType("AWS::EC2::Subnet")
	if len(subnets) < 2 {
		t.Errorf("%d subnets, want two private ones", len(subnets))
	}
	for _, s := range subnets {
		if v, ok := s.Properties["MapPublicIpOnLaunch"].(bool); !ok || v {
			t.Errorf("%s: MapPublicIpOnLaunch %v, want false", s.ID, s.Properties["MapPublicIpOnLaunch"])
		}
	}
	var interfaces []string
	gateways := 0
	for _, e := range tmpl.ResourcesOfType("AWS::EC2::VPCEndpoint") {
		name := str(get(e.Properties, "ServiceName", "Fn::Sub"))
		service := name[strings.LastIndex(name, ".")+1:]
		switch str(e.Properties["VpcEndpointType"]) {
		case "Interface":
			interfaces = append(interfaces, service)
			if e.Properties["PrivateDnsEnabled"] != true {
				t.Errorf("%s: private DNS off: the agent would not find the endpoint", e.ID)
			}
		case "Gateway":
			if service != "s3" {
				t.Errorf("%s: gateway endpoint for %s", e.ID, service)
			}
			gateways++
		}
	}
	slices.Sort(interfaces)
	if !slices.Equal(interfaces, []string{"ec2messages", "ssm", "ssmmessages"}) || gateways != 1 {
		t.Errorf("interface endpoints %v and %d S3 gateway endpoints, want ec2messages, ssm, ssmmessages and one", interfaces, gateways)
	}
	logs := tmpl.ResourcesOfType("AWS::EC2::FlowLog")
	if len(logs) != 1 || !refersTo(logs[0].Properties["ResourceId"], "AnalysisVpc") || str(logs[0].Properties["TrafficType"]) != "ALL" {
		t.Errorf("flow logs %v: want one of all traffic of AnalysisVpc", logs)
	}
	if sg := tmpl.Resources["AnalysisSecurityGroup"]; sg.Properties["SecurityGroupIngress"] != nil {
		t.Errorf("AnalysisSecurityGroup has ingress rules: %v", sg.Properties["SecurityGroupIngress"])
	}
	for id, r := range tmpl.Resources {
		if strings.HasPrefix(id, "Analysis") || strings.HasPrefix(id, "Session") || id == "InvestigatorSessionsPolicy" {
			if r.Condition != analysisCondition {
				t.Errorf("%s exists without AnalysisEnvironment=true (condition %q)", id, r.Condition)
			}
		}
	}
}

// The analysis instance's role writes only analysis outputs and session
// logs, reads only the cases of the evidence bucket, and may be passed by
// the responder role alone, to EC2 alone.
func TestAnalysisRoleConfinement(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	docs, _, err := tmpl.RoleDocuments("AnalysisRole")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		for _, s := range d.Statements {
			for _, a := range s.Actions {
				res := fmt.Sprint(s.Resources)
				switch a {
				case "s3:PutObject":
					if !strings.Contains(res, "/cases/*/analysis/*") && !strings.Contains(res, "/sessions/*") {
						t.Errorf("AnalysisRole writes %s", res)
					}
				case "s3:GetObject":
					if !strings.Contains(res, "/cases/*") {
						t.Errorf("AnalysisRole reads %s", res)
					}
				}
				if strings.HasPrefix(a, "iam:") || strings.HasPrefix(a, "ec2:") || a == "ssm:SendCommand" || a == "sts:AssumeRole" {
					t.Errorf("AnalysisRole is granted %s", a)
				}
			}
		}
	}
	for _, role := range []string{"InvestigatorRole", "DataCustodianRole"} {
		granted, err := tmpl.AllowedActions(role)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(granted, "iam:PassRole") || slices.Contains(granted, "ec2:RunInstances") {
			t.Errorf("%s may pass roles or launch instances", role)
		}
	}
	// The responder role and the function (POST /cases/{id}/investigation)
	// pass the analysis role alone, to EC2 alone.
	for _, role := range []string{"ResponderRole", "ResponderLambdaRole"} {
		passes := 0
		for _, st := range allowStatements(t, tmpl, role) {
			if !contains(st.Actions, "iam:PassRole") {
				continue
			}
			passes++
			res := resourceNames(st)
			if len(res) != 1 || !strings.HasSuffix(res[0], ":role/${AnalysisRoleName}") ||
				fmt.Sprint(get(st.Condition, "StringEquals", "iam:PassedToService")) != "ec2.amazonaws.com" {
				t.Errorf("%s passes %v under %v, want the analysis role to ec2.amazonaws.com only", role, res, st.Condition)
			}
		}
		if passes == 0 {
			t.Errorf("%s cannot pass the analysis role", role)
		}
	}
}
