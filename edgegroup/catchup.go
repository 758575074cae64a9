package edgegroup

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/retry"
)

// startSync catches up with every peer of a group: each peer is asked
// for the flushes since the last one seen from it, and what is new is
// applied. A peer that cannot be reached is retried in the background
// with backoff. At start-up the group is logged "ready" once every peer
// has answered or failed once.
func (g *Groups) startSync(group string, startup bool) {
	g.mu.Lock()
	ctx, eng := g.ctx, g.eng
	if ctx == nil || ctx.Err() != nil || g.syncing[group] {
		g.mu.Unlock()
		return
	}
	g.syncing[group] = true
	g.wg.Add(1)
	g.mu.Unlock()

	peers := g.groups[group]
	go func() {
		defer g.wg.Done()
		defer func() {
			g.mu.Lock()
			delete(g.syncing, group)
			g.mu.Unlock()
		}()
		first := make(chan error, len(peers))
		var peerWG sync.WaitGroup
		for _, p := range peers {
			peerWG.Add(1)
			go func() {
				defer peerWG.Done()
				g.catchUp(ctx, eng, group, p, first)
			}()
		}
		reached, unreachable := 0, 0
		for range peers {
			select {
			case err := <-first:
				if err == nil {
					reached++
				} else {
					unreachable++
				}
			case <-ctx.Done():
				peerWG.Wait()
				return
			}
		}
		if startup {
			g.log.Info("flush group ready", zap.String("group", group), zap.Int("peers", len(peers)),
				zap.Int("caught_up", reached), zap.Int("unreachable", unreachable))
		}
		peerWG.Wait()
	}()
}

// catchUp syncs with one peer until it succeeds (or ctx ends); the result
// of the first attempt goes to first.
func (g *Groups) catchUp(ctx context.Context, eng *cache.Engine, group, peer string, first chan<- error) {
	for attempt := 1; ; attempt++ {
		n, got, since, err := g.syncOnce(ctx, eng, group, peer)
		if attempt == 1 {
			first <- err
		}
		if err == nil {
			g.status.synced(group, peer, time.Now())
			g.log.Info("caught up with peer", zap.String("group", group), zap.String("peer", peer),
				zap.Int64("since", since), zap.Int("listed", got), zap.Int("applied", n), zap.Int("attempts", attempt))
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == 1 {
			g.log.Warn("cannot sync with peer; retrying in the background", zap.String("group", group),
				zap.String("peer", peer), zap.Error(err))
		}
		if !retry.Sleep(ctx, retry.Backoff(attempt, retryFirst, retryCap)) {
			return
		}
	}
}
