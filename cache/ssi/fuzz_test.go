package ssi

import (
	"strings"
	"testing"
)

// fuzzSeeds are pages of directives that once went wrong, or nearly; the
// cache's FuzzSSIAssemble starts from the same pages.
var fuzzSeeds = []string{
	`<html><!--#include virtual="/f/a.html" --></html>`,
	`a<!--#include virtual="/n/0.html" -->b<!--#include file="x.html" -->`,
	`<!--#exec cmd="touch /tmp/pwned" --><!--#include virtual="/c.html" -->`,
	`<!--#include virtual="/f/a.html" virtual='/f/b.html' --><!--#include virtual=/f/c.html -->`,
	`<!--#include virtual="/f/a.html" <!--#include virtual="/f/b.html" -->-->`,
	`<!--#include virtual="/f/` + strings.Repeat("z", 5000) + `" -->`,
	`<!--#if expr="1" --><!--#include virtual="/missing.html" --><!--#endif --><!--`,
	`<!--#include virtual="/../etc/passwd" --><!--#include virtual="/x.html.old" --><!--#`,
}

// FuzzParser: cutting the input anywhere changes nothing, and text and
// directives always cover the input exactly.
func FuzzParser(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), uint16(7), uint16(30))
	}
	f.Fuzz(func(t *testing.T, data []byte, c1, c2 uint16) {
		in := string(data)
		whole, dirs := tokens(t, in)
		checkLossless(t, in, dirs)
		i, j := int(c1)%(len(in)+1), int(c2)%(len(in)+1)
		if i > j {
			i, j = j, i
		}
		if got, _ := tokens(t, in, i, j); got != whole {
			t.Fatalf("cuts %d,%d:\n got %q\nwant %q", i, j, got, whole)
		}
		for _, d := range dirs {
			if d.Kind == Include && len(d.Refs) == 0 {
				t.Fatalf("include without paths: %+v", d)
			}
		}
	})
}
