package playbooks_test

import (
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/playbooks"
)

// cloud_record.window is read, and a window the Event history cannot serve
// is refused with its line of reasoning before any call.
func TestCloudRecordWindow(t *testing.T) {
	p, err := playbooks.Parse([]byte(minimal+"cloud_record:\n  window: 72h\n"), "mine.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.CloudRecord.WindowOrDefault(); got != 72*time.Hour {
		t.Errorf("window %s, want 72h", got)
	}
	def, err := playbooks.Load(playbooks.Default)
	if err != nil {
		t.Fatal(err)
	}
	if got := def.CloudRecord.WindowOrDefault(); got != 24*time.Hour {
		t.Errorf("default window %s, want 24h", got)
	}
	for _, bad := range []string{"2200h", "10s", "soon"} {
		_, err := playbooks.Parse([]byte(minimal+"cloud_record:\n  window: "+bad+"\n"), "mine.yaml")
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("window %s: error %v, want one naming the value", bad, err)
		}
	}
}
