// Package stagingclient is the client of the CMS staging servers
// (docs/staging-api.md): sessionless, token-authenticated and source-time
// based, so that it works behind any HTTP load balancer.
//
// Every request carries "Authorization: Bearer <token>" (the token is a
// UUID; see ValidateToken) and "Delivery-Source-Time: <ms>", the newest
// source time the client had seen in any answer when the request began
// (its retries ask for the same). A server whose replicated
// state is older answers 503 {"error":"NotUpToDate","sourceTime":n}; the
// client then retries silently: on a new connection (so that a balancer,
// L4 or L7, can pick another server, and the connection to the lagging one
// is dropped), after an exponential backoff with jitter, on the next
// configured URL if there are several, and at most Config.MaxAttempts
// times in all before it returns an error wrapping ErrNotUpToDate.
// Connection errors and other 5xx answers fail over to the next URL. A 401
// is returned at once as ErrUnauthorized; a 404 as ErrNotFound. Every
// request has a timeout, and every wait (backoff, long poll) ends when the
// caller's context does.
//
// The client has no session and no background goroutines. Stats and
// Retries count what happened, for metrics and tests.
//
// A Poller follows the event log: it pages through the events after the
// source time it was started with, hands each batch to an ApplyFunc in
// order, and retries a failed batch unchanged until it is applied, so that
// the caller can persist the batch's upTo together with the batch's
// effect. When caught up it long-polls (the server holds the request until
// something happens); against a server that answers at once anyway, it
// falls back to polling at an interval. For the operator it logs the
// connection state when it changes (connected, lost with the reason,
// restored after how long), the source-time lag when it changes
// significantly, and everything else at debug level; PollerStats gives the
// same as numbers. Follow runs a Poller from a stored position, under a
// lease that keeps two followers of one stream (the old and the new config
// of a reload) from applying the same events.
//
// UnknownEvents decides, for every follower alike, what becomes of an event
// of a kind or state the edge does not know, and counts them.
package stagingclient
