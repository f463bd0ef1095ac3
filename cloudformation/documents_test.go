package cloudformation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// documentsTemplate creates the toolkit's SSM documents in a workload
// account and Region; it is generated from ssm-documents/documents/.
const documentsTemplate = "member-documents.yaml"

// The documents the stack creates are exactly the toolkit's: one
// AWS::SSM::Document per document of ssm-documents, named as the engine
// runs it, a Command document in JSON whose Content is the committed file's
// JSON value, updated in place (UpdateMethod NewVersion: the name stays,
// a new version becomes the default), and nothing else. After a change to a
// document, regenerate the template:
//
//	go test ./cloudformation/ -run TestMemberDocuments -update
func TestMemberDocuments(t *testing.T) {
	if *update {
		text, err := renderDocumentsTemplate()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(documentsTemplate, text, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := load(t, documentsTemplate)
	byName := map[string]Resource{}
	for _, r := range tmpl.ResourcesOfType("AWS::SSM::Document") {
		name := str(r.Properties["Name"])
		if _, dup := byName[name]; dup {
			t.Errorf("two resources create document %s", name)
		}
		byName[name] = r
	}
	for _, d := range ssmdocuments.Documents() {
		r, ok := byName[d.Name]
		if !ok {
			t.Errorf("%s creates no document %s: run go test ./cloudformation/ -run TestMemberDocuments -update", documentsTemplate, d.Name)
			continue
		}
		delete(byName, d.Name)
		for prop, want := range map[string]string{"DocumentType": "Command", "DocumentFormat": "JSON", "UpdateMethod": "NewVersion"} {
			if got := str(r.Properties[prop]); got != want {
				t.Errorf("%s: %s is %q, want %q", r.ID, prop, got, want)
			}
		}
		file, err := os.ReadFile("../ssm-documents/" + d.FileName())
		if err != nil {
			t.Fatal(err)
		}
		if !sameDocument(r.Properties["Content"], file) {
			t.Errorf("%s: Content is not %s: run go test ./cloudformation/ -run TestMemberDocuments -update", r.ID, d.FileName())
		}
	}
	for name, r := range byName {
		t.Errorf("%s creates document %s, which is not the toolkit's", r.ID, name)
	}
	if len(tmpl.ResourcesOfType("AWS::SSM::Document")) != len(tmpl.Resources) {
		t.Errorf("%s holds more than the documents: keep IAM in %s (one Region), documents here (every Region)", documentsTemplate, memberTemplate)
	}
}

// sameDocument reports whether a template's Content (parsed YAML) is the
// JSON value of a document file.
func sameDocument(content any, file []byte) bool {
	embedded, err := json.Marshal(content)
	if err != nil {
		return false
	}
	var a, b any
	if json.Unmarshal(embedded, &a) != nil || json.Unmarshal(file, &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// renderDocumentsTemplate writes member-documents.yaml: a header and one
// resource per document, its Content the committed file's JSON, indented
// under the key (JSON is YAML). Content as an object, not a string:
// cfn-lint validates it against the SSM document schema (it cannot parse a
// string Content in a YAML template), and the engine compares the JSON
// value SSM returns, whatever CloudFormation's spacing.
func renderDocumentsTemplate() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(documentsHeader)
	for _, d := range ssmdocuments.Documents() {
		file, err := os.ReadFile("../ssm-documents/" + d.FileName())
		if err != nil {
			return nil, err
		}
		if bytes.ContainsRune(file, '\t') || !bytes.HasSuffix(file, []byte("}\n")) {
			return nil, fmt.Errorf("%s cannot be embedded as a YAML literal block as it is", d.FileName())
		}
		fmt.Fprintf(&b, "\n  %sDocument:\n    Type: AWS::SSM::Document\n    Properties:\n", strings.TrimPrefix(d.Name, "Responder-"))
		fmt.Fprintf(&b, "      Name: %s\n      DocumentType: Command\n      DocumentFormat: JSON\n      UpdateMethod: NewVersion\n", d.Name)
		fmt.Fprintf(&b, "      # ssm-documents/%s\n      Content:\n", d.FileName())
		for _, line := range strings.SplitAfter(strings.TrimSuffix(string(file), "\n"), "\n") {
			b.WriteString("        " + line)
		}
		b.WriteString("\n")
	}
	return b.Bytes(), nil
}

const documentsHeader = `AWSTemplateFormatVersion: "2010-09-09"
Description: >-
  responder member documents stack: the Responder-* SSM Command documents that
  collect OS-level evidence (memory, volatile data) and the sealing-key
  documents that keep their URLs out of the command history. Deploy it to
  every workload account, in EVERY Region where you respond (SSM documents
  are regional; the roles of member-account.yaml are global). The responder
  reads these documents and runs them; it can neither create nor change one.

# GENERATED from ssm-documents/documents/*.json: do not edit. After a change
# to a document, run
#   go test ./cloudformation/ -run TestMemberDocuments -update
# Over 51,200 bytes: deploy it from S3 (--template-url), see
# cloudformation/README.md.

Resources:`
