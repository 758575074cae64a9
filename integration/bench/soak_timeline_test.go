package bench

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// soakClass is the kind of a request, for the 5xx accounting: a fault
// explains errors of the classes that depend on the link it breaks.
type soakClass int

const (
	classPage  soakClass = iota // a page of the Zipf draw
	classMiss                   // a page nobody asked for before (?page=n)
	classImage                  // an image variant
	classPoll                   // the freshness check's polls
	classFlush                  // cache servlet flushes
	numClasses
)

var classNames = [numClasses]string{"page", "miss", "image", "poll", "flush"}

// htmlClasses are the requests that render through the render backend.
const htmlClasses = 1<<classPage | 1<<classMiss | 1<<classPoll

// imageClasses are the requests that need the staging API (originals) and
// the image store.
const imageClasses = 1 << classImage

// soakWindow is a time span in which a fault or a kill was in force.
type soakWindow struct {
	what       string
	start, end time.Time // end zero: still open
	classes    int       // bit set of soakClass whose 5xx it explains
	edge       int       // the edge it concerns (kills), -1: all
	kill       bool
	disturbs   bool // delays renders or changes (the freshness figures set such changes apart)
}

// soakTimeline records the faults and kills of a run.
type soakTimeline struct {
	start time.Time
	mu    sync.Mutex
	ws    []*soakWindow
}

// faultGrace is how long after a fault ends its effects still explain an
// error (requests under way, retries and back-off of the edges).
const faultGrace = 5 * time.Second

func (tl *soakTimeline) open(w soakWindow) *soakWindow {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	w.start = time.Now()
	tl.ws = append(tl.ws, &w)
	return &w
}

func (tl *soakTimeline) close(w *soakWindow) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	w.end = time.Now()
}

// overlaps reports whether any window that matches overlaps [t0, t1]
// (windows extended by faultGrace).
func (tl *soakTimeline) overlaps(t0, t1 time.Time, match func(*soakWindow) bool) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, w := range tl.ws {
		end := w.end
		if end.IsZero() {
			end = time.Now()
		}
		if !match(w) || t1.Before(w.start) || t0.After(end.Add(faultGrace)) {
			continue
		}
		return true
	}
	return false
}

// explains5xx: a fault on a link that class depends on was in force.
func (tl *soakTimeline) explains5xx(class soakClass, t0, t1 time.Time) bool {
	return tl.overlaps(t0, t1, func(w *soakWindow) bool { return w.classes&(1<<class) != 0 })
}

// explainsTransport: the edge was being killed or restarted.
func (tl *soakTimeline) explainsTransport(edge int, t0, t1 time.Time) bool {
	return tl.overlaps(t0, t1, func(w *soakWindow) bool { return w.kill && w.edge == edge })
}

// disturbed: a kill of the edge or a fault that delays renders or changes
// overlaps.
func (tl *soakTimeline) disturbed(edge int, t0, t1 time.Time) bool {
	return tl.overlaps(t0, t1, func(w *soakWindow) bool { return (w.kill && w.edge == edge) || w.disturbs })
}

// summary lists the windows with their times from the start.
func (tl *soakTimeline) summary() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, w := range tl.ws {
		fmt.Fprintf(&b, "  %6.1fs–%6.1fs  %s\n", w.start.Sub(tl.start).Seconds(), w.end.Sub(tl.start).Seconds(), w.what)
	}
	return b.String()
}

// count returns how many kill and fault windows there were.
func (tl *soakTimeline) count() (kills, faults int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, w := range tl.ws {
		if w.kill {
			kills++
		} else {
			faults++
		}
	}
	return kills, faults
}

// at formats a moment as seconds since the start of the load.
func (tl *soakTimeline) at(t time.Time) string {
	return fmt.Sprintf("%+.1fs", t.Sub(tl.start).Seconds())
}
