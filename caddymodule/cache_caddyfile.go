package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	delivery_cache [<matcher>] {
//		root           <path>
//		query_params   <name...>
//		render_timeout <duration>
//		render_wait    <duration>
//		precompress
//		max_renders    <n>
//		max_file_size  <size>
//		cache_status   on|off
//		ssi [{
//			max_depth <n>
//		}]
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
		case "render_wait":
			dur, err := parseDuration(d, "render_wait")
			if err != nil {
				return err
			}
			h.RenderWait = &dur
		case "precompress":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Precompress = true
		case "max_renders":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("max_renders: want a number of at least 1, got %q", v)
			}
			h.MaxRenders = n
		case "max_file_size":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := parseByteSize(v)
			if err != nil || n <= 0 {
				return d.Errf("max_file_size: want a size like 64MiB, got %q", v)
			}
			h.MaxFileSize = n
		case "cache_status":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			switch v {
			case "on":
				h.CacheStatus = nil
			case "off":
				off := false
				h.CacheStatus = &off
			default:
				return d.Errf("cache_status: want on or off, got %q", v)
			}
		case "ssi":
			if err := h.unmarshalSSI(d); err != nil {
				return err
			}
		default:
			return d.Errf("delivery_cache: unknown option %q", d.Val())
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Cache)(nil)

func (h *Cache) unmarshalSSI(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	h.SSI = &SSIOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "max_depth":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 1 || n > maxSSIDepth {
				return d.Errf("ssi: max_depth must be a number from 1 to %d, not %q", maxSSIDepth, d.Val())
			}
			h.SSI.MaxDepth = n
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("ssi: unknown option %q", d.Val())
		}
	}
	return nil
}
