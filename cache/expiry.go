package cache

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache/registry"
)

// Scheduled expiry: a file whose max-age or Expires has passed is
// invalidated by the same rules as a content change. Once a second the
// due files are queued (registry.Tx.TakeDue), and the ephemeral files
// that are due, which have no registry entry, are invalidated.

const expiryBatch = 1000

// expiry is the once-a-second look for due files.
type expiry struct {
	reg       *registry.Registry
	inval     *invalidator
	ephemeral *ephemeralFiles
	docroots  *docroots
	log       *zap.Logger
}

func (x *expiry) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for {
				n, err := x.queueDue(now)
				if err != nil {
					x.log.Error("scheduled invalidation", zap.Error(err))
				}
				if n < expiryBatch || err != nil {
					break
				}
			}
			x.ephemeral.expire(now, x.docroots)
		}
	}
}

// queueDue queues up to expiryBatch files that are due.
func (x *expiry) queueDue(now time.Time) (int, error) {
	if !x.reg.AnyDue(now) { // a write transaction only when there is work
		return 0, nil
	}
	var due []FileID
	err := x.reg.Update(func(tx *registry.Tx) error {
		var err error
		if due, err = tx.TakeDue(now, expiryBatch); err != nil || len(due) == 0 {
			return err
		}
		defer x.inval.record.note(tx, x.inval.record.mark(), Invalidation{Source: SourceExpiry, Kind: KindExpiry, Files: len(due)})
		return x.inval.queueFiles(tx, Job{Files: due, Priority: PriorityFor(len(due))}, false, now)
	})
	if err != nil {
		return 0, err
	}
	x.inval.queued(due)
	return len(due), nil
}
