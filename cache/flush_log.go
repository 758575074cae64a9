package cache

import "github.com/delivery-edge/edge/cache/registry"

// The flush log and the outbox live in the registry (registry/flushlog.go,
// registry/outbox.go, their caps in registry/flushlog_size.go); the engine
// hands them to the cache servlet and the group's forwarder.

// The types of the caps, under the names the cache's users know them by.
type (
	SizeCount     = registry.SizeCount
	FlushSizes    = registry.FlushSizes
	FlushCounters = registry.FlushCounters
	PeerReason    = registry.PeerReason
)

// Default caps, and the reasons entries are pruned or dropped.
const (
	DefaultFlushLogMaxBytes = registry.DefaultFlushLogMaxBytes
	DefaultOutboxMaxBytes   = registry.DefaultOutboxMaxBytes
	ReasonSize              = registry.ReasonSize
	ReasonAge               = registry.ReasonAge
)

// SetFlushCaps sets the caps in bytes of the flush log and of each peer's
// outbox (0: the default). A flush that passes a cap deletes the oldest
// entries in its own transaction.
func (e *Engine) SetFlushCaps(logBytes, outboxBytes int64) { e.reg.SetFlushCaps(logBytes, outboxBytes) }

// FlushSizes returns the sizes of the flush log and of every peer's outbox.
func (e *Engine) FlushSizes() (FlushSizes, error) { return e.reg.FlushSizes() }

// FlushCounters returns how many entries left the flush log and the
// outboxes other than by delivery, by reason, since the engine opened.
func (e *Engine) FlushCounters() FlushCounters { return e.reg.FlushCounters() }

// FlushCapHit is signalled after a write that pruned entries to stay
// under a cap.
func (e *Engine) FlushCapHit() <-chan struct{} { return e.reg.FlushCapHit() }

// TrimFlushes deletes up to limit of the oldest entries of the flush log
// and of the outboxes that are over their caps; it returns how many.
func (e *Engine) TrimFlushes(limit int) (int, error) { return e.reg.TrimFlushes(limit) }

// FlushesSince returns the flushes of a group taken at or after since
// (Unix ms), oldest first: the answer to a peer's sync.
func (e *Engine) FlushesSince(group string, since int64) ([]Flush, error) {
	return e.reg.FlushesSince(group, since)
}

// FlushLogged reports whether a flush with this key and time is in the log.
func (e *Engine) FlushLogged(key string, ts int64) (bool, error) { return e.reg.FlushLogged(key, ts) }

// PruneFlushLog deletes up to limit flushes taken before cutoff (Unix ms),
// oldest first, in one transaction; it returns how many it deleted, so a
// caller loops (between other work) until fewer than limit come back.
func (e *Engine) PruneFlushLog(cutoff int64, limit int) (int, error) {
	return e.reg.PruneFlushLog(cutoff, limit)
}

// SyncPosition returns the time of the newest flush seen in a peer's sync
// answer for a group (0: never synced).
func (e *Engine) SyncPosition(group, peer string) (int64, error) {
	return e.reg.SyncPosition(group, peer)
}

// PendingForwards returns up to limit (0: all) outbox entries of a peer,
// oldest first.
func (e *Engine) PendingForwards(peer string, limit int) ([]Forward, error) {
	return e.reg.PendingForwards(peer, limit)
}

// ForwardsDone deletes delivered entries of a peer.
func (e *Engine) ForwardsDone(peer string, ids []uint64) error { return e.reg.ForwardsDone(peer, ids) }

// ForwardsDropped deletes entries of a peer given up undelivered and
// counts them under reason.
func (e *Engine) ForwardsDropped(peer string, ids []uint64, reason string) error {
	return e.reg.ForwardsDropped(peer, ids, reason)
}

// OutboxPeers returns the peers that have entries in the outbox.
func (e *Engine) OutboxPeers() ([]string, error) { return e.reg.OutboxPeers() }

// PruneOutbox deletes up to limit outbox entries (of any peer) queued
// before cutoff (Unix ms): flushes too old to be worth forwarding. It
// returns how many it deleted.
func (e *Engine) PruneOutbox(cutoff int64, limit int) (int, error) {
	return e.reg.PruneOutbox(cutoff, limit)
}
