package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/delivery-edge/edge/cache"
)

// pregenKey marks a request that carries pre-generation through the
// server; only the edge itself can set it (it is a context value).
type pregenKey struct{}

// resolveKey marks the edge's own resolve request (which URL has this
// document?): delivery_cache passes it straight on, so that the backend's
// Delivery-Document-URL reaches the edge (the cache strips every
// Delivery-* header from the answers it hands on).
type resolveKey struct{}

// DefaultResolvePath is where the render backend names the URL of a
// document that is not in the cache yet.
const DefaultResolvePath = "/_delivery/url"

// HeaderDocumentURL is the render backend's answer to a resolve request.
const HeaderDocumentURL = "Delivery-Document-URL"

// serverRenderer carries work no reader asked for through the Caddy
// server that hosts a docroot: a GET that takes the whole route (so it
// meets the same handlers, logs and limits as a reader's request), marked
// so that delivery_cache renders instead of serving the file.
type serverRenderer struct {
	srv         *caddyhttp.Server
	resolvePath string
}

var _ cache.Renderer = (*serverRenderer)(nil)

func (sr *serverRenderer) request(ctx context.Context, host, target string) (*http.Request, error) {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("pre-generation target %q: %w", target, err)
	}
	req := (&http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{"User-Agent": {"delivery-edge-pregeneration"}},
		Host:       host,
		RemoteAddr: "127.0.0.1:0",
		RequestURI: target,
	}).WithContext(ctx)
	return req, nil
}

// Regenerate renders key in place through the server.
func (sr *serverRenderer) Regenerate(ctx context.Context, host, key string) (int, error) {
	req, err := sr.request(context.WithValue(ctx, pregenKey{}, true), host, key)
	if err != nil {
		return cache.RegenSkipped, err
	}
	w := newDiscardWriter()
	sr.srv.ServeHTTP(w, req)
	return w.status, nil
}

// Resolve asks the render backend, through the server, for the URL of a
// document.
func (sr *serverRenderer) Resolve(ctx context.Context, host, doc string) (string, error) {
	req, err := sr.request(context.WithValue(ctx, resolveKey{}, true), host, sr.resolvePath+"?id="+url.QueryEscape(doc))
	if err != nil {
		return "", err
	}
	w := newDiscardWriter()
	sr.srv.ServeHTTP(w, req)
	switch {
	case w.status == http.StatusNotFound:
		return "", nil
	case w.status >= 300:
		return "", fmt.Errorf("resolve %s: render backend answered %d", doc, w.status)
	}
	u := w.header.Get(HeaderDocumentURL)
	if u != "" && !strings.HasPrefix(u, "/") {
		return "", fmt.Errorf("resolve %s: %s %q is not a path", doc, HeaderDocumentURL, u)
	}
	return u, nil
}

// rendererClaims records, per docroot, the renderers the running configs
// offer for it, newest last. The newest carries pre-generation; when its
// config stops (a reload, or a new config that failed to start) the one
// before it takes over again, and when none is left the docroot has no
// renderer (its work waits in the queue for the next config).
type rendererClaims struct {
	mu      sync.Mutex
	byStore map[*cache.Store][]rendererClaim
}

type rendererClaim struct {
	owner *App
	r     *serverRenderer
	host  string
}

var renderers = &rendererClaims{byStore: map[*cache.Store][]rendererClaim{}}

// claim makes r (of owner's config) carry pre-generation for store, with
// host for work that has none of its own. It replaces owner's earlier
// claim for the store.
func (c *rendererClaims) claim(store *cache.Store, owner *App, r *serverRenderer, host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if owner.rendersReleased {
		return // a request still served by a config that has stopped
	}
	list := slices.DeleteFunc(c.byStore[store], func(cl rendererClaim) bool { return cl.owner == owner })
	c.byStore[store] = append(list, rendererClaim{owner: owner, r: r, host: host})
	store.SetRenderer(r, host)
}

// release drops owner's claims when its config stops.
func (c *rendererClaims) release(owner *App) {
	c.mu.Lock()
	defer c.mu.Unlock()
	owner.rendersReleased = true
	for store, list := range c.byStore {
		i := slices.IndexFunc(list, func(cl rendererClaim) bool { return cl.owner == owner })
		if i < 0 {
			continue
		}
		newest := i == len(list)-1
		list = slices.Delete(list, i, i+1)
		switch {
		case len(list) == 0:
			delete(c.byStore, store)
			store.SetRenderer(nil, "")
		case newest:
			c.byStore[store] = list
			store.SetRenderer(list[len(list)-1].r, list[len(list)-1].host)
		default:
			c.byStore[store] = list
		}
	}
}

// discardWriter is the response writer of a pre-generation request: it
// keeps the status and headers and drops the body.
type discardWriter struct {
	header http.Header
	status int
}

func newDiscardWriter() *discardWriter {
	return &discardWriter{header: http.Header{}, status: http.StatusOK}
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if code >= 200 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
