package cache

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

const accessShards = 64

// AccessLog records when cached files were last read. Hits only touch one
// of many small shards in memory; Flush writes the collected times to the
// registry in one transaction, never on the hit path.
//
// The batch being written stays readable (Pending) until the next Flush
// replaces it: it left the shards before its transaction committed, and a
// reader whose transaction began before that commit finds it in neither
// place otherwise. The evictor then took pages read a moment ago for the
// least recently read, and the invalidator sent them to removal instead of
// pre-generation.
type AccessLog struct {
	seed   maphash.Seed
	shards [accessShards]accessShard

	flushMu sync.Mutex                       // one Flush at a time
	last    atomic.Pointer[map[FileID]int64] // the batch of the last Flush; never changed once stored
}

type accessShard struct {
	mu   sync.Mutex
	m    map[FileID]int64
	hits int64
	_    [32]byte // keep shards on separate cache lines
}

// NewAccessLog returns an empty log.
func NewAccessLog() *AccessLog {
	a := &AccessLog{seed: maphash.MakeSeed()}
	for i := range a.shards {
		a.shards[i].m = map[FileID]int64{}
	}
	return a
}

func (a *AccessLog) shard(id FileID) *accessShard {
	h := maphash.String(a.seed, id.File) ^ uint64(id.Root)
	return &a.shards[h%accessShards]
}

// Touch records an access at ms (Unix milliseconds).
func (a *AccessLog) Touch(id FileID, ms int64) {
	s := a.shard(id)
	s.mu.Lock()
	s.hits++
	if s.m[id] < ms {
		s.m[id] = ms
	}
	s.mu.Unlock()
}

// Hits is the number of accesses recorded since the start.
func (a *AccessLog) Hits() int64 {
	var n int64
	for i := range a.shards {
		s := &a.shards[i]
		s.mu.Lock()
		n += s.hits
		s.mu.Unlock()
	}
	return n
}

// Pending returns the newest access not yet flushed, or flushed by the
// last Flush (0: none).
func (a *AccessLog) Pending(id FileID) int64 {
	s := a.shard(id)
	s.mu.Lock()
	ms := s.m[id]
	s.mu.Unlock()
	if last := a.last.Load(); last != nil {
		ms = max(ms, (*last)[id])
	}
	return ms
}

// Flush writes every collected access time into the registry and forgets
// it. On failure the times are kept for the next attempt.
func (a *AccessLog) Flush(reg *registry.Registry) (int, error) {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	batch := map[FileID]int64{}
	for i := range a.shards {
		s := &a.shards[i]
		s.mu.Lock()
		if len(s.m) > 0 {
			for id, ms := range s.m {
				batch[id] = ms
			}
			s.m = make(map[FileID]int64, len(s.m))
		}
		s.mu.Unlock()
	}
	if len(batch) == 0 {
		return 0, nil
	}
	a.last.Store(&batch)
	if err := reg.WriteAccess(batch); err != nil {
		for id, ms := range batch {
			a.Touch(id, ms)
		}
		return 0, err
	}
	return len(batch), nil
}

// LastAccess is the newest known access of a file (pending or stored).
func (a *AccessLog) LastAccess(tx *registry.Tx, id FileID) int64 {
	return max(a.Pending(id), tx.LastAccess(id))
}

// run writes the collected access times every interval until ctx ends.
func (a *AccessLog) run(ctx context.Context, reg *registry.Registry, every time.Duration, log *zap.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := a.Flush(reg); err != nil {
				log.Warn("access times not written; will retry", zap.Error(err))
			}
		}
	}
}
