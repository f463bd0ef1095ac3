package report

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	steps "github.com/responder-ir/responder/responder/step"
)

// User data statuses.
const (
	UserDataShown        = "shown"
	UserDataEmpty        = "empty"
	UserDataNotText      = "not-text"
	UserDataNotCollected = "not-collected"
)

// UserData is the instance's user data as the metadata step read it,
// decoded, and the lines that fetch and run remote code.
type UserData struct {
	Status string  `json:"status"`
	Source *Source `json:"source,omitempty"`
	// Text is the decoded user data (gunzipped when it was gzip).
	Text       string       `json:"text,omitempty"`
	Bytes      int          `json:"bytes"`
	RemoteCode []RemoteCode `json:"remote_code"`
	Detail     string       `json:"detail"`
}

// RemoteCode is a line that fetches code from elsewhere and runs it.
type RemoteCode struct {
	Line int    `json:"line"`
	Text string `json:"text"`
	Why  string `json:"why"`
}

// maxUserData bounds gunzipped user data (EC2 allows 16 KB before
// encoding; a gzip bomb must not fill the report).
const maxUserData = 1 << 20

func buildUserData(meta *steps.InstanceMetadata, src *Source) UserData {
	u := UserData{Status: UserDataNotCollected, RemoteCode: []RemoteCode{},
		Detail: "the case holds no verified metadata artifact (step metadata), which holds the user data"}
	if meta == nil {
		return u
	}
	u.Source = src
	if e, failed := meta.Errors["user_data"]; failed {
		u.Detail = "the metadata step could not read the user data: " + e
		return u
	}
	raw, err := base64.StdEncoding.DecodeString(meta.UserDataBase64)
	if err != nil {
		u.Status, u.Detail = UserDataNotText, fmt.Sprintf("the recorded user data is not base64: %v", err)
		return u
	}
	if len(raw) == 0 {
		u.Status, u.Detail = UserDataEmpty, "the instance has no user data"
		return u
	}
	how := "base64-decoded"
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			raw, err = io.ReadAll(io.LimitReader(zr, maxUserData))
		}
		if err != nil {
			u.Status, u.Detail = UserDataNotText, fmt.Sprintf("the user data is gzip that does not decompress: %v", err)
			return u
		}
		how = "base64-decoded and gunzipped"
	}
	u.Bytes = len(raw)
	if !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
		u.Status, u.Detail = UserDataNotText, fmt.Sprintf("the user data (%d bytes, %s) is not text; see the metadata artifact", len(raw), how)
		return u
	}
	u.Status, u.Text, u.RemoteCode = UserDataShown, string(raw), RemoteCodeLines(string(raw))
	u.Detail = fmt.Sprintf("%d bytes, %s", len(raw), how)
	if len(u.RemoteCode) > 0 {
		u.Detail += fmt.Sprintf("; %d line(s) fetch and run remote code", len(u.RemoteCode))
	}
	return u
}

// remoteCodePattern is one way a script fetches code and runs it.
type remoteCodePattern struct {
	re  *regexp.Regexp
	why string
}

const (
	fetcher     = `(?:curl|wget|fetch|aws\s+s3\s+cp)`
	interpreter = `(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+)?(?:/usr(?:/local)?/bin/|/bin/)?(?:(?:ba|z|da|k|c|tc)?sh|python[0-9.]*|perl|ruby|php|node|source)`
)

var remoteCodePatterns = []remoteCodePattern{
	{regexp.MustCompile(`\b` + fetcher + `\b[^|;&\n]*\|\s*` + interpreter + `\b`), "pipes a download into an interpreter"},
	{regexp.MustCompile(`(?:\b(?:(?:ba|z|da|k)?sh|eval|source|python[0-9.]*)\b|(?:^|[;&|]\s*)\.)[^\n]*(?:<\(|\$\(|` + "`" + `)\s*` + fetcher + `\b`),
		"runs the output of a download (process or command substitution)"},
	{regexp.MustCompile(`(?i)\b(?:iex|invoke-expression)\b[^\n]*(?:downloadstring|downloadfile|invoke-webrequest|invoke-restmethod|\biwr\b|\birm\b|net\.webclient)`),
		"PowerShell runs downloaded text (Invoke-Expression)"},
	{regexp.MustCompile(`(?i)(?:downloadstring|invoke-webrequest|invoke-restmethod|\biwr\b|\birm\b)[^\n]*\|\s*(?:iex|invoke-expression)\b`),
		"PowerShell pipes a download into Invoke-Expression"},
}

// includeDirective: cloud-init's #include (and #include-once) user data
// is a list of URLs whose content cloud-init fetches and runs as user data.
var includeDirective = regexp.MustCompile(`^#include(?:-once)?\s*$`)

// downloadTo finds a download into a file; runFile, given the file, a
// later line that makes it executable or runs it.
var downloadTo = regexp.MustCompile(`\b(?:curl\b[^\n]*\s(?:-o|--output)\s*|wget\b[^\n]*\s(?:-O|--output-document)\s*|aws\s+s3\s+cp\s+\S+\s+)(['"]?)([^\s'";|&]+)`)

// RemoteCodeLines finds the lines of a script that fetch code from
// elsewhere and run it: a download piped or substituted into a shell or
// interpreter, PowerShell's Invoke-Expression of a download, a file
// downloaded then made executable or run, and cloud-init's #include.
// Line numbers start at 1.
func RemoteCodeLines(script string) []RemoteCode {
	out := []RemoteCode{}
	lines := strings.Split(strings.ReplaceAll(script, "\r\n", "\n"), "\n")
	downloaded := map[string]int{} // file -> line it was downloaded on
	for i, l := range lines {
		text := strings.TrimSpace(l)
		if i == 0 && includeDirective.MatchString(text) {
			out = append(out, RemoteCode{Line: 1, Text: text, Why: "cloud-init #include: fetches the user data from the URLs listed and runs it"})
			continue
		}
		if strings.HasPrefix(text, "#") {
			continue
		}
		found := ""
		for _, p := range remoteCodePatterns {
			if p.re.MatchString(text) {
				found = p.why
				break
			}
		}
		if found == "" {
			found = runsDownloaded(text, downloaded)
		}
		if found != "" {
			out = append(out, RemoteCode{Line: i + 1, Text: text, Why: found})
		}
		for _, m := range downloadTo.FindAllStringSubmatch(text, -1) {
			if f := m[2]; f != "-" && !strings.HasPrefix(f, "/dev/") {
				downloaded[f] = i + 1
			}
		}
	}
	return out
}

// runsDownloaded says whether a line makes executable or runs a file an
// earlier line downloaded.
func runsDownloaded(line string, downloaded map[string]int) string {
	files := make([]string, 0, len(downloaded))
	for f := range downloaded {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		at := downloaded[f]
		q := regexp.QuoteMeta(f)
		run := regexp.MustCompile(`(?:^|[;&|]\s*|\b(?:(?:ba|z|da|k)?sh|python[0-9.]*|perl|ruby|source|exec|nohup)\s+|\bchmod\s+\S*\+?x\S*\s+|\bchmod\s+[0-7]*[157][0-7]*\s+)['"]?` + q + `(?:['"\s;&|]|$)`)
		if run.MatchString(line) {
			return fmt.Sprintf("runs or makes executable %s, downloaded on line %d", f, at)
		}
	}
	return ""
}
