package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/jobs"
)

// The admin API's quick routes: they answer at once. A purge by prefix of
// more than purgeInlineMax files becomes a job (admin_jobs.go).

// purgeInlineMax is the largest prefix purge answered at once.
const purgeInlineMax = 5000

// adminStats is the answer of GET /delivery/stats.
type adminStats struct {
	Snapshot
	// LimitsHit counts the admin API's bounds that were hit, by name.
	LimitsHit map[string]int64 `json:"admin_limits_hit,omitempty"`
}

func (c *adminCall) stats() error {
	return c.reply(http.StatusOK, adminStats{Snapshot: c.app.Snapshot(), LimitsHit: adminLimitCounts()})
}

func (c *adminCall) queues() error {
	q := c.r.URL.Query()
	name := q.Get("queue")
	if name == "" {
		name = cache.QueueNameRemoval
	}
	limit, err := intParam(q.Get("limit"), 100)
	if err != nil {
		return err
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	items, err := eng.NextJobs(name, limit)
	if errors.Is(err, cache.ErrUnknownQueue) {
		return apiError(http.StatusBadRequest, err)
	}
	if err != nil {
		return c.internal("queue listing", err)
	}
	if items == nil {
		items = []cache.QueueItem{}
	}
	return c.reply(http.StatusOK, map[string]any{"queue": name, "jobs": items})
}

func (c *adminCall) files() error {
	q := c.r.URL.Query()
	u := q.Get("url")
	if u == "" {
		return apiError(http.StatusBadRequest, errors.New("url is required"))
	}
	s, err := c.site(q.Get("host"))
	if err != nil {
		return err
	}
	t, err := s.FileOf(u)
	if err != nil {
		return apiError(http.StatusBadRequest, fmt.Errorf("url %q: %w", u, err))
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	rep, err := eng.File(s.Store, t)
	if err != nil {
		return c.internal("file report", err)
	}
	return c.reply(http.StatusOK, rep)
}

func (c *adminCall) dependents() error {
	q := c.r.URL.Query()
	kinds := []struct {
		param string
		kind  cache.DepKind
	}{{"document", cache.DepDocument}, {"node", cache.DepNode}, {"key", cache.DepKey}, {"resource", cache.DepResource}}
	var kind cache.DepKind
	name, set := "", 0
	for _, k := range kinds {
		if v := q.Get(k.param); v != "" {
			kind, name = k.kind, v
			set++
		}
	}
	if set != 1 {
		return apiError(http.StatusBadRequest, errors.New("name exactly one of document, node, key or resource"))
	}
	limit, err := intParam(q.Get("limit"), 100)
	if err != nil {
		return err
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	page, err := eng.Dependents(kind, name, q.Get("cursor"), limit)
	if errors.Is(err, cache.ErrBadCursor) {
		return apiError(http.StatusBadRequest, err)
	}
	if err != nil {
		return c.internal("dependents", err)
	}
	return c.reply(http.StatusOK, page)
}

// purgeRequest is the body of POST /delivery/purge.
type purgeRequest struct {
	URL    string          `json:"url,omitempty"`
	Prefix string          `json:"prefix,omitempty"`
	Mode   cache.PurgeMode `json:"mode,omitempty"`
	Host   string          `json:"host,omitempty"`
}

func (c *adminCall) purge() error {
	var req purgeRequest
	if err := c.decode(&req); err != nil {
		return err
	}
	if (req.URL == "") == (req.Prefix == "") {
		return apiError(http.StatusBadRequest, errors.New("name exactly one of url or prefix"))
	}
	if err := req.Mode.Check(); err != nil {
		return apiError(http.StatusBadRequest, err)
	}
	s, err := c.site(req.Host)
	if err != nil {
		return err
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	if req.URL != "" {
		t, err := s.FileOf(req.URL)
		if err != nil {
			return apiError(http.StatusBadRequest, fmt.Errorf("url %q: %w", req.URL, err))
		}
		queued, err := eng.PurgeFile(s.Store, t.File, req.Mode)
		if err != nil {
			return c.internal("purge", err)
		}
		c.api.log.Info("admin purge", zap.String("url", req.URL), zap.Bool("queued", queued))
		n := 0
		if queued {
			n = 1
		}
		return c.reply(http.StatusOK, cache.PurgeResult{Files: n, Queued: n})
	}
	prefix, err := cache.FilePrefix(req.Prefix)
	if err != nil {
		return apiError(http.StatusBadRequest, fmt.Errorf("prefix %q: %w", req.Prefix, err))
	}
	c.api.log.Info("admin purge", zap.String("prefix", req.Prefix), zap.String("docroot", s.Store.Dir()))
	if eng.CountPrefix(s.Store, prefix) <= purgeInlineMax {
		res, err := eng.PurgePrefix(c.r.Context(), s.Store, prefix, req.Mode, nil)
		if err != nil {
			return c.internal("purge", err)
		}
		return c.reply(http.StatusOK, res)
	}
	return c.startJob(jobs.Spec{Kind: "purge"}, func(ctx context.Context, p *jobs.Progress) error {
		res, err := eng.PurgePrefix(ctx, s.Store, prefix, req.Mode, p)
		p.SetResult(res)
		return err
	})
}

// flushRequest is the body of POST /delivery/flush.
type flushRequest struct {
	Key   string `json:"key"`
	Group string `json:"group"`
}

func (c *adminCall) flush() error {
	var req flushRequest
	if err := c.decode(&req); err != nil {
		return err
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	var peers []string
	if c.app.groups != nil {
		peers = c.app.groups.PeersOf(req.Group)
	}
	applied, err := eng.Flush(req.Key, req.Group, time.Now().UnixMilli(), peers)
	if errors.Is(err, cache.ErrInvalidFlush) {
		return apiError(http.StatusBadRequest, errors.New("key and group are required"))
	}
	if err != nil {
		return c.internal("flush", err)
	}
	if applied && len(peers) > 0 {
		c.app.groups.Kick()
	}
	c.api.log.Info("admin flush", zap.String("key", req.Key), zap.String("group", req.Group),
		zap.Bool("applied", applied), zap.Int("peers", len(peers)))
	return c.reply(http.StatusOK, map[string]any{"applied": applied, "forwarded_to": len(peers)})
}

// resourceRequest is the body of POST /delivery/resources.
type resourceRequest struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

func (c *adminCall) resources() error {
	var req resourceRequest
	if err := c.decode(&req); err != nil {
		return err
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	n, err := eng.AnnounceResource(req.Name, req.Hash)
	switch {
	case errors.Is(err, cache.ErrBadResource):
		return apiError(http.StatusBadRequest, err)
	case errors.Is(err, cache.ErrTooManyAnnounced):
		adminLimitHit("resources_announced")
		return apiError(http.StatusTooManyRequests, err)
	case err != nil:
		return c.internal("resource announcement", err)
	}
	return c.reply(http.StatusOK, map[string]any{"name": req.Name, "hash": req.Hash, "invalidated": n})
}

// internal logs err and answers 500 without its details.
func (c *adminCall) internal(what string, err error) error {
	c.api.log.Error("admin API: "+what+" failed", zap.Error(err))
	return apiError(http.StatusInternalServerError, fmt.Errorf("%s failed (see the log)", what))
}

// intParam reads a positive integer query parameter ("" is def).
func intParam(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, apiError(http.StatusBadRequest, fmt.Errorf("invalid number %q", s))
	}
	return n, nil
}
