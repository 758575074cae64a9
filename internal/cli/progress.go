package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/delivery-edge/edge/internal/jobs"
)

// Display shows the progress of a job while it runs.
type Display interface {
	// Update shows a snapshot of the running job.
	Update(s jobs.Snapshot)
	// Finish ends the display (the final line is printed apart).
	Finish()
}

// NewDisplay returns a progress bar with rate and ETA on a terminal, and
// otherwise a display that writes a plain line every `every`.
func NewDisplay(w io.Writer, terminal bool, every time.Duration, now func() time.Time) Display {
	if terminal {
		return &barDisplay{w: w}
	}
	return &lineDisplay{w: w, every: every, now: now}
}

// barDisplay draws a progress bar on a terminal; the bar is created at
// the first update (the total may be known only then) and cleared at the
// end, so that the final line stands alone.
type barDisplay struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	max   int64
	done  int64 // the last count shown
	phase string
}

func (d *barDisplay) Update(s jobs.Snapshot) {
	max := s.Total
	if max <= 0 {
		max = -1 // not known yet: a spinner
	}
	desc := s.Kind
	if s.Phase != "" {
		desc += " (" + s.Phase + ")"
	}
	// A new phase counts anew (its own total, rate and ETA), and a bar
	// that has reached its end draws no more: start a new one. A total
	// learnt while nothing was counted yet keeps the bar (and its start,
	// so that rate and ETA count from it).
	if d.bar != nil && (desc != d.phase || (d.max < 0 && max > 0 && d.done > 0) || d.bar.IsFinished()) {
		d.Finish()
	}
	if d.bar == nil {
		// The full width of the terminal, when it tells it (a pseudo
		// terminal may say 0 columns, which leaves no room for the bar).
		width := progressbar.OptionSetWidth(30)
		if f, ok := d.w.(*os.File); ok {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
				width = progressbar.OptionFullWidth()
			}
		}
		d.bar = progressbar.NewOptions64(max, width,
			progressbar.OptionSetWriter(d.w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unitOf(s.Kind)),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			// No spinner of its own: that goroutine would draw on after
			// the end; the spinner turns with each poll.
			progressbar.OptionSetSpinnerChangeInterval(0),
		)
		d.max, d.phase = max, desc
	}
	if max != d.max {
		d.bar.ChangeMax64(max)
		d.max = max
	}
	_ = d.bar.Set64(s.Done)
	d.done = s.Done
}

func (d *barDisplay) Finish() {
	if d.bar == nil {
		return
	}
	_ = d.bar.Clear()
	_ = d.bar.Exit()
	d.bar = nil
}

// lineDisplay writes a line every `every` (output to a file or a pipe).
type lineDisplay struct {
	w     io.Writer
	every time.Duration
	now   func() time.Time
	next  time.Time
}

func (d *lineDisplay) Update(s jobs.Snapshot) {
	now := d.now()
	if d.next.IsZero() {
		d.next = now.Add(d.every)
		return
	}
	if now.Before(d.next) {
		return
	}
	d.next = now.Add(d.every)
	fmt.Fprintln(d.w, ProgressLine(s))
}

func (d *lineDisplay) Finish() {}

// ProgressLine is a running job in one line: done of total, the rate and
// the time left.
func ProgressLine(s jobs.Snapshot) string {
	what := s.Kind
	if s.Phase != "" {
		what += " (" + s.Phase + ")"
	}
	line := fmt.Sprintf("%s: %s %s", what, count(s), unitOf(s.Kind))
	if s.Rate > 0 {
		line += fmt.Sprintf(", %.1f/s", s.Rate)
		if s.Total > s.Done {
			eta := time.Duration(float64(s.Total-s.Done) / s.Rate * float64(time.Second))
			line += ", " + eta.Round(time.Second).String() + " left"
		}
	}
	if s.ErrorCount > 0 {
		line += fmt.Sprintf(", %d errors", s.ErrorCount)
	}
	return line
}

// FinalLine tells how a job ended: its state, done of total, the time it
// took and its rate, the errors.
func FinalLine(s jobs.Snapshot) string {
	took := "?"
	if s.Finished != nil {
		took = s.Finished.Sub(s.Started).Round(time.Millisecond).String()
	}
	line := fmt.Sprintf("%s %s: %s %s in %s", s.Kind, s.State, count(s), unitOf(s.Kind), took)
	if s.Rate > 0 {
		line += fmt.Sprintf(" (%.1f/s)", s.Rate)
	}
	line += fmt.Sprintf(", %d errors", s.ErrorCount)
	if s.Error != "" {
		line += ": " + s.Error
	}
	return line
}

func count(s jobs.Snapshot) string {
	if s.Total > 0 {
		return fmt.Sprintf("%d/%d", s.Done, s.Total)
	}
	return fmt.Sprint(s.Done)
}

// unitOf names what a job of kind counts.
func unitOf(kind string) string {
	switch kind {
	case "warm":
		return "urls"
	case "check":
		return "items"
	default:
		return "files"
	}
}
