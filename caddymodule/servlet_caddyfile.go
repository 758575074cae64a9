package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("cache_servlet", parseHandler[CacheServlet])
	// Before respond, and so before delivery_cache (ordered before
	// reverse_proxy): the servlet's path must never reach the cache.
	httpcaddyfile.RegisterDirectiveOrder("cache_servlet", httpcaddyfile.Before, "respond")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	cache_servlet [<matcher>]
//
// It takes no options: the password and the groups are the delivery
// app's (servlet_password, group).
func (h *CacheServlet) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("cache_servlet: takes no options (the password and groups are set in the delivery app), got %q", d.Val())
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*CacheServlet)(nil)
