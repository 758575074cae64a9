// Package edge is the delivery edge: Caddy modules that serve a CMS's
// rendered pages from a docroot cache, invalidate exactly what a content
// change touches, and serve image variants from an object store.
//
// Importing this package registers the modules with Caddy; xcaddy builds
// it in with `--with github.com/delivery-edge/edge`. The modules live in
// package caddymodule; the product logic in cache, imaging and
// stagingclient.
package edge

import (
	_ "github.com/delivery-edge/edge/caddymodule" // registers the Caddy modules
)
