package step_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// The engine never writes an SSM document: it runs the member documents
// stack's, and only a version whose content is the toolkit's. A document
// that is missing, or whose every candidate version (default, latest) holds
// other content, refuses the collection, says to deploy the stack, and
// sends no command; a default version with other content under a latest
// that is the toolkit's runs the latest, by number.
func TestCollectionRunsOnlyTheToolkitsDocuments(t *testing.T) {
	toolkit := func(name string) string {
		d, _ := ssmdocuments.Lookup(name)
		b, _ := d.Content()
		return string(b)
	}
	tampered := func(name string) string {
		return strings.Replace(toolkit(name), `"mainSteps"`, `"description2": "x", "mainSteps"`, 1)
	}
	tests := []struct {
		name        string
		documents   func(c *fakeaws.Cloud)
		wantErr     string // "" when the collection runs
		wantVersion string
	}{
		{name: "not deployed", documents: func(c *fakeaws.Cloud) {},
			wantErr: "Responder-LinuxVolatileData does not exist: deploy or update the member documents stack"},
		{name: "other content", documents: func(c *fakeaws.Cloud) {
			c.PutDocumentVersion(ssmdocuments.LinuxVolatileData, tampered(ssmdocuments.LinuxVolatileData), true)
			c.PutDocumentVersion(ssmdocuments.LinuxSealingKey, toolkit(ssmdocuments.LinuxSealingKey), true)
		}, wantErr: "version 1 holds other content than the toolkit's; deploy or update the member documents stack"},
		{name: "sealing-key document missing", documents: func(c *fakeaws.Cloud) {
			c.PutDocumentVersion(ssmdocuments.LinuxVolatileData, toolkit(ssmdocuments.LinuxVolatileData), true)
		}, wantErr: "Responder-LinuxSealingKey does not exist"},
		{name: "tampered default, toolkit's latest", documents: func(c *fakeaws.Cloud) {
			c.DeployMemberDocuments()
			c.PutDocumentVersion(ssmdocuments.LinuxVolatileData, tampered(ssmdocuments.LinuxVolatileData), true) // version 2, the default
			c.PutDocumentVersion(ssmdocuments.LinuxVolatileData, toolkit(ssmdocuments.LinuxVolatileData), false) // version 3, the latest
		}, wantVersion: "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, c, _, _ := collectEnvWithout(t, fakeaws.LinuxAgent())
			tt.documents(c)
			r := runPlan(t, env, "ssm-access", "volatile-data")["volatile-data"]
			if tt.wantErr != "" {
				if r.Status != evidence.StatusFailed || !strings.Contains(r.Error, tt.wantErr) {
					t.Fatalf("volatile-data: %s %q, want failed with %q", r.Status, r.Error, tt.wantErr)
				}
				if cmds := commandsOf(c, ssmdocuments.LinuxVolatileData); len(cmds) != 0 {
					t.Errorf("the collection was sent: %+v", cmds)
				}
				return
			}
			if r.Status != evidence.StatusOK {
				t.Fatalf("volatile-data: %s %s", r.Status, r.Error)
			}
			cmds := commandsOf(c, ssmdocuments.LinuxVolatileData)
			if len(cmds) != 1 || cmds[0].DocumentVersion != tt.wantVersion || cmds[0].ResolvedVersion != 3 {
				t.Fatalf("commands %+v, want version %s run by number", cmds, tt.wantVersion)
			}
			var st struct {
				Command struct {
					DocumentVersion string `json:"document_version"`
				} `json:"command"`
			}
			if err := json.Unmarshal(r.After, &st); err != nil || st.Command.DocumentVersion != tt.wantVersion {
				t.Errorf("recorded version %q (%v), want %s", st.Command.DocumentVersion, err, tt.wantVersion)
			}
		})
	}
}

// No command parameter the fake SSM records (what ssm:ListCommands shows in
// the account) carries a presigned URL, for either platform and either
// collection: the URLs travel sealed to a key the instance made, and the
// collection still completes.
func TestNoPresignedURLInCommandParameters(t *testing.T) {
	for _, agent := range []fakeaws.Agent{fakeaws.LinuxAgent(), fakeaws.WindowsAgent()} {
		t.Run(agent.PlatformType, func(t *testing.T) {
			env, c, _, _ := collectEnv(t, agent)
			if agent.PlatformType == "Windows" {
				env.Collection.Memory.Tools = map[string]step.StagedTool{"winpmem-x64": env.Collection.Memory.Tools["avml-x86_64"]}
			}
			recs := runPlan(t, env, "ssm-access", "volatile-data", "memory-capture")
			for _, name := range []string{"volatile-data", "memory-capture"} {
				if r := recs[name]; r.Status != evidence.StatusOK {
					t.Errorf("%s: %s %s", name, r.Status, r.Error)
				}
			}
			cmds := c.Commands()
			if len(cmds) != 4 {
				t.Errorf("%d commands, want a sealing-key command and a collection, twice", len(cmds))
			}
			for _, cmd := range cmds {
				for name, values := range cmd.Parameters {
					for _, v := range values {
						if strings.Contains(v, "X-Amz-Signature") || strings.Contains(v, "https://") {
							t.Errorf("%s: parameter %s holds a URL", cmd.DocumentName, name)
						}
					}
				}
			}
		})
	}
}
