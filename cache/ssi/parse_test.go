package ssi

import (
	"fmt"
	"strings"
	"testing"
)

// tokens runs the parser over input, cut into chunks at the given
// positions, and renders what it found: text as is, directives as
// [include /a /b], [strip exec], [malformed], [toolong].
func tokens(t testing.TB, input string, cuts ...int) (string, []Directive) {
	t.Helper()
	var out strings.Builder
	var dirs []Directive
	p := Parser{
		Text: func(b []byte) { out.Write(b) },
		Directive: func(d Directive) {
			dirs = append(dirs, d)
			switch d.Kind {
			case Include:
				out.WriteString("[include")
				for _, r := range d.Refs {
					if r.File {
						out.WriteString(" file:")
					} else {
						out.WriteString(" ")
					}
					out.WriteString(r.Path)
				}
				out.WriteString("]")
			case Strip:
				out.WriteString("[strip " + d.Element + "]")
			case Malformed:
				out.WriteString("[malformed]")
			case TooLong:
				out.WriteString("[toolong]")
			}
		},
	}
	prev := 0
	for _, c := range cuts {
		p.Write([]byte(input[prev:c]))
		prev = c
	}
	p.Write([]byte(input[prev:]))
	p.End()
	return out.String(), dirs
}

// checkLossless asserts that text and directives cover the input
// exactly, in order.
func checkLossless(t testing.TB, input string, dirs []Directive) {
	t.Helper()
	var pos int64
	for _, d := range dirs {
		if d.Start < pos || d.End < d.Start || d.End > int64(len(input)) {
			t.Fatalf("directive %+v out of order (pos %d, len %d)", d, pos, len(input))
		}
		raw := input[d.Start:d.End]
		if !strings.HasPrefix(raw, opener) {
			t.Fatalf("directive at %d does not start with %q: %q", d.Start, opener, raw)
		}
		if d.End < int64(len(input)) && !strings.HasSuffix(raw, closer) {
			t.Fatalf("directive at %d does not end with %q: %q", d.Start, closer, raw)
		}
		if strings.Contains(input[pos:d.Start], opener) {
			t.Fatalf("text before %d holds an opener: %q", d.Start, input[pos:d.Start])
		}
		pos = d.End
	}
	if strings.Contains(input[pos:], opener) {
		t.Fatalf("trailing text holds an opener: %q", input[pos:])
	}
}

