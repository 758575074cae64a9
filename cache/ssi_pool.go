package cache

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
)

// Pooled buffers of assembly, and the one loop that reads files in chunks.
//
// A read buffer must have its full length every time it is handed out: a
// loop that reads into a buffer of length zero reads nothing, forever (it
// once did, after the ETag hash put its appended-to scratch back into the
// pool of read buffers with length zero). So read buffers are arrays,
// which cannot be put back shorter, in a pool of their own; the scratch of
// the ETag hash has a separate pool; and the read loop stops with an error
// when a read makes no progress.

// ssiChunkSize is the size of the reads of files too large to keep, and of
// the writes gathered for a client.
const ssiChunkSize = 32 << 10

// ssiChunk is a read buffer.
type ssiChunk [ssiChunkSize]byte

// ssiChunkPool hands out read buffers, always of their full length.
type ssiChunkPool struct{ p sync.Pool }

func (c *ssiChunkPool) get() *ssiChunk {
	if b, ok := c.p.Get().(*ssiChunk); ok {
		return b
	}
	return new(ssiChunk)
}

func (c *ssiChunkPool) put(b *ssiChunk) {
	if b != nil {
		c.p.Put(b)
	}
}

var ssiChunks ssiChunkPool

// readChunks reads n bytes of r from off and hands them to fn, a chunk at
// a time, until they are read or fn returns an error. A file that ends
// early, a failed read and a read that returns nothing without an error
// all stop it with an error.
func readChunks(r io.ReaderAt, off, n int64, fn func([]byte) error) error {
	c := ssiChunks.get()
	defer ssiChunks.put(c)
	for n > 0 {
		m := int(min(n, int64(len(c))))
		k, err := r.ReadAt(c[:m], off)
		if k < 0 || k > m {
			return fmt.Errorf("read at %d: %d bytes of %d", off, k, m)
		}
		if k > 0 {
			if ferr := fn(c[:k]); ferr != nil {
				return ferr
			}
		}
		off += int64(k)
		n -= int64(k)
		switch {
		case k == m:
			// All there (io.EOF may come with the last bytes of a file).
		case errors.Is(err, io.EOF):
			return fmt.Errorf("read at %d, %d bytes before the end: %w", off, n, io.ErrUnexpectedEOF)
		case err != nil:
			return fmt.Errorf("read at %d: %w", off, err)
		case k == 0:
			return fmt.Errorf("read at %d: %w", off, io.ErrNoProgress)
		}
		// A short read with progress and no error (which a file does not
		// do): read on.
	}
	return nil
}

// ssiWriters gathers the small parts of an assembled answer into writes
// of ssiChunkSize; a bufio.Writer keeps the size it was made with.
var ssiWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, ssiChunkSize) }}

// ssiTagHash is the hash of an assembled answer's ETag with the scratch
// its fields are gathered in before they are hashed.
type ssiTagHash struct {
	h   hash.Hash
	b   []byte
	sum [sha256.Size]byte
}

// ssiTagScratch is how much is gathered before it is hashed (the scratch
// outgrows it by at most one key).
const ssiTagScratch = 4 << 10

// ssiTagHashPool hands out ETag hashes, reset and with empty scratch.
type ssiTagHashPool struct{ p sync.Pool }

func (c *ssiTagHashPool) get() *ssiTagHash {
	if t, ok := c.p.Get().(*ssiTagHash); ok {
		return t
	}
	return &ssiTagHash{h: sha256.New(), b: make([]byte, 0, ssiTagScratch+512)}
}

func (c *ssiTagHashPool) put(t *ssiTagHash) {
	if t == nil || cap(t.b) > 4*ssiTagScratch {
		return // grown by a long key: not kept
	}
	t.h.Reset()
	t.b = t.b[:0]
	c.p.Put(t)
}

var ssiTagHashes ssiTagHashPool

// flush hashes the scratch when it is full, or at the end (all).
func (t *ssiTagHash) flush(all bool) {
	if all || len(t.b) >= ssiTagScratch {
		t.h.Write(t.b)
		t.b = t.b[:0]
	}
}
