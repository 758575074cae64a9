package cache

// countParts counts the parts below p by how the assembly found them: in
// the cache (hit), rendered and stored in time for this answer (stored),
// from a ".old" copy (stale), or to be rendered into the answer while it
// streams (miss). Directives that became comments are not parts.
func countParts(p *ssiPart, n *partCounts) {
	for _, pc := range p.pieces {
		switch {
		case pc.part != nil:
			switch {
			case pc.part.stale:
				n.stale++
			case pc.part.rendered:
				n.stored++
			default:
				n.hit++
			}
			countParts(pc.part, n)
		case pc.live != nil:
			n.miss++
		}
	}
}
