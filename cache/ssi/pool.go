package ssi

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// ChunkSize is the size of the reads of files too large to keep, and of
// the writes gathered for a client.
const ChunkSize = 32 << 10

// chunk is a read buffer.
type chunk [ChunkSize]byte

// chunkPool hands out read buffers, always of their full length.
type chunkPool struct{ p sync.Pool }

func (c *chunkPool) get() *chunk {
	if b, ok := c.p.Get().(*chunk); ok {
		return b
	}
	return new(chunk)
}

func (c *chunkPool) put(b *chunk) {
	if b != nil {
		c.p.Put(b)
	}
}

var chunks chunkPool

// ReadChunks reads n bytes of r from off and hands them to fn, a chunk at
// a time, until they are read or fn returns an error. A file that ends
// early, a failed read and a read that returns nothing without an error
// all stop it with an error.
func ReadChunks(r io.ReaderAt, off, n int64, fn func([]byte) error) error {
	c := chunks.get()
	defer chunks.put(c)
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

// writers gathers the small parts of an assembled answer into writes of
// ChunkSize; a bufio.Writer keeps the size it was made with.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, ChunkSize) }}

// GetWriter returns a pooled writer of ChunkSize that writes to w.
func GetWriter(w io.Writer) *bufio.Writer {
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

// PutWriter gives a writer from GetWriter back (unflushed bytes are
// dropped).
func PutWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	writers.Put(bw)
}

// TagHash hashes the identities of an assembled answer's parts into its
// ETag, gathering the fields in a scratch buffer before they are hashed.
type TagHash struct {
	h   hash.Hash
	b   []byte
	sum [sha256.Size]byte
}

// tagScratch is how much is gathered before it is hashed (the scratch
// outgrows it by at most one key).
const tagScratch = 4 << 10

// tagHashPool hands out ETag hashes, reset and with empty scratch.
type tagHashPool struct{ p sync.Pool }

func (c *tagHashPool) get() *TagHash {
	if t, ok := c.p.Get().(*TagHash); ok {
		return t
	}
	return &TagHash{h: sha256.New(), b: make([]byte, 0, tagScratch+512)}
}

func (c *tagHashPool) put(t *TagHash) {
	if t == nil || cap(t.b) > 4*tagScratch {
		return // grown by a long key: not kept
	}
	t.h.Reset()
	t.b = t.b[:0]
	c.p.Put(t)
}

var tagHashes tagHashPool

// NewTagHash returns a pooled, empty TagHash; Release gives it back.
func NewTagHash() *TagHash { return tagHashes.get() }

// Release gives the hash back to the pool.
func (t *TagHash) Release() { tagHashes.put(t) }

// Uint64 adds a number (big-endian).
func (t *TagHash) Uint64(v uint64) { t.b = binary.BigEndian.AppendUint64(t.b, v) }

// String adds the bytes of s.
func (t *TagHash) String(s string) { t.b = append(t.b, s...) }

// Byte adds one byte.
func (t *TagHash) Byte(c byte) { t.b = append(t.b, c) }

// Flush hashes the scratch once it is full; call it between fields.
func (t *TagHash) Flush() {
	if len(t.b) >= tagScratch {
		t.h.Write(t.b)
		t.b = t.b[:0]
	}
}

// ETag hashes the rest and returns the strong ETag of what was added.
func (t *TagHash) ETag() string {
	t.h.Write(t.b)
	t.b = t.b[:0]
	return `"ssi-` + hex.EncodeToString(t.h.Sum(t.sum[:0])[:16]) + `"`
}
