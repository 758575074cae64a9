package cache

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/delivery-edge/edge/cache/registry"
)

// Response headers the render backend reports. They are consumed by the
// cache and never reach the client.
const (
	HeaderDependencies = "Delivery-Dependencies"
	HeaderCacheKeys    = "Delivery-Cache-Keys"
	HeaderPregenerate  = "Delivery-Pregenerate"
	// HeaderStale marks an answer served from a ".old" copy.
	HeaderStale = "Delivery-Stale"
)

// MaxPropertyDeps is the number of properties above which a property
// dependency counts as a full dependency on the document.
const MaxPropertyDeps = 10

// RenderInfo is what a render response reports about itself.
type RenderInfo struct {
	Deps        []Dependency
	Keys        []string
	Pregenerate bool
	// Expires is the scheduled invalidation time; zero means none.
	Expires time.Time
	// Uncacheable is set when the response must not be stored, with the
	// reason in UncacheableReason.
	Uncacheable       bool
	UncacheableReason string
}

// ParseRenderInfo reads the Delivery-* and caching headers of a render
// response. A malformed Delivery-* header is an error: a page whose
// dependencies are unknown could never be invalidated, so it must not be
// cached. So is an answer beyond the limits (limits.go), with a *LimitError.
func ParseRenderInfo(h http.Header, now time.Time) (RenderInfo, error) {
	var info RenderInfo
	// Checked before parsing, so an enormous header costs no parsing.
	err := registry.CheckLimit("bytes of Delivery-* headers", renderHeaderBytes(h), MaxRenderHeaderBytes)
	if err != nil {
		return info, err
	}
	if v := h.Values(HeaderDependencies); len(v) > 0 {
		if info.Deps, err = ParseDependencies(v); err != nil {
			return info, err
		}
	}
	if v := h.Values(HeaderCacheKeys); len(v) > 0 {
		if info.Keys, err = parseKeys(v); err != nil {
			return info, err
		}
	}
	if v := h.Values(HeaderPregenerate); len(v) > 0 {
		item, err := httpsfv.UnmarshalItem(v)
		if err != nil {
			return info, fmt.Errorf("%s: %w", HeaderPregenerate, err)
		}
		b, ok := item.Value.(bool)
		if !ok {
			return info, fmt.Errorf("%s: want a boolean (?1 or ?0), got %v", HeaderPregenerate, item.Value)
		}
		info.Pregenerate = b
	}
	info.Expires, info.Uncacheable, info.UncacheableReason = cachingOf(h, now)
	if h.Get("Set-Cookie") != "" {
		info.Uncacheable, info.UncacheableReason = true, "Set-Cookie"
	}
	return info, nil
}

// ParseDependencies parses the Delivery-Dependencies structured-field list.
func ParseDependencies(values []string) ([]Dependency, error) {
	list, err := httpsfv.UnmarshalList(values)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", HeaderDependencies, err)
	}
	if err := registry.CheckLimit(HeaderDependencies+" items", len(list), MaxDependencies); err != nil {
		return nil, err
	}
	deps := make([]Dependency, 0, len(list))
	for i, m := range list {
		item, ok := m.(httpsfv.Item)
		if !ok {
			return nil, fmt.Errorf("%s: member %d is an inner list, want a string", HeaderDependencies, i)
		}
		d, err := dependencyOf(item)
		if err == nil {
			err = checkDependencySizes(d)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: member %d: %w", HeaderDependencies, i, err)
		}
		deps = append(deps, d)
	}
	return deps, nil
}

