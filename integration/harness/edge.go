package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Edge is a configured edge: its folders and its Caddy process.
type Edge struct {
	*Caddy
	DataDir string
	Docroot string
}

// EdgeOptions shape the Caddyfile of a test edge.
type EdgeOptions struct {
	// Origin is the render backend's host:port.
	Origin string
	// Global is added inside the `delivery` global option block.
	Global string
	// Cache is added inside the `delivery_cache` block.
	Cache string
	// Route is added to the site's route before delivery_cache.
	Route string
	// Dir reuses a working folder (restart with the same data); empty
	// makes a new one.
	Dir string
	// Port reuses a port; 0 picks a free one.
	Port int
	// Admin is the admin endpoint's listen address (host:port); empty
	// turns the admin endpoint off.
	Admin string
}

// Caddyfile returns the Caddyfile of a test edge.
func (o EdgeOptions) Caddyfile(dir string, port int) string {
	admin := "admin off"
	if o.Admin != "" {
		admin = "admin " + o.Admin
	}
	return fmt.Sprintf(`{
	%[7]s
	persist_config off
	storage file_system %[1]s/storage
	delivery {
		data_dir %[1]s/data
%[4]s
	}
}
http://127.0.0.1:%[2]d {
	root * %[1]s/docroot
	route {
%[6]s
		delivery_cache {
%[5]s
		}
		reverse_proxy %[3]s
	}
}
`, dir, port, o.Origin, indent(o.Global, 2), indent(o.Cache, 3), indent(o.Route, 2), admin)
}

func indent(s string, tabs int) string {
	if s == "" {
		return ""
	}
	pre := strings.Repeat("\t", tabs)
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = pre + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

// StartEdge writes the Caddyfile and starts the edge.
func StartEdge(t testing.TB, o EdgeOptions) *Edge {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	port := o.Port
	if port == 0 {
		port = FreePort(t)
	}
	if err := os.MkdirAll(filepath.Join(dir, "docroot"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := StartCaddy(t, dir, o.Caddyfile(dir, port), port)
	return &Edge{Caddy: c, DataDir: filepath.Join(dir, "data"), Docroot: filepath.Join(dir, "docroot")}
}

// File is the path of a docroot file.
func (e *Edge) File(name string) string { return filepath.Join(e.Docroot, filepath.FromSlash(name)) }

// Exists reports whether a docroot file exists.
func (e *Edge) Exists(name string) bool {
	_, err := os.Stat(e.File(name))
	return err == nil
}
