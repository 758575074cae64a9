package caddymodule

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/delivery-edge/edge/stagingclient"
)

// appOptions parse the options of the `delivery` global block, by name.
var appOptions = map[string]func(d *caddyfile.Dispenser, a *App) error{
	"data_dir":         func(d *caddyfile.Dispenser, a *App) error { return oneArg(d, &a.DataDir) },
	"staging":          parseStagingOption,
	"pregenerate":      parsePregenerate,
	"lazy_removal":     func(d *caddyfile.Dispenser, a *App) error { return durationArg(d, "lazy_removal", &a.LazyRemoval) },
	"ephemeral":        func(d *caddyfile.Dispenser, a *App) error { return durationArg(d, "ephemeral", &a.Ephemeral) },
	"servlet_password": func(d *caddyfile.Dispenser, a *App) error { return oneArg(d, &a.ServletPassword) },
	"flush_log_retention": func(d *caddyfile.Dispenser, a *App) error {
		return durationArg(d, "flush_log_retention", &a.FlushLogRetention)
	},
	"flush_log_max_size": func(d *caddyfile.Dispenser, a *App) error {
		return sizeArg(d, "flush_log_max_size", &a.FlushLogMaxSize)
	},
	"outbox_max_size": func(d *caddyfile.Dispenser, a *App) error {
		return sizeArg(d, "outbox_max_size", &a.OutboxMaxSize)
	},
	"group":         parseGroup,
	"image_store":   parseImageStore,
	"image_updates": parseImageUpdates,
	"hot_cache":     parseHotCache,
	"hot_max_file":  parseHotMaxFile,
	"max_size":      parseMaxSize,
	"min_free": func(d *caddyfile.Dispenser, a *App) error {
		if err := oneArg(d, &a.MinFree); err != nil {
			return err
		}
		if _, err := parseMinFree(a.MinFree); err != nil {
			return d.Errf("min_free: %v", err)
		}
		return nil
	},
	"hot_cache_valid": func(d *caddyfile.Dispenser, a *App) error {
		var v caddy.Duration
		if err := durationArg(d, "hot_cache_valid", &v); err != nil {
			return err
		}
		a.HotCacheValid = &v
		return nil
	},
}

// UnmarshalCaddyfile sets up the app from the `delivery` global option;
// see README.md for every option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		parse, ok := appOptions[d.Val()]
		if !ok {
			return d.Errf("delivery: unknown option %q", d.Val())
		}
		if err := parse(d, a); err != nil {
			return err
		}
	}
	return nil
}

// oneArg reads exactly one argument.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser, option string, dst *caddy.Duration) error {
	dur, err := parseDuration(d, option)
	if err != nil {
		return err
	}
	*dst = dur
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func intArg(d *caddyfile.Dispenser, option string, dst *int) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(d.Val())
	if err != nil || n < 1 {
		return d.Errf("%s: want a positive whole number, got %q", option, d.Val())
	}
	*dst = n
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// httpURLArgs reads the remaining arguments as http(s) base URLs.
func httpURLArgs(d *caddyfile.Dispenser, option string) ([]string, error) {
	args := d.RemainingArgs()
	for _, a := range args {
		if strings.Contains(a, "{") {
			continue // a placeholder: checked when provisioned
		}
		if err := checkBaseURL(a); err != nil {
			return nil, d.Errf("%s: %v", option, err)
		}
	}
	return args, nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", s)
	}
	return nil
}

// parseStagingOption reads
//
//	staging <url...> {
//		token         <uuid>
//		poll_interval <duration>
//		long_poll     <duration>|off
//		timeout       <duration>
//		max_attempts  <n>
//		ca_file       <pem file>
//	}
func parseStagingOption(d *caddyfile.Dispenser, a *App) error {
	sc, err := parseStagingBlock(d, "staging", true)
	if err != nil {
		return err
	}
	a.Staging = sc
	return nil
}

func parseStagingBlock(d *caddyfile.Dispenser, option string, needURL bool) (*StagingConfig, error) {
	sc := new(StagingConfig)
	urls, err := httpURLArgs(d, option)
	if err != nil {
		return nil, err
	}
	if needURL && len(urls) == 0 {
		return nil, d.Errf("%s: at least one base URL is required", option)
	}
	sc.URLs = urls
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch name := d.Val(); name {
		case "token":
			if err := oneArg(d, &sc.Token); err != nil {
				return nil, err
			}
			if !strings.Contains(sc.Token, "{") {
				if err := stagingclient.ValidateToken(sc.Token); err != nil {
					return nil, d.Errf("%s: token: %v", option, err)
				}
			}
		case "poll_interval":
			if err := durationArg(d, option+" poll_interval", &sc.PollInterval); err != nil {
				return nil, err
			}
		case "long_poll":
			if d.NextArg() && d.Val() == "off" {
				sc.LongPoll = -1
				if d.NextArg() {
					return nil, d.ArgErr()
				}
				continue
			}
			d.Prev()
			if err := durationArg(d, option+" long_poll", &sc.LongPoll); err != nil {
				return nil, err
			}
		case "timeout":
			if err := durationArg(d, option+" timeout", &sc.Timeout); err != nil {
				return nil, err
			}
		case "max_attempts":
			if err := intArg(d, option+" max_attempts", &sc.MaxAttempts); err != nil {
				return nil, err
			}
		case "ca_file":
			if err := oneArg(d, &sc.CAFile); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("%s: unknown option %q", option, name)
		}
	}
	return sc, nil
}

