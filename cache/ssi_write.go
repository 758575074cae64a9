package cache

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/delivery-edge/edge/cache/ssi"
)

// Writing an assembled answer: a planned tree of parts (writePart), or a
// streamed document directive by directive (writeDirective); both write
// each piece the same way (writePiece).

var (
	errClientWrite = errors.New("client write failed")
	errClientGone  = errors.New("client gone")
)

// stopped reports whether the answer is over: writing to the client
// failed, a part could not be read, or the client went away (the
// request's context is done).
func (a *ssiAssembly) stopped() bool {
	if a.err == nil {
		if err := a.r.Context().Err(); err != nil {
			a.err = fmt.Errorf("%w: %w", errClientGone, err)
		}
	}
	return a.err != nil
}

// clientFailed reports whether the answer stopped because of the client.
func (a *ssiAssembly) clientFailed() bool {
	return errors.Is(a.err, errClientWrite) || errors.Is(a.err, errClientGone)
}

func (a *ssiAssembly) write(w io.Writer, b []byte) {
	if a.err != nil || len(b) == 0 {
		return
	}
	if _, err := w.Write(b); err != nil {
		a.err = errClientWrite
	}
}

func (a *ssiAssembly) writeText(w io.Writer) func([]byte) {
	return func(b []byte) { a.write(w, b) }
}

// writePart writes the pieces of a part.
func (a *ssiAssembly) writePart(w io.Writer, p *ssiPart) {
	for _, pc := range p.pieces {
		if a.stopped() {
			return
		}
		a.writePiece(w, p, pc)
	}
}

// writePiece writes one piece of part p: a range of its text, an included
// part, a part rendered live, or a comment.
func (a *ssiAssembly) writePiece(w io.Writer, p *ssiPart, pc ssiPiece) {
	switch {
	case pc.isText && p.body != nil && p.body.Data != nil:
		a.write(w, p.body.Data[pc.off:pc.off+pc.n])
	case pc.isText:
		a.copyRange(w, p.f, pc.off, pc.n)
	case pc.part != nil:
		a.writePart(w, pc.part)
	case pc.live != nil:
		a.writeLive(w, pc.live)
	default:
		a.write(w, []byte(pc.comment))
	}
}

// copyRange copies n bytes of f from off to w, a chunk at a time, until
// the client goes away.
func (a *ssiAssembly) copyRange(w io.Writer, f *os.File, off, n int64) {
	err := ssi.ReadChunks(f, off, n, func(b []byte) error {
		a.write(w, b)
		if a.stopped() {
			return a.err
		}
		return nil
	})
	if err != nil && a.err == nil {
		a.err = fmt.Errorf("%s: %w", f.Name(), err)
	}
}

// writeDirective writes what a directive of a streamed document p
// becomes: each include is resolved (and its pending render settled) just
// before it is written.
func (a *ssiAssembly) writeDirective(w io.Writer, p *ssiPart, d ssi.Directive) {
	if d.Kind != ssi.Include {
		a.write(w, []byte(ssi.DirectiveComment(d.Kind)))
		return
	}
	for _, ref := range d.Refs {
		a.writePiece(w, p, a.settled(a.resolve(p, ref)))
	}
}
