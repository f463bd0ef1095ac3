package step_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// commandsOf returns the commands sent to run one document.
func commandsOf(c *fakeaws.Cloud, document string) []fakeaws.CommandRecord {
	var out []fakeaws.CommandRecord
	for _, cmd := range c.Commands() {
		if cmd.DocumentName == document {
			out = append(out, cmd)
		}
	}
	return out
}

// TestMemoryCaptureAbortsWhatItOpened: a failure while the capture is being
// prepared sends no capture command (only the sealing-key command, which the
// record keeps); once the multipart upload is open, the failure aborts it
// and the record says why, or that the abort failed and the upload is left
// to the bucket's lifecycle rule.
func TestMemoryCaptureAbortsWhatItOpened(t *testing.T) {
	tests := []struct {
		name        string
		fail        map[string]string // S3 operation in the forensics account -> error code
		wantErr     string
		wantAborted string // "": no upload was opened
		wantOpen    int    // multipart uploads left open
	}{
		{name: "upload not opened", fail: map[string]string{"CreateMultipartUpload": "InternalError"},
			wantErr: "CreateMultipartUpload"},
		{name: "part URL list not staged", fail: map[string]string{"PutObject": "InternalError"},
			wantErr: "stage the part URL list", wantAborted: "the part URL list could not be staged"},
		{name: "abort fails too", fail: map[string]string{"PutObject": "InternalError", "AbortMultipartUpload": "InternalError"},
			wantErr: "stage the part URL list", wantAborted: "the part URL list could not be staged (abort failed: ", wantOpen: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, c, forensics, _ := collectEnv(t, fakeaws.Agent{Online: true, PlatformType: "Linux"})
			for op, code := range tt.fail {
				forensics.Fail(op, code, 1)
			}
			r := runPlan(t, env, "ssm-access", "memory-capture")["memory-capture"]
			if r.Status != evidence.StatusFailed || !strings.Contains(r.Error, tt.wantErr) {
				t.Fatalf("memory-capture: %s %q, want failed with %q", r.Status, r.Error, tt.wantErr)
			}
			var st struct {
				SealingKey struct {
					Status string `json:"status"`
				} `json:"sealing_key_command"`
				Upload  *evidence.Upload `json:"upload"`
				Aborted string           `json:"aborted"`
			}
			if err := json.Unmarshal(r.After, &st); err != nil {
				t.Fatal(err)
			}
			if st.SealingKey.Status != "Success" {
				t.Errorf("the sealing-key command is not in the record: %s", r.After)
			}
			if tt.wantAborted == "" {
				if st.Upload != nil || st.Aborted != "" {
					t.Errorf("upload %+v aborted %q, want none: nothing was opened", st.Upload, st.Aborted)
				}
			} else if st.Upload == nil || !strings.HasPrefix(st.Aborted, tt.wantAborted) {
				t.Errorf("upload %+v aborted %q, want the upload and %q", st.Upload, st.Aborted, tt.wantAborted)
			}
			if n := openUploads(t, forensics, "evidence"); n != tt.wantOpen {
				t.Errorf("%d multipart uploads left open, want %d", n, tt.wantOpen)
			}
			if cmds := commandsOf(c, ssmdocuments.LinuxMemoryCapture); len(cmds) != 0 {
				t.Errorf("capture commands sent although the capture could not be prepared: %+v", cmds)
			}
		})
	}
}
