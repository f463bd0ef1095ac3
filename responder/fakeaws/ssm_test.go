package fakeaws

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

func TestDocuments(t *testing.T) {
	ctx := context.Background()
	c := New()
	api := c.SSM()
	for _, d := range ssmdocuments.Documents() {
		content, err := d.Content()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := d.ContentSHA256()
		created, err := api.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String(d.Name), Content: aws.String(string(content)),
			DocumentType: ssmtypes.DocumentTypeCommand, DocumentFormat: ssmtypes.DocumentFormatJson})
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		if aws.ToString(created.DocumentDescription.Hash) != want || created.DocumentDescription.Status != ssmtypes.DocumentStatusCreating {
			t.Errorf("%s: create answered %+v", d.Name, created.DocumentDescription)
		}
		out, err := api.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(d.Name)})
		if err != nil {
			t.Fatal(err)
		}
		doc := out.Document
		if aws.ToString(doc.Hash) != sha256hex(content) || aws.ToString(doc.Hash) != want || doc.HashType != ssmtypes.DocumentHashTypeSha256 ||
			doc.Status != ssmtypes.DocumentStatusActive || aws.ToString(doc.DocumentVersion) != "1" ||
			aws.ToString(doc.LatestVersion) != "1" || aws.ToString(doc.DefaultVersion) != "1" || len(doc.Parameters) != len(d.DocumentParameters()) ||
			aws.ToString(doc.SchemaVersion) != "2.2" || aws.ToString(doc.Owner) != c.Account {
			t.Errorf("%s described as %+v", d.Name, doc)
		}
		if !strings.Contains(string(doc.PlatformTypes[0]), d.Platform) {
			t.Errorf("%s platforms %v", d.Name, doc.PlatformTypes)
		}
	}

	name := ssmdocuments.LinuxVolatileData
	d, _ := ssmdocuments.Lookup(name)
	v1, _ := d.Content()
	v2 := strings.Replace(string(v1), "Responder: collect", "Responder v2: collect", 1)
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"exists", func() error {
			_, err := api.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String(name), Content: aws.String(string(v1))})
			return err
		}, "DocumentAlreadyExists"},
		{"not JSON", func() error {
			_, err := api.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("Broken"), Content: aws.String("mainSteps: []")})
			return err
		}, "InvalidDocumentContent"},
		{"no steps", func() error {
			_, err := api.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("Broken"), Content: aws.String(`{"schemaVersion":"2.2"}`)})
			return err
		}, "InvalidDocumentContent"},
		{"schema", func() error {
			_, err := api.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("Broken"), Content: aws.String(`{"schemaVersion":"9.9","mainSteps":[]}`)})
			return err
		}, "InvalidDocumentSchemaVersion"},
		{"too big", func() error {
			_, err := api.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("Big"), Content: aws.String(strings.Repeat(" ", 65*1024))})
			return err
		}, "MaxDocumentSizeExceeded"},
		{"reserved name", func() error {
			_, err := api.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("AWS-Mine"), Content: aws.String(string(v1))})
			return err
		}, "ValidationException"},
		{"describe missing", func() error {
			_, err := api.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String("Nope")})
			return err
		}, "InvalidDocument"},
		{"describe missing version", func() error {
			_, err := api.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(name), DocumentVersion: aws.String("2")})
			return err
		}, "InvalidDocumentVersion"},
		{"update same content", func() error {
			_, err := api.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String(name), Content: aws.String(string(v1)), DocumentVersion: aws.String("$LATEST")})
			return err
		}, "DuplicateDocumentContent"},
		{"update missing", func() error {
			_, err := api.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String("Nope"), Content: aws.String(v2), DocumentVersion: aws.String("$LATEST")})
			return err
		}, "InvalidDocument"},
		{"update", func() error {
			_, err := api.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String(name), Content: aws.String(v2), DocumentVersion: aws.String("$LATEST")})
			return err
		}, ""},
		{"update an older version", func() error {
			_, err := api.UpdateDocument(ctx, &ssm.UpdateDocumentInput{Name: aws.String(name), Content: aws.String(v2 + " "), DocumentVersion: aws.String("1")})
			return err
		}, "InvalidDocumentVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(), tt.code)
		})
	}
	var typed *ssmtypes.InvalidDocument
	if _, err := api.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String("Nope")}); !errors.As(err, &typed) {
		t.Errorf("InvalidDocument is %T, want the SDK's *types.InvalidDocument", err)
	}

	// The update made version 2, the latest; the default is still 1.
	for version, want := range map[string]string{"": sha256hex(v1), "$DEFAULT": sha256hex(v1), "$LATEST": sha256hex([]byte(v2)), "2": sha256hex([]byte(v2))} {
		out, err := api.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(name), DocumentVersion: aws.String(version)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.Document.Hash) != want || aws.ToString(out.Document.LatestVersion) != "2" || aws.ToString(out.Document.DefaultVersion) != "1" {
			t.Errorf("version %q: %+v", version, out.Document)
		}
	}
	if got, _ := c.Document(name, "$LATEST"); got != v2 {
		t.Error("Document($LATEST) is not the update")
	}
}

