package cache

import (
	"hash/maphash"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/delivery-edge/edge/cache/ssi"
)

// hotEntry is a cached file held in memory with everything its answer
// needs precomputed. Header values are slices with cap == len, so a
// handler that appends to one gets a copy and never writes into the
// shared array.
type hotEntry struct {
	node     *s3Node
	info     fs.FileInfo
	body     []byte
	gzip     []byte // precompressed variants, nil when there is none
	brotli   []byte
	modTime  time.Time
	ssi      bool
	part     *ssi.Body // the content as an SSI part (with its directives when marked)
	etag     []string
	lastMod  []string
	ctype    []string
	length   []string
	gzLength []string
	gzEtag   []string
	brLength []string
	brEtag   []string

	// ident is the identity of the file the entry was read from, checked
	// against the disk at most once per HotValid (file_ident.go); cname is
	// the file's name NUL-terminated, for that check; checked is when it was
	// last checked (monoNow).
	ident   fileIdent
	cname   []byte
	checked atomic.Int64
}

const hotShards = 64

// HotSet keeps the hottest small cached files in memory. It is coherent:
// every write, rename and removal of a file in the docroot goes through
// the Store, which drops the file from the hot set after the change on
// disk and bumps the shard's epoch; a fill that read the file before such
// a change sees the new epoch and is not kept. So once an invalidation
// has returned, no reader gets the old bytes from memory.
//
// Reads take no lock and allocate nothing: each shard's map is replaced
// as a whole (copy on write) under the shard's lock, and readers load it
// with one atomic read. A hit is counted with an atomic add on the entry
// that stops once the entry is known to be hot. The policy lock is taken
// only when an entry is added.
type HotSet struct {
	maxEntry int64
	valid    int64 // ns an entry is served without a look at the disk; < 0: every hit
	seed     maphash.Seed
	shards   [hotShards]hotShard

	mu     sync.Mutex // the policy
	policy *s3fifo
	bytes  atomic.Int64

	fills, rejected atomic.Int64
}

type hotShard struct {
	m     atomic.Pointer[map[string]*hotEntry]
	epoch atomic.Uint64
	hits  atomic.Int64
	mu    sync.Mutex // writers: fills, invalidations, evictions
	_     [32]byte
}

// load returns the entry of name in the shard's current map.
func (sh *hotShard) load(name string) (*hotEntry, bool) {
	m := sh.m.Load()
	if m == nil {
		return nil, false
	}
	e, ok := (*m)[name]
	return e, ok
}

// store and remove replace the shard's map; called with sh.mu held.
func (sh *hotShard) store(name string, e *hotEntry) {
	old := sh.m.Load()
	n := make(map[string]*hotEntry, 1+mapLen(old))
	if old != nil {
		for k, v := range *old {
			n[k] = v
		}
	}
	n[name] = e
	sh.m.Store(&n)
}

func (sh *hotShard) remove(name string) (*hotEntry, bool) {
	old := sh.m.Load()
	if old == nil {
		return nil, false
	}
	e, ok := (*old)[name]
	if !ok {
		return nil, false
	}
	n := make(map[string]*hotEntry, len(*old))
	for k, v := range *old {
		if k != name {
			n[k] = v
		}
	}
	sh.m.Store(&n)
	return e, true
}

func mapLen(m *map[string]*hotEntry) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// NewHotSet makes a hot set of budget bytes; files larger than maxEntry
// are never held. An entry is served for up to valid without checking
// that its file on disk is unchanged (negative: checked on every hit).
func NewHotSet(budget, maxEntry int64, valid time.Duration) *HotSet {
	return &HotSet{maxEntry: maxEntry, valid: int64(valid), seed: maphash.MakeSeed(),
		policy: newS3FIFO(budget, int(max(budget/(16<<10), 1024)))}
}

func (h *HotSet) shard(name string) *hotShard {
	return &h.shards[maphash.String(h.seed, name)%hotShards]
}

// get returns the entry of a file and counts the hit.
func (h *HotSet) get(name string) *hotEntry {
	sh := h.shard(name)
	e, ok := sh.load(name)
	if !ok {
		return nil
	}
	e.node.touch()
	sh.hits.Add(1)
	return e
}

// epoch is read before a fill reads the file.
func (h *HotSet) epoch(name string) uint64 { return h.shard(name).epoch.Load() }

// admissible reports whether a file of this size may be held at all.
func (h *HotSet) admissible(info fs.FileInfo) bool {
	return info.Size() <= h.maxEntry && info.Mode().IsRegular()
}

// fill adds an entry read from disk, unless the file changed since epoch
// was taken or the policy does not admit it.
func (h *HotSet) fill(name string, e *hotEntry, epoch uint64) {
	size := int64(len(e.body) + len(e.gzip) + len(e.brotli) + 2*len(name) + 256)
	e.node = &s3Node{key: name, size: size}
	e.cname = append([]byte(name), 0)
	e.checked.Store(monoNow())
	sh := h.shard(name)
	sh.mu.Lock()
	if sh.epoch.Load() != epoch {
		sh.mu.Unlock()
		h.rejected.Add(1)
		return
	}
	if _, loaded := sh.load(name); loaded {
		sh.mu.Unlock()
		return
	}
	h.mu.Lock()
	evicted, admitted := h.policy.insert(e.node)
	h.mu.Unlock()
	if admitted {
		sh.store(name, e)
		h.bytes.Add(size)
		h.fills.Add(1)
	}
	sh.mu.Unlock()
	for _, k := range evicted {
		h.drop(k, false)
	}
}

// invalidate drops a file after it changed on disk.
func (h *HotSet) invalidate(name string) {
	sh := h.shard(name)
	sh.epoch.Add(1)
	h.drop(name, true)
}

func (h *HotSet) drop(name string, fromPolicy bool) {
	sh := h.shard(name)
	sh.mu.Lock()
	e, ok := sh.remove(name)
	sh.mu.Unlock()
	if !ok {
		return
	}
	h.bytes.Add(-e.node.size)
	if fromPolicy {
		h.mu.Lock()
		h.policy.remove(e.node)
		h.mu.Unlock()
	}
}

// fresh reports whether e may be served without looking at the disk; when
// it is false the caller checks the file (and only that caller: others
// serve the entry meanwhile).
func (h *HotSet) fresh(e *hotEntry) bool {
	if h.valid < 0 {
		return false // check on every hit
	}
	now := monoNow()
	last := e.checked.Load()
	if now-last < h.valid {
		return true
	}
	return !e.checked.CompareAndSwap(last, now)
}

// HotStats are the hot set's figures.
type HotStats struct {
	Entries, Bytes        int64
	Hits, Fills, Rejected int64
}

// Stats returns the hot set's figures.
func (h *HotSet) Stats() HotStats {
	st := HotStats{Bytes: h.bytes.Load(), Fills: h.fills.Load(), Rejected: h.rejected.Load()}
	for i := range h.shards {
		st.Hits += h.shards[i].hits.Load()
		st.Entries += int64(mapLen(h.shards[i].m.Load()))
	}
	return st
}
