package caddymodule

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/delivery-edge/edge/cache"
)

// The size options of the `delivery` block: the hot set's, and the
// docroot's bounds (max_size, min_free).

// parseHotCache reads `hot_cache <size>|off`.
func parseHotCache(d *caddyfile.Dispenser, a *App) error {
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	if v == "off" {
		a.HotCacheBytes = -1
		return nil
	}
	n, err := parseByteSize(v)
	if err != nil || n <= 0 {
		return d.Errf("hot_cache: want a size like 64MiB or off, got %q", v)
	}
	a.HotCacheBytes = n
	return nil
}

// sizeArg reads one positive size such as 64MiB.
func sizeArg(d *caddyfile.Dispenser, option string, dst *int64) error {
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	n, err := parseByteSize(v)
	if err != nil {
		return d.Errf("%s: %v", option, err)
	}
	*dst = n
	return nil
}

// parseHotMaxFile reads `hot_max_file <size>`.
func parseHotMaxFile(d *caddyfile.Dispenser, a *App) error {
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	n, err := parseByteSize(v)
	if err != nil || n <= 0 {
		return d.Errf("hot_max_file: want a size like 1MiB, got %q", v)
	}
	a.HotMaxFile = n
	return nil
}

// parseMaxSize reads `max_size <size>|0`.
func parseMaxSize(d *caddyfile.Dispenser, a *App) error {
	var v string
	if err := oneArg(d, &v); err != nil {
		return err
	}
	if v == "0" {
		a.MaxSize = 0
		return nil
	}
	n, err := parseByteSize(v)
	if err != nil {
		return d.Errf("max_size: %v", err)
	}
	a.MaxSize = n
	return nil
}

// DefaultMinFree is min_free when none is configured.
const DefaultMinFree = "5%"

// parseMinFree reads min_free: a size, a percentage of the file system's
// size below 100 or 0 (off); "" is the default.
func parseMinFree(v string) (cache.SizeLimits, error) {
	if v == "" {
		v = DefaultMinFree
	}
	if v == "0" {
		return cache.SizeLimits{}, nil
	}
	if pct, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(pct, 64)
		if err != nil || !(f > 0 && f < 100) {
			return cache.SizeLimits{}, fmt.Errorf("want a percentage above 0 and below 100, got %q", v)
		}
		return cache.SizeLimits{MinFreePercent: f}, nil
	}
	n, err := parseByteSize(v)
	if err != nil {
		return cache.SizeLimits{}, fmt.Errorf("want a size such as 10GB, a percentage such as 5%% or 0, got %q", v)
	}
	return cache.SizeLimits{MinFree: n}, nil
}

// sizeLimits are max_size and min_free as the engine takes them.
func sizeLimits(maxSize int64, minFree string) (cache.SizeLimits, error) {
	if maxSize < 0 {
		return cache.SizeLimits{}, fmt.Errorf("max_size: %d is negative", maxSize)
	}
	l, err := parseMinFree(minFree)
	if err != nil {
		return cache.SizeLimits{}, fmt.Errorf("min_free: %w", err)
	}
	l.MaxSize = maxSize
	return l, nil
}

var _ caddyfile.Unmarshaler = (*App)(nil)
