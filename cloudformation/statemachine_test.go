package cloudformation

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// stateMachineFile is the state machine definition the Lambda work owns and
// tests (lambda/statemachine_test.go); forensics-account.yaml embeds a copy.
const stateMachineFile = "../lambda/statemachine.asl.json"

// The copy sits between these lines of the template, indented like them.
const (
	definitionBegin = "# BEGIN lambda/statemachine.asl.json"
	definitionEnd   = "# END lambda/statemachine.asl.json"
)

var update = flag.Bool("update", false, "rewrite what the templates embed: the state machine definition in "+forensicsTemplate+" (from "+stateMachineFile+"), the documents of "+documentsTemplate+" (from ssm-documents/documents)")

// The state machine the stack deploys is lambda/statemachine.asl.json, once
// CloudFormation has applied DefinitionSubstitutions: the embedded copy
// equals the file, and every ${placeholder} of the file has a substitution
// (ResponderFunctionArn: the stack's function). After a change to the file:
//
//	go test ./cloudformation/ -run TestStateMachineDefinition -update
func TestStateMachineDefinition(t *testing.T) {
	file, err := os.ReadFile(stateMachineFile)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := embedDefinition(forensicsTemplate, file); err != nil {
			t.Fatal(err)
		}
	}
	sm, ok := load(t, forensicsTemplate).Resources["ResponseStateMachine"]
	if !ok || sm.Type != "AWS::StepFunctions::StateMachine" {
		t.Fatal("no AWS::StepFunctions::StateMachine ResponseStateMachine")
	}
	if sm.Properties["DefinitionString"] != nil || sm.Properties["DefinitionS3Location"] != nil {
		t.Error("ResponseStateMachine: the definition must be the embedded Definition only")
	}

	subs, _ := sm.Properties["DefinitionSubstitutions"].(map[string]any)
	if ga, _ := get(subs, "ResponderFunctionArn", "Fn::GetAtt").([]any); !reflect.DeepEqual(ga, []any{"ResponderFunction", "Arn"}) {
		t.Errorf("DefinitionSubstitutions.ResponderFunctionArn = %v, want !GetAtt ResponderFunction.Arn", subs["ResponderFunctionArn"])
	}
	var placeholders []string
	for _, m := range regexp.MustCompile(`\$\{([^}]*)\}`).FindAllSubmatch(file, -1) {
		if name := string(m[1]); !contains(placeholders, name) {
			placeholders = append(placeholders, name)
		}
	}
	var substituted []string
	for name := range subs {
		substituted = append(substituted, name)
	}
	sort.Strings(placeholders)
	sort.Strings(substituted)
	if !reflect.DeepEqual(placeholders, substituted) {
		t.Errorf("%s has placeholders %v, DefinitionSubstitutions has %v: they must match", stateMachineFile, placeholders, substituted)
	}

	// Both sides after substitution, with one stand-in value per name.
	deployed := func(def []byte) any {
		for _, name := range substituted {
			def = bytes.ReplaceAll(def, []byte("${"+name+"}"), []byte("arn:aws:lambda:eu-west-3:111122223333:function:stand-in-"+name))
		}
		var v any
		if err := json.Unmarshal(def, &v); err != nil {
			t.Fatalf("definition after substitution: %v", err)
		}
		return v
	}
	embedded, err := json.Marshal(sm.Properties["Definition"]) // YAML numbers and all, as JSON
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(deployed(embedded), deployed(file)) {
		t.Errorf("the definition embedded in %s differs from %s: run\n\tgo test ./cloudformation/ -run TestStateMachineDefinition -update",
			forensicsTemplate, stateMachineFile)
	}
}

// embedDefinition replaces the lines between definitionBegin and
// definitionEnd of the template with the JSON definition, indented like the
// marker lines.
func embedDefinition(path string, definition []byte) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	begin, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case definitionBegin:
			begin = i
		case definitionEnd:
			end = i
		}
	}
	if begin < 0 || end < begin {
		return fmt.Errorf("%s: no %q ... %q lines", path, definitionBegin, definitionEnd)
	}
	indent := lines[begin][:len(lines[begin])-len(strings.TrimLeft(lines[begin], " "))]
	var block []string
	for _, l := range strings.Split(strings.TrimRight(string(definition), "\n"), "\n") {
		if strings.TrimSpace(l) == "" {
			block = append(block, "")
			continue
		}
		block = append(block, indent+l)
	}
	out := append(append(append([]string{}, lines[:begin+1]...), block...), lines[end:]...)
	return os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644)
}
