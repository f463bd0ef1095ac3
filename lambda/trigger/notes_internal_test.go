package trigger

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFitNote(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	for _, tc := range []struct {
		name  string
		items []string
		tail  string
		want  string // exact, when set
		more  string // the "and N more" it must end its list with
	}{
		{name: "fits", items: []string{"a", "b"}, tail: ".", want: "responder: a; b."},
		{name: "too many items", items: repeat("case case-20251123-101500-0badcafe started for i-0123456789abcdef0 (111122223333, us-east-1)", 20),
			tail: ". Evidence: s3://bucket/cases/<case-id>/", more: "more"},
		{name: "one huge item", items: []string{long}, tail: "."},
		{name: "huge item then small", items: []string{long, "x"}, tail: ".", more: "; and 1 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fitNote("responder: ", tc.items, tc.tail)
			if tc.want != "" && got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if len(got) > MaxNoteLength || !utf8.ValidString(got) {
				t.Errorf("note of %d bytes, valid UTF-8 %t: %q", len(got), utf8.ValidString(got), got)
			}
			if !strings.HasSuffix(got, tc.tail) {
				t.Errorf("note %q lost its tail %q", got, tc.tail)
			}
			if tc.more != "" && !strings.Contains(got, tc.more) {
				t.Errorf("note %q does not count the items left out", got)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
