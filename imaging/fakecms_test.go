package imaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// fakeCMS is an in-process test double of the CMS behind the CMS
// interface.
type fakeCMS struct {
	mu        sync.Mutex
	images    map[string]*ImageDoc
	originals map[string][]byte
	variants  []VariantDef
	down      bool
	gate      chan struct{} // when set, Original waits for it

	imageCalls, originalCalls, variantCalls atomic.Int64
	inOriginal, maxInOriginal               atomic.Int64
}

func newFakeCMS() *fakeCMS {
	return &fakeCMS{
		images:    map[string]*ImageDoc{},
		originals: map[string][]byte{},
		variants: []VariantDef{
			{Name: "16x9-768", Aspect: "16x9", Width: 768, Modified: 1000},
			{Name: "1x1-144", Aspect: "1x1", Width: 144, Modified: 1000},
			{Name: "16x9", Aspect: "16x9", Modified: 1000},
			{Name: "4x3-160", Aspect: "4x3", Width: 160, Modified: 1000},
		},
	}
}

var errCMSDown = errors.New("connection refused (fake)")

func (c *fakeCMS) setImage(uuid string, modified int64, focus *Point, original []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.images[uuid] = &ImageDoc{UUID: uuid, State: StatePublished, Modified: modified, Focus: focus}
	c.originals[uuid] = original
}

func (c *fakeCMS) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

func (c *fakeCMS) setVariant(d VariantDef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.variants {
		if c.variants[i].Name == d.Name {
			c.variants[i] = d
			return
		}
	}
	c.variants = append(c.variants, d)
}

func (c *fakeCMS) Image(ctx context.Context, uuid string) (*ImageDoc, error) {
	c.imageCalls.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, errCMSDown
	}
	d, ok := c.images[uuid]
	if !ok {
		return nil, fmt.Errorf("document %s: %w", uuid, ErrNotFound)
	}
	cp := *d
	return &cp, nil
}

func (c *fakeCMS) Original(ctx context.Context, uuid string) (io.ReadCloser, error) {
	c.originalCalls.Add(1)
	n := c.inOriginal.Add(1)
	defer c.inOriginal.Add(-1)
	for {
		m := c.maxInOriginal.Load()
		if n <= m || c.maxInOriginal.CompareAndSwap(m, n) {
			break
		}
	}
	c.mu.Lock()
	gate, down, data, ok := c.gate, c.down, c.originals[uuid], c.images[uuid] != nil
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if down {
		return nil, errCMSDown
	}
	if !ok {
		return nil, fmt.Errorf("binary %s: %w", uuid, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (c *fakeCMS) Variants(ctx context.Context) ([]VariantDef, error) {
	c.variantCalls.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, errCMSDown
	}
	return append([]VariantDef(nil), c.variants...), nil
}

// flakyStore wraps a Store and fails every call while down is set.
type flakyStore struct {
	Store
	down atomic.Bool
}

var errStoreDown = errors.New("dial tcp 127.0.0.1:9: connection refused (fake)")

func (s *flakyStore) Get(ctx context.Context, key string) (*Object, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("get %s: %w", key, errStoreDown)
	}
	return s.Store.Get(ctx, key)
}

func (s *flakyStore) Put(ctx context.Context, key string, data []byte, ct string, meta map[string]string) error {
	if s.down.Load() {
		return fmt.Errorf("put %s: %w", key, errStoreDown)
	}
	return s.Store.Put(ctx, key, data, ct, meta)
}

func (s *flakyStore) Ping(ctx context.Context) error {
	if s.down.Load() {
		return errStoreDown
	}
	return s.Store.Ping(ctx)
}

func (s *flakyStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if s.down.Load() {
		return fmt.Errorf("list %s: %w", prefix, errStoreDown)
	}
	return s.Store.List(ctx, prefix, fn)
}

func (s *flakyStore) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if s.down.Load() {
		return 0, fmt.Errorf("delete prefix %s: %w", prefix, errStoreDown)
	}
	return s.Store.DeletePrefix(ctx, prefix)
}
