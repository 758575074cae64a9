package caddymodule

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/templates"

	"github.com/delivery-edge/edge/imaging"
)

func init() {
	caddy.RegisterModule(ImageURLFunctions{})
}

// ImageURLFunctions is an extension of Caddy's `templates` handler that
// gives templates the image URL builder of the image service:
//
//	{{imageURL "<uuid>" <imageMs> <variantMs> "16x9-768" "slug" "webp"}}
//	{{imageURL "<uuid>" <imageMs> <variantMs> "16x9" "" "jpg" 640}}
//	{{imageStamp 1693175642190}}   → AAABijkh-E4
//
// imageURL takes the image's UUID, the image document's and the variant
// definition's modification times (Unix ms: numbers or decimal strings),
// the variant name, the slug ("" for none; any text of up to 200 bytes,
// percent-encoded into the URL), the format and, for variants defined by
// their aspect ratio alone, the width. Its arguments are checked as the
// image service checks a request (a width must be in Widths), and a
// template that passes bad ones fails with the reason. With BaseURL the
// URLs are absolute (https://img.example.com/image/…), for pages served
// from another host than the images.
//
// In the Caddyfile:
//
//	templates {
//		extensions {
//			image_urls {
//				prefix   /image
//				widths   320 640 960 1280
//				base_url https://img.example.com
//			}
//		}
//	}
type ImageURLFunctions struct {
	// Prefix is the path the image service is mounted under (default
	// "/image").
	Prefix string `json:"prefix,omitempty"`
	// Widths are the ?width= values the image service allows; keep them
	// equal to its `widths`.
	Widths []int `json:"widths,omitempty"`
	// BaseURL makes imageURL write absolute URLs: the scheme, host,
	// optional port and optional path under which clients reach the image
	// service ("https://img.example.com", "https://cdn.example.com/edge").
	// No user info, query or fragment. Global placeholders ({env.X}) are
	// replaced. Empty: URLs are paths.
	BaseURL string `json:"base_url,omitempty"`

	base string // BaseURL checked and in canonical form
}

// CaddyModule returns the Caddy module information.
func (ImageURLFunctions) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.templates.functions.image_urls",
		New: func() caddy.Module { return new(ImageURLFunctions) },
	}
}

// DefaultImagePrefix is the image service's prefix when none is given.
const DefaultImagePrefix = "/image"

// Provision applies the defaults and checks the base URL.
func (f *ImageURLFunctions) Provision(caddy.Context) error {
	if f.Prefix == "" {
		f.Prefix = DefaultImagePrefix
	}
	if f.BaseURL != "" {
		base, err := imaging.ParseBaseURL(caddy.NewReplacer().ReplaceKnown(f.BaseURL, ""))
		if err != nil {
			return fmt.Errorf("image_urls base_url: %w", err)
		}
		f.base = base
	}
	return nil
}

// Validate checks the configuration.
func (f *ImageURLFunctions) Validate() error {
	if f.Prefix != "" && !strings.HasPrefix(f.Prefix, "/") {
		return fmt.Errorf("image_urls prefix: %q must start with /", f.Prefix)
	}
	if err := checkWidths(f.Widths); err != nil {
		return fmt.Errorf("image_urls widths: %w", err)
	}
	return nil
}

// CustomTemplateFunctions implements templates.CustomFunctions.
func (f *ImageURLFunctions) CustomTemplateFunctions() template.FuncMap {
	return template.FuncMap{
		"imageURL":   f.imageURL,
		"imageStamp": imageStamp,
	}
}

// imageURL builds and checks an image URL (see the type's doc).
func (f *ImageURLFunctions) imageURL(uuid string, imageMs, variantMs any, variant, slug, format string, width ...any) (string, error) {
	im, err := templateMillis(imageMs)
	if err != nil {
		return "", fmt.Errorf("imageURL: image modification time: %w", err)
	}
	vm, err := templateMillis(variantMs)
	if err != nil {
		return "", fmt.Errorf("imageURL: variant modification time: %w", err)
	}
	u := imaging.URLParts{UUID: strings.ToLower(uuid), ImageModified: im, VariantModified: vm, Variant: variant,
		Slug: slug, Format: format}
	_, fixed, _ := imaging.ParseVariantName(variant)
	switch {
	case len(width) > 1:
		return "", fmt.Errorf("imageURL: at most one width, got %d", len(width))
	case len(width) == 1:
		w, err := templateMillis(width[0])
		if err != nil || w > math.MaxInt32 {
			return "", fmt.Errorf("imageURL: width %v is not a whole number", width[0])
		}
		u.Width = int(w)
	default:
		u.Width = fixed
	}
	prefix := f.Prefix
	if prefix == "" {
		prefix = DefaultImagePrefix
	}
	if err := u.Validate(f.Widths); err != nil {
		return "", fmt.Errorf("imageURL: %w", err)
	}
	return imaging.BuildAbsoluteURL(f.base, prefix, u), nil
}

// imageStamp encodes a Unix-ms time as a URL stamp.
func imageStamp(ms any) (string, error) {
	v, err := templateMillis(ms)
	if err != nil {
		return "", fmt.Errorf("imageStamp: %w", err)
	}
	return imaging.EncodeStamp(v), nil
}

// templateMillis takes a non-negative whole number as templates pass it:
// an int literal, a float64 from JSON, a json.Number or a decimal string.
func templateMillis(v any) (int64, error) {
	switch n := v.(type) {
	case int:
		if n >= 0 {
			return int64(n), nil
		}
	case int64:
		if n >= 0 {
			return n, nil
		}
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), nil
		}
	case float64:
		if n >= 0 && n <= 1<<53 && n == math.Trunc(n) {
			return int64(n), nil
		}
	case json.Number:
		return templateMillis(string(n))
	case string:
		if i, err := strconv.ParseInt(n, 10, 64); err == nil && i >= 0 {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%v (%T) is not a non-negative whole number", v, v)
}

// UnmarshalCaddyfile reads
//
//	image_urls {
//		prefix   <path>
//		widths   <n...>
//		base_url <scheme://host[:port][/path]>
//	}
func (f *ImageURLFunctions) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch name := d.Val(); name {
		case "prefix":
			if err := oneArg(d, &f.Prefix); err != nil {
				return err
			}
			if !strings.HasPrefix(f.Prefix, "/") {
				return d.Errf("image_urls prefix: %q must start with /", f.Prefix)
			}
		case "widths":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, a := range args {
				w, err := strconv.Atoi(a)
				if err != nil {
					return d.Errf("image_urls widths: %q is not a whole number", a)
				}
				f.Widths = append(f.Widths, w)
			}
			if err := checkWidths(f.Widths); err != nil {
				return d.Errf("image_urls widths: %v", err)
			}
		case "base_url":
			if err := oneArg(d, &f.BaseURL); err != nil {
				return err
			}
			// Checked here unless a placeholder is only known at run time.
			if !strings.Contains(f.BaseURL, "{") {
				if _, err := imaging.ParseBaseURL(f.BaseURL); err != nil {
					return d.Errf("image_urls base_url: %v", err)
				}
			}
		default:
			return d.Errf("image_urls: unknown option %q", name)
		}
	}
	f.Widths = slices.Clip(f.Widths)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner         = (*ImageURLFunctions)(nil)
	_ caddy.Validator           = (*ImageURLFunctions)(nil)
	_ templates.CustomFunctions = (*ImageURLFunctions)(nil)
	_ caddyfile.Unmarshaler     = (*ImageURLFunctions)(nil)
)
