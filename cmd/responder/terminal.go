package main

import (
	"bytes"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// termOut is standard output together with what it is: a terminal gets
// tables drawn with boxes and, unless NO_COLOR is set, status words in
// colour; anything else (a pipe, a file, a test) gets plain columns and no
// escape sequence.
type termOut struct {
	io.Writer
	tty   bool
	color bool
}

func isTerminal(w io.Writer) bool {
	t, ok := w.(*termOut)
	return ok && t.tty
}

func colored(w io.Writer) bool {
	t, ok := w.(*termOut)
	return ok && t.color
}

// colorOn says whether standard output gets colour: a terminal, and NO_COLOR
// unset or empty (https://no-color.org).
func colorOn(tty bool, getenv func(string) string) bool {
	return tty && getenv("NO_COLOR") == ""
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[1;31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// statusColors colour the words that make a claim: green for a state proved
// by a read-back, red for one that failed or is not proved, yellow for what
// is pending, skipped or only a dry run.
var statusColors = map[string]string{
	"OK": ansiGreen, "CONTAINED": ansiGreen, "RELEASED": ansiGreen, "VERIFIED": ansiGreen, "PRESERVED": ansiGreen,
	"ACQUIRED": ansiYellow, "ON": ansiGreen, "OFF": ansiGreen, "HELD": ansiGreen, "COMPLETED": ansiGreen,
	"FAILED": ansiRed, "PARTIALLY CONTAINED": ansiRed, "CONTAINMENT FAILED": ansiRed, "RELEASE INCOMPLETE": ansiRed,
	"INCOMPLETE": ansiRed, "WOULD FAIL": ansiRed, "NOT HELD": ansiRed, "MISMATCH": ansiRed, "MISSING": ansiRed, "UNREADABLE": ansiRed, "ERROR": ansiRed, "WARNING": ansiYellow,
	"SKIPPED": ansiYellow, "INTERRUPTED": ansiYellow, "PENDING": ansiYellow, "COPYING": ansiYellow, "INTACT SO FAR": ansiYellow, "INTACT, UNSIGNED": ansiYellow,
	"WOULD CONTAIN": ansiYellow, "WOULD ACQUIRE": ansiYellow, "WOULD RELEASE": ansiYellow, "UNCHECKED": ansiYellow,
}

// paint colours the status word at the start of text ("CONTAINED",
// "FAILED: ...") when w is a colour terminal; text is unchanged otherwise.
func paint(w io.Writer, text string) string {
	if !colored(w) {
		return text
	}
	word, rest, _ := strings.Cut(text, ":")
	code, ok := statusColors[strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(word), "-", " "))]
	if !ok {
		return text
	}
	if rest != "" || strings.HasSuffix(text, ":") {
		return code + word + ansiReset + ":" + rest
	}
	return code + text + ansiReset
}

// newTable is a table for w: boxed, with long cells wrapped, on a terminal;
// plain columns otherwise (no box drawing, no wrapping: one row a line).
func newTable(w io.Writer, headers ...string) *tablewriter.Table {
	opts := []tablewriter.Option{tablewriter.WithHeaderAutoFormat(tw.Off)}
	if isTerminal(w) {
		opts = append(opts, tablewriter.WithRowAutoWrap(tw.WrapNormal), tablewriter.WithRowMaxWidth(72))
	} else {
		opts = append(opts, tablewriter.WithRowAutoWrap(tw.WrapNone), tablewriter.WithHeaderAlignment(tw.AlignLeft),
			tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
				Borders: tw.BorderNone,
				Symbols: tw.NewSymbols(tw.StyleNone),
				Settings: tw.Settings{
					Separators: tw.Separators{ShowHeader: tw.Off, ShowFooter: tw.Off, BetweenRows: tw.Off, BetweenColumns: tw.Off},
					Lines:      tw.Lines{ShowTop: tw.Off, ShowBottom: tw.Off, ShowHeaderLine: tw.Off, ShowFooterLine: tw.Off},
				},
			})))
	}
	tw := w
	if !isTerminal(w) {
		tw = &plainLines{w: w}
	}
	t := tablewriter.NewTable(tw, opts...)
	t.Header(headers)
	return t
}

// plainLines writes a plain table's lines without the cell padding at their
// start and end: columns are separated by two spaces, and no line ends in a
// space.
type plainLines struct {
	w       io.Writer
	pending []byte
}

func (p *plainLines) Write(b []byte) (int, error) {
	p.pending = append(p.pending, b...)
	for {
		i := bytes.IndexByte(p.pending, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := strings.TrimRight(strings.TrimPrefix(string(p.pending[:i]), " "), " ")
		p.pending = p.pending[i+1:]
		if _, err := io.WriteString(p.w, line+"\n"); err != nil {
			return len(b), err
		}
	}
}
