package cache

import (
	"bytes"
	"strings"
)

// SSI directives are found by a streaming tokenizer: text is passed on as
// it arrives, and only the bytes of one directive ("<!--#" … "-->") are
// held, up to ssiMaxTag bytes. A directive longer than that is stripped
// without being parsed. A prefix of "<!--#" at the end of a chunk is held
// back until the next chunk decides whether it starts a directive, so tags
// split across read boundaries are found.

const (
	ssiOpen  = "<!--#"
	ssiClose = "-->"
	// ssiMaxTag bounds the body of one directive (between "<!--#" and
	// "-->"), well above the longest path the mapping accepts.
	ssiMaxTag = 4096
)

// ssiKind is what a directive does when a page is assembled.
type ssiKind uint8

const (
	ssiStrip     ssiKind = iota // any directive but include: never executed, removed
	ssiInclude                  // include virtual/file: replaced by the included file
	ssiMalformed                // an include that cannot be parsed: an HTML comment
	ssiTooLong                  // longer than ssiMaxTag, or unterminated: an HTML comment
)

// ssiRef is one path an include names.
type ssiRef struct {
	Path string
	File bool // file="…": relative to the including document's folder
}

// ssiDirective is one directive of a document.
type ssiDirective struct {
	Start, End int64 // offsets of its "<" and just past its ">"
	Kind       ssiKind
	Element    string   // the element name as written ("include", "exec", …)
	Refs       []ssiRef // include: the paths, in order
}

const (
	ssiStateText = iota
	ssiStateTag
	ssiStateSkip
)

// ssiParser tokenizes a stream. text receives literal text (slices valid
// only during the call); directive receives each directive. Write may be
// called with chunks of any size; End finishes the stream.
type ssiParser struct {
	text      func([]byte)
	directive func(ssiDirective)

	off   int64 // bytes consumed
	state int
	match int    // text: bytes of ssiOpen held; skip: dashes seen
	start int64  // offset of the current directive
	tag   []byte // body of the current directive, bounded
}

func (p *ssiParser) emitText(b []byte) {
	if len(b) > 0 && p.text != nil {
		p.text(b)
	}
}

// Write consumes a chunk.
func (p *ssiParser) Write(b []byte) {
	for len(b) > 0 {
		switch p.state {
		case ssiStateText:
			b = p.scanText(b)
		case ssiStateTag:
			b = p.scanTag(b)
		default:
			b = p.scanSkip(b)
		}
	}
}

// End finishes the stream: held text is passed on, an unterminated
// directive is reported as too long.
func (p *ssiParser) End() {
	switch p.state {
	case ssiStateText:
		if p.match > 0 {
			p.emitText([]byte(ssiOpen[:p.match]))
			p.match = 0
		}
	default:
		p.finishDirective(ssiDirective{Kind: ssiTooLong})
	}
}

func (p *ssiParser) scanText(b []byte) []byte {
	// Complete a prefix of the opener held from the previous chunk.
	for p.match > 0 && len(b) > 0 {
		if b[0] != ssiOpen[p.match] {
			p.emitText([]byte(ssiOpen[:p.match])) // it was text
			p.match = 0
			break // b[0] is looked at again below (it may be a '<')
		}
		p.match++
		p.off++
		b = b[1:]
		if p.match == len(ssiOpen) {
			p.match = 0
			p.beginTag(p.off - int64(len(ssiOpen)))
			return b
		}
	}
	if len(b) == 0 {
		return nil
	}
	if i := bytes.Index(b, []byte(ssiOpen)); i >= 0 {
		p.emitText(b[:i])
		p.off += int64(i + len(ssiOpen))
		p.beginTag(p.off - int64(len(ssiOpen)))
		return b[i+len(ssiOpen):]
	}
	k := heldOpenPrefix(b)
	p.emitText(b[:len(b)-k])
	p.off += int64(len(b))
	p.match = k
	return nil
}

// heldOpenPrefix is the length of the longest suffix of b that is a proper
// prefix of ssiOpen.
func heldOpenPrefix(b []byte) int {
	for k := min(len(ssiOpen)-1, len(b)); k > 0; k-- {
		if string(b[len(b)-k:]) == ssiOpen[:k] {
			return k
		}
	}
	return 0
}

func (p *ssiParser) beginTag(start int64) {
	p.state, p.start, p.tag = ssiStateTag, start, p.tag[:0]
}

