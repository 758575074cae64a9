package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("delivery", parseGlobalDelivery)
	httpcaddyfile.RegisterHandlerDirective("delivery_cache", parseHandler[Cache])
	httpcaddyfile.RegisterDirectiveOrder("delivery_cache", httpcaddyfile.Before, "reverse_proxy")
}

// parseGlobalDelivery sets up the `delivery` app from the global option
// of the same name.
func parseGlobalDelivery(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "delivery", Value: caddyconfig.JSON(app, nil)}, nil
}

// handlerPtr is a handler module that can read its own Caddyfile block.
type handlerPtr[T any] interface {
	*T
	caddyhttp.MiddlewareHandler
	caddyfile.Unmarshaler
}

// parseHandler parses a handler directive into its module.
func parseHandler[T any, P handlerPtr[T]](h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := P(new(T))
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// parseDuration reads the next argument as a duration, naming the option
// in the error.
func parseDuration(d *caddyfile.Dispenser, option string) (caddy.Duration, error) {
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return 0, d.Errf("%s: invalid duration %q: %v", option, d.Val(), err)
	}
	if dur < 0 {
		return 0, d.Errf("%s: duration %q must not be negative", option, d.Val())
	}
	return caddy.Duration(dur), nil
}

func timeDuration(d caddy.Duration) time.Duration { return time.Duration(d) }
