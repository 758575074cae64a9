// Package ssi is the language of server-side includes as the delivery
// edge speaks it: a streaming parser of directives ("<!--#" … "-->") with
// their offsets, the layout of a file's directives, the mark a cached
// file carries when it has some, the rules for the paths an include may
// name, the comments that stand for includes that were not made, the
// conditional requests of an assembled page, and pooled buffers for
// assembly.
//
// Only include (virtual= and file=) is honoured; every other directive is
// stripped and never executed. The package knows nothing of the cache:
// assembling a page from its parts — looking them up in memory or on
// disk, rendering missing ones through the coalesced miss path — is the
// cache's (cache/ssi_*.go), because every part is a cached file like any
// other.
package ssi
