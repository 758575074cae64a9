package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// pathRoute is the route of a directive that answers one path of a site
// (delivery_health, delivery_status): with its matcher if it has one, else
// defaultPath only, never every request of the site. handler reads the
// rest of the directive.
func pathRoute(h httpcaddyfile.Helper, defaultPath string, handler interface {
	caddyhttp.MiddlewareHandler
	caddyfile.Unmarshaler
}) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	if matcherSet == nil {
		matcherSet = caddy.ModuleMap{"path": caddyconfig.JSON(caddyhttp.MatchPath{defaultPath}, nil)}
	}
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return h.NewRoute(matcherSet, handler), nil
}
