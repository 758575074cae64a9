package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// DefaultHealthPath is where delivery_health answers when the directive
// has no matcher.
const DefaultHealthPath = "/actuator/health"

func init() {
	httpcaddyfile.RegisterDirective("delivery_health", parseHealthDirective)
	httpcaddyfile.RegisterDirectiveOrder("delivery_health", httpcaddyfile.Before, "respond")
}

// parseHealthDirective sets up `delivery_health [<matcher>] { show_details }`.
// Without a matcher the handler answers only DefaultHealthPath, never
// every request of the site.
func parseHealthDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	return pathRoute(h, DefaultHealthPath, new(Health))
}

// UnmarshalCaddyfile reads
//
//	delivery_health [<matcher>] {
//		show_details
//	}
func (h *Health) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "show_details":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.ShowDetails = true
		default:
			return d.Errf("delivery_health: unknown option %q", d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Health)(nil)
