package caddymodule

import (
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/internal/jobs"
)

// The admin API finds the running delivery app here: the app may run with
// defaults (no `delivery` block), so it cannot be looked up by the admin
// module's config context. An app registers itself when it starts and
// leaves when it stops; during a reload the new config starts before the
// old one stops, so the newest started app is the running one.

// maxAdminHosts bounds the hosts the admin API remembers per app (docroots
// learned from requests whose root depends on the request).
const maxAdminHosts = 10_000

type adminSiteIndex struct {
	mu      sync.Mutex
	running *App
	// sites are the sites learned from requests, by app and host name.
	sites map[*App]map[string]*cache.Site
	full  map[*App]bool // the bound was hit and logged for the app
}

var adminSites = &adminSiteIndex{sites: map[*App]map[string]*cache.Site{}, full: map[*App]bool{}}

// adminJobs runs the admin API's long work (shared by configs: a job
// outlives a reload; it is cancelled when the last app stops).
var adminJobs = jobs.New(jobs.Config{OnLimit: func(limit string) { adminLimitHit(limit) }})

// started registers a as the running app.
func (x *adminSiteIndex) started(a *App) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.running = a
}

// stopped forgets a; when a was the running app, no app runs any more
// and the jobs are cancelled.
func (x *adminSiteIndex) stopped(a *App) {
	x.mu.Lock()
	last := x.running == a
	if last {
		x.running = nil
	}
	delete(x.sites, a)
	delete(x.full, a)
	x.mu.Unlock()
	if last {
		adminJobs.Shutdown()
	}
}

// app is the running app, nil if none.
func (x *adminSiteIndex) app() *App {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.running
}

// note remembers the site a request of host found for app.
func (x *adminSiteIndex) note(a *App, host string, s *cache.Site) {
	if a == nil || s == nil {
		return
	}
	name := hostName(host)
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.sites[a]
	if m == nil {
		m = map[string]*cache.Site{}
		x.sites[a] = m
	}
	if _, ok := m[name]; !ok && len(m) >= maxAdminHosts {
		if !x.full[a] {
			x.full[a] = true
			a.log.Warn("admin API: too many hosts to remember; later ones cannot be named with host",
				zap.Int("limit", maxAdminHosts))
			adminLimitHit("admin_hosts")
		}
		return
	}
	m[name] = s
}

// sitesOf returns the sites of a by host name: the docroots its config
// knows without a request, and those learned from requests.
func (x *adminSiteIndex) sitesOf(a *App) map[string]*cache.Site {
	out := map[string]*cache.Site{}
	if httpApp, err := a.ctx.AppIfConfigured("http"); err == nil {
		known, _ := startSites(httpApp.(*caddyhttp.App).Servers)
		for _, k := range known {
			s, err := k.handler.siteFor(k.root, k.host)
			if err != nil {
				continue // logged by siteFor; the route answers without it
			}
			if _, ok := out[hostName(k.host)]; !ok {
				out[hostName(k.host)] = s
			}
		}
	}
	x.mu.Lock()
	for h, s := range x.sites[a] {
		out[h] = s
	}
	x.mu.Unlock()
	return out
}

// hostName is a host without its port, lower case.
func hostName(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}

// distinctSites are the sites of a host map, one per docroot, and their
// hosts, sorted.
func distinctSites(m map[string]*cache.Site) (sites []*cache.Site, hosts []string) {
	seen := map[*cache.Store]bool{}
	for h := range m {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		if s := m[h]; !seen[s.Store] {
			seen[s.Store] = true
			sites = append(sites, s)
		}
	}
	return sites, hosts
}