func (p *ssiParser) scanTag(b []byte) []byte {
	before := len(p.tag)
	room := ssiMaxTag + len(ssiClose) - before
	chunk := b[:min(len(b), room)]
	p.tag = append(p.tag, chunk...)
	from := max(0, before-(len(ssiClose)-1))
	if i := bytes.Index(p.tag[from:], []byte(ssiClose)); i >= 0 {
		end := from + i // body is p.tag[:end]
		used := end + len(ssiClose) - before
		p.off += int64(used)
		d := parseSSIDirective(p.tag[:end])
		p.finishDirective(d)
		return b[used:]
	}
	p.off += int64(len(chunk))
	if len(p.tag) >= ssiMaxTag+len(ssiClose) {
		// Too long to be a directive we honour: skip to its end.
		p.state = ssiStateSkip
		p.match = 0
		for i := len(p.tag) - 1; i >= 0 && p.tag[i] == '-' && p.match < 2; i-- {
			p.match++
		}
	}
	return b[len(chunk):]
}

func (p *ssiParser) scanSkip(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '-':
			p.match = min(p.match+1, 2)
		case c == '>' && p.match == 2:
			p.off += int64(i + 1)
			p.finishDirective(ssiDirective{Kind: ssiTooLong})
			return b[i+1:]
		default:
			p.match = 0
			j := bytes.IndexByte(b[i+1:], '-')
			if j < 0 {
				p.off += int64(len(b))
				return nil
			}
			i += j // the loop's i++ lands on the dash
		}
	}
	p.off += int64(len(b))
	return nil
}

func (p *ssiParser) finishDirective(d ssiDirective) {
	d.Start, d.End = p.start, p.off
	p.state, p.match = ssiStateText, 0
	if cap(p.tag) > 2*ssiMaxTag {
		p.tag = nil
	} else {
		p.tag = p.tag[:0]
	}
	if p.directive != nil {
		p.directive(d)
	}
}

func isSSISpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func isSSINameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func trimSSISpace(s []byte) []byte {
	for len(s) > 0 && isSSISpace(s[0]) {
		s = s[1:]
	}
	return s
}

func takeSSIName(s []byte) (string, []byte) {
	i := 0
	for i < len(s) && isSSINameByte(s[i]) {
		i++
	}
	return string(s[:i]), s[i:]
}

// takeSSIValue reads a quoted ("…", '…' or `…`, with backslash escaping
// the quote) or unquoted value.
func takeSSIValue(s []byte) (string, []byte, bool) {
	if len(s) == 0 {
		return "", s, false
	}
	q := s[0]
	if q != '"' && q != '\'' && q != '`' {
		i := 0
		for i < len(s) && !isSSISpace(s[i]) {
			i++
		}
		return string(s[:i]), s[i:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i++
		case c == q:
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", nil, false // no closing quote
}

// parseSSIDirective parses the body of a directive (the bytes between
// "<!--#" and "-->"). Only include is looked at closely; any other
// element is stripped without reading its attributes.
func parseSSIDirective(body []byte) ssiDirective {
	s := trimSSISpace(body)
	el, s := takeSSIName(s)
	d := ssiDirective{Kind: ssiStrip, Element: el}
	if !strings.EqualFold(el, "include") {
		return d
	}
	if len(s) > 0 && !isSSISpace(s[0]) {
		d.Kind = ssiMalformed
		return d
	}
	for {
		s = trimSSISpace(s)
		if len(s) == 0 {
			break
		}
		var name, val string
		name, s = takeSSIName(s)
		if name == "" {
			d.Kind = ssiMalformed
			return d
		}
		s = trimSSISpace(s)
		if len(s) == 0 || s[0] != '=' {
			d.Kind = ssiMalformed
			return d
		}
		var ok bool
		val, s, ok = takeSSIValue(trimSSISpace(s[1:]))
		if !ok {
			d.Kind = ssiMalformed
			return d
		}
		if len(s) > 0 && !isSSISpace(s[0]) {
			d.Kind = ssiMalformed
			return d
		}
		switch strings.ToLower(name) {
		case "virtual":
			d.Refs = append(d.Refs, ssiRef{Path: val})
		case "file":
			d.Refs = append(d.Refs, ssiRef{Path: val, File: true})
		}
		// Other attributes (Apache's onerror, nginx's stub/wait/set) are
		// ignored.
	}
	if len(d.Refs) == 0 {
		d.Kind = ssiMalformed
		return d
	}
	d.Kind = ssiInclude
	return d
}
