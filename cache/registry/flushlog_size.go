package registry

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// The flush log and the outbox are bounded in bytes besides their age: an
// edge that takes thousands of flushes of long keys in a minute (or whose
// peer is down) would otherwise grow registry.db by hundreds of megabytes
// within the retention. Their byte counts live in a bucket of their own,
// updated in the same transaction as the entries, so that a write knows at
// once whether it passed a cap and nothing is ever recounted, except once
// in a file written before the counts existed.
//
//	flush-sizes   "log" -> entries(8) + bytes(8)
//	              "outbox" + lp(peer) -> entries(8) + bytes(8)
//	              "counted" -> 1 (the counts above are complete)
var bucketFlushSizes = []byte("flush-sizes")

var (
	sizeKeyLog     = []byte("log")
	sizeKeyCounted = []byte("counted")
	sizePrefixOut  = []byte("outbox")
)

// Default caps of the flush log and of each peer's outbox, in bytes.
const (
	DefaultFlushLogMaxBytes = 64 << 20
	DefaultOutboxMaxBytes   = 64 << 20
)

// elementOverhead is what bbolt stores per key besides the key and value
// (its leaf element header); counted so that a log of tiny keys is bounded
// as well as one of long keys.
const elementOverhead = 16

// trimBatch bounds what one write transaction deletes to get back under a
// cap. A flush adds one log entry and one outbox entry per peer, a sync
// batch at most a few hundred, so a write always gets back under; after a
// cap was lowered the background prune does the rest in batches.
const trimBatch = 1024

// Reasons entries leave the flush log or the outbox other than by delivery.
const (
	ReasonSize = "size" // the cap in bytes was passed: the oldest go
	ReasonAge  = "age"  // older than the retention (log) or the maximum age (outbox)
)

// SizeCount is the size of the flush log or of one peer's outbox.
type SizeCount struct {
	Entries int64
	// Bytes counts keys and values plus bbolt's 16-byte element header
	// each; the file holds more (pages are not full, and there is the
	// freelist).
	Bytes int64
}

// FlushSizes are the sizes of the flush log and of every peer's outbox.
type FlushSizes struct {
	Log    SizeCount
	Outbox map[string]SizeCount // by peer; peers without entries are absent
}

// PeerReason labels a count of outbox entries dropped undelivered.
type PeerReason struct{ Peer, Reason string }

// FlushCounters count, since the registry was opened, the entries that
// left the flush log or the outbox other than by delivery.
type FlushCounters struct {
	LogPruned     map[string]int64     // by reason
	OutboxDropped map[PeerReason]int64 // by peer and reason
}

// flushBounds is the registry's state of the caps: the caps themselves and
// the counters of what was pruned, updated when a transaction commits.
type flushBounds struct {
	logCap, outboxCap atomic.Int64 // 0: the default

	mu            sync.Mutex
	logPruned     map[string]int64
	outboxDropped map[PeerReason]int64
	capHit        chan struct{} // signalled after a commit that pruned by size
}

// SetFlushCaps sets the caps in bytes of the flush log and of each peer's
// outbox (0 or less: the default). A write that passes a cap deletes the
// oldest entries in its own transaction; a lowered cap is reached by the
// next writes and TrimFlushes.
func (r *Registry) SetFlushCaps(logBytes, outboxBytes int64) {
	r.flushes.logCap.Store(max(logBytes, 0))
	r.flushes.outboxCap.Store(max(outboxBytes, 0))
}

func (b *flushBounds) caps() (logCap, outboxCap int64) {
	logCap, outboxCap = b.logCap.Load(), b.outboxCap.Load()
	if logCap <= 0 {
		logCap = DefaultFlushLogMaxBytes
	}
	if outboxCap <= 0 {
		outboxCap = DefaultOutboxMaxBytes
	}
	return logCap, outboxCap
}

// FlushCapHit is signalled (at most one signal waits) after a transaction
// that pruned entries to stay under a cap committed; FlushCounters tells
// how many.
func (r *Registry) FlushCapHit() <-chan struct{} { return r.flushes.signal() }

func (b *flushBounds) signal() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.capHit == nil {
		b.capHit = make(chan struct{}, 1)
	}
	return b.capHit
}

// FlushCounters returns the counts of pruned and dropped entries.
func (r *Registry) FlushCounters() FlushCounters {
	b := &r.flushes
	b.mu.Lock()
	defer b.mu.Unlock()
	c := FlushCounters{LogPruned: make(map[string]int64, len(b.logPruned)),
		OutboxDropped: make(map[PeerReason]int64, len(b.outboxDropped))}
	for k, v := range b.logPruned {
		c.LogPruned[k] = v
	}
	for k, v := range b.outboxDropped {
		c.OutboxDropped[k] = v
	}
	return c
}

