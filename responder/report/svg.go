package report

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// Geometry of the timeline SVG, in viewBox units: it scales to the page's
// width, so the same drawing serves the screen and print.
const (
	svgWidth  = 1000
	svgLabelW = 250 // the step names
	svgRight  = 130 // the duration and result written after the bars
	svgRowH   = 18
	svgTop    = 34 // the axis and the isolation label
)

// svgChart draws one run as an inline SVG: a row per step, grouped by lane
// (each lane named in text), the bar's fill saying the result in a second
// way the text beside it says in words (solid: done, outline: skipped,
// dashed: FAILED), and the isolation moment as a dashed line labelled in
// text. Every value is escaped.
func svgChart(c RunChart) template.HTML {
	start, span := c.StartedAt, c.EndedAt.Sub(c.StartedAt)
	for _, b := range c.Bars {
		if b.Start.Before(start) {
			start = b.Start
		}
		if d := b.End.Sub(start); d > span {
			span = d
		}
	}
	if span < time.Millisecond {
		span = time.Millisecond
	}
	plotW := float64(svgWidth - svgLabelW - svgRight)
	x := func(t time.Time) float64 {
		return float64(svgLabelW) + plotW*float64(t.Sub(start))/float64(span)
	}
	rows := len(c.Bars)
	lanes := map[string]bool{}
	for _, b := range c.Bars {
		if !lanes[b.Lane] {
			lanes[b.Lane] = true
			rows++
		}
	}
	height := svgTop + rows*svgRowH + 24
	var s strings.Builder
	id := fmt.Sprintf("chart-run-%d", c.Run)
	fmt.Fprintf(&s, `<svg class="chart" id="%s" role="img" aria-labelledby="%s-title" viewBox="0 0 %d %d" width="100%%" preserveAspectRatio="xMinYMin meet">`,
		id, id, svgWidth, height)
	fmt.Fprintf(&s, `<title id="%s-title">Run %d timeline: %d steps over %s%s</title>`, id, c.Run, len(c.Bars), duration(span), isolationTitle(c))
	// Axis: five ticks from the run's start.
	for i := 0; i <= 4; i++ {
		at := start.Add(span * time.Duration(i) / 4)
		tx := x(at)
		anchor := "middle"
		if i == 4 {
			anchor = "end"
		}
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#bbb" stroke-width="1"/>`, tx, svgTop-4, tx, height-20)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" font-size="11" text-anchor="%s" fill="#444">%s</text>`, tx, svgTop-8, anchor, html.EscapeString(offset(start, at)))
	}
	y := svgTop
	lane := ""
	for _, b := range c.Bars {
		if b.Lane != lane {
			lane = b.Lane
			fmt.Fprintf(&s, `<text x="4" y="%d" font-size="12" font-weight="700" fill="#000">%s</text>`, y+13, html.EscapeString(upperFirst(lane)))
			y += svgRowH
		}
		s.WriteString(svgBar(b, y, x))
		y += svgRowH
	}
	if c.IsolatedAt != nil {
		ix := x(*c.IsolatedAt)
		label := "isolated " + offset(start, *c.IsolatedAt) + " (read back)"
		anchor, lx := "start", ix+4
		if ix > svgWidth-svgRight-150 {
			anchor, lx = "end", ix-4
		}
		fmt.Fprintf(&s, `<line class="isolation" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000" stroke-width="2" stroke-dasharray="6 3"/>`, ix, 4, ix, height-20)
		fmt.Fprintf(&s, `<text x="%.1f" y="13" font-size="12" font-weight="700" text-anchor="%s" fill="#000">%s</text>`, lx, anchor, html.EscapeString(label))
	}
	fmt.Fprintf(&s, `<text x="4" y="%d" font-size="11" fill="#444">Bars: solid done, outline skipped (nothing to change), dashed FAILED; times after the run's start.</text>`, height-6)
	s.WriteString(`</svg>`)
	return template.HTML(s.String()) //nolint:gosec // built from escaped values only
}

