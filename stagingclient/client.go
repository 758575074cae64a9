package stagingclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// HeaderSourceTime is the request header that carries the newest source time
// the client has seen. The sample origin also sets it on its answers (its
// own source time); the client takes it into account when present.
const HeaderSourceTime = "Delivery-Source-Time"

// Defaults of Config.
const (
	DefaultTimeout = 10 * time.Second
	// DefaultMaxAttempts: the backoffs between 10 attempts add up to 4.6–9.2 s,
	// so replicas that lag a few seconds behind what the client has seen
	// (a document it just learned of) are waited for, not given up on.
	DefaultMaxAttempts = 10
	DefaultBackoffBase = 50 * time.Millisecond
	DefaultBackoffMax  = 2 * time.Second
)

// Errors. Every error the client returns for these cases wraps the
// matching value, so callers test with errors.Is.
var (
	// ErrUnauthorized: a staging server answered 401. The request is not
	// retried: a rejected token does not get better by asking again.
	ErrUnauthorized = errors.New("stagingclient: the staging server rejected the access token (401 Unauthorized); check the configured token")
	// ErrNotUpToDate: every attempt hit a server whose replicated state is
	// older than the newest source time the client has seen.
	ErrNotUpToDate = errors.New("stagingclient: staging servers are not up to date")
	// ErrNotFound: the document is unknown, deleted or offline (404).
	ErrNotFound = errors.New("stagingclient: not found")
	// ErrBadResponse: an answer could not be understood.
	ErrBadResponse = errors.New("stagingclient: malformed answer from the staging server")
)

