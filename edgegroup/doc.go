// Package edgegroup is the cache servlet and the edge groups of the
// delivery edge (see docs/cache-servlet.md): explicit flushes of cache
// keys, and the edges of a group that share them.
//
// The Servlet answers the servlet's requests: it checks them (wire.go:
// the parameters, the password, the answers, the lines of a sync answer),
// applies a flush to the cache engine and queues it for the group's
// peers, and answers a sync from the engine's flush log. Refused requests
// are logged once per client address and minute (refusals.go).
//
// Groups is the peer side: it delivers the queued flushes to each peer
// (the persistent outbox of the engine, with retries and backoff), catches
// up with the peers at start and when a peer's sync asks for it, and
// prunes the flush log and the outbox. Peers are called over HTTP with the
// parameters in the query string and the password in the form body.
//
// The package knows nothing of Caddy: the adapter makes a Config from its
// own configuration and calls Servlet.ServeHTTP from its handler.
package edgegroup
