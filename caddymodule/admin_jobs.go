package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/jobs"
)

// The admin API's long work: warm, check (and repair), rebuild and large
// purges answer 202 with a job; GET /delivery/jobs/<id> follows it,
// DELETE cancels it.

// startJob starts fn as a job and answers 202 with its snapshot.
func (c *adminCall) startJob(spec jobs.Spec, fn jobs.Func) error {
	snap, err := adminJobs.Start(spec, fn)
	var conflict *jobs.ConflictError
	switch {
	case errors.As(err, &conflict):
		return apiError(http.StatusConflict, err)
	case errors.Is(err, jobs.ErrTooMany):
		return apiError(http.StatusTooManyRequests, err)
	case err != nil:
		return c.internal("starting a job", err)
	}
	c.api.log.Info("admin job started", zap.String("kind", spec.Kind), zap.String("id", snap.ID))
	c.w.Header().Set("Location", "/delivery/jobs/"+snap.ID)
	return c.reply(http.StatusAccepted, snap)
}

func (c *adminCall) job(id string) error {
	var snap jobs.Snapshot
	var ok bool
	switch c.r.Method {
	case http.MethodGet:
		snap, ok = adminJobs.Get(id)
	case http.MethodDelete:
		snap, ok = adminJobs.Cancel(id)
	default:
		c.w.Header().Set("Allow", "GET, DELETE")
		return apiError(http.StatusMethodNotAllowed, errors.New("a job takes GET or DELETE"))
	}
	if !ok {
		return apiError(http.StatusNotFound, fmt.Errorf("no job %q (finished jobs are kept for a while only)", id))
	}
	return c.reply(http.StatusOK, snap)
}

func (c *adminCall) jobList() error {
	return c.reply(http.StatusOK, map[string]any{"jobs": adminJobs.List()})
}

// warmRequest is the body of POST /delivery/warm.
type warmRequest struct {
	URLs    []string `json:"urls,omitempty"`
	Sitemap string   `json:"sitemap,omitempty"`
	Host    string   `json:"host,omitempty"`
	// Concurrency is how many renders run at once (default and most 8).
	Concurrency int `json:"concurrency,omitempty"`
}

// maxWarmURLs bounds the URLs of one warm given in the body.
const maxWarmURLs = 100_000

func (c *adminCall) warm() error {
	var req warmRequest
	if err := c.decode(&req); err != nil {
		return err
	}
	if (len(req.URLs) == 0) == (req.Sitemap == "") {
		return apiError(http.StatusBadRequest, errors.New("name urls or a sitemap"))
	}
	if len(req.URLs) > maxWarmURLs {
		adminLimitHit("warm_urls")
		return apiError(http.StatusRequestEntityTooLarge, fmt.Errorf("more than %d urls", maxWarmURLs))
	}
	if req.Concurrency < 0 || req.Concurrency > cache.MaxWarmConcurrency {
		return apiError(http.StatusBadRequest, fmt.Errorf("concurrency is 1 to %d", cache.MaxWarmConcurrency))
	}
	s, err := c.site(req.Host)
	if err != nil {
		return err
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	hosts := c.hostsOf(s)
	if req.Host != "" {
		hosts = append(hosts, req.Host)
	}
	opts := cache.WarmOptions{Host: req.Host, Concurrency: req.Concurrency}
	return c.startJob(jobs.Spec{Kind: "warm"}, func(ctx context.Context, p *jobs.Progress) error {
		urls := req.URLs
		result := map[string]any{}
		if req.Sitemap != "" {
			p.SetPhase("sitemap")
			sm, err := cache.FetchSitemap(ctx, nil, req.Sitemap, cache.SitemapLimits{})
			if err != nil {
				return err
			}
			for _, l := range sm.Limits {
				adminLimitHit(l)
			}
			for _, e := range sm.Errors {
				p.Error(errors.New(e))
			}
			var foreign int
			urls, foreign = cache.SitePaths(sm.URLs, hosts)
			result["sitemap"] = map[string]any{"sitemaps": sm.Sitemaps, "urls": len(sm.URLs), "other_hosts": foreign,
				"limits": sm.Limits}
			p.SetPhase("render")
		}
		res, err := eng.Warm(ctx, s, urls, opts, p)
		result["warm"] = res
		p.SetResult(result)
		return err
	})
}

// hostsOf are the host names the admin API knows for a site.
func (c *adminCall) hostsOf(s *cache.Site) []string {
	var hosts []string
	for h, hs := range adminSites.sitesOf(c.app) {
		if hs.Store == s.Store {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// checkRequest is the body of POST /delivery/check.
type checkRequest struct {
	Repair bool `json:"repair,omitempty"`
}

// checkResult is the result of a check job.
type checkResult struct {
	Files          int                 `json:"files"`
	Entries        int                 `json:"entries"`
	Problems       int                 `json:"problems"`
	Unregistered   []string            `json:"unregistered"`
	Dangling       []string            `json:"dangling"`
	BadIndex       []string            `json:"bad_index"`
	TempFiles      []string            `json:"temp_files"`
	RetiredEntries int                 `json:"retired_entries"`
	RetiredKeys    int                 `json:"retired_keys"`
	Truncated      bool                `json:"truncated,omitempty"`
	Repair         *cache.RepairResult `json:"repair,omitempty"`
}

// maxCheckListed bounds each list of findings in a check's result.
const maxCheckListed = 1000

func (c *adminCall) check() error {
	var req checkRequest
	if err := c.decode(&req); err != nil {
		return err
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	return c.startJob(jobs.Spec{Kind: "check", Exclusive: true}, func(ctx context.Context, p *jobs.Progress) error {
		since := time.Now()
		p.SetPhase("check")
		last := 0
		rep, err := eng.Check(func(cp cache.CheckProgress) {
			n := cp.Entries + cp.IndexKeys + cp.Files
			p.Add(int64(n - last))
			last = n
		})
		if err != nil {
			return err
		}
		res := checkResult{Files: rep.Files, Entries: rep.Entries, Problems: rep.Problems(),
			RetiredEntries: rep.RetiredEntries, RetiredKeys: rep.RetiredKeys}
		res.Unregistered, res.Truncated = firstN(rep.Unregistered, res.Truncated)
		res.Dangling, res.Truncated = firstN(rep.Dangling, res.Truncated)
		res.BadIndex, res.Truncated = firstN(rep.BadIndex, res.Truncated)
		res.TempFiles, res.Truncated = firstN(rep.TempFiles, res.Truncated)
		if res.Truncated {
			adminLimitHit("check_listed")
		}
		p.SetResult(res)
		if !req.Repair || rep.Problems() == 0 {
			return nil
		}
		rr, err := eng.Repair(ctx, rep, since, p)
		res.Repair = &rr
		p.SetResult(res)
		return err
	})
}

func firstN(s []string, truncated bool) ([]string, bool) {
	if s == nil {
		return []string{}, truncated
	}
	if len(s) > maxCheckListed {
		return s[:maxCheckListed], true
	}
	return s, truncated
}

func (c *adminCall) rebuild() error {
	if err := c.decode(&struct{}{}); err != nil {
		return err
	}
	eng, err := c.engine()
	if err != nil {
		return err
	}
	log := c.api.log
	return c.startJob(jobs.Spec{Kind: "rebuild", Exclusive: true}, func(ctx context.Context, p *jobs.Progress) error {
		res, err := eng.Rebuild(ctx, p)
		p.SetResult(res)
		if err == nil {
			log.Info("rebuild done", zap.Int("entries", res.Cleared.Entries), zap.Int64("deleted", res.Deleted))
		}
		return err
	})
}