func dependencyOf(item httpsfv.Item) (Dependency, error) {
	name, ok := item.Value.(string)
	if !ok || name == "" {
		return Dependency{}, errors.New("want a non-empty string naming a document")
	}
	d := Dependency{Kind: DepDocument, Name: name}
	if t, ok := item.Params.Get("type"); ok {
		tok, _ := t.(httpsfv.Token)
		switch tok {
		case "document":
		case "node":
			d.Kind = DepNode
		case "yellow":
			d.Kind = DepYellow
		case "resource":
			d.Kind = DepResource
			hash, _ := item.Params.Get("hash")
			if d.Hash, _ = hash.(string); d.Hash == "" {
				return Dependency{}, fmt.Errorf("resource %q without a hash string", name)
			}
			return d, nil
		default:
			return Dependency{}, fmt.Errorf("unknown type %v", t)
		}
	}
	children := false
	if c, ok := item.Params.Get("children"); ok {
		children, _ = c.(bool)
	}
	if p, ok := item.Params.Get("props"); ok && !children {
		s, ok := p.(string)
		if !ok {
			return Dependency{}, fmt.Errorf("props of %q is not a string", name)
		}
		props := strings.Fields(s)
		slices.Sort(props)
		props = slices.Compact(props)
		if len(props) > 0 && len(props) <= MaxPropertyDeps {
			d.Props = props
		}
	}
	return d, nil
}

// checkDependencySizes applies MaxNameBytes to every name of a dependency.
func checkDependencySizes(d Dependency) error {
	if err := registry.CheckLimit("bytes of a name", len(d.Name), MaxNameBytes); err != nil {
		return err
	}
	if err := registry.CheckLimit("bytes of a hash", len(d.Hash), MaxNameBytes); err != nil {
		return err
	}
	for _, p := range d.Props {
		if err := registry.CheckLimit("bytes of a property", len(p), MaxNameBytes); err != nil {
			return err
		}
	}
	return nil
}

func parseKeys(values []string) ([]string, error) {
	list, err := httpsfv.UnmarshalList(values)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", HeaderCacheKeys, err)
	}
	if err := registry.CheckLimit(HeaderCacheKeys+" items", len(list), MaxCacheKeys); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(list))
	for i, m := range list {
		item, ok := m.(httpsfv.Item)
		if !ok {
			return nil, fmt.Errorf("%s: member %d is an inner list", HeaderCacheKeys, i)
		}
		var key string
		switch v := item.Value.(type) {
		case string:
			key = v
		case httpsfv.Token:
			key = string(v)
		default:
			return nil, fmt.Errorf("%s: member %d is not a string", HeaderCacheKeys, i)
		}
		if key == "" {
			// No flush can name it (the servlet needs a key), so the
			// page could never be flushed by it.
			return nil, fmt.Errorf("%s: member %d is empty", HeaderCacheKeys, i)
		}
		if err := registry.CheckLimit("bytes of a cache key", len(key), MaxNameBytes); err != nil {
			return nil, fmt.Errorf("%s: member %d: %w", HeaderCacheKeys, i, err)
		}
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// cachingOf reads Cache-Control and Expires: the scheduled invalidation
// time, and whether the response may be stored at all.
func cachingOf(h http.Header, now time.Time) (expires time.Time, uncacheable bool, reason string) {
	maxAge, sMaxAge := -1, -1
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "private", "no-store", "no-cache":
				return time.Time{}, true, "Cache-Control: " + strings.ToLower(name)
			case "max-age":
				maxAge = atoiOr(val, -1)
			case "s-maxage":
				sMaxAge = atoiOr(val, -1)
			}
		}
	}
	if sMaxAge >= 0 {
		maxAge = sMaxAge
	}
	switch {
	case maxAge == 0:
		return time.Time{}, true, "max-age=0"
	case maxAge > 0:
		return now.Add(time.Duration(maxAge) * time.Second), false, ""
	}
	if e := h.Get("Expires"); e != "" {
		t, err := http.ParseTime(e)
		if err != nil || !t.After(now) {
			return time.Time{}, true, "Expires in the past"
		}
		return t, false, ""
	}
	return time.Time{}, false, ""
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(strings.Trim(s, `"`))
	if err != nil || n < 0 {
		return def
	}
	return n
}

// StripRenderHeaders removes the headers the cache consumes: every
// Delivery-* header (also those the edge does not know, and a Delivery-Stale
// only the edge may set), and, when the answer is stored, the backend's
// validators and lifetime.
func StripRenderHeaders(h http.Header, cached bool) {
	stripDeliveryHeaders(h)
	if cached {
		// The edge serves the file from now on; the backend's validators
		// and lifetime describe the render, not the cached file.
		h.Del("Cache-Control")
		h.Del("Expires")
		h.Del("ETag")
		h.Del("Last-Modified")
	}
}
