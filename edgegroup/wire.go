package edgegroup

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"net/url"
	"strconv"
	"time"

	"github.com/delivery-edge/edge/cache"
)

// Parameters and actions of the cache servlet (docs/cache-servlet.md).
const (
	paramAction    = "action"
	paramKey       = "key"
	paramGroup     = "group"
	paramForward   = "forward"
	paramSince     = "since"
	paramTimestamp = "timestamp"
	paramPassword  = "password"

	actionFlush = "flush"
	actionSync  = "sync"
)

// The answers of the cache servlet: the bodies of its 500 responses. The
// first six are the contract (docs/cache-servlet.md); the others refuse
// values no edge ever sends (keys and groups that could not be written as
// a sync line, numbers that are not numbers).
const (
	msgDisabled         = "Invalid use of the cache servlet: the cache is disabled"
	msgUnknownAction    = "unknown action"
	msgPasswordRequired = "password required"
	msgInvalidPassword  = "invalid password"
	msgNoKey            = "no cache key specified"
	msgNoGroup          = "no group specified"
	msgInvalidKey       = "invalid cache key"
	msgInvalidGroup     = "invalid group"
	msgInvalidSince     = "invalid since"
	msgInvalidTimestamp = "invalid timestamp"
	msgFailed           = "the cache servlet failed; see the edge's log"
	// msgTooManyFailures is the body of a 429 answer (ratelimit.go).
	msgTooManyFailures = "too many failed password attempts"
)

// Limits of names in the flush log.
const (
	// maxKeyLen is the registry's limit on a cache key, so a key the
	// servlet takes can be stored, and every key a page was registered
	// under can be flushed.
	maxKeyLen   = cache.MaxNameBytes
	maxGroupLen = 256
	// maxFutureSkew bounds how far a timestamp may lie in the future (the
	// clocks of the edges of a group differ a little, not by days).
	maxFutureSkew = 24 * time.Hour
)

// servletRequest is a checked request to the cache servlet.
type servletRequest struct {
	Action  string
	Key     string // flush only
	Group   string
	Forward bool
	Since   int64 // sync only, Unix ms
	Time    int64 // flush only, Unix ms: the timestamp, or now
}

// parseServletRequest checks the parameters in the order of the table in
// docs/cache-servlet.md: action, password, key, group; then the numbers.
// It returns the request, or the body of the 500 answer. password is the
// configured servlet password ("" = none).
func parseServletRequest(form url.Values, password string, now time.Time) (servletRequest, string) {
	var req servletRequest
	req.Action = form.Get(paramAction)
	if !validAction(req.Action) {
		return req, msgUnknownAction
	}
	if password != "" {
		given := form.Get(paramPassword)
		if given == "" {
			return req, msgPasswordRequired
		}
		if !passwordsEqual(given, password) {
			return req, msgInvalidPassword
		}
	}
	if req.Action == actionFlush {
		req.Key = form.Get(paramKey)
		if req.Key == "" {
			return req, msgNoKey
		}
		if !validName(req.Key, maxKeyLen) {
			return req, msgInvalidKey
		}
	}
	req.Group = form.Get(paramGroup)
	if req.Group == "" {
		return req, msgNoGroup
	}
	if !validName(req.Group, maxGroupLen) {
		return req, msgInvalidGroup
	}
	req.Forward = parseForward(form.Get(paramForward))
	switch req.Action {
	case actionFlush:
		req.Time = now.UnixMilli()
		if v := form.Get(paramTimestamp); v != "" {
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ts <= 0 || ts > now.Add(maxFutureSkew).UnixMilli() {
				return req, msgInvalidTimestamp
			}
			req.Time = ts
		}
	case actionSync:
		if v := form.Get(paramSince); v != "" {
			since, err := strconv.ParseInt(v, 10, 64)
			if err != nil || since < 0 {
				return req, msgInvalidSince
			}
			req.Since = since
		}
	}
	return req, ""
}

func validAction(a string) bool { return a == actionFlush || a == actionSync }

// parseForward reads the forward parameter: absent or empty means true;
// a value that is not a boolean means false, so a garbled internal
// request can never start a forwarding loop.
func parseForward(v string) bool {
	if v == "" {
		return true
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// passwordsEqual compares in constant time, independent of the lengths
// too (both sides are hashed first).
func passwordsEqual(given, want string) bool {
	g, w := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// validName refuses control characters (a sync answer is line-based) and
// over-long names.
func validName(s string, maxLen int) bool {
	if len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// appendSyncLine writes one line of a sync answer: "key;timestamp".
func appendSyncLine(dst []byte, f cache.Flush) []byte {
	dst = append(dst, f.Key...)
	dst = append(dst, ';')
	dst = strconv.AppendInt(dst, f.Time, 10)
	return append(dst, '\n')
}

// parseSyncAnswer reads a peer's sync answer. A key may itself contain
// ';' (the timestamp follows the last one). Lines that are not
// "key;timestamp" are counted in bad and skipped.
func parseSyncAnswer(body []byte) (flushes []cache.Flush, bad int) {
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		i := bytes.LastIndexByte(line, ';')
		if i <= 0 {
			bad++
			continue
		}
		ts, err := strconv.ParseInt(string(line[i+1:]), 10, 64)
		key := string(line[:i])
		if err != nil || ts <= 0 || !validName(key, maxKeyLen) {
			bad++
			continue
		}
		flushes = append(flushes, cache.Flush{Key: key, Time: ts})
	}
	return flushes, bad
}
