package cache

import (
	"context"
	"time"
)

// Parts found only as ".old" copies.
//
// A part of a page that was removed is included from its ".old" copy
// while it renders again. As for a page (render_wait.go), the assembly
// that starts such a render waits for it, up to the site's RenderWait
// counted from the start of the assembly, before it answers: every part
// renders at the same time, and a part that is stored in time is included
// instead of its copy. A part that is not stays the copy, and the page is
// marked stale.

// settle puts the parts whose renders this assembly started and that
// were stored in time in place of their ".old" copies, then works out the
// tree's sizes and staleness again.
func (a *ssiAssembly) settle(root *ssiPart) {
	if a.s.RenderWait <= 0 || !hasPending(root) {
		return
	}
	deadline := a.now.Add(a.s.RenderWait)
	// A new part may include parts that are only copies too: they were
	// started when it was built, and are waited for in the next round.
	for range a.s.SSI.maxDepth() {
		if !a.settleRound(root, deadline) {
			break
		}
	}
	a.stale, a.lastMod = false, time.Time{}
	a.recount(root)
}

// settled is settle for one piece of a streamed answer.
func (a *ssiAssembly) settled(pc ssiPiece) ssiPiece {
	if pc.part == nil {
		return pc
	}
	holder := &ssiPart{pieces: []ssiPiece{pc}}
	a.settle(holder)
	return holder.pieces[0]
}

func hasPending(p *ssiPart) bool {
	if p.pending != nil {
		return true
	}
	for _, pc := range p.pieces {
		if pc.part != nil && hasPending(pc.part) {
			return true
		}
	}
	return false
}

// settleRound waits for every pending render below p; it reports whether
// it put a new part in place.
func (a *ssiAssembly) settleRound(p *ssiPart, deadline time.Time) bool {
	replaced := false
	for i := range p.pieces {
		child := p.pieces[i].part
		if child == nil {
			continue
		}
		if child.pending == nil {
			replaced = a.settleRound(child, deadline) || replaced
			continue
		}
		f := child.pending
		child.pending = nil
		if !awaitUntil(a.r.Context(), f, deadline) || f.outcome != outcomeStored {
			continue // stays the copy
		}
		if fresh := a.reopen(child); fresh != nil {
			p.pieces[i].part = fresh
			replaced = true
		}
	}
	return replaced
}

// awaitUntil waits for a flight until the deadline or the end of the
// request; it reports whether the flight is done.
func awaitUntil(ctx context.Context, f *flight, deadline time.Time) bool {
	select {
	case <-f.done:
		return true
	default:
	}
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// reopen builds the part that replaces a ".old" copy once its render is
// stored; nil if it is gone again already.
func (a *ssiAssembly) reopen(old *ssiPart) *ssiPart {
	store := a.s.Store
	f, info, _, ok := store.openServe(old.t.File)
	if !ok {
		return nil
	}
	part := &ssiPart{t: old.t, info: info, parent: old.parent, depth: old.depth, rendered: true}
	if body, err := a.s.SSI.bodies.get(f, info, old.t.File); err == nil && body.Data != nil {
		f.Close()
		part.body = body
	} else {
		a.files = append(a.files, f)
		part.f = f
	}
	if !a.build(part) {
		return nil
	}
	return part
}

// recount works out sizes, staleness and the newest modification time of
// the tree again after parts were replaced.
func (a *ssiAssembly) recount(p *ssiPart) {
	if p.stale {
		a.stale = true
	}
	if p.info != nil {
		if mt := p.info.ModTime(); mt.After(a.lastMod) {
			a.lastMod = mt
		}
	}
	if len(p.pieces) == 0 {
		return
	}
	p.size = 0
	for _, pc := range p.pieces {
		if pc.part != nil {
			a.recount(pc.part)
		}
		p.size += pc.size()
	}
}
