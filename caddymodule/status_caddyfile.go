package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// DefaultStatusPath is where delivery_status answers when the directive
// has no matcher.
const DefaultStatusPath = "/_status"

func init() {
	httpcaddyfile.RegisterDirective("delivery_status", parseStatusDirective)
	// After basic_auth and forward_auth in Caddy's order, so that they
	// guard the page.
	httpcaddyfile.RegisterDirectiveOrder("delivery_status", httpcaddyfile.Before, "respond")
}

// parseStatusDirective sets up `delivery_status [<matcher>] { refresh <d> }`.
// Without a matcher the handler answers only DefaultStatusPath, never
// every request of the site.
func parseStatusDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	return pathRoute(h, DefaultStatusPath, new(Status))
}

// UnmarshalCaddyfile reads
//
//	delivery_status [<matcher>] {
//		refresh <duration>
//	}
func (s *Status) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "refresh":
			if !d.NextArg() {
				return d.ArgErr()
			}
			v, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("delivery_status: refresh %q: %v", d.Val(), err)
			}
			if v < minStatusRefresh || v > maxStatusRefresh {
				return d.Errf("delivery_status: refresh %v is not between %v and %v", v, minStatusRefresh, maxStatusRefresh)
			}
			s.Refresh = caddy.Duration(v)
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("delivery_status: unknown option %q", d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Status)(nil)