func TestSendCommandValidation(t *testing.T) {
	k := newCollection(t, LinuxAgent())
	ctx := k.ctx
	unmanaged := k.c.AddInstance(InstanceSpec{VpcID: k.s.VpcID})
	lost := k.c.AddInstance(InstanceSpec{VpcID: k.s.VpcID})
	k.c.SetAgent(lost, Agent{PlatformType: "Linux", Online: true, NeedsProfile: true}) // no profile: never registered
	d, _ := ssmdocuments.Lookup(ssmdocuments.LinuxVolatileData)
	volatile, err := d.SendCommandParameters(map[string]string{
		"CaseId":     "case-42",
		"ArchiveUrl": k.presignPut("evidence", "case-42/volatile.tar.gz"),
		"ResultUrl":  k.presignPut("evidence", "case-42/volatile-report.json"),
	}, k.sealingKey())
	k.must(err)
	for _, defaulted := range []string{"RecentDays", "ExecutionTimeout"} {
		delete(volatile, defaulted) // SendCommand fills the defaults in
	}
	with := func(name string, v ...string) map[string][]string {
		out := map[string][]string{}
		for k, vals := range volatile {
			out[k] = vals
		}
		if v == nil {
			delete(out, name)
		} else {
			out[name] = v
		}
		return out
	}
	hash, _ := d.ContentSHA256()
	tests := []struct {
		name string
		in   ssm.SendCommandInput
		code string
	}{
		{name: "ok", in: ssm.SendCommandInput{Parameters: volatile, DocumentHash: aws.String(hash), DocumentHashType: ssmtypes.DocumentHashTypeSha256}},
		{name: "explicit version", in: ssm.SendCommandInput{Parameters: volatile, DocumentVersion: aws.String("1")}},
		{name: "unknown document", in: ssm.SendCommandInput{DocumentName: aws.String("Responder-Nope"), Parameters: volatile}, code: "InvalidDocument"},
		{name: "unknown version", in: ssm.SendCommandInput{DocumentVersion: aws.String("7"), Parameters: volatile}, code: "InvalidDocumentVersion"},
		{name: "other hash", in: ssm.SendCommandInput{Parameters: volatile, DocumentHash: aws.String(sha256hex([]byte("x")))}, code: "InvalidDocument"},
		{name: "unknown parameter", in: ssm.SendCommandInput{Parameters: with("Extra", "x")}, code: "InvalidParameters"},
		{name: "missing required", in: ssm.SendCommandInput{Parameters: with(ssmdocuments.ParamSealed)}, code: "InvalidParameters"},
		{name: "a URL in clear", in: ssm.SendCommandInput{Parameters: with("ArchiveUrl", k.presignPut("evidence", "x"))}, code: "InvalidParameters"},
		{name: "outside the pattern", in: ssm.SendCommandInput{Parameters: with("CaseId", "case 42; rm -rf /")}, code: "InvalidParameters"},
		{name: "two values", in: ssm.SendCommandInput{Parameters: with("CaseId", "a", "b")}, code: "InvalidParameters"},
		{name: "not managed", in: ssm.SendCommandInput{Parameters: volatile, InstanceIds: []string{unmanaged}}, code: "InvalidInstanceId"},
		{name: "not registered", in: ssm.SendCommandInput{Parameters: volatile, InstanceIds: []string{lost}}, code: "InvalidInstanceId"},
		{name: "unknown instance", in: ssm.SendCommandInput{Parameters: volatile, InstanceIds: []string{unknownInstance}}, code: "InvalidInstanceId"},
		{name: "timeout too short", in: ssm.SendCommandInput{Parameters: volatile, TimeoutSeconds: aws.Int32(10)}, code: "ValidationException"},
		{name: "targets", in: ssm.SendCommandInput{Parameters: volatile, Targets: []ssmtypes.Target{{Key: aws.String("tag:Name")}}}, code: "UnsupportedOperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.DocumentName == nil {
				in.DocumentName = aws.String(ssmdocuments.LinuxVolatileData)
			}
			if in.InstanceIds == nil {
				in.InstanceIds = []string{k.s.InstanceID}
			}
			before := len(k.c.Commands())
			out, err := k.c.SSM().SendCommand(ctx, &in)
			wantCode(t, err, tt.code)
			if err != nil {
				if len(k.c.Commands()) != before {
					t.Error("a refused command was recorded")
				}
				return
			}
			if out.Command.Status != ssmtypes.CommandStatusPending || !commandIDPattern.MatchString(aws.ToString(out.Command.CommandId)) {
				t.Errorf("command = %+v", out.Command)
			}
		})
	}
	_, err = k.c.SSM().SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(ssmdocuments.LinuxVolatileData),
		InstanceIds: []string{unmanaged}, Parameters: volatile})
	if want := "Instances [[" + unmanaged + "]] not in a valid state for account 111122223333"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	var typed *ssmtypes.InvalidInstanceId
	if !errors.As(err, &typed) {
		t.Errorf("InvalidInstanceId is %T, want the SDK's type", err)
	}

	var cmds []CommandRecord
	for _, c := range k.c.Commands() {
		if !isSealingKeyDocument(c.DocumentName) { // made by k.send for each collection command
			cmds = append(cmds, c)
		}
	}
	if len(cmds) != 2 {
		t.Fatalf("commands = %v", cmds)
	}
	first := cmds[0]
	if first.DocumentName != ssmdocuments.LinuxVolatileData || first.DocumentVersion != "$DEFAULT" || first.ResolvedVersion != 1 ||
		first.DocumentHash != hash || first.InstanceID != k.s.InstanceID || first.Parameters["CaseId"][0] != "case-42" ||
		first.TimeoutSeconds != 3600 || first.Status != ssmtypes.CommandInvocationStatusPending {
		t.Errorf("recorded command = %+v", first)
	}
	if cmds[1].DocumentVersion != "1" {
		t.Errorf("second command asked for version %q", cmds[1].DocumentVersion)
	}
}

