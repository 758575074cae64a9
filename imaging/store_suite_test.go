package imaging

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// runStoreSuite runs the behaviour every Store must share against the
// stores made by newStore (a fresh, empty store per call).
func runStoreSuite(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"MissingObject", suiteMissingObject},
		{"PutGetStat", suitePutGetStat},
		{"OverwriteChangesETag", suiteOverwrite},
		{"BinaryIntegrity", suiteBinaryIntegrity},
		{"Tags", suiteTags},
		{"InvalidKeys", suiteInvalidKeys},
		{"InvalidMetaAndTags", suiteInvalidMetaAndTags},
		{"List", suiteList},
		{"DeletePrefixBatches", suiteDeletePrefix},
		{"ConcurrentPutGet", suiteConcurrentPutGet},
		{"Ping", func(t *testing.T, s Store) {
			if err := s.Ping(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func suiteMissingObject(t *testing.T, s Store) {
	ctx := testCtx(t)
	if _, err := s.Get(ctx, "img/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "img/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat: %v, want ErrNotFound", err)
	}
	if _, err := s.GetTags(ctx, "img/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetTags: %v, want ErrNotFound", err)
	}
	if err := s.SetTags(ctx, "img/missing", map[string]string{"a": "b"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetTags: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "img/missing"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if n, err := s.DeletePrefix(ctx, "nothing/"); err != nil || n != 0 {
		t.Fatalf("DeletePrefix of nothing = %d, %v", n, err)
	}
	// A key below an existing object's key.
	if err := s.Put(ctx, "img/file", []byte("x"), "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "img/file/below"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get below an object: %v, want ErrNotFound", err)
	}
}

func suitePutGetStat(t *testing.T, s Store) {
	ctx := testCtx(t)
	start := time.Now().Add(-2 * time.Second)
	data := []byte("\xff\xd8 some jpeg bytes")
	meta := map[string]string{"Image-Modified": "1693175642190", "uuid": testUUID}
	if err := s.Put(ctx, "img/"+testUUID+"/1x1-144/1-2/144.jpg", data, "image/jpeg", meta); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Get(ctx, "img/"+testUUID+"/1x1-144/1-2/144.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj.Data, data) || obj.Size != int64(len(data)) || obj.ContentType != "image/jpeg" {
		t.Fatalf("Get = %q size %d type %q", obj.Data, obj.Size, obj.ContentType)
	}
	if obj.Meta["image-modified"] != "1693175642190" || obj.Meta["uuid"] != testUUID {
		t.Fatalf("meta = %v (keys must be lower case)", obj.Meta)
	}
	if obj.ETag == "" || strings.Contains(obj.ETag, `"`) {
		t.Fatalf("ETag %q: want non-empty, unquoted", obj.ETag)
	}
	if obj.ModTime.Before(start) || obj.ModTime.After(time.Now().Add(2*time.Second)) {
		t.Fatalf("ModTime %v not recent", obj.ModTime)
	}
	info, err := s.Stat(ctx, "img/"+testUUID+"/1x1-144/1-2/144.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if info.ETag != obj.ETag || info.Size != obj.Size || info.ContentType != obj.ContentType || info.Meta["uuid"] != testUUID {
		t.Fatalf("Stat = %+v, Get = %+v", info, obj.ObjectInfo)
	}
	// Empty objects are objects too.
	if err := s.Put(ctx, "var/1x1-144/"+testUUID, nil, "", nil); err != nil {
		t.Fatal(err)
	}
	if o, err := s.Get(ctx, "var/1x1-144/"+testUUID); err != nil || len(o.Data) != 0 {
		t.Fatalf("empty object: %v", err)
	}
}

func suiteOverwrite(t *testing.T, s Store) {
	ctx := testCtx(t)
	if err := s.Put(ctx, "k/v", []byte("one"), "text/plain", map[string]string{"n": "1"}); err != nil {
		t.Fatal(err)
	}
	a, err := s.Get(ctx, "k/v")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := s.Put(ctx, "k/v", []byte("second"), "text/html", map[string]string{"n": "2"}); err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(ctx, "k/v")
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Data) != "second" || b.ContentType != "text/html" || b.Meta["n"] != "2" || a.ETag == b.ETag {
		t.Fatalf("after overwrite: %q %q %v etag %q (was %q)", b.Data, b.ContentType, b.Meta, b.ETag, a.ETag)
	}
}

func suiteBinaryIntegrity(t *testing.T, s Store) {
	ctx := testCtx(t)
	data := make([]byte, 3<<20+17)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "big/blob.bin", data, "application/octet-stream", nil); err != nil {
		t.Fatal(err)
	}
	obj, err := s.Get(ctx, "big/blob.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj.Data, data) {
		t.Fatalf("3 MB object came back different (%d bytes)", len(obj.Data))
	}
}

func suiteTags(t *testing.T, s Store) {
	ctx := testCtx(t)
	key := "img/" + testUUID + "/_state"
	if err := s.Put(ctx, key, []byte("{}"), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	if tags, err := s.GetTags(ctx, key); err != nil || len(tags) != 0 {
		t.Fatalf("new object tags = %v, %v", tags, err)
	}
	want := map[string]string{"state": "deleted", "source-time": "1693175642190"}
	if err := s.SetTags(ctx, key, want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTags(ctx, key); err != nil || !mapsEqual(got, want) {
		t.Fatalf("GetTags = %v, %v; want %v", got, err, want)
	}
	if err := s.SetTags(ctx, key, map[string]string{"state": "offline"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetTags(ctx, key); !mapsEqual(got, map[string]string{"state": "offline"}) {
		t.Fatalf("tags not replaced: %v", got)
	}
	// Tags do not change the data or metadata.
	if obj, err := s.Get(ctx, key); err != nil || string(obj.Data) != "{}" || obj.ContentType != "application/json" {
		t.Fatalf("object changed by SetTags: %v", err)
	}
	// A new Put starts without tags, as in S3.
	if err := s.Put(ctx, key, []byte("{}"), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetTags(ctx, key); len(got) != 0 {
		t.Fatalf("tags after Put = %v, want none", got)
	}
}

func suiteInvalidKeys(t *testing.T, s Store) {
	ctx := testCtx(t)
	for _, key := range []string{"", "/abs", "../up", "a/../../up", "a//b", ".hidden", "a/.b", "a/./b",
		"a\\b", "a b", "a\x00b", "a/", "ä", strings.Repeat("a", 901), strings.Repeat("a", 201) + "/b"} {
		if err := s.Put(ctx, key, []byte("x"), "", nil); err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
		if _, err := s.Get(ctx, key); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want invalid key", key, err)
		}
		if err := s.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) succeeded", key)
		}
	}
	for _, prefix := range []string{"", "/", "../", "a//"} {
		if _, err := s.DeletePrefix(ctx, prefix); err == nil {
			t.Errorf("DeletePrefix(%q) succeeded", prefix)
		}
	}
}

func suiteInvalidMetaAndTags(t *testing.T, s Store) {
	ctx := testCtx(t)
	for _, meta := range []map[string]string{{"a b": "x"}, {"k": "new\nline"}, {"k": "ümlaut"}, {"k": strings.Repeat("x", 3000)}} {
		if err := s.Put(ctx, "m/k", nil, "", meta); err == nil {
			t.Errorf("Put with meta %q succeeded", meta)
		}
	}
	if err := s.Put(ctx, "m/k", nil, "", nil); err != nil {
		t.Fatal(err)
	}
	many := map[string]string{}
	for i := 0; i < 11; i++ {
		many[fmt.Sprint("t", i)] = "v"
	}
	for _, tags := range []map[string]string{many, {"": "v"}, {"k": "a\"b"}, {"k": strings.Repeat("v", 257)}} {
		if err := s.SetTags(ctx, "m/k", tags); err == nil {
			t.Errorf("SetTags(%v) succeeded", tags)
		}
	}
}

func putKeys(t *testing.T, s Store, keys []string) {
	t.Helper()
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 16)
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func(k string) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.Put(ctx, k, []byte(k), "text/plain", nil); err != nil {
				errs <- err
			}
		}(k)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func listKeys(t *testing.T, s Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := s.List(testCtx(t), prefix, func(oi ObjectInfo) error {
		if oi.Size != int64(len(oi.Key)) || oi.ModTime.IsZero() || oi.ETag == "" {
			t.Errorf("List entry %+v: size/mtime/etag missing", oi)
		}
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func suiteList(t *testing.T, s Store) {
	all := []string{"img/a/1", "img/a/2", "img/a/x/3", "img/ab/1", "img/b/1", "var/x"}
	putKeys(t, s, all)
	if err := s.SetTags(testCtx(t), "img/a/1", map[string]string{"state": "x"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"img/a/", []string{"img/a/1", "img/a/2", "img/a/x/3"}},
		{"img/a", []string{"img/a/1", "img/a/2", "img/a/x/3", "img/ab/1"}},
		{"img/a/1", []string{"img/a/1"}},
		{"var/", []string{"var/x"}},
		{"nothing/", nil},
		{"img/c", nil},
	} {
		got := listKeys(t, s, tt.prefix)
		if !slices.Equal(sorted(got), tt.want) {
			t.Errorf("List(%q) = %v, want %v", tt.prefix, got, tt.want)
		}
		// Keys that share a '/'-terminated prefix (here: the first two
		// segments) come together.
		seen := map[string]bool{}
		last := ""
		for _, k := range got {
			d := k
			if parts := strings.SplitAfterN(k, "/", 3); len(parts) == 3 {
				d = parts[0] + parts[1]
			}
			if d != last && seen[d] {
				t.Errorf("List(%q): keys of %s not contiguous: %v", tt.prefix, d, got)
			}
			seen[d], last = true, d
		}
	}
	stop := errors.New("stop")
	n := 0
	err := s.List(testCtx(t), "", func(ObjectInfo) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("List with failing fn: %v after %d calls", err, n)
	}
}

func suiteDeletePrefix(t *testing.T, s Store) {
	old := deleteBatch
	deleteBatch = 100
	t.Cleanup(func() { deleteBatch = old })
	const n = 2*100 + 37 // more than two batches
	keys := make([]string, 0, n+2)
	for i := 0; i < n; i++ {
		keys = append(keys, fmt.Sprintf("img/%s/16x9/1-2/%04d.jpg", testUUID, i))
	}
	keys = append(keys, "img/"+testUUID+"x/keep", "img/other/keep")
	putKeys(t, s, keys)
	got, err := s.DeletePrefix(testCtx(t), "img/"+testUUID+"/")
	if err != nil || got != n {
		t.Fatalf("DeletePrefix = %d, %v; want %d", got, err, n)
	}
	if left := listKeys(t, s, "img/"); !slices.Equal(sorted(left), []string{"img/" + testUUID + "x/keep", "img/other/keep"}) {
		t.Fatalf("left after DeletePrefix: %v", left)
	}
	// DeleteKeys removes exactly the listed keys; missing ones are fine.
	if err := s.DeleteKeys(testCtx(t), []string{"img/other/keep", "img/other/missing"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKeys(testCtx(t), []string{"../bad"}); err == nil {
		t.Fatal("DeleteKeys accepted an invalid key")
	}
	// Without a trailing slash the prefix matches the neighbour too.
	if got, err := s.DeletePrefix(testCtx(t), "img/"+testUUID); err != nil || got != 1 {
		t.Fatalf("DeletePrefix without slash = %d, %v; want 1", got, err)
	}
}

func suiteConcurrentPutGet(t *testing.T, s Store) {
	ctx := testCtx(t)
	a := bytes.Repeat([]byte("a"), 200<<10)
	b := bytes.Repeat([]byte("b"), 300<<10)
	if err := s.Put(ctx, "c/k", a, "", nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if w%2 == 0 {
					data := a
					if i%2 == 0 {
						data = b
					}
					if err := s.Put(ctx, "c/k", data, "", nil); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				obj, err := s.Get(ctx, "c/k")
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(obj.Data, a) && !bytes.Equal(obj.Data, b) {
					t.Errorf("read a torn object of %d bytes", len(obj.Data))
					return
				}
			}
		}(w)
	}
	wg.Wait()
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
