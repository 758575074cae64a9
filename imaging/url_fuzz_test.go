package imaging

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics on any path and query, and that
// every URL it accepts survives BuildURL → Parse unchanged.
//
//	go test ./imaging -run '^$' -fuzz FuzzParse -fuzztime 1m
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg",
		"/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/16x9-768/slug.webp",
		"/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/16x9.png?width=640",
		"/" + testUUID + "/AAAAAAAAAAA/AAAAAAAAAAA/original.svg",
		"/a/b/" + testUUID + "/AAAAAAAAAAA/AAAAAAAAAAA/original/x.gif",
		"/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/16x9-768/Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln.webp",
		"/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/16x9/a%2Fb%3Fc%23d%25.png?width=640",
		"/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/original/..%2F..%2Fx.jpg",
		"/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/original/%FF%00 +.gif",
		"/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/original/a%zz.jpg",
		"/image/../../etc/passwd",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		path, rawQuery, _ := strings.Cut(s, "?")
		q, _ := url.ParseQuery(rawQuery)
		p, err := Parse(path, q, testWidths)
		if err != nil {
			return
		}
		built := BuildURL("/image", p)
		bpath, bquery, _ := strings.Cut(built, "?")
		bq, err := url.ParseQuery(bquery)
		if err != nil {
			t.Fatalf("BuildURL made an unparsable query %q", built)
		}
		again, err := Parse(bpath, bq, testWidths)
		if err != nil {
			t.Fatalf("Parse(BuildURL(%+v)) = %v", p, err)
		}
		if again != p {
			t.Fatalf("round trip changed parts:\n%+v\n%+v", p, again)
		}
		if err := p.Validate(testWidths); err != nil {
			t.Fatalf("Validate of parsed parts: %v", err)
		}
	})
}

// FuzzBuild checks parse(build(x)) == x for structurally generated parts:
// in particular, any slug Validate accepts comes back unchanged.
func FuzzBuild(f *testing.F) {
	f.Add(testUUID, int64(1693175642190), int64(0), "16x9-768", 0, "slug", "jpg")
	f.Add(testUUID, int64(1), int64(2), "4x3", 640, "", "webp")
	f.Add(testUUID, int64(1), int64(2), "original", 0, "", "svg")
	f.Add(testUUID, int64(1), int64(2), "16x9-768", 0, "Grüße aus Köln / 100% ?#", "jpg")
	f.Add(testUUID, int64(1), int64(2), "original", 0, "..", "png")
	f.Add(testUUID, int64(1), int64(2), "original", 0, "\xff\x00", "gif")
	f.Fuzz(func(t *testing.T, id string, im, vm int64, variant string, width int, slug, format string) {
		u := URLParts{UUID: id, ImageModified: im, VariantModified: vm, Variant: variant,
			Width: width, Slug: slug, Format: format}
		if _, w, ok := ParseVariantName(variant); ok && w > 0 {
			u.Width = w
		}
		if u.Validate(testWidths) != nil {
			return
		}
		built := BuildURL("p", u)
		path, rawQuery, _ := strings.Cut(built, "?")
		q, _ := url.ParseQuery(rawQuery)
		got, err := Parse(path, q, testWidths)
		if err != nil || got != u {
			t.Fatalf("Parse(BuildURL(%+v)) = %+v, %v", u, got, err)
		}
	})
}
