package bench

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/origin"
)

// soakPage is one page the readers ask for. Stories carry their document
// ID and the title the CMS changes append a revision to.
type soakPage struct {
	path  string
	id    string // document ID; "" for index pages
	title string // title without revision
}

// soakSections is how many archive sections the generated stories are
// spread over. They have no structure nodes and so no section pages: a
// section page lists every story of its section.
const soakSections = 50

func soakStoryID(n int) string { return fmt.Sprintf("soak%d", n) }

// seedSoakStories adds n generated stories to the content: each with an
// image of the demo (so pages show image variants), two related stories
// (teasers: SSI fragments when the render backend has SSI on) and a long
// body, rendered by the sample origin's ordinary story template.
func seedSoakStories(c *origin.Content, n int) []soakPage {
	demoImages := len(origin.Sections) * origin.StoriesPerSection
	pages := make([]soakPage, 0, n)
	for i := range n {
		id := soakStoryID(i)
		section := fmt.Sprintf("/archiv%02d", i%soakSections)
		title := fmt.Sprintf("Archiv %02d: Meldung %d", i%soakSections, i)
		c.Put(origin.Document{ID: id, UUID: origin.DemoUUID(id), NodeType: "story", Properties: map[string]any{
			"title":      title,
			"topline":    fmt.Sprintf("Archiv %d", i),
			"teasertext": fmt.Sprintf("Aus dem Archiv: Meldung %d in Kürze.", i),
			"copytext":   fmt.Sprintf("Der ausführliche Text der Archivmeldung %d. ", i),
			"section":    section,
			"image":      origin.DemoUUID(origin.ImageID(i % demoImages)),
			"related":    []any{soakStoryID((i + 1) % n), soakStoryID((i + 7) % n)},
		}}, nil)
		pages = append(pages, soakPage{path: section + "/" + id + ".html", id: id, title: title})
	}
	return pages
}

// soakPages lists the pages of the site in order of popularity for the
// Zipf draw: home, the demo sections and stories, then the generated
// stories in a fixed random order (popularity is not the ID order).
func soakPages(c *origin.Content, generated []soakPage) []soakPage {
	pages := []soakPage{{path: "/"}}
	for _, s := range origin.Sections {
		pages = append(pages, soakPage{path: s.ID + "/"})
	}
	n := 0
	for _, s := range origin.Sections {
		for range origin.StoriesPerSection {
			id := origin.StoryID(n)
			doc, _ := c.Latest(id)
			title, _ := doc.Properties["title"].(string)
			pages = append(pages, soakPage{path: s.ID + "/" + id + ".html", id: id, title: title})
			n++
		}
	}
	shuffled := append([]soakPage(nil), generated...)
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	return append(pages, shuffled...)
}

// soakRevTitle is the title of a story at a revision.
func soakRevTitle(title string, rev int64) string { return fmt.Sprintf("%s · rev %d", title, rev) }

var soakTitleRev = regexp.MustCompile(`<title>[^<]*?(?: · rev (\d+))?</title>`)

// soakPageRev reads the revision from a story page's title (0 for none,
// -1 when the page has no title).
func soakPageRev(body string) int64 {
	m := soakTitleRev.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	if m[1] == "" {
		return 0
	}
	r, _ := strconv.ParseInt(m[1], 10, 64)
	return r
}

// soakImageURL builds the image URLs the render backend writes into pages,
// like the sample origin's command does.
func soakImageURL(c *origin.Content) func(origin.Document, string) string {
	return func(doc origin.Document, variant string) string {
		return soakVariantURL(c, doc, variant, "jpg", 640)
	}
}

// soakVariantURL is the URL of an image variant as a page that saw the
// current documents would write it; width is for aspect-only variants.
func soakVariantURL(c *origin.Content, doc origin.Document, variant, format string, width int) string {
	u := imaging.URLParts{UUID: doc.UUID, ImageModified: doc.Modified, Variant: variant, Format: format, Slug: "bild"}
	for _, d := range c.Variants() {
		if d.Name == variant {
			u.VariantModified = d.Modified
		}
	}
	if _, w, ok := imaging.ParseVariantName(variant); ok {
		u.Width = w
		if w == 0 && variant != imaging.VariantOriginal {
			u.Width = width
		}
	}
	return imaging.BuildURL("/image", u)
}

// soakVariants are the variants the readers ask for besides those in the
// pages: a mix of formats and widths (each is one generation per image
// version, then a hit from the store).
var soakVariants = []struct {
	name, format string
	width        int
}{
	{"16x9-768", "jpg", 0},
	{"16x9-768", "webp", 0},
	{"16x9", "jpg", 640},
	{"4x3", "webp", 320},
	{"1x1-144", "png", 0},
}

// soakAcceptEncoding draws the Accept-Encoding of a reader: most browsers
// take brotli, some clients gzip only, some nothing.
func soakAcceptEncoding(rng *rand.Rand) string {
	switch r := rng.IntN(100); {
	case r < 55:
		return "gzip, deflate, br, zstd"
	case r < 85:
		return "gzip"
	default:
		return ""
	}
}

// hasDirective reports whether an SSI directive reached a reader.
func hasDirective(body string) bool { return strings.Contains(body, "<!--#") }
