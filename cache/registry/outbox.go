package registry

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The outbox holds flushes that must still be forwarded to a peer. An
// entry is written in the same transaction as the flush itself and
// deleted only once the peer confirmed it, so a crash or a peer that is
// down loses nothing. Key: lp(peer) + seq(8); value: lp(group) + time(8)
// + queued(8) + key.
var bucketFlushOutbox = []byte("flush-outbox")

// Forward is a flush waiting in the outbox for one peer.
type Forward struct {
	// ID orders the entries of a peer; ForwardsDone takes it.
	ID   uint64
	Peer string
	Flush
	// Queued is when the entry was written (Unix ms, this edge's clock).
	Queued int64
}

func outboxKey(peer string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(lengthPrefixed(nil, peer), id)
}

func encodeForward(f Flush, queued int64) []byte {
	v := lengthPrefixed(make([]byte, 0, 2+len(f.Group)+16+len(f.Key)), f.Group)
	v = binary.BigEndian.AppendUint64(v, uint64(f.Time))
	v = binary.BigEndian.AppendUint64(v, uint64(queued))
	return append(v, f.Key...)
}

func decodeForward(peer string, k, v []byte) (Forward, error) {
	group, rest, ok := readLengthPrefixed(v)
	if !ok || len(rest) < 16 || len(k) < 8 {
		return Forward{}, fmt.Errorf("malformed outbox entry for %s", peer)
	}
	return Forward{
		ID:     binary.BigEndian.Uint64(k[len(k)-8:]),
		Peer:   peer,
		Flush:  Flush{Group: group, Time: int64(binary.BigEndian.Uint64(rest)), Key: string(rest[16:])},
		Queued: int64(binary.BigEndian.Uint64(rest[8:])),
	}, nil
}

// QueueForwards puts a flush into the outbox of every peer.
func (tx *Tx) QueueForwards(f Flush, peers []string, now time.Time) error {
	if len(peers) == 0 {
		return nil
	}
	b, err := tx.tx.CreateBucketIfNotExists(bucketFlushOutbox)
	if err != nil {
		return err
	}
	v := encodeForward(f, now.UnixMilli())
	for _, p := range peers {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(outboxKey(p, seq), v); err != nil {
			return err
		}
	}
	return nil
}

// PendingForwards returns up to limit (0: all) outbox entries of a peer,
// oldest first.
func (r *Registry) PendingForwards(peer string, limit int) ([]Forward, error) {
	var out []Forward
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFlushOutbox)
		if b == nil {
			return nil
		}
		prefix := lengthPrefixed(nil, peer)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			if len(k) != len(prefix)+8 {
				continue // not an entry key (the length prefix makes peers unambiguous)
			}
			f, err := decodeForward(peer, k, v)
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

// ForwardsDone deletes delivered (or given up) entries of a peer.
func (r *Registry) ForwardsDone(peer string, ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	return r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFlushOutbox)
		if b == nil {
			return nil
		}
		for _, id := range ids {
			if err := b.Delete(outboxKey(peer, id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// OutboxPeers returns the peers that have entries in the outbox.
func (r *Registry) OutboxPeers() ([]string, error) {
	var peers []string
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFlushOutbox)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; {
			peer, rest, ok := readLengthPrefixed(k)
			if !ok || len(rest) != 8 {
				k, _ = c.Next()
				continue
			}
			peers = append(peers, peer)
			// Skip the rest of this peer's entries.
			k, _ = c.Seek(binary.BigEndian.AppendUint64(lengthPrefixed(nil, peer), ^uint64(0)))
			if k != nil && bytes.Equal(k, outboxKey(peer, ^uint64(0))) {
				k, _ = c.Next()
			}
		}
		return nil
	})
	return peers, err
}

// PruneOutbox deletes up to limit outbox entries (of any peer) queued
// before cutoff (Unix ms): flushes too old to be worth forwarding. It
// returns how many it deleted.
func (r *Registry) PruneOutbox(cutoff int64, limit int) (int, error) {
	return r.prune(bucketFlushOutbox, limit, func(k, v []byte) (doomed, stop bool) {
		peer, rest, ok := readLengthPrefixed(k)
		if !ok || len(rest) != 8 {
			return true, false // not an entry key
		}
		f, err := decodeForward(peer, k, v)
		return err != nil || f.Queued < cutoff, false
	}, nil)
}
