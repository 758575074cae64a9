package stagingclient

// The GET under every request of a Client: the retries of a server that
// is behind, the failover to the next server, the errors.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/internal/retry"
)

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// getBody does a GET and reads the whole body, at most limit bytes.
func (c *Client) getBody(ctx context.Context, pathQuery string, extra time.Duration, limit int64) ([]byte, error) {
	resp, cancel, err := c.get(ctx, pathQuery, extra, "application/json")
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	data, err := readLimited(resp.Body, limit)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stagingclient: GET %s: %w", pathQuery, context.Cause(ctx))
		}
		return nil, fmt.Errorf("stagingclient: GET %s: reading the answer: %w", pathQuery, err)
	}
	return data, nil
}

// notUpToDate is the body of a 503 from a server that is behind.
type notUpToDate struct {
	Error      string `json:"error"`
	SourceTime int64  `json:"sourceTime"`
}

// get sends a GET to the preferred staging server and handles everything
// that is not the caller's business: retries on NotUpToDate (new
// connection, backoff with jitter, next server), failover on connection
// errors and 5xx, 401 and 404. On success the caller must close the body
// and call cancel.
func (c *Client) get(ctx context.Context, pathQuery string, extra time.Duration, accept string) (*http.Response, context.CancelFunc, error) {
	var (
		lastErr  error
		fresh    bool // send on a new connection
		failures int  // connection errors and 5xx other than NotUpToDate
	)
	maxFailures := max(1, len(c.bases)-1) // retry each other server once; a lone balancer once
	// The request needs a server at least as new as what the client had
	// seen when it began; newer events the client sees while it retries
	// (its poller reads on) do not raise that bar, or a server that lags
	// behind a steady stream of changes could never answer a retry.
	want := c.sourceTime.Load()
	for attempt := 1; ; attempt++ {
		idx := c.cur.Load()
		u := c.bases[int(idx)%len(c.bases)] + pathQuery
		rctx, cancel := context.WithTimeout(ctx, c.timeout+extra)
		var conn net.Conn
		hc := c.hc
		if fresh {
			hc = c.fresh
		} else {
			rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) { conn = info.Conn },
			})
		}
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("stagingclient: %w", err)
		}
		req.Close = fresh
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set(HeaderSourceTime, strconv.FormatInt(want, 10))
		req.Header.Set("Accept", accept)
		req.Header.Set("User-Agent", c.userAgent)
		c.requests.Add(1)
		resp, err := hc.Do(req)

		var retryErr error // a failure worth another server
		var behind *notUpToDate
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil, nil, c.canceled(ctx, u, lastErr)
			}
			retryErr = fmt.Errorf("stagingclient: GET %s: %w", u, unwrapURLError(err))
		} else {
			c.observeHeader(resp.Header)
			code := resp.StatusCode
			if code >= 200 && code <= 299 {
				return resp, cancel, nil
			}
			body, _ := readLimited(resp.Body, 4096)
			resp.Body.Close()
			cancel()
			switch {
			case code == http.StatusUnauthorized:
				c.unauthorized.Add(1)
				return nil, nil, fmt.Errorf("%w (GET %s)", ErrUnauthorized, u)
			case code == http.StatusNotFound:
				return nil, nil, fmt.Errorf("%w: GET %s", ErrNotFound, u)
			case code == http.StatusServiceUnavailable && parseNotUpToDate(body, &behind):
			case code >= 500:
				retryErr = &StatusError{URL: u, StatusCode: code, Body: snippet(body)}
			default:
				return nil, nil, &StatusError{URL: u, StatusCode: code, Body: snippet(body)}
			}
		}

		var delay time.Duration
		if behind != nil {
			lastErr = fmt.Errorf("%w: GET %s: the server is at source time %d, the request asked for %d", ErrNotUpToDate, u,
				behind.SourceTime, want)
			if conn != nil {
				// Do not send more requests over a connection to a server
				// that is behind: an L4 balancer would keep them there.
				conn.Close()
			}
			if attempt >= c.attempts {
				c.givenUp.Add(1)
				return nil, nil, fmt.Errorf("%w (gave up after %d attempts)", lastErr, attempt)
			}
			c.retries.Add(1)
			c.rotate(idx)
			delay = c.backoff(attempt)
			c.log.Debug("staging server not up to date, retrying on a new connection",
				zap.String("url", u), zap.Int64("server_source_time", behind.SourceTime),
				zap.Int64("asked_source_time", want), zap.Int("attempt", attempt), zap.Duration("backoff", delay))
		} else {
			failures++
			lastErr = retryErr
			if failures > maxFailures || attempt >= c.attempts {
				c.givenUp.Add(1)
				return nil, nil, lastErr
			}
			c.failovers.Add(1)
			if !c.rotate(idx) {
				delay = c.backoff(failures)
			}
			c.log.Debug("staging request failed, retrying",
				zap.String("url", u), zap.Error(retryErr), zap.Int("attempt", attempt),
				zap.String("next", c.BaseURL()), zap.Duration("backoff", delay))
		}
		fresh = true
		if !retry.Sleep(ctx, delay) {
			return nil, nil, c.canceled(ctx, u, lastErr)
		}
	}
}

// rotate moves the preferred server on from idx; false when there is only
// one.
func (c *Client) rotate(idx uint32) bool {
	if len(c.bases) < 2 {
		return false
	}
	c.cur.CompareAndSwap(idx, (idx+1)%uint32(len(c.bases)))
	return true
}

// backoff is the delay before retry n (n >= 1): exponential, capped, with
// "equal jitter" (half fixed, half random) so that retries of many clients
// spread out but never collapse to zero.
func (c *Client) backoff(n int) time.Duration {
	return retry.Backoff(n, c.boBase, c.boMax)
}

func (c *Client) canceled(ctx context.Context, u string, lastErr error) error {
	if lastErr != nil {
		return fmt.Errorf("stagingclient: GET %s: %w (after: %v)", u, context.Cause(ctx), lastErr)
	}
	return fmt.Errorf("stagingclient: GET %s: %w", u, context.Cause(ctx))
}

func (c *Client) observeHeader(h http.Header) {
	if v := h.Get(HeaderSourceTime); v != "" {
		if t, err := strconv.ParseInt(v, 10, 64); err == nil && t > 0 {
			c.ObserveSourceTime(t)
		}
	}
}

func parseNotUpToDate(body []byte, out **notUpToDate) bool {
	var n notUpToDate
	if json.Unmarshal(body, &n) != nil || n.Error != "NotUpToDate" {
		return false
	}
	*out = &n
	return true
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
