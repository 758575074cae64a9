package edgegroup

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/retry"
)

// pruneLoop deletes flush log entries older than the retention and
// outbox entries older than the maximum age, a minute after the start (so
// that start-up work comes first) and then hourly, in bounded batches.
func (g *Groups) pruneLoop(ctx context.Context, eng *cache.Engine) {
	defer g.wg.Done()
	for wait := time.Minute; retry.Sleep(ctx, wait); wait = pruneInterval {
		g.prune(ctx, eng)
	}
}

func (g *Groups) prune(ctx context.Context, eng *cache.Engine) {
	now := time.Now()
	for _, step := range []struct {
		what   string
		cutoff int64
		fn     func(int64, int) (int, error)
	}{
		{"flush log", now.Add(-g.retention).UnixMilli(), eng.PruneFlushLog},
		{"flush outbox", now.Add(-g.maxAge).UnixMilli(), eng.PruneOutbox},
	} {
		total := 0
		for ctx.Err() == nil {
			n, err := step.fn(step.cutoff, pruneBatch)
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
