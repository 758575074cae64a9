package edgegroup

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/retry"
)

// outboxLoop takes the outbox lease and runs one worker per peer.
func (g *Groups) outboxLoop(ctx context.Context, eng *cache.Engine) {
	defer g.wg.Done()
	if len(g.peers) == 0 {
		return
	}
	release, err := eng.Lease(ctx, outboxLease)
	if err != nil {
		return
	}
	defer release()
	var wg sync.WaitGroup
	for _, p := range g.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.deliver(ctx, eng, p, g.kicks[p])
		}()
	}
	wg.Wait()
}

// deliver forwards the outbox of one peer until ctx ends: confirmed
// entries are deleted, failures back off (doubling, with jitter), entries
// older than the maximum age are dropped.
func (g *Groups) deliver(ctx context.Context, eng *cache.Engine, peer string, kick <-chan struct{}) {
	failures := 0
	for ctx.Err() == nil {
		pending, err := eng.PendingForwards(peer, outboxBatch)
		if err != nil {
			g.log.Error("reading the flush outbox failed", zap.String("peer", peer), zap.Error(err))
			if !retry.Sleep(ctx, outboxIdle) {
				return
			}
			continue
		}
		cutoff := time.Now().Add(-g.maxAge).UnixMilli()
		var stale []uint64
		fresh := pending[:0]
		for _, fw := range pending {
			if fw.Queued < cutoff {
				stale = append(stale, fw.ID)
			} else {
				fresh = append(fresh, fw)
			}
		}
		if len(stale) > 0 {
			g.log.Warn("flushes not delivered within the maximum age; dropped (the peer's start-up sync still finds them)",
				zap.String("peer", peer), zap.Int("flushes", len(stale)), zap.Duration("max_age", g.maxAge))
			if err := eng.ForwardsDropped(peer, stale, cache.ReasonAge); err != nil {
				g.log.Error("updating the flush outbox failed", zap.String("peer", peer), zap.Error(err))
			}
		}
		if len(fresh) == 0 {
			if len(stale) > 0 {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-kick:
			case <-time.After(outboxIdle):
			}
			continue
		}
		delivered, err := g.forwardAll(ctx, fresh)
		if derr := eng.ForwardsDone(peer, delivered); derr != nil {
			g.log.Error("updating the flush outbox failed", zap.String("peer", peer), zap.Error(derr))
		}
		if len(delivered) > 0 {
			g.status.forwarded(peer, time.Now())
		}
		if err == nil {
			if failures > 0 {
				g.log.Info("forwarding flushes to peer works again", zap.String("peer", peer), zap.Int("failed_attempts", failures))
			}
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		if failures == 1 {
			g.log.Warn("cannot forward flushes to peer; retrying with backoff", zap.String("peer", peer),
				zap.Int("pending", len(fresh)-len(delivered)), zap.Error(err))
		} else {
			g.log.Debug("forwarding flushes to peer failed again", zap.String("peer", peer),
				zap.Int("attempt", failures), zap.Error(err))
		}
		if !retry.Sleep(ctx, retry.Backoff(failures, retryFirst, retryCap)) {
			return
		}
	}
}

// forwardAll sends entries of one peer, a few at a time; it returns the
// IDs the peer confirmed and the last error.
func (g *Groups) forwardAll(ctx context.Context, entries []cache.Forward) ([]uint64, error) {
	var (
		mu        sync.Mutex
		delivered []uint64
		lastErr   error
		wg        sync.WaitGroup
		sem       = make(chan struct{}, forwardParallel)
	)
	for _, fw := range entries {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := g.forward(ctx, fw)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
				return
			}
			delivered = append(delivered, fw.ID)
		}()
	}
	wg.Wait()
	return delivered, lastErr
}