// parsePregenerate reads
//
//	pregenerate {
//		workers <n>
//		recent  <duration>
//		generate_nonexistent
//		resolve_path <path>
//	}
func parsePregenerate(d *caddyfile.Dispenser, a *App) error {
	p := new(PregenerateConfig)
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch name := d.Val(); name {
		case "workers":
			if err := intArg(d, "pregenerate workers", &p.Workers); err != nil {
				return err
			}
		case "recent":
			if err := durationArg(d, "pregenerate recent", &p.Recent); err != nil {
				return err
			}
		case "generate_nonexistent":
			if d.NextArg() {
				return d.ArgErr()
			}
			p.GenerateNonexistent = true
		case "resolve_path":
			if err := oneArg(d, &p.ResolvePath); err != nil {
				return err
			}
			if !strings.HasPrefix(p.ResolvePath, "/") {
				return d.Errf("pregenerate resolve_path: %q must start with /", p.ResolvePath)
			}
		default:
			return d.Errf("pregenerate: unknown option %q", name)
		}
	}
	a.Pregenerate = p
	return nil
}

// parseGroup reads
//
//	group <name> {
//		peer <url...>
//	}
func parseGroup(d *caddyfile.Dispenser, a *App) error {
	var name string
	if err := oneArgKeepBlock(d, &name); err != nil {
		return err
	}
	g := a.Groups[name]
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "peer":
			peers, err := httpURLArgs(d, "group "+name+" peer")
			if err != nil {
				return err
			}
			if len(peers) == 0 {
				return d.ArgErr()
			}
			g.Peers = append(g.Peers, peers...)
		default:
			return d.Errf("group %s: unknown option %q", name, d.Val())
		}
	}
	if a.Groups == nil {
		a.Groups = map[string]GroupConfig{}
	}
	a.Groups[name] = g
	return nil
}

// oneArgKeepBlock reads exactly one argument before a block.
func oneArgKeepBlock(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// parseImageStore reads `image_store file <dir>` or
//
//	image_store s3 {
//		bucket     <name>
//		endpoint   <url>
//		region     <region>
//		prefix     <key prefix>
//		path_style
//		access_key <key>
//		secret_key <secret>
//		ca_file    <pem file>
//	}
func parseImageStore(d *caddyfile.Dispenser, a *App) error {
	st := new(ImageStoreConfig)
	if !d.NextArg() {
		return d.ArgErr()
	}
	st.Type = d.Val()
	switch st.Type {
	case "file":
		if d.NextArg() {
			st.Dir = d.Val()
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	case "s3":
		if d.NextArg() {
			return d.ArgErr()
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			var dst *string
			switch name := d.Val(); name {
			case "bucket":
				dst = &st.Bucket
			case "endpoint":
				dst = &st.Endpoint
			case "region":
				dst = &st.Region
			case "prefix":
				dst = &st.Prefix
			case "access_key":
				dst = &st.AccessKey
			case "secret_key":
				dst = &st.SecretKey
			case "ca_file":
				dst = &st.CAFile
			case "path_style":
				if d.NextArg() {
					return d.ArgErr()
				}
				st.PathStyle = true
				continue
			default:
				return d.Errf("image_store s3: unknown option %q", name)
			}
			if err := oneArg(d, dst); err != nil {
				return err
			}
		}
		if st.Bucket == "" {
			return d.Err("image_store s3: bucket is required")
		}
	default:
		return d.Errf("image_store: unknown type %q (want file or s3)", st.Type)
	}
	a.ImageStore = st
	return nil
}

// parseImageUpdates reads `image_updates` (events from `staging`) or
// `image_updates <url...> { token … }` (events from the primary), with the
// options of the staging block.
func parseImageUpdates(d *caddyfile.Dispenser, a *App) error {
	sc, err := parseStagingBlock(d, "image_updates", false)
	if err != nil {
		return err
	}
	a.ImageUpdates = sc
	return nil
}
