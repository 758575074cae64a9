package caddymodule

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterDirective("image_service", parseImageServiceDirective)
	// Before `respond`, which is before `metrics`, `delivery_cache` and
	// `reverse_proxy`: image URLs never reach the docroot cache. (A
	// plugin's order can only name a standard directive.)
	httpcaddyfile.RegisterDirectiveOrder("image_service", httpcaddyfile.Before, "respond")
}

// parseImageServiceDirective sets up `image_service [<matcher>] {…}`. A
// path matcher of the form /<prefix>/* gives the handler its prefix
// unless the block names one.
func parseImageServiceDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	svc := new(ImageService)
	if err := svc.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if svc.Prefix == "" {
		svc.Prefix = pathPrefixOf(matcherSet)
	}
	if err := svc.Validate(); err != nil {
		return nil, h.Errf("%v", err)
	}
	return h.NewRoute(matcherSet, svc), nil
}

// pathPrefixOf returns "/image" for a matcher set whose path matcher is
// the single pattern "/image/*", else "".
func pathPrefixOf(set caddy.ModuleMap) string {
	raw, ok := set["path"]
	if !ok {
		return ""
	}
	var paths []string
	if err := json.Unmarshal(raw, &paths); err != nil || len(paths) != 1 {
		return ""
	}
	p, ok := strings.CutSuffix(paths[0], "/*")
	if !ok || p == "" || !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "*?{}") {
		return ""
	}
	return p
}

// UnmarshalCaddyfile reads the handler's block:
//
//	image_service [<matcher>] {
//		prefix           <path>
//		widths           <n...>
//		long_max_age     <duration>
//		short_max_age    <duration>
//		max_generations  <n>
//		generate_timeout <duration>
//		variants_ttl     <duration>
//		recheck_interval <duration>
//		negative_ttl     <duration>|off
//		max_pixels       <n>
//		max_bytes        <size>
//		jpeg_quality     <1-100>
//		webp_quality     <1-100>
//		memory_cache     <size>|off
//		state_ttl        <duration>|off
//	}
func (h *ImageService) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		name := d.Val()
		option := "image_service " + name
		var err error
		switch name {
		case "prefix":
			err = oneArg(d, &h.Prefix)
			if err == nil && (!strings.HasPrefix(h.Prefix, "/") || strings.ContainsAny(h.Prefix, "*?{}")) {
				err = d.Errf("%s: %q must be a plain path starting with /", option, h.Prefix)
			}
			h.Prefix = strings.TrimRight(h.Prefix, "/")
		case "widths":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, a := range args {
				w, convErr := strconv.Atoi(a)
				if convErr != nil {
					return d.Errf("%s: %q is not a whole number", option, a)
				}
				h.Widths = append(h.Widths, w)
			}
			if werr := checkWidths(h.Widths); werr != nil {
				return d.Errf("%s: %v", option, werr)
			}
		case "long_max_age":
			err = durationArg(d, option, &h.LongMaxAge)
		case "short_max_age":
			err = durationArg(d, option, &h.ShortMaxAge)
		case "generate_timeout":
			err = durationArg(d, option, &h.GenerateTimeout)
		case "variants_ttl":
			err = durationArg(d, option, &h.VariantsTTL)
		case "recheck_interval":
			err = durationArg(d, option, &h.RecheckInterval)
		case "negative_ttl":
			// 0 and off both mean "not remembered" (in JSON, 0 is the
			// default and negative is off).
			if offArg(d) {
				h.NegativeTTL = -1
				continue
			}
			err = durationArg(d, option, &h.NegativeTTL)
			if err == nil && h.NegativeTTL == 0 {
				h.NegativeTTL = -1
			}
		case "max_generations":
			err = intArg(d, option, &h.MaxGenerations)
		case "max_pixels":
			err = int64Arg(d, option, &h.MaxPixels, parsePositiveInt)
		case "max_bytes":
			err = int64Arg(d, option, &h.MaxBytes, parseByteSize)
		case "jpeg_quality":
			err = qualityArg(d, option, &h.JPEGQuality)
		case "webp_quality":
			err = qualityArg(d, option, &h.WebPQuality)
		case "memory_cache":
			if offArg(d) {
				h.MemoryCache = -1
				continue
			}
			err = int64Arg(d, option, &h.MemoryCache, parseByteSize)
		case "state_ttl":
			if offArg(d) {
				h.StateTTL = -1
				continue
			}
			err = durationArg(d, option, &h.StateTTL)
		default:
			return d.Errf("image_service: unknown option %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// offArg consumes a sole argument "off" and reports whether it was there;
// otherwise the dispenser is left as it was.
func offArg(d *caddyfile.Dispenser) bool {
	if !d.NextArg() {
		return false
	}
	if d.Val() == "off" && d.CountRemainingArgs() == 0 {
		return true
	}
	d.Prev()
	return false
}

func qualityArg(d *caddyfile.Dispenser, option string, dst *int) error {
	if err := intArg(d, option, dst); err != nil {
		return err
	}
	if *dst > 100 {
		return d.Errf("%s: %d is not in 1..100", option, *dst)
	}
	return nil
}

func int64Arg(d *caddyfile.Dispenser, option string, dst *int64, parse func(string) (int64, error)) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	n, err := parse(d.Val())
	if err != nil {
		return d.Errf("%s: %v", option, err)
	}
	*dst = n
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func parsePositiveInt(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("want a positive whole number, got %q", s)
	}
	return n, nil
}

// parseByteSize reads "64MiB", "50MB", "512k" or plain bytes. Decimal
// units (kB, MB, GB) are powers of 1000, binary ones (KiB, MiB, GiB) and
// bare letters (k, m, g) powers of 1024.
func parseByteSize(s string) (int64, error) {
	bad := fmt.Errorf("want a size such as 64MiB or 50MB, got %q", s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, bad
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n < 1 {
		return 0, bad
	}
	var mult int64
	switch strings.ToLower(s[i:]) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1000
	case "mb":
		mult = 1000 * 1000
	case "gb":
		mult = 1000 * 1000 * 1000
	case "k", "kib":
		mult = 1 << 10
	case "m", "mib":
		mult = 1 << 20
	case "g", "gib":
		mult = 1 << 30
	default:
		return 0, bad
	}
	if n > (1<<62)/mult {
		return 0, bad
	}
	return n * mult, nil
}

var _ caddyfile.Unmarshaler = (*ImageService)(nil)
