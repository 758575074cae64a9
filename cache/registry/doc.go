// Package registry is everything the delivery edge keeps in its bbolt file,
// and how: the entry of every cached file (in a compact binary codec) with
// the reverse indexes from documents, nodes, resources and cache keys to
// files; the journal that lets a render record its entry without waiting
// for the database; the tombstones of eagerly removed entries and their
// sweep; the persistent removal and pre-generation queues; access times,
// scheduled expiry, resource hashes and named positions; the flush log and
// the outbox of flushes to forward to peers.
//
// The package knows nothing of HTTP, docroots or Caddy. The cache package
// decides what to store and when; this one decides how, and keeps every
// bucket name, key layout and encoding to itself. Work that must be atomic
// across several of these — find the dependents of a change, queue their
// jobs and store the stream's position, so that a change takes effect
// exactly once across crashes — runs in one transaction through
// Registry.Update and the typed methods of Tx.
//
// The buckets of the file:
//
//	roots           docroot path -> root id (2 bytes)
//	entries         file id -> Entry (binary codec, codec.go)
//	index           kind + name + 0 + file id -> flags, created, props or hash
//	expiry          big-endian ms + file id -> ""
//	access          file id -> big-endian ms of the last access
//	resources       resource name -> newest hash seen
//	meta            journal position, named positions
//	retired         sequence -> file id + created (tombstones, retire.go)
//	queue-*         the persistent queues (queue.go)
//	flush-*         the flush log, its group index and peers' sync positions (flushlog.go)
//	flush-outbox    flushes to forward, per peer (outbox.go)
//	flush-sizes     byte counts of the flush log and of each peer's outbox (flushlog_size.go)
//
// A file id is the root id (2 bytes, big-endian) followed by the file's
// slash-separated name in its docroot.
package registry
