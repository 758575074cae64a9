package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile sets up the app from the `delivery` global option:
//
//	delivery {
//		data_dir <path>
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "data_dir":
			if !d.NextArg() {
				return d.ArgErr()
			}
			a.DataDir = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("delivery: unknown option %q", d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*App)(nil)
