package stagingclient

import (
	"maps"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// maxUnknownPairs bounds the distinct kind/state pairs of unknown events
// that are logged and counted under label values of their own; further
// pairs are counted as otherLabel, so a server sending ever new values
// cannot grow the log or the metrics without bound.
const maxUnknownPairs = 32

// otherLabel stands for every kind/state pair beyond maxUnknownPairs.
const otherLabel = "other"

// EventPair is the kind and state of an event, as metric labels: valid
// UTF-8, or "other" for both once more pairs were seen than are counted
// apart.
type EventPair struct{ Kind, State string }

// UnknownEvents decides, in one place for every follower of the event log
// (the invalidation of the docroot cache, the image update service), what
// the edge does with an event whose kind or state it does not know (a
// newer CMS, a primary's "saved" state), and keeps count of them. One such
// event must not stop every later change from reaching the edge, so none
// of them fails a batch:
//
//   - an unknown kind is skipped: the edge cannot tell which files depend
//     on something it does not know;
//   - an unknown state of a known kind is taken as a publication that
//     changed every property (the safe side): every file that depends on
//     the document is rendered again. It is not taken as offline or
//     deleted, which would purge the files and their .old copies for
//     content that may well still be live.
//
// Each distinct pair is logged once (up to maxUnknownPairs). The zero
// value is ready to use and logs nothing; it is safe for concurrent use.
type UnknownEvents struct {
	log *zap.Logger // nil: not logged

	mu     sync.Mutex
	counts map[EventPair]int64
	full   bool // the pair limit was hit (and said so in the log)
}

// NewUnknownEvents returns an UnknownEvents that logs to log (nil: not at
// all).
func NewUnknownEvents(log *zap.Logger) *UnknownEvents { return &UnknownEvents{log: log} }

// Triage returns the event as the edge acts on it, and false when it is
// to be skipped.
func (u *UnknownEvents) Triage(ev Event) (Event, bool) {
	kindKnown, stateKnown := KnownKind(ev.Kind), KnownState(ev.State)
	if kindKnown && stateKnown {
		return ev, true
	}
	u.note(ev, kindKnown)
	if !kindKnown {
		return ev, false
	}
	ev.State = StatePublished
	ev.ChangedProperties = nil
	return ev, true
}

// note counts an unknown event and logs its pair the first time.
func (u *UnknownEvents) note(ev Event, kindKnown bool) {
	// The decoder passes valid UTF-8 of bounded length only; a label
	// that is not valid UTF-8 would make every scrape fail.
	p := EventPair{strings.ToValidUTF8(ev.Kind, "\uFFFD"), strings.ToValidUTF8(ev.State, "\uFFFD")}
	u.mu.Lock()
	if u.counts == nil {
		u.counts = map[EventPair]int64{}
	}
	_, seen := u.counts[p]
	overflow := !seen && len(u.counts) >= maxUnknownPairs
	if overflow {
		p = EventPair{otherLabel, otherLabel}
		_, seen = u.counts[p]
	}
	u.counts[p]++
	first := !seen && !overflow
	firstOverflow := overflow && !u.full
	u.full = u.full || overflow
	u.mu.Unlock()

	if u.log == nil {
		return
	}
	fields := []zap.Field{zap.String("kind", ev.Kind), zap.String("state", ev.State), zap.String("id", ev.ID),
		zap.Int64("source_time", ev.SourceTime)}
	switch {
	case first && !kindKnown:
		u.log.Warn("event of an unknown kind skipped; further events of this kind and state are counted, not logged", fields...)
	case first:
		u.log.Warn("event of an unknown state taken as a change of every property of the document; "+
			"further events of this kind and state are counted, not logged", fields...)
	case firstOverflow:
		u.log.Warn("more distinct kinds and states of unknown events than are logged and counted apart; "+
			"further ones are counted as \"other\", not logged", append(fields, zap.Int("limit", maxUnknownPairs))...)
	}
}

// Counts returns the unknown events counted so far, by kind/state pair.
func (u *UnknownEvents) Counts() map[EventPair]int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.counts)
}
