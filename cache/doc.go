// Package cache is the docroot cache of the delivery edge: it serves
// rendered pages as files, renders a missing one once however many readers
// ask, and invalidates exactly the files a content change touches. It
// imports no Caddy; the Caddy module adapts it.
//
// Two packages below it hold what it builds on: cache/registry, everything
// stored in the bbolt file (entries and reverse indexes, the journal,
// tombstones, the persistent queues, the flush log and outbox), and
// cache/ssi, the language of server-side includes.
//
// Its files, by concern:
//
//   - Serving and coalescing. site.go (Site, the handler's entry), hit.go
//     (the hit path), miss.go, render.go, render_tee.go (the render backend's
//     answer on its way to the client and the file), render_wait.go (the
//     first reader after a removal), coalesce.go (one render per file),
//     render_info.go and limits.go (what the backend reports), mapping.go
//     (URL to file).
//   - The docroot. store.go and store_*.go (Store: reading, writing, links,
//     precompressed copies, its hot set), hotset.go and s3fifo.go (the hot
//     set), file_ident*.go (files changed behind the edge's back),
//     access.go (access times).
//   - SSI assembly, in ssi_*.go: every part of a page is a cached file like
//     any other, looked up in the hot set or on disk and rendered through
//     the coalesced miss path, so the assembly lives with serving (see
//     ssi.go).
//   - The engine. engine.go composes parts that hold one concern each:
//     docroots.go, config.go, invalidate.go and flush.go (changes, flushes,
//     expiry and resource changes into queued jobs, and the queue choice),
//     change.go, removal.go and pregen.go (the queue workers), expiry.go,
//     resources.go, ephemeral.go and cleanup.go (scheduled work), check.go
//     and check_docroot.go (the consistency check), lease.go,
//     position.go and flush_log.go (thin API over the registry);
//     registry_types.go (the registry's types under their cache names).
//
// A Store never calls back into the Engine: the engine gives it what it
// needs when it opens it (storeDeps in store.go).
package cache
