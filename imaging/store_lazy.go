package imaging

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// LazyStore is a Store that opens the store it stands for on first use, so
// that it can be set up where nothing may be touched yet (a configuration
// that is only checked creates no folder and connects to nothing). A
// failed open is retried by the next caller.
type LazyStore struct {
	desc string
	open func() (Store, error)

	mu    sync.Mutex
	store Store
}

// NewLazyStore returns a store that calls open on first use; desc
// describes it in errors and logs.
func NewLazyStore(desc string, open func() (Store, error)) *LazyStore {
	return &LazyStore{desc: desc, open: open}
}

// String describes the store for logs.
func (s *LazyStore) String() string { return s.desc }

// get returns the open store, opening it on first use.
func (s *LazyStore) get() (Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store != nil {
		return s.store, nil
	}
	st, err := s.open()
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", s.desc, err)
	}
	s.store = st
	return st, nil
}

// Close closes the store if it was opened (and is an io.Closer); a later
// use opens it again.
func (s *LazyStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.store.(io.Closer)
	s.store = nil
	if ok {
		return c.Close()
	}
	return nil
}

// opened runs fn on the store, opening it first if need be.
func opened[T any](s *LazyStore, fn func(Store) (T, error)) (T, error) {
	st, err := s.get()
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(st)
}

// do is opened for the methods that return only an error.
func (s *LazyStore) do(fn func(Store) error) error {
	st, err := s.get()
	if err != nil {
		return err
	}
	return fn(st)
}

// The Store methods open the store on first use and then delegate.

func (s *LazyStore) Get(ctx context.Context, key string) (*Object, error) {
	return opened(s, func(st Store) (*Object, error) { return st.Get(ctx, key) })
}

func (s *LazyStore) Stat(ctx context.Context, key string) (*ObjectInfo, error) {
	return opened(s, func(st Store) (*ObjectInfo, error) { return st.Stat(ctx, key) })
}

func (s *LazyStore) Put(ctx context.Context, key string, data []byte, contentType string, meta map[string]string) error {
	return s.do(func(st Store) error { return st.Put(ctx, key, data, contentType, meta) })
}

func (s *LazyStore) Delete(ctx context.Context, key string) error {
	return s.do(func(st Store) error { return st.Delete(ctx, key) })
}

func (s *LazyStore) DeleteKeys(ctx context.Context, keys []string) error {
	return s.do(func(st Store) error { return st.DeleteKeys(ctx, keys) })
}

func (s *LazyStore) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	return opened(s, func(st Store) (int, error) { return st.DeletePrefix(ctx, prefix) })
}

func (s *LazyStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	return s.do(func(st Store) error { return st.List(ctx, prefix, fn) })
}

func (s *LazyStore) SetTags(ctx context.Context, key string, tags map[string]string) error {
	return s.do(func(st Store) error { return st.SetTags(ctx, key, tags) })
}

func (s *LazyStore) GetTags(ctx context.Context, key string) (map[string]string, error) {
	return opened(s, func(st Store) (map[string]string, error) { return st.GetTags(ctx, key) })
}

func (s *LazyStore) Ping(ctx context.Context) error {
	return s.do(func(st Store) error { return st.Ping(ctx) })
}

// Interface guards
var (
	_ Store        = (*LazyStore)(nil)
	_ io.Closer    = (*LazyStore)(nil)
	_ fmt.Stringer = (*LazyStore)(nil)
)