func describeNode(t *testing.T, c *Cloud, id string) *ssmtypes.InstanceInformation {
	t.Helper()
	out, err := c.SSM().DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range out.InstanceInformationList {
		if aws.ToString(info.InstanceId) == id {
			return &info
		}
	}
	return nil
}

func pingOf(info *ssmtypes.InstanceInformation) string {
	if info == nil {
		return "absent"
	}
	return string(info.PingStatus)
}

func TestManagedNodeFollowsProfileAndNetwork(t *testing.T) {
	ctx := context.Background()
	c, s := NewSuspect()
	agent := LinuxAgent()
	agent.NeedsProfile, agent.OnlineAfterCalls = true, 2
	c.SetAgent(s.InstanceID, agent)

	info := describeNode(t, c, s.InstanceID)
	if pingOf(info) != "Online" || info.PlatformType != ssmtypes.PlatformTypeLinux || aws.ToString(info.AgentVersion) != agent.AgentVersion ||
		info.ResourceType != ssmtypes.ResourceTypeEc2Instance || aws.ToString(info.IamRole) != "web-server" ||
		aws.ToString(info.PlatformName) != "Amazon Linux" || info.LastPingDateTime == nil {
		t.Fatalf("node = %+v", info)
	}
	if got, ok := c.Agent(s.InstanceID); !ok || got.OnlineAfterCalls != 2 || !got.NeedsProfile {
		t.Errorf("Agent() = %+v, %v", got, ok)
	}

	// Removing the profile loses the agent at once.
	if _, err := c.EC2().DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: &s.AssociationID}); err != nil {
		t.Fatal(err)
	}
	if got := pingOf(describeNode(t, c, s.InstanceID)); got != "ConnectionLost" {
		t.Errorf("without a profile: %s", got)
	}
	// A new profile: online after the warm-up of two calls.
	if _, err := c.EC2().AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: &s.InstanceID,
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("responder-forensics")}}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for range 3 {
		seen = append(seen, pingOf(describeNode(t, c, s.InstanceID)))
	}
	if strings.Join(seen, ",") != "ConnectionLost,ConnectionLost,Online" {
		t.Errorf("after associating: %v", seen)
	}
	if info := describeNode(t, c, s.InstanceID); aws.ToString(info.IamRole) != "responder-forensics" {
		t.Errorf("IAM role %q", aws.ToString(info.IamRole))
	}

	// Cutting its egress loses it at the next call.
	closed := c.AddSecurityGroup(s.VpcID, "closed", nil, nil)
	for _, eni := range s.InterfaceIDs {
		if _, err := c.EC2().ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Groups: []string{closed}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := pingOf(describeNode(t, c, s.InstanceID)); got != "ConnectionLost" {
		t.Errorf("isolated: %s", got)
	}

	// Nodes that are not managed are absent.
	plain := c.AddInstance(InstanceSpec{VpcID: s.VpcID})
	offline := c.AddInstance(InstanceSpec{VpcID: s.VpcID})
	c.SetAgent(offline, Agent{PlatformType: "Linux"})
	noProfile := c.AddInstance(InstanceSpec{VpcID: s.VpcID})
	c.SetAgent(noProfile, Agent{PlatformType: "Windows", Online: true, NeedsProfile: true})
	for _, id := range []string{plain, offline, noProfile} {
		if got := describeNode(t, c, id); got != nil {
			t.Errorf("%s is listed: %+v", id, got)
		}
	}
	// ... until an instance that needs a profile gets one (no warm-up).
	if _, err := c.EC2().AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: &noProfile,
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("ssm")}}); err != nil {
		t.Fatal(err)
	}
	if info := describeNode(t, c, noProfile); pingOf(info) != "Online" || info.PlatformType != ssmtypes.PlatformTypeWindows {
		t.Errorf("with a profile: %+v", info)
	}

	// Filters.
	all, err := c.SSM().DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		InstanceInformationFilterList: []ssmtypes.InstanceInformationFilter{{Key: ssmtypes.InstanceInformationFilterKeyPingStatus, ValueSet: []string{"Online"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.InstanceInformationList) != 1 || aws.ToString(all.InstanceInformationList[0].InstanceId) != noProfile {
		t.Errorf("online nodes = %+v", all.InstanceInformationList)
	}
	_, err = c.SSM().DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("Colour"), Values: []string{"red"}}}})
	wantCode(t, err, "InvalidFilterKey")
}

