package cache

import (
	"hash/maphash"
	"sync/atomic"
)

// s3fifo is the admission and eviction policy of the hot set: S3-FIFO
// (Yang et al., SOSP 2023). New entries go to a small FIFO; an entry read
// again while there moves to the main FIFO when it reaches the end,
// others leave (their keys are remembered in a ghost FIFO, and a key that
// comes back from the ghost goes straight to main). Main is a FIFO with
// reinsertion (CLOCK-like). A hit only bumps a small counter on the entry
// (an atomic add, no lock), which is why it suits a hit path shared by
// all cores; the policy's lock is taken only to insert.
//
// s3fifo is not safe for concurrent use; the hot set serialises calls.
type s3fifo struct {
	budget, smallBudget int64
	small, main         fifo
	smallBytes          int64
	mainBytes           int64
	ghost               ghostFIFO
}

// s3Node is an entry as the policy sees it.
type s3Node struct {
	key    string
	size   int64
	freq   atomic.Int32 // reads since insertion or the last pass, capped at 3
	inMain bool
	next   *s3Node
}

// touch records a read (called on the hit path).
func (n *s3Node) touch() {
	if n.freq.Load() < 3 {
		n.freq.Add(1)
	}
}

type fifo struct{ head, tail *s3Node } // insert at tail, evict at head

func (q *fifo) push(n *s3Node) {
	n.next = nil
	if q.tail == nil {
		q.head, q.tail = n, n
		return
	}
	q.tail.next = n
	q.tail = n
}

func (q *fifo) pop() *s3Node {
	n := q.head
	if n == nil {
		return nil
	}
	q.head = n.next
	if q.head == nil {
		q.tail = nil
	}
	n.next = nil
	return n
}

// ghostFIFO remembers recently evicted keys (as hashes), bounded.
type ghostFIFO struct {
	seed  maphash.Seed
	ring  []uint64
	pos   int
	count map[uint64]int
}

func newGhost(n int) ghostFIFO {
	return ghostFIFO{seed: maphash.MakeSeed(), ring: make([]uint64, max(n, 16)), count: map[uint64]int{}}
}

func (g *ghostFIFO) add(key string) {
	h := maphash.String(g.seed, key) | 1 // 0 marks an empty slot
	if old := g.ring[g.pos]; old != 0 {
		if g.count[old]--; g.count[old] <= 0 {
			delete(g.count, old)
		}
	}
	g.ring[g.pos] = h
	g.count[h]++
	g.pos = (g.pos + 1) % len(g.ring)
}

func (g *ghostFIFO) contains(key string) bool {
	return g.count[maphash.String(g.seed, key)|1] > 0
}

// newS3FIFO makes a policy for a byte budget; ghostEntries bounds the
// ghost's memory.
func newS3FIFO(budget int64, ghostEntries int) *s3fifo {
	return &s3fifo{budget: budget, smallBudget: max(budget/10, 1), ghost: newGhost(ghostEntries)}
}

// insert admits a new entry and returns the keys it evicts to make room.
// Entries larger than the small queue's budget are not admitted (admitted
// is false): they would push out everything else.
func (p *s3fifo) insert(n *s3Node) (evicted []string, admitted bool) {
	if n.size > p.smallBudget && !p.ghost.contains(n.key) || n.size > p.budget/2 {
		return nil, false
	}
	for p.smallBytes+p.mainBytes+n.size > p.budget {
		k, ok := p.evict()
		if !ok {
			break
		}
		if k != "" {
			evicted = append(evicted, k)
		}
	}
	if p.ghost.contains(n.key) {
		n.inMain = true
		p.main.push(n)
		p.mainBytes += n.size
	} else {
		p.small.push(n)
		p.smallBytes += n.size
	}
	return evicted, true
}

// remove forgets an entry that was invalidated. The node stays linked and
// is skipped when it reaches the head (size 0 marks it dead).
func (p *s3fifo) remove(n *s3Node) {
	if n.inMain {
		p.mainBytes -= n.size
	} else {
		p.smallBytes -= n.size
	}
	n.size = -1
}

// evict frees one entry; it returns its key ("" for a dead node) and
// false when nothing is left.
func (p *s3fifo) evict() (string, bool) {
	if p.smallBytes >= p.smallBudget || p.main.head == nil {
		if n := p.small.pop(); n != nil {
			if n.size < 0 {
				return "", true
			}
			p.smallBytes -= n.size
			if n.freq.Load() > 1 {
				n.freq.Store(0)
				n.inMain = true
				p.main.push(n)
				p.mainBytes += n.size
				return "", true
			}
			p.ghost.add(n.key)
			return n.key, true
		}
	}
	for n := p.main.pop(); n != nil; n = p.main.pop() {
		if n.size < 0 {
			return "", true
		}
		if f := n.freq.Load(); f > 0 {
			n.freq.Store(f - 1)
			p.main.push(n)
			continue
		}
		p.mainBytes -= n.size
		return n.key, true
	}
	return "", p.small.head != nil
}
