package ssmdocuments

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// The analysis documents' patterns admit exactly what the investigation
// sends: working volumes at the device names it attaches them as (never the
// root device), a mount root under /mnt, a key under cases/.
func TestAnalysisPatternBounds(t *testing.T) {
	tests := []struct {
		pattern string
		ok      []string
		bad     []string
	}{
		{PatternVolumes,
			[]string{"vol-01234567:/dev/sdf", "vol-0123456789abcdef0:/dev/xvdp", "vol-01234567:/dev/loop7",
				strings.TrimSuffix(strings.Repeat("vol-01234567:/dev/sdf,", 16), ",")},
			[]string{"", "vol-01234567:/dev/sda", "vol-01234567:/dev/xvda", "vol-01234567:/dev/sdq", "vol-0123:/dev/sdf",
				"vol-01234567:/dev/sdf,", "vol-01234567:/dev/sdf vol-89abcdef:/dev/sdg", "vol-01234567:/dev/../sdf",
				"vol-01234567:/etc/passwd", strings.TrimSuffix(strings.Repeat("vol-01234567:/dev/sdf,", 17), ",")}},
		{PatternMountRoot, []string{"/mnt/evidence", "/mnt/a-1"}, []string{"/", "/mnt", "/mnt/", "/etc", "/mnt/../etc", "/mnt/a/b"}},
		{PatternCaseKey, []string{"cases/c1/i-1/memory/run-001/memory-image"},
			[]string{"cases/c1", "other/c1/x", "/cases/c1/x", "cases/c1/a b", "cases/-x/y"}},
		{PatternDest, []string{"/analysis/memory"}, []string{"/analysis", "/tmp/x", "/analysis/../etc"}},
		{PatternPlugins, []string{DefaultLinuxPlugins, "banners.Banners", "windows.netscan.NetScan", "linux.malware.malfind.Malfind"},
			[]string{"", "pslist", "linux.pslist;id", "linux.pslist,", "linux.pslist --help", "-f", "Linux.pslist",
				"linux.pslist.PsList,-o/tmp", strings.TrimSuffix(strings.Repeat("linux.bash.Bash,", 17), ",")}},
		{PatternSymbolDirs, []string{"none", DefaultSymbolDirs, "/srv/isf"}, []string{"", "symbols", "/a b", "/a;b", "/$(x)", "http://x/isf"}},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.pattern)
		for _, v := range tt.ok {
			if !re.MatchString(v) {
				t.Errorf("%s rejects %q", tt.pattern, v)
			}
		}
		for _, v := range tt.bad {
			if re.MatchString(v) {
				t.Errorf("%s accepts %q", tt.pattern, v)
			}
		}
	}
}

// The mount document refuses an injected volume list before it runs: the
// parameters are checked as SendCommand checks them, and the value is not
// echoed in the error.
func TestAnalysisMountParametersRefuseInjection(t *testing.T) {
	doc, ok := Lookup(AnalysisMount)
	if !ok {
		t.Fatal("no mount document")
	}
	for _, bad := range []string{"vol-01234567:/dev/sdf;reboot", "vol-01234567:/dev/sdf$(reboot)", "vol-01234567:/dev/sdf'", "vol-01234567:/dev/sda"} {
		_, err := doc.SendCommandParameters(map[string]string{"CaseId": "c1", "Volumes": bad}, nil)
		if !errors.Is(err, ErrInvalidParameters) || !strings.Contains(err.Error(), "Volumes") {
			t.Errorf("Volumes %q: err = %v, want ErrInvalidParameters naming Volumes", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "reboot") {
			t.Errorf("error echoes the value: %v", err)
		}
	}
	got, err := doc.SendCommandParameters(map[string]string{"CaseId": "c1", "Volumes": "vol-01234567:/dev/sdf"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got["MountRoot"][0] != "/mnt/evidence" || got["HashDevices"][0] != "false" {
		t.Errorf("defaults not filled: %v", got)
	}
}