func TestCommandLifecycle(t *testing.T) {
	tests := []struct {
		name   string
		agent  func(*Agent)
		during func(k *collection, id string, poll int) // before each poll
		want   []string                                 // status (or error code) seen by each poll
		final  string                                   // StatusDetails at the end
	}{
		{name: "default", want: []string{"InProgress", "Success"}, final: "Success"},
		{name: "three polls in progress", agent: func(a *Agent) { a.PollsToFinish = 3 },
			want: []string{"InProgress", "InProgress", "InProgress", "Success"}, final: "Success"},
		{name: "invocation lag", agent: func(a *Agent) { a.InvocationLag = 2 },
			want: []string{"InvocationDoesNotExist", "InvocationDoesNotExist", "InProgress", "Success"}, final: "Success"},
		{name: "cancelled while in progress", agent: func(a *Agent) { a.Fault = FaultHang },
			during: func(k *collection, id string, poll int) {
				if poll == 2 {
					_, err := k.c.SSM().CancelCommand(k.ctx, &ssm.CancelCommandInput{CommandId: &id})
					k.must(err)
				}
			},
			want: []string{"InProgress", "InProgress", "Cancelled", "Cancelled"}, final: "Cancelled"},
		{name: "execution timeout", agent: func(a *Agent) { a.Fault = FaultHang },
			during: func(k *collection, id string, poll int) {
				if poll == 2 {
					k.clock.Advance(61 * time.Second) // ExecutionTimeout 60
				}
			},
			want: []string{"InProgress", "InProgress", "TimedOut"}, final: "ExecutionTimedOut"},
		{name: "undeliverable", during: func(k *collection, id string, poll int) {
			if poll == 0 {
				k.isolate(k.c.AddSecurityGroup(k.s.VpcID, "closed", nil, nil))
			}
			if poll == 2 {
				k.clock.Advance(600*time.Second + 60*time.Second + time.Second) // TimeoutSeconds + ExecutionTimeout
			}
		}, want: []string{"Pending", "Pending", "TimedOut"}, final: "DeliveryTimedOut"},
		{name: "cancelled while pending", during: func(k *collection, id string, poll int) {
			if poll == 0 {
				k.isolate(k.c.AddSecurityGroup(k.s.VpcID, "closed", nil, nil))
			}
			if poll == 1 {
				_, err := k.c.SSM().CancelCommand(k.ctx, &ssm.CancelCommandInput{CommandId: &id, InstanceIds: []string{k.s.InstanceID}})
				k.must(err)
			}
		}, want: []string{"Pending", "Cancelled"}, final: "Cancelled"},
		{name: "cancel after success changes nothing", during: func(k *collection, id string, poll int) {
			if poll == 2 {
				_, err := k.c.SSM().CancelCommand(k.ctx, &ssm.CancelCommandInput{CommandId: &id})
				k.must(err)
			}
		}, want: []string{"InProgress", "Success", "Success"}, final: "Success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := LinuxAgent()
			if tt.agent != nil {
				tt.agent(&agent)
			}
			k := newCollection(t, agent)
			id := k.sendTest("staging", "case-42/put.txt", nil) // ExecutionTimeout 60
			var seen []string
			var last *ssm.GetCommandInvocationOutput
			for i := range tt.want {
				if tt.during != nil {
					tt.during(k, id, i)
				}
				out, err := k.c.SSM().GetCommandInvocation(k.ctx, &ssm.GetCommandInvocationInput{CommandId: &id, InstanceId: &k.s.InstanceID})
				if err != nil {
					seen = append(seen, cloudErrorCode(err))
					continue
				}
				seen = append(seen, string(out.Status))
				last = out
			}
			if strings.Join(seen, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("polls saw %v, want %v", seen, tt.want)
			}
			if aws.ToString(last.StatusDetails) != tt.final {
				t.Errorf("status details %q, want %q", aws.ToString(last.StatusDetails), tt.final)
			}
			if aws.ToString(last.DocumentName) != "Test-Put" || aws.ToString(last.PluginName) != "put" ||
				aws.ToString(last.Comment) != "responder case-42" || aws.ToString(last.DocumentVersion) != "$DEFAULT" {
				t.Errorf("invocation = %+v", last)
			}
			rec := k.c.Commands()[0]
			if string(rec.Status) != tt.want[len(tt.want)-1] || rec.StatusDetails != tt.final {
				t.Errorf("Commands() = %v", rec)
			}
			success := tt.final == "Success"
			if (k.object("staging", "case-42/put.txt") != nil) != success {
				t.Errorf("object uploaded: %v, want %v", !success, success)
			}
			if success && (last.ResponseCode != 0 || aws.ToString(last.ExecutionEndDateTime) == "") {
				t.Errorf("finished invocation = %+v", last)
			}
			if !success && last.ResponseCode != -1 {
				t.Errorf("response code %d, want -1", last.ResponseCode)
			}
		})
	}
}

