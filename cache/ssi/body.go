package ssi

import (
	"io"
	"os"
)

// Layout is where the directives of one file version are.
type Layout struct {
	Dirs []Directive
}

// Body is what is kept of one file version for assembly.
type Body struct {
	Layout *Layout // its directives; nil for a file without the mark
	Data   []byte  // its content; nil when too large to keep
}

// ReadBody reads a file of size bytes once: whole when it is at most keep
// bytes, else in chunks for its directives only (a larger file without
// the mark is not read at all). marked says whether the file carries
// MarkBit, i.e. has directives to find.
func ReadBody(f *os.File, size int64, marked bool, keep int64) (*Body, error) {
	b := &Body{}
	if !marked && size > keep {
		return b, nil
	}
	var p Parser
	if marked {
		b.Layout = &Layout{}
		p.Directive = func(d Directive) { b.Layout.Dirs = append(b.Layout.Dirs, d) }
	}
	if size <= keep {
		b.Data = make([]byte, size)
		if n, err := f.ReadAt(b.Data, 0); int64(n) < size {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if marked {
			p.Write(b.Data)
			p.End()
		}
		return b, nil
	}
	if err := ReadChunks(f, 0, size, func(c []byte) error { p.Write(c); return nil }); err != nil {
		return nil, err
	}
	p.End()
	return b, nil
}
