//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/responder-ir/responder/internal/testenv"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// chromiumTimeout bounds each Chromium run.
const chromiumTimeout = 60 * time.Second

// findChromium returns the Chromium binary. In CI a missing Chromium fails
// the test (testenv): the HTML report must be checked there.
func findChromium(t *testing.T) string {
	t.Helper()
	return testenv.LookPath(t, "install the Debian package chromium (.ci/run does)", "chromium", "chromium-browser")
}

// runChromium runs headless Chromium on a local file with no network use
// beyond the file, bounded in time; the whole process group is killed on
// timeout.
func runChromium(t *testing.T, bin, profile string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("chromium %v did not finish within %s; stderr:\n%s", args, chromiumTimeout, stderr.String())
	}
	if err != nil {
		t.Fatalf("chromium %v: %v; stderr:\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

var (
	imgTag        = regexp.MustCompile(`<img\b[^>]*>`)
	srcAttr       = regexp.MustCompile(`\bsrc="([^"]*)"`)
	evidenceTable = regexp.MustCompile(`(?s)<table id="evidence-table">.*?</table>`)
)

// TestReportHTMLInChromium renders the HTML report of a real (fake-cloud)
// case in headless Chromium: the page loads and shows the case ID, the
// evidence table with every SHA-256, and the console screenshot, whose
// embedded bytes are those in the evidence store. Set
// RESPONDER_REPORT_KEEP=DIR to keep the HTML and the PNG for a look.
func TestReportHTMLInChromium(t *testing.T) {
	bin := findChromium(t)
	c, s := fakeaws.NewSuspect()
	topic := c.AddTopic("responder")
	dir := respondCase(t, c, s, "case-chromium", "--topic-arn", topic)
	work := t.TempDir()
	page := filepath.Join(work, "report.html")
	code, _, errOut := runCLI(t, c, "report", "--case-id", "case-chromium", "--evidence-dir", dir, "--format", "html", "--out", page)
	if code != exitOK {
		t.Fatalf("report: exit %d: %s", code, errOut)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	assertSelfContained(t, html)

	dom := string(runChromium(t, bin, filepath.Join(work, "profile-dom"), "--dump-dom", "file://"+page))
	if !strings.Contains(dom, "</html>") {
		t.Fatalf("chromium did not load the page; DOM:\n%.500s", dom)
	}
	if !strings.Contains(dom, "case-chromium") {
		t.Error("the rendered page does not show the case ID")
	}
	m := readManifest(t, dir, "case-chromium")
	// Paths and hashes carry <wbr> break points at their separators.
	table := strings.ReplaceAll(evidenceTable.FindString(dom), "<wbr>", "")
	if table == "" {
		t.Fatal("the rendered page has no evidence table")
	}
	for _, a := range m.Artifacts {
		if !strings.Contains(table, a.SHA256) || !strings.Contains(table, a.Path) {
			t.Errorf("the evidence table lacks %s (SHA-256 %s)", a.Path, a.SHA256)
		}
	}
	want, err := os.ReadFile(filepath.Join(dir, "case-chromium", s.InstanceID, "console-screenshot.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	imgs := imgTag.FindAllString(dom, -1)
	if len(imgs) != 1 {
		t.Fatalf("the rendered page has %d <img>, want the console screenshot", len(imgs))
	}
	src := srcAttr.FindStringSubmatch(imgs[0])
	const prefix = "data:image/jpeg;base64,"
	if src == nil || !strings.HasPrefix(src[1], prefix) {
		t.Fatalf("the screenshot is not a JPEG data URI: %.80s", imgs[0])
	}
	got, err := base64.StdEncoding.DecodeString(src[1][len(prefix):])
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the embedded screenshot (%d bytes, %v) is not the stored one (%d bytes)", len(got), err, len(want))
	}

	shot := filepath.Join(work, "report.png")
	runChromium(t, bin, filepath.Join(work, "profile-shot"), "--screenshot="+shot, "--window-size=1200,2000", "--hide-scrollbars", "file://"+page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 2000 {
		t.Fatalf("screenshot is %dx%d, want 1200x2000", b.Dx(), b.Dy())
	}
	// A blank or failed page renders in one or two colours; the report has
	// text, coloured banners, tables and the screenshot.
	colours := map[uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 4 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 4 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[(r>>8)<<16|(g>>8)<<8|b>>8] = true
		}
	}
	if len(colours) < 50 {
		t.Fatalf("the rendered page has only %d colours: it looks empty", len(colours))
	}
	if keep := os.Getenv("RESPONDER_REPORT_KEEP"); keep != "" {
		for _, p := range []string{page, shot} {
			b, err := os.ReadFile(p)
			if err == nil {
				err = os.WriteFile(filepath.Join(keep, filepath.Base(p)), b, 0o644)
			}
			if err != nil {
				t.Errorf("keep %s: %v", p, err)
			}
		}
	}
}

var externalRef = regexp.MustCompile(`(?i)\b(src|href|action|srcset|poster)\s*=\s*"([^"]*)"|url\(|@import|<script|<link|<iframe|<object|<embed`)

// assertSelfContained checks that the page loads nothing from anywhere:
// every reference is a fragment (#...) or a data: URI.
func assertSelfContained(t *testing.T, html []byte) {
	t.Helper()
	for _, m := range externalRef.FindAllSubmatch(html, -1) {
		if len(m[2]) > 0 && (bytes.HasPrefix(m[2], []byte("#")) || bytes.HasPrefix(m[2], []byte("data:image/jpeg;base64,"))) {
			continue
		}
		t.Errorf("the HTML report refers outside itself: %.100s", m[0])
	}
}
