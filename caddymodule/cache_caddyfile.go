package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	delivery_cache [<matcher>] {
//		root           <path>
//		query_params   <name...>
//		render_timeout <duration>
//	}
func (h *Cache) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "root":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.Root = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "query_params":
			h.QueryParams = append(h.QueryParams, d.RemainingArgs()...)
			if len(h.QueryParams) == 0 {
				return d.ArgErr()
			}
		case "render_timeout":
			dur, err := parseDuration(d, "render_timeout")
			if err != nil {
				return err
			}
			h.RenderTimeout = dur
		default:
			return d.Errf("delivery_cache: unknown option %q", d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Cache)(nil)
