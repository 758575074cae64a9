package registry

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// Flush is one explicit flush of a cache key (the cache servlet's
// action=flush). Its identity is Key and Time: the edge that took the
// flush first stamps it, and every peer records it with that stamp, so a
// flush that reaches an edge twice (forwarded and synced, or retried) is
// applied once.
type Flush struct {
	Key   string
	Group string
	// Time is when the flush was taken (Unix ms, the first edge's clock).
	Time int64
}

// Buckets of the flush log, created at first use. Strings inside keys are
// length-prefixed (uvarint), so no key or group name can run into the
// next field.
var (
	// time(8) + lp(key) + group -> nil: every flush, in time order.
	bucketFlushLog = []byte("flush-log")
	// lp(group) + time(8) + key -> nil: the flushes of a group, in time
	// order, for sync answers.
	bucketFlushByGroup = []byte("flush-by-group")
	// lp(group) + peer -> time(8): the newest flush seen in a peer's sync
	// answer.
	bucketFlushPeers = []byte("flush-peers")
)

func lengthPrefixed(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// readLengthPrefixed splits a length-prefixed string off b.
func readLengthPrefixed(b []byte) (s string, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return "", nil, false
	}
	return string(b[w : w+int(n)]), b[w+int(n):], true
}

// flushIDPrefix is the flush-log key of a (time, key) pair without the
// group: every record of that flush starts with it.
func flushIDPrefix(ts int64, key string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+binary.MaxVarintLen64+len(key)), uint64(ts))
	return lengthPrefixed(k, key)
}

func flushLogKey(f Flush) []byte { return append(flushIDPrefix(f.Time, f.Key), f.Group...) }

func decodeFlushLogKey(k []byte) (Flush, bool) {
	if len(k) < 8 {
		return Flush{}, false
	}
	key, rest, ok := readLengthPrefixed(k[8:])
	if !ok {
		return Flush{}, false
	}
	return Flush{Time: int64(binary.BigEndian.Uint64(k)), Key: key, Group: string(rest)}, true
}

func groupPrefix(group string) []byte { return lengthPrefixed(nil, group) }

func flushGroupKey(f Flush) []byte {
	k := binary.BigEndian.AppendUint64(groupPrefix(f.Group), uint64(f.Time))
	return append(k, f.Key...)
}

func flushPeerKey(group, peer string) []byte { return append(groupPrefix(group), peer...) }

// flushSeen reports whether a flush with this key and time is in the log
// (under any group).
func flushSeen(tx *bolt.Tx, ts int64, key string) bool {
	b := tx.Bucket(bucketFlushLog)
	if b == nil {
		return false
	}
	prefix := flushIDPrefix(ts, key)
	k, _ := b.Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// recordFlush writes a flush into the log and its group index, counts
// its bytes and, if the log is now over its cap, deletes the oldest
// flushes.
func (tx *Tx) recordFlush(f Flush) error {
	log, err := tx.tx.CreateBucketIfNotExists(bucketFlushLog)
	if err != nil {
		return err
	}
	byGroup, err := tx.tx.CreateBucketIfNotExists(bucketFlushByGroup)
	if err != nil {
		return err
	}
	sb, err := sizes(tx.tx)
	if err != nil {
		return err
	}
	lk, gk := flushLogKey(f), flushGroupKey(f)
	var entries, added int64
	if log.Get(lk) == nil {
		entries, added = 1, int64(len(lk)+elementOverhead)
	}
	if byGroup.Get(gk) == nil {
		added += int64(len(gk) + elementOverhead)
	}
	if err := log.Put(lk, nil); err != nil {
		return err
	}
	if err := byGroup.Put(gk, nil); err != nil {
		return err
	}
	if _, err := addSize(sb, sizeKeyLog, entries, added); err != nil {
		return err
	}
	_, err = tx.r.trimLog(tx.tx, trimBatch)
	return err
}

// LogFlush records a flush in the log unless a flush with the same key
// and time is there already (under any group); isNew says whether it was
// new, i.e. is to be applied. A flush seen before under another group is
// added to f's group, so that group's sync answers list it too.
//
// A flush so old that it is the oldest of a log at its cap is recorded
// and pruned at once; it is still new (applied).
func (tx *Tx) LogFlush(f Flush) (isNew bool, err error) {
	if flushSeen(tx.tx, f.Time, f.Key) {
		if tx.tx.Bucket(bucketFlushLog).Get(flushLogKey(f)) == nil {
			return false, tx.recordFlush(f)
		}
		return false, nil
	}
	return true, tx.recordFlush(f)
}

// FlushesSince returns the flushes of a group taken at or after since
// (Unix ms), oldest first: the answer to a peer's sync.
func (r *Registry) FlushesSince(group string, since int64) ([]Flush, error) {
	var out []Flush
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFlushByGroup)
		if b == nil {
			return nil
		}
		prefix := groupPrefix(group)
		c := b.Cursor()
		for k, _ := c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(max(since, 0)))); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rest := k[len(prefix):]
			if len(rest) < 8 {
				continue
			}
			out = append(out, Flush{Group: group, Time: int64(binary.BigEndian.Uint64(rest)), Key: string(rest[8:])})
		}
		return nil
	})
	return out, err
}

// FlushLogged reports whether a flush with this key and time is in the log.
func (r *Registry) FlushLogged(key string, ts int64) (bool, error) {
	var seen bool
	err := r.db.View(func(tx *bolt.Tx) error {
		seen = flushSeen(tx, ts, key)
		return nil
	})
	return seen, err
}

// PruneFlushLog deletes up to limit flushes taken before cutoff (Unix ms),
// oldest first, in one transaction; it returns how many it deleted, so a
// caller loops (between other work) until fewer than limit come back.
func (r *Registry) PruneFlushLog(cutoff int64, limit int) (int, error) {
	return r.prune(bucketFlushLog, limit, func(k, _ []byte) (doomed, stop bool) {
		if len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) >= cutoff {
			return false, true // the rest is newer
		}
		return true, false
	}, func(tx *bolt.Tx, doomed [][]byte) error {
		sb, err := sizes(tx)
		if err != nil {
			return err
		}
		var freed int64
		for _, k := range doomed {
			n, err := deleteLogEntry(tx, k)
			if err != nil {
				return err
			}
			freed += n
		}
		r.flushes.pruned(tx, false, "", ReasonAge, len(doomed))
		_, err = addSize(sb, sizeKeyLog, -int64(len(doomed)), -freed)
		return err
	})
}

// SyncPosition returns the time of the newest flush seen in a peer's sync
// answer for a group (0: never synced).
func (r *Registry) SyncPosition(group, peer string) (int64, error) {
	var pos int64
	err := r.View(func(tx *Tx) error {
		pos = tx.SyncPosition(group, peer)
		return nil
	})
	return pos, err
}

// SyncPosition is Registry.SyncPosition in the transaction.
func (tx *Tx) SyncPosition(group, peer string) int64 {
	b := tx.tx.Bucket(bucketFlushPeers)
	if b == nil {
		return 0
	}
	if v := b.Get(flushPeerKey(group, peer)); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// SetSyncPosition stores a peer's sync position for a group.
func (tx *Tx) SetSyncPosition(group, peer string, pos int64) error {
	b, err := tx.tx.CreateBucketIfNotExists(bucketFlushPeers)
	if err != nil {
		return err
	}
	return b.Put(flushPeerKey(group, peer), binary.BigEndian.AppendUint64(nil, uint64(pos)))
}
