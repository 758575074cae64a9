package edgegroup

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/retry"
)

// capReportInterval: entries pruned to stay under a cap are logged at
// once, then at most once per interval with the count since the last line.
const capReportInterval = time.Minute

// pruneLoop trims the flush log and the outboxes to their caps at start
// (a cap may have been lowered), then, a minute after the start (so that
// start-up work comes first) and hourly, deletes flush log entries older
// than the retention and outbox entries older than the maximum age; all
// in bounded batches.
func (g *Groups) pruneLoop(ctx context.Context, eng *cache.Engine) {
	defer g.wg.Done()
	g.prune(ctx, eng, false)
	for wait := time.Minute; retry.Sleep(ctx, wait); wait = pruneInterval {
		g.prune(ctx, eng, true)
	}
}

// pruneStep is one kind of pruning: fn deletes up to n entries and says
// how many it deleted.
type pruneStep struct {
	what string
	fn   func(n int) (int, error)
}

func (g *Groups) prune(ctx context.Context, eng *cache.Engine, byAge bool) {
	steps := []pruneStep{{"flush log and outboxes over their caps", eng.TrimFlushes}}
	if byAge {
		now := time.Now()
		logCutoff, outboxCutoff := now.Add(-g.retention).UnixMilli(), now.Add(-g.maxAge).UnixMilli()
		steps = append(steps,
			pruneStep{"flush log", func(n int) (int, error) { return eng.PruneFlushLog(logCutoff, n) }},
			pruneStep{"flush outbox", func(n int) (int, error) { return eng.PruneOutbox(outboxCutoff, n) }})
	}
	for _, step := range steps {
		total := 0
		for ctx.Err() == nil {
			n, err := step.fn(pruneBatch)
			total += n
			if err != nil {
				g.log.Error("pruning failed", zap.String("what", step.what), zap.Error(err))
				break
			}
			if n < pruneBatch {
				break
			}
		}
		if total > 0 {
			g.log.Info("pruned old entries", zap.String("what", step.what), zap.Int("entries", total))
		}
	}
}

// capReport logs the entries the flush log and each peer's outbox lost
// to their caps: a line when it starts, then at most one per
// capReportInterval while it goes on, each with the count since the
// previous line (the log and each peer apart).
func (g *Groups) capReport(ctx context.Context, eng *cache.Engine) {
	defer g.wg.Done()
	logKey := cache.PeerReason{Reason: "log"} // the flush log's series; the outboxes' are by peer
	reported := map[cache.PeerReason]int64{}  // the count at the last line
	next := map[cache.PeerReason]time.Time{}  // no line before
	series := func(c cache.FlushCounters) map[cache.PeerReason]int64 {
		out := map[cache.PeerReason]int64{logKey: c.LogPruned[cache.ReasonSize]}
		for pr, n := range c.OutboxDropped {
			if pr.Reason == cache.ReasonSize {
				out[cache.PeerReason{Peer: pr.Peer}] = n
			}
		}
		return out
	}
	for s, n := range series(eng.FlushCounters()) {
		reported[s] = n
	}
	hit := eng.FlushCapHit()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hit:
		case <-timer.C:
		}
		now := time.Now()
		var wait time.Duration
		for s, total := range series(eng.FlushCounters()) {
			n := total - reported[s]
			if n <= 0 {
				continue
			}
			if at := next[s]; now.Before(at) {
				if d := at.Sub(now); wait == 0 || d < wait {
					wait = d
				}
				continue
			}
			reported[s], next[s] = total, now.Add(capReportInterval)
			if s == logKey {
				g.log.Warn("flush log at its size cap (flush_log_max_size): oldest flushes pruned",
					zap.Int64("pruned", n), zap.Int64("max_size", g.capOr(g.logMax, cache.DefaultFlushLogMaxBytes)))
			} else {
				g.log.Warn("outbox of a peer at its size cap (outbox_max_size): oldest flushes dropped; the peer gets them from its next catch-up",
					zap.String("peer", s.Peer), zap.Int64("dropped", n),
					zap.Int64("max_size", g.capOr(g.outboxMax, cache.DefaultOutboxMaxBytes)))
			}
		}
		if wait > 0 {
			timer.Reset(wait)
		}
	}
}

func (g *Groups) capOr(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}
