package ssi

import (
	"bytes"
	"strings"
)

// SSI directives are found by a streaming tokenizer: text is passed on as
// it arrives, and only the bytes of one directive ("<!--#" … "-->") are
// held, up to maxTag bytes. A directive longer than that is stripped
// without being parsed. A prefix of "<!--#" at the end of a chunk is held
// back until the next chunk decides whether it starts a directive, so tags
// split across read boundaries are found.

const (
	opener = "<!--#"
	closer = "-->"
	// maxTag bounds the body of one directive (between "<!--#" and
	// "-->"), well above the longest path the mapping accepts.
	maxTag = 4096
)

// Kind is what a directive does when a page is assembled.
type Kind uint8

const (
	Strip     Kind = iota // any directive but include: never executed, removed
	Include               // include virtual/file: replaced by the included file
	Malformed             // an include that cannot be parsed: an HTML comment
	TooLong               // longer than maxTag, or unterminated: an HTML comment
)

// Ref is one path an include names.
type Ref struct {
	Path string
	File bool // file="…": relative to the including document's folder
}

// Directive is one directive of a document.
type Directive struct {
	Start, End int64 // offsets of its "<" and just past its ">"
	Kind       Kind
	Element    string // the element name as written ("include", "exec", …)
	Refs       []Ref  // include: the paths, in order
}

const (
	stateText = iota
	stateTag
	stateSkip
)

// Parser tokenizes a stream. Text receives literal text (slices valid
// only during the call); Directive receives each directive. Write may be
// called with chunks of any size; End finishes the stream.
type Parser struct {
	Text      func([]byte)
	Directive func(Directive)

	off   int64 // bytes consumed
	state int
	match int    // text: bytes of opener held; skip: dashes seen
	start int64  // offset of the current directive
	tag   []byte // body of the current directive, bounded
}

func (p *Parser) emitText(b []byte) {
	if len(b) > 0 && p.Text != nil {
		p.Text(b)
	}
}

// Write consumes a chunk.
func (p *Parser) Write(b []byte) {
	for len(b) > 0 {
		switch p.state {
		case stateText:
			b = p.scanText(b)
		case stateTag:
			b = p.scanTag(b)
		default:
			b = p.scanSkip(b)
		}
	}
}

// End finishes the stream: held text is passed on, an unterminated
// directive is reported as too long.
func (p *Parser) End() {
	switch p.state {
	case stateText:
		if p.match > 0 {
			p.emitText([]byte(opener[:p.match]))
			p.match = 0
		}
	default:
		p.finishDirective(Directive{Kind: TooLong})
	}
}

func (p *Parser) scanText(b []byte) []byte {
	// Complete a prefix of the opener held from the previous chunk.
	for p.match > 0 && len(b) > 0 {
		if b[0] != opener[p.match] {
			p.emitText([]byte(opener[:p.match])) // it was text
			p.match = 0
			break // b[0] is looked at again below (it may be a '<')
		}
		p.match++
		p.off++
		b = b[1:]
		if p.match == len(opener) {
			p.match = 0
			p.beginTag(p.off - int64(len(opener)))
			return b
		}
	}
	if len(b) == 0 {
		return nil
	}
	if i := bytes.Index(b, []byte(opener)); i >= 0 {
		p.emitText(b[:i])
		p.off += int64(i + len(opener))
		p.beginTag(p.off - int64(len(opener)))
		return b[i+len(opener):]
	}
	k := heldOpenPrefix(b)
	p.emitText(b[:len(b)-k])
	p.off += int64(len(b))
	p.match = k
	return nil
}

// heldOpenPrefix is the length of the longest suffix of b that is a proper
// prefix of opener.
func heldOpenPrefix(b []byte) int {
	for k := min(len(opener)-1, len(b)); k > 0; k-- {
		if string(b[len(b)-k:]) == opener[:k] {
			return k
		}
	}
	return 0
}

func (p *Parser) beginTag(start int64) {
	p.state, p.start, p.tag = stateTag, start, p.tag[:0]
}

func (p *Parser) scanTag(b []byte) []byte {
	before := len(p.tag)
	room := maxTag + len(closer) - before
	chunk := b[:min(len(b), room)]
	p.tag = append(p.tag, chunk...)
	from := max(0, before-(len(closer)-1))
	if i := bytes.Index(p.tag[from:], []byte(closer)); i >= 0 {
		end := from + i // body is p.tag[:end]
		used := end + len(closer) - before
		p.off += int64(used)
		d := parseDirective(p.tag[:end])
		p.finishDirective(d)
		return b[used:]
	}
	p.off += int64(len(chunk))
	if len(p.tag) >= maxTag+len(closer) {
		// Too long to be a directive we honour: skip to its end.
		p.state = stateSkip
		p.match = 0
		for i := len(p.tag) - 1; i >= 0 && p.tag[i] == '-' && p.match < 2; i-- {
			p.match++
		}
	}
	return b[len(chunk):]
}

func (p *Parser) scanSkip(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '-':
			p.match = min(p.match+1, 2)
		case c == '>' && p.match == 2:
			p.off += int64(i + 1)
			p.finishDirective(Directive{Kind: TooLong})
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

func (p *Parser) finishDirective(d Directive) {
	d.Start, d.End = p.start, p.off
	p.state, p.match = stateText, 0
	if cap(p.tag) > 2*maxTag {
		p.tag = nil
	} else {
		p.tag = p.tag[:0]
	}
	if p.Directive != nil {
		p.Directive(d)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func trimSpace(s []byte) []byte {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	return s
}

func takeName(s []byte) (string, []byte) {
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	return string(s[:i]), s[i:]
}

// takeValue reads a quoted ("…", '…' or `…`, with backslash escaping
// the quote) or unquoted value.
func takeValue(s []byte) (string, []byte, bool) {
	if len(s) == 0 {
		return "", s, false
	}
	q := s[0]
	if q != '"' && q != '\'' && q != '`' {
		i := 0
		for i < len(s) && !isSpace(s[i]) {
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

// parseDirective parses the body of a directive (the bytes between
// "<!--#" and "-->"). Only include is looked at closely; any other
// element is stripped without reading its attributes.
func parseDirective(body []byte) Directive {
	s := trimSpace(body)
	el, s := takeName(s)
	d := Directive{Kind: Strip, Element: el}
	if !strings.EqualFold(el, "include") {
		return d
	}
	if len(s) > 0 && !isSpace(s[0]) {
		d.Kind = Malformed
		return d
	}
	for {
		s = trimSpace(s)
		if len(s) == 0 {
			break
		}
		var name, val string
		name, s = takeName(s)
		if name == "" {
			d.Kind = Malformed
			return d
		}
		s = trimSpace(s)
		if len(s) == 0 || s[0] != '=' {
			d.Kind = Malformed
			return d
		}
		var ok bool
		val, s, ok = takeValue(trimSpace(s[1:]))
		if !ok {
			d.Kind = Malformed
			return d
		}
		if len(s) > 0 && !isSpace(s[0]) {
			d.Kind = Malformed
			return d
		}
		switch strings.ToLower(name) {
		case "virtual":
			d.Refs = append(d.Refs, Ref{Path: val})
		case "file":
			d.Refs = append(d.Refs, Ref{Path: val, File: true})
		}
		// Other attributes (Apache's onerror, nginx's stub/wait/set) are
		// ignored.
	}
	if len(d.Refs) == 0 {
		d.Kind = Malformed
		return d
	}
	d.Kind = Include
	return d
}
