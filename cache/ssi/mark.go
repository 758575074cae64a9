package ssi

import (
	"bytes"
	"io/fs"
	"net/http"
	"strings"
)

// MarkBit marks a cached HTML file that contains SSI directives: when a
// cacheable HTML answer contains "<!--#", its file gets the user-execute
// bit before it is renamed into place (like Apache's XBitHack), so the
// hit path tells from the FileInfo it already has whether a file needs
// assembling.
const MarkBit fs.FileMode = 0o100

// Marked reports whether a file carries MarkBit.
func Marked(info fs.FileInfo) bool { return info.Mode()&MarkBit != 0 }

// IsHTML reports whether an answer's Content-Type is HTML, the only kind
// of answer whose directives are looked for.
func IsHTML(h http.Header) bool {
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "text/html" || ct == "application/xhtml+xml"
}

// Marker finds the first "<!--#" in a stream written in chunks of any
// size, without holding the stream.
type Marker struct {
	held int // bytes of the opener matched at the end of the last chunk
}

// Find reports whether "<!--#" occurs in the stream at p, given how much
// of it the previous chunks ended with.
func (m *Marker) Find(p []byte) bool {
	if k := m.held; k > 0 {
		need := opener[k:]
		n := min(len(need), len(p))
		if string(p[:n]) == need[:n] {
			if n == len(need) {
				return true
			}
			m.held = k + n
			return false
		}
	}
	if bytes.Contains(p, []byte(opener)) {
		return true
	}
	m.held = heldOpenPrefix(p)
	return false
}
