package ssi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// stallReader returns nothing, without an error, forever.
type stallReader struct{}

func (stallReader) ReadAt([]byte, int64) (int, error) { return 0, nil }

// halfReader returns at most half of what is asked (at least one byte),
// without an error, as a file does not but a ReaderAt may.
type halfReader struct{ r *bytes.Reader }

func (h halfReader) ReadAt(p []byte, off int64) (int, error) {
	return h.r.ReadAt(p[:max(1, len(p)/2)], off)
}

type failReader struct{}

var errDisk = errors.New("disk on fire")

func (failReader) ReadAt([]byte, int64) (int, error) { return 0, errDisk }

func TestReadChunks(t *testing.T) {
	data := []byte(strings.Repeat("0123456789abcdef", 5000)) // 80,000 bytes: three chunks
	errStop := errors.New("enough")
	for _, c := range []struct {
		name    string
		r       io.ReaderAt
		off, n  int64
		stopAt  int // fn fails at this call (0: never)
		want    []byte
		wantErr error
	}{
		{name: "whole", r: bytes.NewReader(data), n: int64(len(data)), want: data},
		{name: "middle", r: bytes.NewReader(data), off: 100, n: 40000, want: data[100:40100]},
		{name: "nothing", r: stallReader{}, n: 0, want: nil},
		{name: "short reads without error", r: halfReader{bytes.NewReader(data)}, n: int64(len(data)), want: data},
		{name: "no progress", r: stallReader{}, n: 10, wantErr: io.ErrNoProgress},
		{name: "file shorter than its size", r: bytes.NewReader(data), n: int64(len(data)) + 1, wantErr: io.ErrUnexpectedEOF},
		{name: "read fails", r: failReader{}, n: 10, wantErr: errDisk},
		{name: "fn stops", r: bytes.NewReader(data), n: int64(len(data)), stopAt: 2, wantErr: errStop},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []byte
			calls := 0
			done := make(chan error, 1)
			go func() {
				done <- ReadChunks(c.r, c.off, c.n, func(b []byte) error {
					if len(b) == 0 || len(b) > ChunkSize {
						t.Errorf("chunk of %d bytes", len(b))
					}
					calls++
					if calls == c.stopAt {
						return errStop
					}
					got = append(got, b...)
					return nil
				})
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("readChunks did not return")
			}
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Fatalf("error %v, %d bytes, want %d", err, len(got), len(c.want))
			}
		})
	}
}
