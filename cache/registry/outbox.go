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

// QueueForwards puts a flush into the outbox of every peer. A peer's
// outbox that is now over its cap loses its oldest entries.
func (tx *Tx) QueueForwards(f Flush, peers []string, now time.Time) error {
	if len(peers) == 0 {
		return nil
	}
	b, err := tx.tx.CreateBucketIfNotExists(bucketFlushOutbox)
	if err != nil {
		return err
	}
	sb, err := sizes(tx.tx)
	if err != nil {
		return err
	}
	v := encodeForward(f, now.UnixMilli())
	for _, p := range peers {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		k := outboxKey(p, seq)
		if err := b.Put(k, v); err != nil {
			return err
		}
		if _, err := addSize(sb, outboxSizeKey(p), 1, int64(len(k)+len(v)+elementOverhead)); err != nil {
			return err
		}
		if _, err := tx.r.trimOutbox(tx.tx, p, trimBatch); err != nil {
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

// ForwardsDone deletes delivered entries of a peer.
func (r *Registry) ForwardsDone(peer string, ids []uint64) error {
	return r.deleteForwards(peer, ids, "")
}

// ForwardsDropped deletes entries of a peer that are given up
// undelivered, and counts them under reason (ReasonAge, say).
func (r *Registry) ForwardsDropped(peer string, ids []uint64, reason string) error {
	return r.deleteForwards(peer, ids, reason)
}

func (r *Registry) deleteForwards(peer string, ids []uint64, reason string) error {
	if len(ids) == 0 {
		return nil
	}
	return r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFlushOutbox)
		if b == nil {
			return nil
		}
		sb, err := sizes(tx)
		if err != nil {
			return err
		}
		var n, freed int64
		for _, id := range ids {
			k := outboxKey(peer, id)
			v := b.Get(k)
			if v == nil {
				continue // delivered or dropped already
			}
			n, freed = n+1, freed+int64(len(k)+len(v)+elementOverhead)
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if reason != "" {
			r.flushes.pruned(tx, true, peer, reason, int(n))
		}
		_, err = addSize(sb, outboxSizeKey(peer), -n, -freed)
		return err
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
	}, func(tx *bolt.Tx, doomed [][]byte) error {
		sb, err := sizes(tx)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketFlushOutbox)
		type count struct{ n, freed int64 }
		byPeer := map[string]count{}
		for _, k := range doomed {
			if peer, rest, ok := readLengthPrefixed(k); ok && len(rest) == 8 {
				c := byPeer[peer]
				c.n, c.freed = c.n+1, c.freed+int64(len(k)+len(b.Get(k))+elementOverhead)
				byPeer[peer] = c
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for peer, c := range byPeer {
			r.flushes.pruned(tx, true, peer, ReasonAge, int(c.n))
			if _, err := addSize(sb, outboxSizeKey(peer), -c.n, -c.freed); err != nil {
				return err
			}
		}
		return nil
	})
}
