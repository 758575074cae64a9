package cache

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

func mustURL(t testing.TB, target string) *url.URL {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("parse %q: %v", target, err)
	}
	return u
}

func TestMapperMap(t *testing.T) {
	m := &Mapper{QueryParams: []string{"page", "q"}, ReservedSuffixes: []string{".gz", ".br"}}
	tests := []struct {
		target, key, file, ext string
		err                    error
	}{
		{"/", "/", "index.html", ".html", nil},
		{"/index.html", "/", "index.html", ".html", nil},
		{"/politik/", "/politik/", "politik/index.html", ".html", nil},
		{"/politik/index.html", "/politik/", "politik/index.html", ".html", nil},
		{"/politik/story100.html", "/politik/story100.html", "politik/story100.html", ".html", nil},
		{"/politik/story100", "/politik/story100", "politik/story100", "", nil},
		{"/a%20b.html", "/a%20b.html", "a%20b.html", ".html", nil},
		{"/a%25b", "/a%25b", "a%25b", "", nil},
		{"/a%3Fb", "/a%3Fb", "a%3Fb", "", nil},
		{"/%C3%BCber.html", "/%C3%BCber.html", "%C3%BCber.html", ".html", nil},
		{"/list.html?page=2", "/list.html?page=2", "list.html?page=2", ".html", nil},
		{"/list.html?q=a+b&page=2", "/list.html?page=2&q=a+b", "list.html?page=2&q=a%2Bb", ".html", nil},
		{"/list.html?page=2&q=a+b", "/list.html?page=2&q=a+b", "list.html?page=2&q=a%2Bb", ".html", nil},
		{"/list.html?page=a.old", "/list.html?page=a.old", "list.html?page=a%2Eold", ".html", nil},
		{"/dir/?page=1", "/dir/?page=1", "dir/index.html?page=1", ".html", nil},
		{"/list.html?", "/list.html", "list.html", ".html", nil},
		{"/list.html?utm_source=x", "", "", "", ErrNotCacheable},
		{"/a%2Fb", "", "", "", ErrNotCacheable},
		{"/a//b", "", "", "", ErrNotCacheable},
		{"/" + strings.Repeat("x", 256), "", "", "", ErrNotCacheable},
		{"/" + strings.Repeat("x/", 1100) + "y", "", "", "", ErrNotCacheable},
		{"/a/../b", "", "", "", ErrBadPath},
		{"/a/./b", "", "", "", ErrBadPath},
		{"/..", "", "", "", ErrBadPath},
		{"/a%00b", "", "", "", ErrBadPath},
		{"/story.html.old", "", "", "", ErrForbidden},
		{"/story.html.OLD", "", "", "", ErrForbidden},
		{"/story.html.%6Fld", "", "", "", ErrForbidden},
		{"/dir.old/x.html", "", "", "", ErrForbidden},
		{"/.delivery-tmp/x", "", "", "", ErrForbidden},
		{"/.Delivery-tmp/x", "", "", "", ErrForbidden},
		{"/story.html.gz", "", "", "", ErrForbidden},
		{"/story.html.Br", "", "", "", ErrForbidden},
		{"/gz/story.html", "/gz/story.html", "gz/story.html", ".html", nil},
		// The bounds of what is stored: segments and bytes of the decoded path.
		{deepPath(16), deepPath(16), deepPath(16)[1:], ".html", nil},
		{deepPath(17), "", "", "", ErrNotCacheable},
		{deepPath(15) + "/", deepPath(15) + "/", deepPath(15)[1:] + "/index.html", ".html", nil},
		{deepPath(16) + "/", deepPath(16) + "/", deepPath(16)[1:] + "/index.html", ".html", nil},
		{deepPath(17) + "/", "", "", "", ErrNotCacheable},
		{deepPath(16) + "/index.html", deepPath(16) + "/", deepPath(16)[1:] + "/index.html", ".html", nil},
		{deepPath(15) + "/index.html", deepPath(15) + "/", deepPath(15)[1:] + "/index.html", ".html", nil},
		{"/d0" + strings.Repeat("/a", 999), "", "", "", ErrNotCacheable},
		{longPath(MaxPathBytes), longPath(MaxPathBytes), longPath(MaxPathBytes)[1:], "", nil},
		{longPath(MaxPathBytes + 1), "", "", "", ErrNotCacheable},
		{longPath(MaxPathBytes-1) + "/", longPath(MaxPathBytes-1) + "/", longPath(MaxPathBytes - 1)[1:] + "/index.html", ".html", nil},
		{longPath(MaxPathBytes) + "/", "", "", "", ErrNotCacheable},
	}
	for _, tt := range tests {
		name := tt.target
		if len(name) > 60 {
			name = fmt.Sprintf("%s…(%d bytes)", name[:40], len(name))
		}
		t.Run(name, func(t *testing.T) {
			got, err := m.Map(mustURL(t, tt.target))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if got.Key != tt.key || got.File != tt.file || got.Ext != tt.ext {
				t.Fatalf("got %+v, want key=%q file=%q ext=%q", got, tt.key, tt.file, tt.ext)
			}
			checkMappingInvariants(t, m, got)
		})
	}
}

// deepPath is a path of n segments ending in a page.
func deepPath(n int) string {
	return strings.Repeat("/a", n-1) + "/p.html"
}

// longPath is a path of exactly n bytes in segments of at most 200 bytes.
func longPath(n int) string {
	var b strings.Builder
	for b.Len() < n {
		seg := min(200, n-b.Len()-1)
		b.WriteString("/")
		b.WriteString(strings.Repeat("x", seg))
	}
	return b.String()
}

// checkMappingInvariants asserts what every successful mapping guarantees:
// the name stays inside the docroot, is not internal, and is a bijection
// with its canonical key.
func checkMappingInvariants(t testing.TB, m *Mapper, got Target) {
	t.Helper()
	if !filepath.IsLocal(got.File) || strings.ContainsRune(got.File, 0) || strings.Contains(got.File, "\\") {
		t.Fatalf("file %q is not a local name", got.File)
	}
	for _, seg := range strings.Split(got.File, "/") {
		lower := strings.ToLower(seg)
		if seg == "" || seg == "." || seg == ".." || strings.HasSuffix(lower, OldSuffix) ||
			strings.HasPrefix(lower, InternalPrefix) || len(seg) > maxSegmentBytes {
			t.Fatalf("file %q has a bad segment %q", got.File, seg)
		}
	}
	if path, _, _ := strings.Cut(got.Key, "?"); len(path) > MaxPathBytes ||
		strings.Count(strings.TrimSuffix(path, "/"), "/") > MaxPathSegments {
		t.Fatalf("key %q is beyond the bounds of what is stored", got.Key)
	}
	key, ok := KeyForFile(got.File)
	if !ok || key != got.Key {
		t.Fatalf("KeyForFile(%q) = %q, %v; want %q", got.File, key, ok, got.Key)
	}
	again, err := m.Map(mustURL(t, got.Key))
	if err != nil || again.File != got.File || again.Key != got.Key {
		t.Fatalf("Map(key %q) = %+v, %v; want file %q", got.Key, again, err, got.File)
	}
}

func TestKeyForFileRejectsForeignNames(t *testing.T) {
	for _, name := range []string{"", "a//b", "../x", "a/./b", "a%2fb", "a%41", "a b", "x?%zz", "x?", "a%4"} {
		if key, ok := KeyForFile(name); ok {
			t.Errorf("KeyForFile(%q) = %q, want rejection", name, key)
		}
	}
}
