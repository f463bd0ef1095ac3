package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/urfave/cli/v2"
)

// Output formats of --output.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatText  = "text"
)

// outputOptions are --output and --query.
type outputOptions struct {
	Format string
	Query  string
}

func outputFlag(o *outputOptions) cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: formatTable, Destination: &o.Format,
		Usage: "`FORMAT` of the result: table (for people), json (the record), or text (tab-separated, one record a line, for scripts)"}
}

func queryFlag(o *outputOptions) cli.Flag {
	return &cli.StringFlag{Name: "query", Destination: &o.Query,
		Usage: "JMESPath `EXPRESSION` applied to the JSON result (with --output json or text), e.g. 'steps[?status==`failed`].name'"}
}

// validate refuses, before any AWS call, a format or a query that cannot be
// used.
func (o outputOptions) validate() error {
	switch o.Format {
	case formatTable, formatJSON, formatText:
	default:
		return exitf(exitUsage, "--output must be table, json or text, not %q", o.Format)
	}
	if o.Query == "" {
		return nil
	}
	if o.Format == formatTable {
		return exitf(exitUsage, "--query works on the JSON result: give --output json or --output text with it")
	}
	if _, err := jmespath.Compile(o.Query); err != nil {
		return exitf(exitUsage, "--query %q: %v", o.Query, err)
	}
	return nil
}

// validateOutput is o.validate, for the commands' run functions.
func validateOutput(o outputOptions) error { return o.validate() }

// result is what a command prints, in each format: value is what json
// prints (and --query searches), table and text write the other two.
type result struct {
	value any
	table func(w io.Writer) error
	text  func(w *textWriter)
}

// print writes r in the chosen format on standard output.
func (o outputOptions) print(s *streams, r result) error {
	if o.Format == formatTable {
		return r.table(s.Out)
	}
	if o.Query == "" {
		if o.Format == formatJSON {
			return writeJSON(s.Out, r.value)
		}
		tw := &textWriter{w: s.Out}
		r.text(tw)
		return tw.err
	}
	v, err := o.search(r.value)
	if err != nil {
		return err
	}
	if o.Format == formatJSON {
		return writeJSON(s.Out, v)
	}
	tw := &textWriter{w: s.Out}
	textValue(tw, v)
	return tw.err
}

// search runs --query on the JSON form of v.
func (o outputOptions) search(v any) (any, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	out, err := jmespath.Search(o.Query, doc)
	if err != nil {
		return nil, exitf(exitUsage, "--query %q: %v", o.Query, err)
	}
	return out, nil
}

// textWriter writes the text format: one record a line, fields separated by
// tabs; a tab or a line break inside a field becomes a space.
type textWriter struct {
	w   io.Writer
	err error
}

var textField = strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ", "\r", " ")

func (t *textWriter) line(fields ...string) {
	if t.err != nil {
		return
	}
	for i, f := range fields {
		fields[i] = textField.Replace(f)
	}
	_, t.err = io.WriteString(t.w, strings.Join(fields, "\t")+"\n")
}

// textValue writes the result of a query as the AWS CLI's text output does:
// a scalar on its line (null as None), a list one element a line (a list of
// scalars on one line; an empty list no line), an object's values in the order of its sorted keys.
// A nested value inside a line is written as compact JSON.
func textValue(t *textWriter, v any) {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return // nothing found: no line
		}
		if allScalars(x) {
			t.line(cells(x)...)
			return
		}
		for _, e := range x {
			textValue(t, e)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]any, len(keys))
		for i, k := range keys {
			vals[i] = x[k]
		}
		t.line(cells(vals)...)
	default:
		t.line(scalarText(x))
	}
}

func allScalars(xs []any) bool {
	for _, x := range xs {
		switch x.(type) {
		case []any, map[string]any:
			return false
		}
	}
	return true
}

func cells(xs []any) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = scalarText(x)
	}
	return out
}

func scalarText(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		return fmt.Sprint(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(b.String())
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
