package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/stagingclient"
)

// imageStores holds one open image store per store configuration (folder
// or bucket) across config reloads: the old and the new config share it
// while they overlap, and it is closed when the last user is cleaned up.
var imageStores = caddy.NewUsagePool()

// sharedImageStore is the store of one image_store configuration, opened
// on first use (imaging.LazyStore). Provisioning (which also runs for
// `caddy validate`) therefore creates no folder and connects to nothing;
// an S3 client is made (and its configuration checked) up front, but it
// does not dial until a request needs it.
//
// It also carries what the image handlers and the image update service of
// one store share in this process: the negative cache (unknown images,
// refused originals), which the handlers fill and the update service
// clears per image as its events arrive.
type sharedImageStore struct {
	*imaging.LazyStore
	negative *imaging.NegativeCache
}

// Destruct closes the store when the last config using it is gone.
func (s *sharedImageStore) Destruct() error { return s.Close() }

// imageStoreRef is one user's reference to a shared store; release gives
// it back (once).
type imageStoreRef struct {
	*sharedImageStore
	key     string
	release sync.Once
}

func (r *imageStoreRef) Release() {
	r.release.Do(func() { _, _ = imageStores.Delete(r.key) })
}

// acquireImageStore returns the image store of the app's configuration
// (default: the folder <data_dir>/images). The caller releases it when its
// config is cleaned up.
func acquireImageStore(a *App) (*imageStoreRef, error) {
	key, desc, open, err := imageStoreSpec(a)
	if err != nil {
		return nil, err
	}
	v, _, err := imageStores.LoadOrNew(key, func() (caddy.Destructor, error) {
		return &sharedImageStore{LazyStore: imaging.NewLazyStore(desc, open), negative: imaging.NewNegativeCache(0)}, nil
	})
	if err != nil {
		return nil, err
	}
	return &imageStoreRef{sharedImageStore: v.(*sharedImageStore), key: key}, nil
}

// imageStoreSpec resolves the app's image_store (placeholders replaced,
// relative folders made absolute) into a pool key, a description for
// logs and a function that opens the store. Configuration errors are
// reported here, naming the option.
func imageStoreSpec(a *App) (key, desc string, open func() (imaging.Store, error), err error) {
	cfg := ImageStoreConfig{Type: "file"}
	if a.ImageStore != nil {
		cfg = *a.ImageStore
	}
	repl := caddy.NewReplacer()
	switch cfg.Type {
	case "", "file":
		dir := repl.ReplaceKnown(cfg.Dir, "")
		if dir == "" {
			dir = filepath.Join(a.dataDir, "images")
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", "", nil, fmt.Errorf("image_store file %q: %w", dir, err)
		}
		return "file:" + abs, "folder " + abs, func() (imaging.Store, error) { return imaging.NewFolderStore(abs) }, nil
	case "s3":
		s3 := imaging.S3Config{
			Bucket:    repl.ReplaceKnown(cfg.Bucket, ""),
			Endpoint:  repl.ReplaceKnown(cfg.Endpoint, ""),
			Region:    repl.ReplaceKnown(cfg.Region, ""),
			Prefix:    repl.ReplaceKnown(cfg.Prefix, ""),
			PathStyle: cfg.PathStyle,
			AccessKey: repl.ReplaceKnown(cfg.AccessKey, ""),
			SecretKey: repl.ReplaceKnown(cfg.SecretKey, ""),
			CAFile:    repl.ReplaceKnown(cfg.CAFile, ""),
		}
		if s3.Bucket == "" {
			return "", "", nil, errors.New("image_store s3: bucket is required")
		}
		if s3.Endpoint != "" {
			if u, err := url.Parse(s3.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return "", "", nil, fmt.Errorf("image_store s3: endpoint %q is not an http(s) URL with a host", s3.Endpoint)
			}
		}
		if (s3.AccessKey == "") != (s3.SecretKey == "") {
			return "", "", nil, errors.New("image_store s3: access_key and secret_key go together")
		}
		// Making the client reads the CA file and the AWS configuration
		// (environment, shared files) but sends nothing.
		st, err := imaging.NewS3Store(context.Background(), s3)
		if err != nil {
			return "", "", nil, fmt.Errorf("image_store %w", err)
		}
		k, _ := json.Marshal(s3)
		return "s3:" + string(k), st.String(), func() (imaging.Store, error) { return st, nil }, nil
	default:
		return "", "", nil, fmt.Errorf("image_store: unknown type %q (want file or s3)", cfg.Type)
	}
}

// imageNegativeStats sums the negative caches of the image stores open in
// this process (normally one); ok is false when there is none.
func imageNegativeStats() (st imaging.NegativeStats, ok bool) {
	imageStores.Range(func(_, v any) bool {
		s := v.(*sharedImageStore).negative.Stats()
		st.Entries += s.Entries
		st.Hits += s.Hits
		st.Evicted += s.Evicted
		ok = true
		return true
	})
	return st, ok
}

// Interface guards
var (
	_ imaging.Store    = (*sharedImageStore)(nil)
	_ caddy.Destructor = (*sharedImageStore)(nil)
	_ fmt.Stringer     = (*sharedImageStore)(nil)
)

// releaseImageDeps gives back what an image handler holds: its reference
// to the shared store and its staging client's connections.
func releaseImageDeps(store *imageStoreRef, client *stagingclient.Client) {
	if store != nil {
		store.Release()
	}
	if client != nil {
		client.Close()
	}
}