// pruned counts entries when tx commits: n log entries, or n outbox
// entries of peer (peer != "" or outbox), for a reason.
func (b *flushBounds) pruned(tx *bolt.Tx, outbox bool, peer, reason string, n int) {
	if n == 0 {
		return
	}
	tx.OnCommit(func() {
		b.mu.Lock()
		if outbox {
			if b.outboxDropped == nil {
				b.outboxDropped = map[PeerReason]int64{}
			}
			b.outboxDropped[PeerReason{peer, reason}] += int64(n)
		} else {
			if b.logPruned == nil {
				b.logPruned = map[string]int64{}
			}
			b.logPruned[reason] += int64(n)
		}
		b.mu.Unlock()
		if reason == ReasonSize {
			select {
			case b.signal() <- struct{}{}:
			default:
			}
		}
	})
}

func outboxSizeKey(peer string) []byte { return lengthPrefixed(bytes.Clone(sizePrefixOut), peer) }

func decodeSize(v []byte) SizeCount {
	if len(v) != 16 {
		return SizeCount{}
	}
	return SizeCount{Entries: int64(binary.BigEndian.Uint64(v)), Bytes: int64(binary.BigEndian.Uint64(v[8:]))}
}

func encodeSize(s SizeCount) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(max(s.Entries, 0)))
	return binary.BigEndian.AppendUint64(v, uint64(max(s.Bytes, 0)))
}

// sizes is the flush-sizes bucket of a write transaction, its counts
// complete (counted now if the file predates them).
func sizes(tx *bolt.Tx) (*bolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(bucketFlushSizes)
	if err != nil {
		return nil, err
	}
	if b.Get(sizeKeyCounted) != nil {
		return b, nil
	}
	// Count once what a file of an earlier version holds.
	var log SizeCount
	if lb := tx.Bucket(bucketFlushLog); lb != nil {
		_ = lb.ForEach(func(k, v []byte) error {
			log.Entries++
			log.Bytes += int64(len(k) + len(v) + elementOverhead)
			return nil
		})
	}
	if gb := tx.Bucket(bucketFlushByGroup); gb != nil {
		_ = gb.ForEach(func(k, v []byte) error {
			log.Bytes += int64(len(k) + len(v) + elementOverhead)
			return nil
		})
	}
	out := map[string]SizeCount{}
	if ob := tx.Bucket(bucketFlushOutbox); ob != nil {
		_ = ob.ForEach(func(k, v []byte) error {
			peer, rest, ok := readLengthPrefixed(k)
			if !ok || len(rest) != 8 {
				return nil
			}
			s := out[peer]
			s.Entries++
			s.Bytes += int64(len(k) + len(v) + elementOverhead)
			out[peer] = s
			return nil
		})
	}
	if err := b.Put(sizeKeyLog, encodeSize(log)); err != nil {
		return nil, err
	}
	for peer, s := range out {
		if err := b.Put(outboxSizeKey(peer), encodeSize(s)); err != nil {
			return nil, err
		}
	}
	// Not an empty value: in a write transaction bbolt's Get returns nil
	// for one, as for a missing key.
	return b, b.Put(sizeKeyCounted, []byte{1})
}

// addSize changes a count by entries and bytes.
func addSize(b *bolt.Bucket, key []byte, entries, n int64) (SizeCount, error) {
	s := decodeSize(b.Get(key))
	s.Entries += entries
	s.Bytes += n
	if s.Entries <= 0 {
		return SizeCount{}, b.Delete(key)
	}
	return s, b.Put(key, encodeSize(s))
}

// trimLog deletes the oldest flushes (by flush time) while the log is over
// its cap, at most limit, and counts them under reason size.
func (r *Registry) trimLog(tx *bolt.Tx, limit int) (int, error) {
	sb, err := sizes(tx)
	if err != nil {
		return 0, err
	}
	logCap, _ := r.flushes.caps()
	log := tx.Bucket(bucketFlushLog)
	n := 0
	for s := decodeSize(sb.Get(sizeKeyLog)); s.Bytes > logCap && log != nil && n < limit; n++ {
		k, _ := log.Cursor().First()
		if k == nil {
			break
		}
		freed, err := deleteLogEntry(tx, bytes.Clone(k))
		if err != nil {
			return n, err
		}
		if s, err = addSize(sb, sizeKeyLog, -1, -freed); err != nil {
			return n, err
		}
	}
	r.flushes.pruned(tx, false, "", ReasonSize, n)
	return n, nil
}