func TestGetCommandInvocationErrors(t *testing.T) {
	k := newCollection(t, LinuxAgent())
	id := k.sendTest("staging", "a", nil)
	other := k.c.AddInstance(InstanceSpec{VpcID: k.s.VpcID})
	tests := []struct {
		name                   string
		command, instance, plg string
		code                   string
	}{
		{"ok", id, k.s.InstanceID, "", ""},
		{"plugin by name", id, k.s.InstanceID, "put", ""},
		{"unknown plugin", id, k.s.InstanceID, "aws:runShellScript", "InvalidPluginName"},
		{"other instance", id, other, "", "InvocationDoesNotExist"},
		{"unknown command", "0f9d6c0b-8a4e-4f8e-9b7b-6a0d7c1e2f3a", k.s.InstanceID, "", "InvocationDoesNotExist"},
		{"malformed command", "cmd-1", k.s.InstanceID, "", "InvalidCommandId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &ssm.GetCommandInvocationInput{CommandId: aws.String(tt.command), InstanceId: aws.String(tt.instance)}
			if tt.plg != "" {
				in.PluginName = aws.String(tt.plg)
			}
			_, err := k.c.SSM().GetCommandInvocation(k.ctx, in)
			wantCode(t, err, tt.code)
		})
	}
	_, err := k.c.SSM().CancelCommand(k.ctx, &ssm.CancelCommandInput{CommandId: aws.String("0f9d6c0b-8a4e-4f8e-9b7b-6a0d7c1e2f3a")})
	wantCode(t, err, "InvalidCommandId")

	// Throttling and denial, as for the other services.
	k.c.Throttle("GetCommandInvocation", 1)
	_, err = k.c.SSM().GetCommandInvocation(k.ctx, &ssm.GetCommandInvocationInput{CommandId: &id, InstanceId: &k.s.InstanceID})
	wantCode(t, err, "ThrottlingException")
	d, _ := ssmdocuments.Lookup(ssmdocuments.LinuxVolatileData)
	params, err := d.SendCommandParameters(map[string]string{"CaseId": "c", "ArchiveUrl": k.presignPut("evidence", "a"),
		"ResultUrl": k.presignPut("evidence", "r")}, k.sealingKey())
	k.must(err)
	k.c.Deny("SendCommand")
	_, err = k.c.SSM().SendCommand(k.ctx, &ssm.SendCommandInput{DocumentName: aws.String(ssmdocuments.LinuxVolatileData),
		InstanceIds: []string{k.s.InstanceID}, Parameters: params})
	wantCode(t, err, "AccessDeniedException")
}

func cloudErrorCode(err error) string {
	var api interface{ ErrorCode() string }
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return err.Error()
}