// StatusError is an answer with an unexpected HTTP status.
type StatusError struct {
	URL        string
	StatusCode int
	Body       string // the start of the body, for the log
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("stagingclient: GET %s: unexpected status %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Config configures a Client.
type Config struct {
	// BaseURLs are the staging servers: one load balancer, or several
	// servers. The client sticks to one and moves to the next on a
	// connection error, a 5xx answer or a NotUpToDate answer. Required.
	BaseURLs []string
	// Token is the access token (a UUID), sent as a bearer token. Required.
	Token string
	// Timeout bounds each HTTP request (a long poll gets its wait on top).
	// Default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one call when servers answer
	// NotUpToDate (the first request included). Default DefaultMaxAttempts.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the exponential backoff (with
	// jitter) between attempts. Defaults DefaultBackoffBase and
	// DefaultBackoffMax.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// HTTPClient, when set, is used for the requests. Its Timeout must not
	// be shorter than a long poll. Retries go out on new connections: when
	// its Transport is an *http.Transport, through a clone of it without
	// keep-alive. Default: a client of its own.
	HTTPClient *http.Client
	// TLSConfig is used by the default HTTP client (ignored with
	// HTTPClient).
	TLSConfig *tls.Config
	// RootCAs, when set, are the CAs the default HTTP client trusts for
	// https staging URLs, in place of TLSConfig.RootCAs (see LoadCAFile
	// for a private CA). It cannot be combined with HTTPClient.
	RootCAs *x509.CertPool
	// UserAgent is sent with every request. Default "delivery-edge-stagingclient".
	UserAgent string
	// Logger gets retries at debug level. Default: no logging.
	Logger *zap.Logger
}

// ValidateToken checks that an access token has the form of a UUID
// (8-4-4-4-12 hexadecimal digits), as the staging servers require.
func ValidateToken(token string) error {
	if token == "" {
		return errors.New("staging access token is missing (want a UUID like 00000000-0000-0000-0000-000000000000)")
	}
	bad := len(token) != 36
	for i := 0; !bad && i < len(token); i++ {
		ch := token[i]
		switch i {
		case 8, 13, 18, 23:
			bad = ch != '-'
		default:
			bad = !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F')
		}
	}
	if bad {
		return errors.New("staging access token is not a UUID (want 8-4-4-4-12 hex digits like 00000000-0000-0000-0000-000000000000)")
	}
	return nil
}

// Client talks to the staging servers (docs/staging-api.md). It holds no
// session: every request carries the token and the newest source time
// seen. A Client is safe for concurrent use; call Close when done with it.
type Client struct {
	bases     []string
	token     string
	timeout   time.Duration
	attempts  int
	boBase    time.Duration
	boMax     time.Duration
	userAgent string
	log       *zap.Logger

	hc    *http.Client // keep-alive
	fresh *http.Client // one connection per request (retries)

	cur        atomic.Uint32 // index of the preferred base URL
	sourceTime atomic.Int64

	requests     atomic.Int64
	retries      atomic.Int64
	failovers    atomic.Int64
	unauthorized atomic.Int64
	givenUp      atomic.Int64
}

// Stats are counters of a Client since it was made.
type Stats struct {
	Requests           int64 // HTTP requests sent, retries included
	NotUpToDateRetries int64 // requests repeated because a server was behind
	Failovers          int64 // requests repeated after a connection error or 5xx
	Unauthorized       int64 // 401 answers
	GivenUp            int64 // calls that failed after using up their attempts
	SourceTime         int64 // newest source time seen
}

// New makes a client. It checks the configuration.
func New(cfg Config) (*Client, error) {
	if len(cfg.BaseURLs) == 0 {
		return nil, errors.New("stagingclient: no staging server URL configured")
	}
	if err := ValidateToken(cfg.Token); err != nil {
		return nil, fmt.Errorf("stagingclient: %w", err)
	}
	c := &Client{
		token:     cfg.Token,
		timeout:   cfg.Timeout,
		attempts:  cfg.MaxAttempts,
		boBase:    cfg.BackoffBase,
		boMax:     cfg.BackoffMax,
		userAgent: cfg.UserAgent,
		log:       cfg.Logger,
	}
	for _, raw := range cfg.BaseURLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("stagingclient: staging URL %q: want http(s)://host[:port][/path]", raw)
		}
		c.bases = append(c.bases, strings.TrimSuffix(u.String(), "/"))
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.attempts <= 0 {
		c.attempts = DefaultMaxAttempts
	}
	if c.boBase <= 0 {
		c.boBase = DefaultBackoffBase
	}
	if c.boMax <= 0 {
		c.boMax = DefaultBackoffMax
	}
	if c.boMax < c.boBase {
		c.boMax = c.boBase
	}
	if c.userAgent == "" {
		c.userAgent = "delivery-edge-stagingclient"
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if cfg.HTTPClient != nil && cfg.RootCAs != nil {
		return nil, errors.New("stagingclient: RootCAs apply to the default HTTP client only, not to Config.HTTPClient")
	}
	if cfg.HTTPClient != nil {
		c.hc = cfg.HTTPClient
		c.fresh = cfg.HTTPClient
		var base *http.Transport
		switch t := cfg.HTTPClient.Transport.(type) {
		case *http.Transport:
			base = t
		case nil:
			base = http.DefaultTransport.(*http.Transport)
		}
		if base != nil {
			t := base.Clone()
			t.DisableKeepAlives = true
			fresh := *cfg.HTTPClient
			fresh.Transport = t
			c.fresh = &fresh
		}
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // staging servers are internal; no proxy from the environment
		if cfg.TLSConfig != nil {
			t.TLSClientConfig = cfg.TLSConfig.Clone()
		}
		if cfg.RootCAs != nil {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			t.TLSClientConfig.RootCAs = cfg.RootCAs
		}
		t.MaxIdleConnsPerHost = 16
		c.hc = &http.Client{Transport: t}
		ft := t.Clone()
		ft.DisableKeepAlives = true
		c.fresh = &http.Client{Transport: ft}
	}
	return c, nil
}

// Close releases idle connections. The client may still be used after it.
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
	c.fresh.CloseIdleConnections()
}

// SourceTime is the newest source time the client has seen.
func (c *Client) SourceTime() int64 { return c.sourceTime.Load() }

// ObserveSourceTime raises the newest source time seen to t (if t is
// newer). Call it with the persisted source time after a restart so that no
// server older than what was already applied answers.
func (c *Client) ObserveSourceTime(t int64) {
	for {
		cur := c.sourceTime.Load()
		if t <= cur || c.sourceTime.CompareAndSwap(cur, t) {
			return
		}
	}
}

// Retries is the number of requests repeated because a server answered
// NotUpToDate.
func (c *Client) Retries() int64 { return c.retries.Load() }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:           c.requests.Load(),
		NotUpToDateRetries: c.retries.Load(),
		Failovers:          c.failovers.Load(),
		Unauthorized:       c.unauthorized.Load(),
		GivenUp:            c.givenUp.Load(),
		SourceTime:         c.sourceTime.Load(),
	}
}

