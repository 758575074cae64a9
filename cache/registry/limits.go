package registry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// LimitError says that a render answer, or the registry record made of
// it, is beyond a limit; such an answer is not cached.
type LimitError struct {
	What  string // what was counted, e.g. "Delivery-Cache-Keys items"
	Got   int
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %d, more than the limit of %d", e.What, e.Got, e.Limit)
}

// CheckLimit returns a *LimitError when got is above limit.
func CheckLimit(what string, got, limit int) error {
	if got > limit {
		return &LimitError{What: what, Got: got, Limit: limit}
	}
	return nil
}

// maxEntryBytes bounds the encoded entry of one file. Within the render
// limits (cache.MaxRenderHeaderBytes) an entry takes about 64 KiB plus its
// URL and host; the bound keeps a journal line (JSON, at most six bytes
// per byte) far below what the journal reader takes (maxJournalLine).
const maxEntryBytes = 256 << 10

// CheckEntry reports whether the registry can store the entry of id: every
// key and value it writes (entry, reverse-index, resource and expiry keys)
// within bbolt's limits, and the encoded entry within maxEntryBytes. The
// render path runs it before a file is written, Put before a record enters
// the journal, and the journal's writer on every record it applies, so a
// record that fails here is refused or moved aside, never retried.
func CheckEntry(id FileID, e *Entry) error {
	fileKey := 2 + len(id.File)
	if err := CheckLimit("bytes of a registry key (file name)", fileKey+8, bolt.MaxKeySize); err != nil {
		return err // +8: the expiry key puts the time in front
	}
	check := func(d Dependency) error {
		what := "bytes of a registry index key (" + d.Kind.String() + ")"
		if err := CheckLimit(what, 1+len(d.Name)+1+fileKey, bolt.MaxKeySize); err != nil {
			return err
		}
		if d.Kind == DepResource && d.Name == "" {
			return &LimitError{What: "bytes of a resource name (empty)", Got: 0, Limit: 1}
		}
		return nil
	}
	for _, d := range e.Deps {
		if err := check(d); err != nil {
			return err
		}
	}
	for _, k := range e.Keys {
		if err := check(Dependency{Kind: DepKey, Name: k}); err != nil {
			return err
		}
	}
	return CheckLimit("bytes of an encoded registry entry", encodedEntrySize(e), min(maxEntryBytes, bolt.MaxValueSize))
}

// encodedEntrySize is len(marshalEntry(e)) without encoding it.
func encodedEntrySize(e *Entry) int {
	str := func(s string) int { return uvarintLen(uint64(len(s))) + len(s) }
	n := 1 + str(e.Key) + str(e.Host) + varintLen(e.Created) + varintLen(e.Expires) + 1
	n += uvarintLen(uint64(len(e.Deps)))
	for _, d := range e.Deps {
		n += 1 + str(d.Name) + uvarintLen(uint64(len(d.Props)))
		for _, p := range d.Props {
			n += str(p)
		}
		if d.Kind == DepResource {
			n += str(d.Hash)
		}
	}
	n += uvarintLen(uint64(len(e.Keys)))
	for _, k := range e.Keys {
		n += str(k)
	}
	return n
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}

// isRecordError reports whether applying a record failed because of the
// record itself (it would fail again however often it is retried) rather
// than because of the disk or the database.
func isRecordError(err error) bool {
	var le *LimitError
	return errors.As(err, &le) || errors.Is(err, berrors.ErrKeyTooLarge) || errors.Is(err, berrors.ErrValueTooLarge) ||
		errors.Is(err, berrors.ErrKeyRequired) || errors.Is(err, errBadEntry)
}

// OverLimits is the number of render answers not cached since the start
// because their record was beyond a limit (see LimitError).
func (r *Registry) OverLimits() int64 { return r.overLimits.n.Load() }

// NoteOverLimits counts a render answer that is not cached because it (or
// its record) is beyond a limit, and logs each URL once on log.
func (r *Registry) NoteOverLimits(log *zap.Logger, url string, err error) {
	r.overLimits.note(log, url, err)
}

// overLimits counts render answers not cached because their record is
// beyond a limit, and logs each URL once.
type overLimits struct {
	n    atomic.Int64
	once logOnce
}

func (o *overLimits) note(log *zap.Logger, url string, err error) {
	o.n.Add(1)
	first, remembered := o.once.first(url)
	switch {
	case first && remembered:
		log.Warn("render record over limits; not cached", zap.String("url", url), zap.Error(err))
	case first:
		log.Debug("render record over limits; not cached", zap.String("url", url), zap.Error(err))
	}
}

// logOnceCap bounds the URLs remembered as already logged, so a backend
// (or a crawler) producing endless distinct URLs cannot grow it; past the
// cap, further URLs are logged at debug level.
const logOnceCap = 4096

// logOnce remembers which URLs were logged.
type logOnce struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// first reports whether url is logged for the first time, and whether
// there was room to remember it.
func (l *logOnce) first(url string) (first, remembered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[url]; ok {
		return false, true
	}
	if len(l.seen) >= logOnceCap {
		return true, false
	}
	if l.seen == nil {
		l.seen = map[string]struct{}{}
	}
	l.seen[url] = struct{}{}
	return true, true
}