func isolationTitle(c RunChart) string {
	if c.IsolatedAt == nil {
		return ""
	}
	return "; isolated " + offset(c.StartedAt, *c.IsolatedAt)
}

// svgBar draws one step: its name, its bar, and after the bar how long it
// took and its result in words.
func svgBar(b Bar, y int, x func(time.Time) float64) string {
	x0, x1 := x(b.Start), x(b.End)
	if x1-x0 < 3 {
		x1 = x0 + 3
	}
	fill, stroke, dash := "#3b4a5a", "#3b4a5a", ""
	result := ""
	switch b.Status {
	case "failed":
		// Dashed, thick and named in words: not told by colour alone.
		fill, stroke, dash, result = "#fff", "#000", ` stroke-dasharray="3 2"`, " FAILED"
	case "skipped":
		fill, stroke, result = "#fff", "#3b4a5a", " skipped"
	}
	if b.Change {
		result += " changed"
	}
	return fmt.Sprintf(`<g class="bar %s"><text x="16" y="%d" font-size="11" fill="#000">%s</text>`+
		`<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" stroke="%s" stroke-width="1.5"%s/>`+
		`<text x="%.1f" y="%d" font-size="11" fill="#000">%s</text></g>`,
		html.EscapeString(b.Status), y+13, html.EscapeString(b.Step),
		x0, y+3, x1-x0, svgRowH-6, fill, stroke, dash,
		x1+4, y+13, html.EscapeString(duration(b.End.Sub(b.Start))+result))
}

// shortToken is the longest text breakable leaves whole.
const shortToken = 24

// breakable writes a path, an ARN or a hash so that it wraps only at its
// separators: a <wbr> after / : - _ . , = ? & @ and every 8 characters of
// a run of 16 or more hexadecimal digits (a hash). Text of up to
// shortToken characters (an ID) is left whole. The text is escaped.
func breakable(s string) template.HTML {
	if len(s) <= shortToken {
		// An ID (i-0123456789abcdef0) fits any column whole.
		return template.HTML(html.EscapeString(s)) //nolint:gosec // escaped
	}
	var b strings.Builder
	runes := []rune(s)
	hexRun := 0
	for i, r := range runes {
		if isHex(r) {
			if hexRun == 0 {
				n := 0
				for j := i; j < len(runes) && isHex(runes[j]); j++ {
					n++
				}
				if n < 16 {
					n = -n // a short run: no breaks inside
				}
				hexRun = n
			}
		} else {
			hexRun = 0
		}
		b.WriteString(html.EscapeString(string(r)))
		switch {
		case strings.ContainsRune("/:-_.,=?&@", r):
			b.WriteString("<wbr>")
		case hexRun > 0 && i+1 < len(runes) && isHex(runes[i+1]) && (countBack(runes, i)%8 == 0):
			b.WriteString("<wbr>")
		}
	}
	return template.HTML(b.String()) //nolint:gosec // every rune is escaped
}

// countBack is how many hex digits end at i, i included.
func countBack(runes []rune, i int) int {
	n := 0
	for ; i >= 0 && isHex(runes[i]); i-- {
		n++
	}
	return n
}

func isHex(r rune) bool {
	return (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F')
}

// tsBreakable is a time as ts writes it, with a break point between the
// date and the time of day.
func tsBreakable(t time.Time) template.HTML {
	date, clock, ok := strings.Cut(ts(t), "T")
	if !ok {
		return template.HTML(html.EscapeString(date)) //nolint:gosec // escaped
	}
	return template.HTML(html.EscapeString(date) + "<wbr>T" + html.EscapeString(clock)) //nolint:gosec // escaped
}

// camelBreakable is an API operation name with a break point before each
// word (DescribeIamInstanceProfileAssociations).
func camelBreakable(s string) template.HTML {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteString("<wbr>")
		}
		b.WriteString(html.EscapeString(string(r)))
	}
	return template.HTML(b.String()) //nolint:gosec // every rune is escaped
}
