package cache

import "github.com/delivery-edge/edge/cache/ssi"

// etag hashes the identities of every part, in order, and what each
// directive became.
func (a *ssiAssembly) etag(root *ssiPart) string {
	th := ssi.NewTagHash()
	defer th.Release()
	th.Uint64(uint64(a.s.SSI.maxDepth()))
	tagPart(th, root)
	return th.ETag()
}

// tagPart adds the identity of p and of everything below it.
func tagPart(th *ssi.TagHash, p *ssiPart) {
	dev, ino := devIno(p.info)
	th.Uint64(dev)
	th.Uint64(ino)
	th.Uint64(uint64(p.info.ModTime().UnixNano()))
	th.Uint64(uint64(p.info.Size()))
	th.String(p.t.Key)
	if p.stale {
		th.Byte(1)
	}
	th.Byte(0)
	for _, pc := range p.pieces {
		switch {
		case pc.part != nil:
			th.Byte('{')
			tagPart(th, pc.part)
			th.Byte('}')
		case !pc.isText:
			th.String(pc.comment)
		}
		th.Flush()
	}
}
