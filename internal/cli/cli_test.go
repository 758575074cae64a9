package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/delivery-edge/edge/internal/jobs"
)

func TestProgressAndFinalLine(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	end := start.Add(12500 * time.Millisecond)
	tests := []struct {
		name      string
		s         jobs.Snapshot
		progress  string
		finalLine string
	}{
		{"warm with a total", jobs.Snapshot{Kind: "warm", Phase: "render", State: "running", Started: start,
			Done: 100, Total: 500, Rate: 40, ErrorCount: 2},
			"warm (render): 100/500 urls, 40.0/s, 10s left, 2 errors", ""},
		{"done", jobs.Snapshot{Kind: "warm", State: "done", Started: start, Finished: &end, Done: 500, Total: 500, Rate: 40},
			"warm: 500/500 urls, 40.0/s", "warm done: 500/500 urls in 12.5s (40.0/s), 0 errors"},
		{"no total yet", jobs.Snapshot{Kind: "rebuild", Phase: "move", State: "running", Started: start, Done: 7},
			"rebuild (move): 7 files", ""},
		{"failed", jobs.Snapshot{Kind: "check", State: "failed", Started: start, Finished: &end, Error: "disk gone"},
			"check: 0 items", "check failed: 0 items in 12.5s, 0 errors: disk gone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ProgressLine(tc.s); got != tc.progress {
				t.Errorf("ProgressLine = %q, want %q", got, tc.progress)
			}
			if tc.finalLine != "" {
				if got := FinalLine(tc.s); got != tc.finalLine {
					t.Errorf("FinalLine = %q, want %q", got, tc.finalLine)
				}
			}
		})
	}
}

// TestLineDisplay: off a terminal a line is written at most every
// `every`, none before the first interval.
func TestLineDisplay(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var out strings.Builder
	d := NewDisplay(&out, false, 5*time.Second, func() time.Time { return now })
	for i, at := range []time.Duration{0, time.Second, 5 * time.Second, 6 * time.Second, 10 * time.Second} {
		now = time.Unix(1_700_000_000, 0).Add(at)
		d.Update(jobs.Snapshot{Kind: "warm", Done: int64(i), Total: 10})
	}
	d.Finish()
	want := "warm: 2/10 urls\nwarm: 4/10 urls\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

// TestBarDisplay: on a terminal a bar with the count, the rate and the
// phase is drawn, and cleared at the end.
func TestBarDisplay(t *testing.T) {
	var out strings.Builder
	d := NewDisplay(&out, true, time.Second, time.Now)
	d.Update(jobs.Snapshot{Kind: "rebuild", Phase: "move", Total: 0, Done: 3})
	d.Update(jobs.Snapshot{Kind: "rebuild", Phase: "trash", Total: 10, Done: 4})
	time.Sleep(150 * time.Millisecond) // past the bar's throttle
	d.Update(jobs.Snapshot{Kind: "rebuild", Phase: "trash", Total: 10, Done: 5})
	d.Finish()
	s := out.String()
	for _, want := range []string{"rebuild (move)", "rebuild (trash)", "5/10", "files/s"} {
		if !strings.Contains(s, want) {
			t.Errorf("bar output lacks %q: %q", want, s)
		}
	}
	if !strings.HasSuffix(s, "\r") {
		t.Errorf("the bar is not cleared at the end: %q", s)
	}
}

// fakeJobs is a job that ends after `after` polls (a part of the test,
// not of the code under test).
type fakeJobs struct {
	polls, after int
	cancelled    bool
	failGets     int
}

func (f *fakeJobs) Get(id string) (jobs.Snapshot, error) {
	f.polls++
	if f.failGets > 0 {
		f.failGets--
		return jobs.Snapshot{}, errors.New("connection refused")
	}
	s := jobs.Snapshot{ID: id, Kind: "warm", State: jobs.StateRunning, Done: int64(f.polls), Total: int64(f.after)}
	if f.polls >= f.after {
		s.State = jobs.StateDone
		if f.cancelled {
			s.State = jobs.StateCancelled
		}
	}
	return s, nil
}

// Cancel answers the running job, as the edge does: the work stops a
// little later.
func (f *fakeJobs) Cancel(id string) (jobs.Snapshot, error) {
	f.cancelled = true
	f.after = f.polls + 2
	return jobs.Snapshot{ID: id, Kind: "warm", State: jobs.StateRunning}, nil
}

type countDisplay struct{ updates, finished int }

func (c *countDisplay) Update(jobs.Snapshot) { c.updates++ }
func (c *countDisplay) Finish()              { c.finished++ }

func TestFollow(t *testing.T) {
	start := jobs.Snapshot{ID: "j1", Kind: "warm", State: jobs.StateRunning}
	t.Run("to its end", func(t *testing.T) {
		f := &fakeJobs{after: 5, failGets: 2}
		d := &countDisplay{}
		s, err := Follow(context.Background(), f, start, time.Millisecond, d)
		if err != nil || s.State != jobs.StateDone || s.Done != 5 {
			t.Fatalf("Follow = %+v, %v", s, err)
		}
		if d.finished != 1 || d.updates < 2 {
			t.Errorf("display: %+v", d)
		}
	})
	t.Run("poll errors in a row give up", func(t *testing.T) {
		f := &fakeJobs{after: 3, failGets: maxPollErrors}
		_, err := Follow(context.Background(), f, start, time.Millisecond, &countDisplay{})
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f := &fakeJobs{after: 1 << 30}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		s, err := Follow(ctx, f, start, time.Millisecond, &countDisplay{})
		if !errors.Is(err, ErrCancelled) || !f.cancelled || s.State != jobs.StateCancelled {
			t.Fatalf("Follow = %+v, %v (cancelled %v)", s, err, f.cancelled)
		}
	})
}

func TestFlattenAndCell(t *testing.T) {
	v := map[string]any{"cache": map[string]any{"hits": 3.0, "renders": map[string]any{}},
		"groups": []any{map[string]any{"name": "www"}}, "list": []any{"a", "b"}, "rate": 1.25, "s": "x\ty"}
	var got []string
	for _, kv := range Flatten(v) {
		got = append(got, kv[0].(string)+"="+Cell(kv[1]))
	}
	want := "cache.hits=3 cache.renders=- groups[0].name=www list=a,b rate=1.25 s=x y"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestTable(t *testing.T) {
	var out strings.Builder
	tb := NewTable(&out, "A", "LONGER")
	tb.Row("xxxx", nil)
	if err := tb.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "A     LONGER\nxxxx  -\n"; out.String() != want {
		t.Errorf("%q, want %q", out.String(), want)
	}
}