// BaseURL is the staging URL the client currently prefers.
func (c *Client) BaseURL() string { return c.bases[int(c.cur.Load())%len(c.bases)] }

// Events asks for up to limit events after since (limit <= 0: the server's
// default). With wait > 0 the server may hold the request until an event
// exists or the wait ends (rounded up to whole seconds). One request,
// besides retries.
func (c *Client) Events(ctx context.Context, since int64, limit int, wait time.Duration) (Page, error) {
	q := url.Values{}
	q.Set("since", strconv.FormatInt(since, 10))
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		secs := int64((wait + time.Second - 1) / time.Second)
		q.Set("wait", strconv.FormatInt(secs, 10))
		wait = time.Duration(secs) * time.Second // the request timeout gets the whole wait on top
	} else {
		wait = 0
	}
	data, err := c.getBody(ctx, "/api/v1/events?"+q.Encode(), wait, maxPageBytes)
	if err != nil {
		return Page{}, err
	}
	p, err := DecodePage(data, since)
	if err != nil {
		return Page{}, err
	}
	c.ObserveSourceTime(p.SourceTime)
	return p, nil
}

// EventsSince pages through every event after since until it reaches the
// source time of the server that answered, calling fn with each page's
// events in order and the source time up to which they are complete (fn may
// get no events but a newer upTo). It returns the source time reached; on
// an error, the last upTo that fn accepted.
func (c *Client) EventsSince(ctx context.Context, since int64, limit int, fn func(events []Event, upTo int64) error) (int64, error) {
	for {
		p, err := c.Events(ctx, since, limit, 0)
		if err != nil {
			return since, err
		}
		upTo, more := p.UpTo()
		if upTo <= since && len(p.Events) == 0 {
			return since, nil
		}
		upTo = max(upTo, since)
		if err := fn(p.Events, upTo); err != nil {
			return since, err
		}
		since = upTo
		if !more {
			return since, nil
		}
	}
}

// Document fetches a published document by ID or UUID. A document that is
// unknown, deleted or offline gives an error wrapping ErrNotFound.
func (c *Client) Document(ctx context.Context, idOrUUID string) (*Document, error) {
	if idOrUUID == "" {
		return nil, errors.New("stagingclient: empty document ID")
	}
	data, err := c.getBody(ctx, "/api/v1/documents/"+url.PathEscape(idOrUUID), 0, maxDocumentBytes)
	if err != nil {
		return nil, err
	}
	d, err := DecodeDocument(data)
	if err != nil {
		return nil, err
	}
	c.ObserveSourceTime(d.SourceTime)
	return d, nil
}

// Binary fetches the original bytes of an image document. The caller must
// close the body; the client's timeout also bounds reading it.
func (c *Client) Binary(ctx context.Context, uuid string) (*Binary, error) {
	if uuid == "" {
		return nil, errors.New("stagingclient: empty document UUID")
	}
	resp, cancel, err := c.get(ctx, "/api/v1/documents/"+url.PathEscape(uuid)+"/binary", 0, "*/*")
	if err != nil {
		return nil, err
	}
	return &Binary{
		Body:        &cancelBody{ReadCloser: resp.Body, cancel: cancel},
		Size:        resp.ContentLength,
		ContentType: resp.Header.Get("Content-Type"),
	}, nil
}

// ImageVariants fetches the image variant definitions.
func (c *Client) ImageVariants(ctx context.Context) ([]VariantDef, error) {
	data, err := c.getBody(ctx, "/api/v1/imagevariants", 0, maxVariantsBytes)
	if err != nil {
		return nil, err
	}
	return DecodeVariants(data)
}

// Ping checks that a staging server answers and accepts the token (one
// small events request). An error wrapping ErrNotUpToDate means the servers
// answer but are behind.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.Events(ctx, c.SourceTime(), 1, 0)
	return err
}
