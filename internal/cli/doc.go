// Package cli holds the parts of the `caddy delivery` command line that
// do not depend on Caddy: following an admin API job to its end with a
// progress display (a bar on a terminal, a plain line now and then
// otherwise), the line that tells how a job ended, and the tables the
// commands print. The commands themselves (flags, the admin endpoint) are
// in caddymodule.
package cli
