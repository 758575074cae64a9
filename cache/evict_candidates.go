package cache

import (
	"container/heap"
	"fmt"

	"github.com/delivery-edge/edge/cache/registry"
)

// Which pages the evictor takes: one pass over a docroot's registry
// entries finds the least recently read (a heap of the k oldest), and
// keeps more than a round needs for the rounds after it (evict.go).

// scan finds the least recently read pages of s, a round's batch of k
// and more to keep for the next rounds (st.cands).
func (v *evictor) scan(s *Store, st *evictState, k int, files int64) error {
	keep := int(min(max(int64(k), files/v.keepShare), evictKeepMax))
	v.scans.Add(1)
	st.scanned = v.now().UnixMilli()
	cands, err := v.oldest(s, keep)
	if err != nil {
		st.cands = nil
		return err
	}
	st.cands = cands
	return nil
}

// readSince says which of the candidates were read after the scan that
// found them.
func (v *evictor) readSince(cands []evictCandidate) (map[FileID]bool, error) {
	read := map[FileID]bool{}
	err := v.reg.View(func(tx *registry.Tx) error {
		for _, c := range cands {
			if v.access.LastAccess(tx, c.id) > c.lastRead {
				read[c.id] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("access times of pages to evict: %w", err)
	}
	return read, nil
}

// evictCandidate is a page with the time it was last read (or written).
type evictCandidate struct {
	id       FileID
	created  int64
	lastRead int64
}

// candidateHeap holds the k least recently read pages seen so far, the
// most recently read of them on top.
type candidateHeap []evictCandidate

func (h candidateHeap) Len() int           { return len(h) }
func (h candidateHeap) Less(i, j int) bool { return h[i].lastRead > h[j].lastRead }
func (h candidateHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *candidateHeap) Push(x any)        { *h = append(*h, x.(evictCandidate)) }
func (h *candidateHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// oldest returns the k least recently read pages of s, least recent first:
// one pass over the docroot's registry entries, a page of entries per
// read transaction, with the access times read and not yet flushed.
func (v *evictor) oldest(s *Store, k int) ([]evictCandidate, error) {
	h := make(candidateHeap, 0, k)
	after := ""
	for {
		var files []FileID
		var meta map[FileID]registry.Meta
		var more bool
		err := v.reg.View(func(tx *registry.Tx) error {
			var err error
			files, meta, more, err = tx.FilesWithPrefix(s.rootID, "", after, evictScanPage)
			if err != nil {
				return err
			}
			for _, id := range files {
				c := evictCandidate{id: id, created: meta[id].Created}
				c.lastRead = max(c.created, v.access.LastAccess(tx, id))
				switch {
				case len(h) < k:
					heap.Push(&h, c)
				case c.lastRead < h[0].lastRead:
					h[0] = c
					heap.Fix(&h, 0)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list pages to evict: %w", err)
		}
		if !more || len(files) == 0 {
			break
		}
		after = files[len(files)-1].File
	}
	out := make([]evictCandidate, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&h).(evictCandidate)
	}
	return out, nil
}
