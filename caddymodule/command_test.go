package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/cache"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestProgressLine(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		at       []time.Duration // one update each
		want     string
	}{
		{"terminal: redrawn at most 4 times a second, then ended", true,
			[]time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond, 1100 * time.Millisecond},
			"\rchecking: 2 entries, 0 index keys, 0 folders, 0 files (0s)" +
				"\rchecking: 4 entries, 0 index keys, 0 folders, 0 files (1s)" +
				"\rchecking: 4 entries, 0 index keys, 0 folders, 0 files (1s)\n"},
		{"log: a plain line every 10 seconds", false,
			[]time.Duration{time.Second, 9 * time.Second, 10 * time.Second, 11 * time.Second, 25 * time.Second},
			"checking: 3 entries, 0 index keys, 0 folders, 0 files (10s)\n" +
				"checking: 5 entries, 0 index keys, 0 folders, 0 files (25s)\n" +
				"checking: 5 entries, 0 index keys, 0 folders, 0 files (25s)\n"},
		{"quick check: nothing shown", true, []time.Duration{10 * time.Millisecond}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			start := clk.t
			var out strings.Builder
			p := newProgressLine(&out, tc.terminal, clk.now)
			for i, at := range tc.at {
				clk.t = start.Add(at)
				p.update(cache.CheckProgress{Entries: i + 1})
			}
			p.finish()
			if got := out.String(); got != tc.want {
				t.Errorf("output\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestProgressLineBlanksALongerLine: a shorter line overwrites all of a
// longer one on the terminal.
func TestProgressLineBlanksALongerLine(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var out strings.Builder
	p := newProgressLine(&out, true, clk.now)
	p.last = cache.CheckProgress{Entries: 123456789}
	p.show(clk.now())
	out.Reset()
	p.last = cache.CheckProgress{Entries: 1}
	p.show(clk.now())
	if got, want := out.String(), "\rchecking: 1 entries, 0 index keys, 0 folders, 0 files (0s)"+strings.Repeat(" ", 8); got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
