package imaging

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const testUUID = "491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a"

var testWidths = []int{320, 640, 960, 1280}

func TestStampKnownValue(t *testing.T) {
	if got := EncodeStamp(1693175642190); got != "AAABijkh-E4" {
		t.Fatalf("EncodeStamp(1693175642190) = %q, want AAABijkh-E4", got)
	}
	v, err := DecodeStamp("AAABijkh-E4")
	if err != nil || v != 1693175642190 {
		t.Fatalf("DecodeStamp(AAABijkh-E4) = %d, %v; want 1693175642190", v, err)
	}
}

func TestStampRejects(t *testing.T) {
	for _, s := range []string{
		"", "AAABijkh-E", "AAABijkh-E4A", "AAABijkh+E4", "AAABijkh/E4", "AAABijkh=E4",
		"AAABijkh-E5", // non-zero padding bits: not canonical
		"__________8", // -1
	} {
		if _, err := DecodeStamp(s); err == nil {
			t.Errorf("DecodeStamp(%q) succeeded", s)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		url    string
		want   URLParts
	}{
		{"spec example", "/image", "/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg",
			URLParts{UUID: testUUID, ImageModified: 1693175642190, VariantModified: mustStamp("AAABibBxx9M"),
				Variant: "1x1-144", Width: 144, Format: "jpg"}},
		{"with slug", "/image", "/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/16x9-768/my-nice_Slug-2.webp",
			URLParts{UUID: testUUID, ImageModified: 1693175642190, VariantModified: mustStamp("AAABibBxx9M"),
				Variant: "16x9-768", Width: 768, Slug: "my-nice_Slug-2", Format: "webp"}},
		{"aspect only", "/image", "/image/" + testUUID + "/AAABijkh-E4/AAAAAAAAAAA/4x3.png?width=640",
			URLParts{UUID: testUUID, ImageModified: 1693175642190, Variant: "4x3", Width: 640, Format: "png"}},
		{"aspect only slug", "/img/v2", "/img/v2/" + testUUID + "/AAABijkh-E4/AAAAAAAAAAA/16x9/slug.gif?width=1280",
			URLParts{UUID: testUUID, ImageModified: 1693175642190, Variant: "16x9", Width: 1280, Slug: "slug", Format: "gif"}},
		{"original svg", "/image", "/image/" + testUUID + "/AAABijkh-E4/AAAAAAAAAAA/original.svg",
			URLParts{UUID: testUUID, ImageModified: 1693175642190, Variant: "original", Format: "svg"}},
		{"original jpeg no prefix", "", "/" + testUUID + "/AAAAAAAAAAA/AAAAAAAAAAA/original/x.jpeg",
			URLParts{UUID: testUUID, Variant: "original", Slug: "x", Format: "jpeg"}},
		{"max width", "image", "/image/" + testUUID + "/AAAAAAAAAAA/AAAAAAAAAAA/999x1-10000.jpg",
			URLParts{UUID: testUUID, Variant: "999x1-10000", Width: 10000, Format: "jpg"}},
		{"slug with spaces and umlauts", "/image", "/image/" + testUUID + "/AAABijkh-E4/AAAAAAAAAAA/16x9-768/Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln.webp",
			URLParts{UUID: testUUID, ImageModified: 1693175642190, Variant: "16x9-768", Width: 768, Slug: "Grüße aus Köln", Format: "webp"}},
		{"slug with slash, dot, percent, query and fragment marks", "/image", "/image/" + testUUID + "/AAAAAAAAAAA/AAAAAAAAAAA/original/a%2Fb.c%25d%3Fe%23f.png",
			URLParts{UUID: testUUID, Variant: "original", Slug: "a/b.c%d?e#f", Format: "png"}},
		{"slug of 200 bytes", "/image", "/image/" + testUUID + "/AAAAAAAAAAA/AAAAAAAAAAA/1x1-144/" + strings.Repeat("%C3%A4", 100) + ".jpg",
			URLParts{UUID: testUUID, Variant: "1x1-144", Width: 144, Slug: strings.Repeat("ä", 100), Format: "jpg"}},
		{"slug that looks like a path", "/image", "/image/" + testUUID + "/AAAAAAAAAAA/AAAAAAAAAAA/1x1-144/..%2F..%2Fetc%2Fpasswd.jpg",
			URLParts{UUID: testUUID, Variant: "1x1-144", Width: 144, Slug: "../../etc/passwd", Format: "jpg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, rawQuery, _ := strings.Cut(tt.url, "?")
			q, _ := url.ParseQuery(rawQuery)
			got, err := Parse(path, q, testWidths)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Parse = %+v\nwant   %+v", got, tt.want)
			}
			if b := BuildURL(tt.prefix, got); b != tt.url {
				t.Fatalf("BuildURL = %q, want %q", b, tt.url)
			}
			if err := got.Validate(testWidths); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

// TestParseSlugForms: a slug may come in any percent-encoding (as
// browsers and proxies send it, or not encoded where that is harmless);
// it decodes to the same text, and the image and variant stay the same.
func TestParseSlugForms(t *testing.T) {
	base := "/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/16x9-768/"
	want, err := Parse(base+"x.jpg", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for raw, slug := range map[string]string{
		"gr%c3%bc%c3%9fe": "grüße",
		"a b":             "a b",
		"a+b":             "a+b",
		"%41%42":          "AB",
		"a.b.c":           "a.b.c",
		"...":             "...",
		"%00":             "\x00",
		"%FF%FE":          "\xff\xfe",
	} {
		p, err := Parse(base+raw+".jpg", nil, nil)
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		if p.Slug != slug {
			t.Errorf("%q: slug %q, want %s", raw, p.Slug, slug)
		}
		p.Slug = want.Slug
		if p != want {
			t.Errorf("%q: parts %+v, want %+v", raw, p, want)
		}
	}
}

func TestBaseURL(t *testing.T) {
	u := URLParts{UUID: testUUID, ImageModified: 1693175642190, Variant: "16x9", Width: 640, Slug: "Köln", Format: "webp"}
	for in, want := range map[string]string{
		"https://img.example.com":            "https://img.example.com",
		"https://img.example.com/":           "https://img.example.com",
		"HTTP://img.example.com:8080":        "http://img.example.com:8080",
		"https://cdn.example.com/edge/":      "https://cdn.example.com/edge",
		"https://cdn.example.com/a%20b":      "https://cdn.example.com/a%20b",
		"https://cdn.example.com/a b":        "https://cdn.example.com/a%20b",
		"http://[::1]:2015":                  "http://[::1]:2015",
		"https://xn--kln-sna.example/bilder": "https://xn--kln-sna.example/bilder",
	} {
		got, err := ParseBaseURL(in)
		if err != nil || got != want {
			t.Errorf("ParseBaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "img.example.com", "//img.example.com", "ftp://img.example.com", "https://", "https:///x",
		"https://user:pw@img.example.com", "https://img.example.com?x=1", "https://img.example.com/#top",
		"https://img.example.com/?", "https://img.example.com:99999", "https://img.example.com//x",
		"mailto:a@b", "https://img.example.com:x",
	} {
		if got, err := ParseBaseURL(in); err == nil {
			t.Errorf("ParseBaseURL(%q) = %q, want an error", in, got)
		}
	}
	base, _ := ParseBaseURL("https://cdn.example.com/edge/")
	got := BuildAbsoluteURL(base, "/image", u)
	if want := "https://cdn.example.com/edge/image/" + testUUID + "/AAABijkh-E4/AAAAAAAAAAA/16x9/K%C3%B6ln.webp?width=640"; got != want {
		t.Fatalf("BuildAbsoluteURL = %q, want %q", got, want)
	}
	// The absolute URL is one the service parses back to the same parts.
	pu, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(strings.TrimPrefix(pu.EscapedPath(), "/edge"), pu.Query(), testWidths)
	if err != nil || back != u {
		t.Fatalf("Parse of the absolute URL's path = %+v, %v; want %+v", back, err, u)
	}
	if BuildAbsoluteURL("", "/image", u) != BuildURL("/image", u) {
		t.Fatal("an empty base must give the path alone")
	}
}

func TestParseUpperCaseUUIDIsCanonicalised(t *testing.T) {
	p, err := Parse("/image/"+strings.ToUpper(testUUID)+"/AAABijkh-E4/AAAAAAAAAAA/1x1-144.jpg", nil, nil)
	if err != nil || p.UUID != testUUID {
		t.Fatalf("Parse = %+v, %v", p, err)
	}
}

func TestParseRejects(t *testing.T) {
	base := "/image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/"
	tests := []struct{ name, url string }{
		{"empty", ""},
		{"relative", "image/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg"},
		{"too few segments", "/image/" + testUUID + "/AAABijkh-E4/1x1-144.jpg"},
		{"bad uuid", "/image/491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1dzz/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg"},
		{"urn uuid", "/image/{491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2}/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg"},
		{"short stamp", "/image/" + testUUID + "/AAABijkh-E/AAABibBxx9M/1x1-144.jpg"},
		{"bad stamp chars", "/image/" + testUUID + "/AAABijkh+E4/AAABibBxx9M/1x1-144.jpg"},
		{"negative stamp", "/image/" + testUUID + "/__________8/AAABibBxx9M/1x1-144.jpg"},
		{"no format", base + "1x1-144"},
		{"unknown format", base + "1x1-144.bmp"},
		{"upper format", base + "1x1-144.JPG"},
		{"svg not original", base + "1x1-144.svg"},
		{"bad variant", base + "square.jpg"},
		{"zero aspect", base + "0x1-144.jpg"},
		{"leading zero width", base + "1x1-0144.jpg"},
		{"width too big", base + "1x1-10001.jpg"},
		{"width zero", base + "1x1-0.jpg"},
		{"aspect too big", base + "1000x1-100.jpg"},
		{"empty slug", base + "1x1-144/.jpg"},
		{"slug too long", base + "1x1-144/" + strings.Repeat("a", 201) + ".jpg"},
		{"slug too long decoded", base + "1x1-144/" + strings.Repeat("%C3%A4", 100) + "a.jpg"},
		{"slug bad percent-encoding", base + "1x1-144/a%zzb.jpg"},
		{"slug truncated percent-encoding", base + "1x1-144/ab%2.jpg"},
		{"encoded variant", base + "1x1%2D144.jpg"},
		{"encoded format dot", base + "1x1-144/slug%2Ejpg"},
		{"encoded uuid", "/image/" + strings.Replace(testUUID, "-", "%2D", 1) + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg"},
		{"aspect only without width", base + "16x9.jpg"},
		{"aspect only width not allowed", base + "16x9.jpg?width=641"},
		{"aspect only two widths", base + "16x9.jpg?width=640&width=320"},
		{"aspect only width garbage", base + "16x9.jpg?width=640px"},
		{"named width plus query", base + "16x9-768.jpg?width=640"},
		{"original with width", base + "original.jpg?width=640"},
		{"empty prefix segment", "//x/" + testUUID + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg"},
		{"too long", "/" + strings.Repeat("p/", 1100) + testUUID + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg"},
		{"trailing slash", base + "1x1-144.jpg/"},
		{"dotdot", base + "../1x1-144.jpg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, rawQuery, _ := strings.Cut(tt.url, "?")
			q, _ := url.ParseQuery(rawQuery)
			p, err := Parse(path, q, testWidths)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", tt.url, p)
			}
			var ue *URLError
			if !errors.As(err, &ue) || !errors.Is(err, ErrBadURL) {
				t.Fatalf("error %v is not a *URLError matching ErrBadURL", err)
			}
			if HTTPStatus(err) != http.StatusBadRequest {
				t.Fatalf("HTTPStatus = %d, want 400", HTTPStatus(err))
			}
		})
	}
}

func TestParseAspectOnlyWithoutAllowList(t *testing.T) {
	_, err := Parse("/image/"+testUUID+"/AAABijkh-E4/AAABibBxx9M/16x9.jpg", url.Values{"width": {"640"}}, nil)
	if !errors.Is(err, ErrBadURL) {
		t.Fatalf("err = %v, want ErrBadURL", err)
	}
}

func TestParseIgnoresOtherQueryParameters(t *testing.T) {
	_, err := Parse("/image/"+testUUID+"/AAABijkh-E4/AAABibBxx9M/16x9-768.jpg", url.Values{"v": {"2"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejectsInconsistentParts(t *testing.T) {
	for _, u := range []URLParts{
		{UUID: testUUID, Variant: "16x9-768", Width: 640, Format: "jpg"},      // width disagrees with name
		{UUID: testUUID, Variant: "original", Width: 640, Format: "jpg"},      // original has no width
		{UUID: strings.ToUpper(testUUID), Variant: "original", Format: "jpg"}, // not canonical
		{UUID: testUUID, Variant: "16x9", Width: 500, Format: "jpg"},          // not allowed
		{UUID: testUUID, Variant: "original", Format: "tiff"},
	} {
		if err := u.Validate(testWidths); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", u)
		}
	}
}

func TestURLPartsHelpers(t *testing.T) {
	p := URLParts{Variant: "16x9-768", Format: "jpeg"}
	if p.Ext() != "jpg" || p.ContentType() != "image/jpeg" || p.Aspect() != (Aspect{16, 9}) {
		t.Fatalf("helpers: %q %q %v", p.Ext(), p.ContentType(), p.Aspect())
	}
	if (URLParts{Variant: "original"}).Aspect().String() != "" {
		t.Fatal("original must have the zero aspect")
	}
}

func mustStamp(s string) int64 {
	v, err := DecodeStamp(s)
	if err != nil {
		panic(err)
	}
	return v
}

func TestURLFor(t *testing.T) {
	u := URLParts{UUID: testUUID, ImageModified: 1693175642190, Variant: "16x9", Width: 640, Format: "webp"}
	got, err := URLFor("/image/", u, testWidths)
	if err != nil || got != "/image/"+testUUID+"/AAABijkh-E4/AAAAAAAAAAA/16x9.webp?width=640" {
		t.Fatalf("URLFor = %q, %v", got, err)
	}
	u.Width = 641
	if _, err := URLFor("/image", u, testWidths); !errors.Is(err, ErrBadURL) {
		t.Fatalf("URLFor with a width not allowed: %v", err)
	}
}

// TestBuildURLSlugIsHTMLSafe: the encoded slug holds nothing that HTML
// would read (quotes, angle brackets, ampersands), so a template may write
// the URL into an attribute as it is.
func TestBuildURLSlugIsHTMLSafe(t *testing.T) {
	u := URLParts{UUID: testUUID, Variant: "original", Slug: `"><script>a&amp;b's`, Format: "png"}
	got := BuildURL("/image", u)
	if strings.ContainsAny(got, `"'<>&`) {
		t.Fatalf("BuildURL = %q, with characters HTML reads", got)
	}
	if p, err := Parse(got, nil, nil); err != nil || p.Slug != u.Slug {
		t.Fatalf("Parse = %+v, %v", p, err)
	}
}