// deleteLogEntry deletes a flush-log key and its group index key; it
// returns the bytes they took.
func deleteLogEntry(tx *bolt.Tx, k []byte) (int64, error) {
	freed := int64(len(k) + elementOverhead)
	if err := tx.Bucket(bucketFlushLog).Delete(k); err != nil {
		return 0, err
	}
	if byGroup := tx.Bucket(bucketFlushByGroup); byGroup != nil {
		if f, ok := decodeFlushLogKey(k); ok {
			gk := flushGroupKey(f)
			if byGroup.Get(gk) != nil {
				freed += int64(len(gk) + elementOverhead)
				if err := byGroup.Delete(gk); err != nil {
					return 0, err
				}
			}
		}
	}
	return freed, nil
}

// trimOutbox deletes the oldest entries of a peer's outbox while it is
// over its cap, at most limit, and counts them under reason size.
func (r *Registry) trimOutbox(tx *bolt.Tx, peer string, limit int) (int, error) {
	sb, err := sizes(tx)
	if err != nil {
		return 0, err
	}
	_, outCap := r.flushes.caps()
	ob := tx.Bucket(bucketFlushOutbox)
	sk := outboxSizeKey(peer)
	prefix := lengthPrefixed(nil, peer)
	n := 0
	for s := decodeSize(sb.Get(sk)); s.Bytes > outCap && ob != nil && n < limit; {
		c := ob.Cursor()
		k, v := c.Seek(prefix)
		for k != nil && bytes.HasPrefix(k, prefix) && len(k) != len(prefix)+8 {
			k, v = c.Next() // not an entry key of this peer
		}
		if k == nil || !bytes.HasPrefix(k, prefix) {
			break
		}
		freed := int64(len(k) + len(v) + elementOverhead)
		if err := ob.Delete(bytes.Clone(k)); err != nil {
			return n, err
		}
		n++
		if s, err = addSize(sb, sk, -1, -freed); err != nil {
			return n, err
		}
	}
	r.flushes.pruned(tx, true, peer, ReasonSize, n)
	return n, nil
}

// FlushSizes returns the sizes of the flush log and of the outboxes.
func (r *Registry) FlushSizes() (FlushSizes, error) {
	out := FlushSizes{Outbox: map[string]SizeCount{}}
	counted := false
	read := func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFlushSizes)
		if b == nil || b.Get(sizeKeyCounted) == nil {
			return nil
		}
		counted = true
		out.Log = decodeSize(b.Get(sizeKeyLog))
		c := b.Cursor()
		for k, v := c.Seek(sizePrefixOut); k != nil && bytes.HasPrefix(k, sizePrefixOut); k, v = c.Next() {
			if peer, rest, ok := readLengthPrefixed(k[len(sizePrefixOut):]); ok && len(rest) == 0 {
				out.Outbox[peer] = decodeSize(v)
			}
		}
		return nil
	}
	if err := r.db.View(read); err != nil || counted {
		return out, err
	}
	// A file of an earlier version, not written since: count it once.
	err := r.db.Update(func(tx *bolt.Tx) error {
		_, err := sizes(tx)
		if err != nil {
			return err
		}
		return read(tx)
	})
	return out, err
}

// TrimFlushes deletes the oldest entries of the flush log and of every
// outbox that is over its cap (after the cap was lowered), up to limit
// in one transaction; it returns how many it deleted, so a caller loops
// until fewer than limit come back.
func (r *Registry) TrimFlushes(limit int) (int, error) {
	if limit <= 0 {
		limit = defaultPruneLimit
	}
	n := 0
	err := r.db.Update(func(tx *bolt.Tx) error {
		n = 0
		sb, err := sizes(tx)
		if err != nil {
			return err
		}
		var peers []string
		c := sb.Cursor()
		for k, _ := c.Seek(sizePrefixOut); k != nil && bytes.HasPrefix(k, sizePrefixOut); k, _ = c.Next() {
			if peer, rest, ok := readLengthPrefixed(k[len(sizePrefixOut):]); ok && len(rest) == 0 {
				peers = append(peers, peer)
			}
		}
		if n, err = r.trimLog(tx, limit); err != nil {
			return err
		}
		for _, p := range peers {
			m, err := r.trimOutbox(tx, p, limit-n)
			n += m
			if err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}
