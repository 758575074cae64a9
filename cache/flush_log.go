package cache

// The flush log and the outbox live in the registry (registry/flushlog.go,
// registry/outbox.go); the engine hands them to the cache servlet and the
// group's forwarder.

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

// ForwardsDone deletes delivered (or given up) entries of a peer.
func (e *Engine) ForwardsDone(peer string, ids []uint64) error { return e.reg.ForwardsDone(peer, ids) }

// OutboxPeers returns the peers that have entries in the outbox.
func (e *Engine) OutboxPeers() ([]string, error) { return e.reg.OutboxPeers() }

// PruneOutbox deletes up to limit outbox entries (of any peer) queued
// before cutoff (Unix ms): flushes too old to be worth forwarding. It
// returns how many it deleted.
func (e *Engine) PruneOutbox(cutoff int64, limit int) (int, error) {
	return e.reg.PruneOutbox(cutoff, limit)
}
