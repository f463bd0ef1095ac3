//go:build unix

package main

import (
	"encoding/json"
	"html"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/fakeaws"
)

// Widths the report is laid out at: a desktop browser window, and A4
// portrait as Chromium prints it (210 mm at 96 px/inch is 794 px, less its
// default margins of 0.4 inch a side: 718 px).
const (
	screenWidth = 1280
	printWidth  = 718
)

// layoutProbe is appended, in a test copy only (the report itself carries
// no script), to measure the laid-out page: every element's box against
// the viewport, and the timeline charts.
const layoutProbe = `<script>
(function () {
  var vw = document.documentElement.clientWidth, wide = [];
  var all = document.body.getElementsByTagName("*");
  for (var i = 0; i < all.length; i++) {
    var e = all[i], r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) {
      var cls = typeof e.className === "string" && e.className ? "." + e.className : "";
      wide.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + cls + " " + Math.round(r.left) + ".." + Math.round(r.right));
    }
  }
  var out = {viewport: vw, scroll_width: document.documentElement.scrollWidth, wide: wide,
    charts: document.querySelectorAll("svg.chart").length,
    bars: document.querySelectorAll("svg.chart g.bar").length,
    isolation: document.querySelectorAll("svg.chart line.isolation").length};
  var pre = document.createElement("pre");
  pre.id = "layout-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`

type layoutResult struct {
	Viewport    int      `json:"viewport"`
	ScrollWidth int      `json:"scroll_width"`
	Wide        []string `json:"wide"`
	Charts      int      `json:"charts"`
	Bars        int      `json:"bars"`
	Isolation   int      `json:"isolation"`
}

var layoutResultRe = regexp.MustCompile(`(?s)<pre id="layout-result">(.*?)</pre>`)

// measureLayout lays the page out in headless Chromium at a width, with
// the print style sheet applied when print is set, and returns what the
// probe measured.
func measureLayout(t *testing.T, bin, page, work string, width int, print bool) layoutResult {
	t.Helper()
	body, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	probe := string(body)
	if print {
		// The print rules, applied on screen at the printed width.
		probe = strings.ReplaceAll(probe, "@media print", "@media all")
	}
	probe = strings.Replace(probe, "</body>", layoutProbe+"</body>", 1)
	name := filepath.Join(work, strings.TrimSuffix(filepath.Base(page), ".html")+"-probe-"+itoa(width)+".html")
	if err := os.WriteFile(name, []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := string(runChromium(t, bin, filepath.Join(work, "profile-layout-"+itoa(width)), "--dump-dom",
		"--window-size="+itoa(width)+",1000", "--hide-scrollbars", "file://"+name))
	m := layoutResultRe.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the layout probe did not run at %d px; DOM:\n%.500s", width, dom)
	}
	var res layoutResult
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &res); err != nil {
		t.Fatalf("layout result %q: %v", m[1], err)
	}
	return res
}

func itoa(n int) string { return strconv.Itoa(n) }

// checkLayout asserts that nothing is wider than the viewport and that
// the timeline is there, with its isolation mark when wanted.
func checkLayout(t *testing.T, what string, res layoutResult, width, charts int, isolated bool) {
	t.Helper()
	if res.Viewport < width-20 || res.Viewport > width {
		t.Errorf("%s: viewport %d px, want about %d (the window size was not applied)", what, res.Viewport, width)
	}
	if res.ScrollWidth > res.Viewport || len(res.Wide) > 0 {
		t.Errorf("%s at %d px: page %d px wide; elements past the viewport: %v", what, width, res.ScrollWidth, res.Wide)
	}
	if res.Charts != charts || res.Bars == 0 {
		t.Errorf("%s at %d px: %d timeline charts with %d bars, want %d charts", what, width, res.Charts, res.Bars, charts)
	}
	if isolated && res.Isolation != 1 {
		t.Errorf("%s at %d px: %d isolation marks, want 1", what, width, res.Isolation)
	}
}

// TestReportLayoutInChromium lays out the HTML report of a real
// (fake-cloud) case, and of the two-run case of the report package's
// golden file (security groups with rules, user data, indicators), in
// headless Chromium at 1280 px and at the printed width of A4: no element
// wider than the viewport, the timeline present with its isolation mark.
// It also prints the report to PDF and screenshots it, each written to the
// test's temporary folder and checked to be more than a blank page. Set
// RESPONDER_REPORT_KEEP=DIR to keep them.
func TestReportLayoutInChromium(t *testing.T) {
	bin := findChromium(t)
	c, s := fakeaws.NewSuspect()
	dir := respondCase(t, c, s, "case-layout")
	work := t.TempDir()
	page := filepath.Join(work, "report.html")
	if code, _, errOut := runCLI(t, c, "report", "--case-id", "case-layout", "--evidence-dir", dir, "--format", "html", "--out", page); code != exitOK {
		t.Fatalf("report: exit %d: %s", code, errOut)
	}
	// The golden file, as an .html file Chromium reads as HTML.
	golden, err := os.ReadFile(filepath.Join("..", "..", "responder", "report", "testdata", "rich.html.golden"))
	if err != nil {
		t.Fatal(err)
	}
	rich := filepath.Join(work, "rich.html")
	if err := os.WriteFile(rich, golden, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what     string
		page     string
		charts   int
		isolated bool
	}{
		{"fake-cloud case", page, 1, true},
		{"two-run case (golden)", rich, 2, true},
	} {
		for _, w := range []struct {
			width int
			print bool
		}{{screenWidth, false}, {printWidth, true}} {
			res := measureLayout(t, bin, tc.page, work, w.width, w.print)
			checkLayout(t, tc.what, res, w.width, tc.charts, tc.isolated)
		}
	}

	shot := filepath.Join(work, "report-1280.png")
	runChromium(t, bin, filepath.Join(work, "profile-shot"), "--screenshot="+shot, "--window-size=1280,3000", "--hide-scrollbars", "file://"+rich)
	assertScreenshot(t, shot, 1280, 3000)
	pdf := filepath.Join(work, "report.pdf")
	runChromium(t, bin, filepath.Join(work, "profile-pdf"), "--print-to-pdf="+pdf, "--no-pdf-header-footer", "file://"+rich)
	b, err := os.ReadFile(pdf)
	if err != nil || !strings.HasPrefix(string(b), "%PDF-") || len(b) < 20_000 {
		t.Fatalf("printed PDF: %d bytes, %v: want a PDF of the report", len(b), err)
	}
	t.Logf("screenshot %s, PDF %s (%d bytes)", shot, pdf, len(b))
	keepFiles(t, shot, pdf)
}

// assertScreenshot checks that a screenshot has the size asked and is not
// blank: a failed page renders in a colour or two.
func assertScreenshot(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() < 50_000 {
		t.Fatalf("screenshot %s is too small to show the report (%v)", path, err)
	}
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
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
}

func keepFiles(t *testing.T, paths ...string) {
	t.Helper()
	keep := os.Getenv("RESPONDER_REPORT_KEEP")
	if keep == "" {
		return
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(filepath.Join(keep, filepath.Base(p)), b, 0o644)
		}
		if err != nil {
			t.Errorf("keep %s: %v", p, err)
		}
	}
}