func TestParser(t *testing.T) {
	long := `<!--#include virtual="/` + strings.Repeat("a", maxTag) + `" -->`
	tests := []struct{ name, in, want string }{
		{"plain text", "<html><body>no directives</body></html>", "<html><body>no directives</body></html>"},
		{"include", `a<!--#include virtual="/x.html" -->b`, "a[include /x.html]b"},
		{"no space before close", `<!--#include virtual="/x.html"-->`, "[include /x.html]"},
		{"single quotes", `<!--#include virtual='/x.html' -->`, "[include /x.html]"},
		{"backticks", "<!--#include virtual=`/x.html` -->", "[include /x.html]"},
		{"unquoted", `<!--#include virtual=/x.html -->`, "[include /x.html]"},
		{"spaces around =", `<!--#include virtual = "/x.html" -->`, "[include /x.html]"},
		{"newlines inside", "<!--#include\n\tvirtual=\"/x.html\"\n-->", "[include /x.html]"},
		{"space after #", `<!--# include virtual="/x.html" -->`, "[include /x.html]"},
		{"upper case", `<!--#INCLUDE VIRTUAL="/x.html" -->`, "[include /x.html]"},
		{"two paths", `<!--#include virtual="/a" virtual="/b" -->`, "[include /a /b]"},
		{"file", `<!--#include file="teaser.html" -->`, "[include file:teaser.html]"},
		{"escaped quote", `<!--#include virtual="/a\"b" -->`, `[include /a"b]`},
		{"extra attributes ignored", `<!--#include virtual="/a" wait="yes" stub="x" -->`, "[include /a]"},
		{"back to back", `<!--#include virtual="/a" --><!--#include virtual="/b" -->`, "[include /a][include /b]"},
		{"exec", `x<!--#exec cmd="touch /tmp/pwned" -->y`, "x[strip exec]y"},
		{"exec cgi", `<!--#exec cgi="/cgi-bin/x" -->`, "[strip exec]"},
		{"config", `<!--#config timefmt="%Y" -->`, "[strip config]"},
		{"echo", `<!--#echo var="DOCUMENT_NAME" -->`, "[strip echo]"},
		{"set", `<!--#set var="a" value="b" -->`, "[strip set]"},
		{"if", `<!--#if expr="$a" -->x<!--#else -->y<!--#endif -->`, "[strip if]x[strip else]y[strip endif]"},
		{"printenv", `<!--#printenv -->`, "[strip printenv]"},
		{"empty", `<!--#-->`, "[strip ]"},
		{"only spaces", `<!--#   -->`, "[strip ]"},
		{"includevirtual glued", `<!--#includevirtual="/a" -->`, "[strip includevirtual]"},
		{"include without path", `<!--#include -->`, "[malformed]"},
		{"include without value", `<!--#include virtual -->`, "[malformed]"},
		{"include unknown attribute only", `<!--#include stub="x" -->`, "[malformed]"},
		{"unterminated quote", `<!--#include virtual="/a -->b`, "[malformed]b"},
		{"no space between attributes", `<!--#include virtual="/a"file="b" -->`, "[malformed]"},
		{"junk after element", `<!--#include"/a" -->`, "[malformed]"},
		{"nested opener", `<!--#include virtual="/a" <!--#include virtual="/b" -->c`, "[malformed]c"},
		{"close inside value ends the tag", `<!--#include virtual="/a-->b" -->`, `[malformed]b" -->`},
		{"three dashes", `<!--#exec cmd="x" --->`, "[strip exec]"},
		{"ordinary comment", `<!-- #include virtual="/a" -->`, `<!-- #include virtual="/a" -->`},
		{"ordinary comment around", `<!-- <!--#include virtual="/a" --> -->`, `<!-- [include /a] -->`},
		{"opener prefix at end", `text<!--`, `text<!--`},
		{"lone lt before", `<<!--#exec -->`, `<[strip exec]`},
		{"comment start before", `<!--<!--#exec -->`, `<!--[strip exec]`},
		{"almost opener", `<!-#include virtual="/a" -->`, `<!-#include virtual="/a" -->`},
		{"unterminated at end", `x<!--#include virtual="/a"`, "x[toolong]"},
		{"opener at end", `x<!--#`, "x[toolong]"},
		{"too long", long + "after", "[toolong]after"},
		{"too long exec", `<!--#exec cmd="` + strings.Repeat("-", 2*maxTag) + `" -->after`, "[toolong]after"},
		{"too long dashes", `<!--#` + strings.Repeat("-", maxTag+10) + `>after`, "[toolong]after"},
		{"longest allowed", `<!--#include virtual="/` + strings.Repeat("b", maxTag-len(`include virtual="/"`)) + `"-->`,
			"[include /" + strings.Repeat("b", maxTag-len(`include virtual="/"`)) + "]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dirs := tokens(t, tt.in)
			if got != tt.want {
				t.Fatalf("whole:\n got %q\nwant %q", trunc(got), trunc(tt.want))
			}
			checkLossless(t, tt.in, dirs)
			// Cut into two chunks at every position, and into single bytes.
			for i := 0; i <= len(tt.in); i++ {
				if g, _ := tokens(t, tt.in, i); g != tt.want {
					t.Fatalf("cut at %d:\n got %q\nwant %q", i, trunc(g), trunc(tt.want))
				}
			}
			if len(tt.in) < 600 {
				// Three chunks: every pair of cut positions.
				for i := 0; i <= len(tt.in); i++ {
					for j := i; j <= len(tt.in); j++ {
						if g, _ := tokens(t, tt.in, i, j); g != tt.want {
							t.Fatalf("cuts at %d,%d:\n got %q\nwant %q", i, j, trunc(g), trunc(tt.want))
						}
					}
				}
			}
			cuts := make([]int, 0, len(tt.in))
			for i := 1; i < len(tt.in); i++ {
				cuts = append(cuts, i)
			}
			if g, _ := tokens(t, tt.in, cuts...); g != tt.want {
				t.Fatalf("byte by byte:\n got %q\nwant %q", trunc(g), trunc(tt.want))
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:100] + fmt.Sprintf("…(%d bytes)…", len(s)-200) + s[len(s)-100:]
	}
	return s
}

func TestMarkerAcrossWrites(t *testing.T) {
	tests := []struct {
		chunks []string
		want   bool
	}{
		{[]string{"no directive here"}, false},
		{[]string{"<!--#include"}, true},
		{[]string{"a<", "!--#"}, true},
		{[]string{"a<!", "-", "-", "#"}, true},
		{[]string{"a<!-", "-"}, false},
		{[]string{"a<!-", "x--#"}, false},
		{[]string{"<!--", "<!--#"}, true},
		{[]string{"<!-", "<!--#"}, true},
		{[]string{"<", "<", "!--#"}, true},
		{[]string{"<!--", " #"}, false},
	}
	for _, tt := range tests {
		var m Marker
		found := false
		for _, c := range tt.chunks {
			if m.Find([]byte(c)) {
				found = true
				break
			}
		}
		if found != tt.want {
			t.Errorf("%q: found %v, want %v", tt.chunks, found, tt.want)
		}
	}
}

func TestIncludeURL(t *testing.T) {
	tests := []struct {
		key  string
		ref  Ref
		want string // "" = refused
	}{
		{"/p.html", Ref{Path: "/f/a.html"}, "/f/a.html"},
		{"/p.html", Ref{Path: "/f/a.html?x=1#top"}, "/f/a.html?x=1"},
		{"/p.html", Ref{Path: "f/a.html"}, ""},
		{"/p.html", Ref{Path: "//evil.example/x"}, ""},
		{"/p.html", Ref{Path: "http://evil.example/x"}, ""},
		{"/p.html", Ref{Path: "/\\evil.example/x"}, ""},
		{"/p.html", Ref{Path: ""}, ""},
		{"/dir/p.html", Ref{Path: "t.html", File: true}, "/dir/t.html"},
		{"/dir/", Ref{Path: "sub/t.html", File: true}, "/dir/sub/t.html"},
		{"/dir/p.html?a=1", Ref{Path: "t.html", File: true}, "/dir/t.html"},
		{"/dir/p.html", Ref{Path: "../t.html", File: true}, ""},
		{"/dir/p.html", Ref{Path: "a/./t.html", File: true}, ""},
		{"/dir/p.html", Ref{Path: "/etc/passwd", File: true}, ""},
		{"/dir/p.html", Ref{Path: "t.html?x", File: true}, ""},
	}
	for _, tt := range tests {
		u, err := IncludeURL(tt.key, tt.ref)
		got := ""
		if err == nil {
			got = u.String()
		}
		if got != tt.want {
			t.Errorf("IncludeURL(%q, %+v) = %q, %v; want %q", tt.key, tt.ref, got, err, tt.want)
		}
	}
}

func TestCommentCannotEndEarly(t *testing.T) {
	c := Comment(`/a-->"<script>--x`, "refused")
	body := strings.TrimSuffix(strings.TrimPrefix(c, "<!--"), "-->")
	if strings.Contains(body, "--") || strings.ContainsAny(body, "<>") {
		t.Fatalf("comment body can end the comment: %q", c)
	}
}
