package cache

import (
	"net/url"
	"testing"
)

// FuzzMapper feeds arbitrary request targets through the mapping and checks
// that every accepted one stays inside the docroot and round-trips through
// its canonical key (which makes the mapping injective).
func FuzzMapper(f *testing.F) {
	for _, s := range []string{"/", "/a/b.html", "/a/../b", "/a%2Fb", "/x.html?page=2&q=%2E%2E",
		"/%2e%2e/etc/passwd", "/a.OLD", "/dir/index.html?page=1", "/\u00fcber", "/a%00"} {
		f.Add(s)
	}
	m := &Mapper{QueryParams: []string{"page", "q"}, ReservedSuffixes: []string{".gz", ".br"}}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		got, err := m.Map(u)
		if err != nil {
			return
		}
		checkMappingInvariants(t, m, got)
	})
}
