package cache

import (
	"net/http"
	"testing"
	"time"
)

// FuzzRenderInfo feeds arbitrary header values to the parser of what a
// render backend reports: it must never panic, and what it accepts must
// obey the dependency model.
func FuzzRenderInfo(f *testing.F) {
	f.Add(`"story100";props="topline sophora:id", "/politik";type=node`, `"k1", k2`, "?1", "max-age=30")
	f.Add(`"t";type=resource;hash="abc"`, `"a"`, "?0", "private")
	f.Add(`"s";children;props="a"`, ``, ``, `s-maxage=1, max-age=0`)
	f.Fuzz(func(t *testing.T, deps, keys, pregen, cc string) {
		h := http.Header{}
		for k, v := range map[string]string{HeaderDependencies: deps, HeaderCacheKeys: keys, HeaderPregenerate: pregen, "Cache-Control": cc} {
			if v != "" {
				h.Set(k, v)
			}
		}
		info, err := ParseRenderInfo(h, time.Unix(1700000000, 0))
		if err != nil {
			return
		}
		for _, d := range info.Deps {
			if d.Name == "" || (d.Props != nil && (len(d.Props) == 0 || len(d.Props) > MaxPropertyDeps)) {
				t.Fatalf("bad dependency %+v from %q", d, deps)
			}
			if d.Kind == DepResource && d.Hash == "" {
				t.Fatalf("resource without hash from %q", deps)
			}
		}
	})
}
