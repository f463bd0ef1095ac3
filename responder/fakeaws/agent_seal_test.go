package fakeaws

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// The sealing-key documents, through SSM as the engine runs them: the
// agent makes a key (whatever its fault: faults are the collection's) and
// prints its public half in the platform's form; a collection sealed to it
// runs, and the key is gone after that one use. No recorded parameter
// holds a presigned URL.
func TestAgentSealingKeyDocuments(t *testing.T) {
	for _, agent := range []Agent{LinuxAgent(), WindowsAgent()} {
		t.Run(agent.PlatformType, func(t *testing.T) {
			agent.Fault = FaultHang // a collection fault: the key is made whatever it is
			k := newCollection(t, agent)
			key := k.sealingKeyByDocument(agent.PlatformType)
			k.c.SetAgent(k.s.InstanceID, func() Agent { a := agent; a.Fault = ""; return a }())

			doc := ssmdocuments.LinuxVolatileData
			if agent.PlatformType == "Windows" {
				doc = ssmdocuments.WindowsVolatileData
			}
			d, _ := ssmdocuments.Lookup(doc)
			params, err := d.SendCommandParameters(map[string]string{"CaseId": "case-42",
				"ArchiveUrl": k.presignPut("evidence", "case-42/volatile"), "ResultUrl": k.presignPut("evidence", "case-42/report.json")}, key)
			k.must(err)
			for attempt, want := range []ssmtypes.CommandInvocationStatus{"Success", "Failed"} {
				out, err := k.c.SSM().SendCommand(k.ctx, &ssm.SendCommandInput{DocumentName: aws.String(doc),
					InstanceIds: []string{k.s.InstanceID}, Parameters: params})
				k.must(err)
				inv := k.poll(aws.ToString(out.Command.CommandId))
				if inv.Status != want {
					t.Fatalf("attempt %d: %s, want %s; stdout %s", attempt+1, inv.Status, want, aws.ToString(inv.StandardOutputContent))
				}
				if want == "Failed" && !strings.Contains(aws.ToString(inv.StandardOutputContent), "is not on this instance") {
					t.Errorf("the second use of the key: %s", aws.ToString(inv.StandardOutputContent))
				}
			}
			if k.object("evidence", "case-42/volatile") == nil {
				t.Error("the archive did not arrive")
			}
			for _, c := range k.c.Commands() {
				for name, values := range c.Parameters {
					if strings.Contains(strings.Join(values, ","), "X-Amz-Signature") {
						t.Errorf("%s: parameter %s holds a presigned URL", c.DocumentName, name)
					}
				}
			}
		})
	}
}

// sealingKeyByDocument runs the platform's sealing-key document and reads
// the key it made.
func (k *collection) sealingKeyByDocument(platform string) *ssmdocuments.SealingKey {
	k.t.Helper()
	name, err := ssmdocuments.SealingKeyDocument(platform)
	k.must(err)
	id, err := ssmdocuments.NewSealingKeyID()
	k.must(err)
	out := k.run(name, map[string]string{ssmdocuments.ParamSealingKeyID: id})
	if out.Status != ssmtypes.CommandInvocationStatusSuccess {
		k.t.Fatalf("%s: %s: %s", name, out.Status, aws.ToString(out.StandardOutputContent))
	}
	key, err := ssmdocuments.ParseSealingKey([]byte(aws.ToString(out.StandardOutputContent)), id)
	k.must(err)
	return &key
}

// GetDocument answers the content of the version asked for, in JSON.
func TestGetDocument(t *testing.T) {
	c := New()
	c.DeployMemberDocuments()
	name := ssmdocuments.LinuxVolatileData
	d, _ := ssmdocuments.Lookup(name)
	want, _ := d.Content()
	v2 := c.PutDocumentVersion(name, strings.Replace(string(want), "Responder: collect", "Changed: collect", 1), false)
	for version, content := range map[string]string{"": string(want), "1": string(want), "$LATEST": "Changed: collect", v2: "Changed: collect"} {
		out, err := c.SSM().GetDocument(t.Context(), &ssm.GetDocumentInput{Name: aws.String(name), DocumentVersion: aws.String(version)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(aws.ToString(out.Content), content) || out.DocumentType != ssmtypes.DocumentTypeCommand || out.Status != ssmtypes.DocumentStatusActive {
			t.Errorf("version %q: %+v", version, out)
		}
	}
	_, err := c.SSM().GetDocument(t.Context(), &ssm.GetDocumentInput{Name: aws.String("Responder-Nope")})
	wantCode(t, err, "InvalidDocument")
	_, err = c.SSM().GetDocument(t.Context(), &ssm.GetDocumentInput{Name: aws.String(name), DocumentVersion: aws.String("9")})
	wantCode(t, err, "InvalidDocumentVersion")
}
