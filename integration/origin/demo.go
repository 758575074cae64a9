package origin

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"

	"github.com/google/uuid"
)

// Sections of the demo site, as structure nodes.
var Sections = []struct{ ID, Name string }{
	{"/politik", "Politik"},
	{"/sport", "Sport"},
	{"/wirtschaft", "Wirtschaft"},
}

// StoriesPerSection is how many stories the demo seeds into each section.
const StoriesPerSection = 5

// demoNamespace derives stable UUIDs for the demo content.
var demoNamespace = uuid.MustParse("6f1c2a8e-5d0b-4c1e-9a57-2f0d3b8c4e11")

// DemoUUID is the stable UUID of a demo document ID.
func DemoUUID(id string) string {
	return uuid.NewSHA1(demoNamespace, []byte(id)).String()
}

// StoryID is the ID of the n-th demo story (0-based across all sections).
func StoryID(n int) string { return fmt.Sprintf("story%d", 100+n) }

// ImageID is the ID of the image that illustrates the n-th demo story.
func ImageID(n int) string { return fmt.Sprintf("image%d", 200+n) }

// SeedDemo fills an empty store with the demo news site: a home node, three
// sections with five stories each, one image per story with a focal point,
// and the image variant definitions.
func SeedDemo(c *Content) {
	c.Put(Document{ID: "/", UUID: DemoUUID("/"), NodeType: "structureNode",
		Properties: map[string]any{"name": "Startseite", "title": "Nachrichten"}}, nil)
	n := 0
	for _, s := range Sections {
		c.Put(Document{ID: s.ID, UUID: DemoUUID(s.ID), NodeType: "structureNode",
			Properties: map[string]any{"name": s.Name, "title": s.Name + " – aktuelle Nachrichten"}}, nil)
		for i := 0; i < StoriesPerSection; i++ {
			id, img := StoryID(n), ImageID(n)
			imgUUID := DemoUUID(img)
			c.SetBinary(imgUUID, DemoJPEG(1600, 900, n))
			c.Put(Document{ID: img, UUID: imgUUID, NodeType: "image", Properties: map[string]any{
				"title":   "Bild zu " + id,
				"alttext": "Symbolbild " + s.Name,
				"focus":   map[string]any{"x": 0.3 + 0.1*float64(i%4), "y": 0.4},
			}}, nil)
			related := []any{}
			if i > 0 {
				related = append(related, StoryID(n-1))
			}
			c.Put(Document{ID: id, UUID: DemoUUID(id), NodeType: "story", Properties: map[string]any{
				"title":      fmt.Sprintf("%s: Meldung %d", s.Name, i+1),
				"topline":    fmt.Sprintf("Topline %d", n),
				"teasertext": fmt.Sprintf("Kurz gesagt: was in %s heute passiert ist (%d).", s.Name, n),
				"copytext":   fmt.Sprintf("Der ausführliche Text der Meldung %d. ", n),
				"section":    s.ID,
				"image":      imgUUID,
				"related":    related,
			}}, nil)
			n++
		}
	}
	c.SetVariants([]VariantDef{
		{Name: "16x9", Aspect: "16x9"},
		{Name: "4x3", Aspect: "4x3"},
		{Name: "16x9-768", Aspect: "16x9", Width: 768},
		{Name: "1x1-144", Aspect: "1x1", Width: 144},
	})
}

// DemoJPEG draws a deterministic test picture (a gradient with a marker
// square that differs per seed) and encodes it as JPEG.
func DemoJPEG(w, h, seed int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8(seed * 37), 255})
		}
	}
	sq := h / 5
	ox, oy := (seed*97)%(w-sq), (seed*53)%(h-sq)
	for y := oy; y < oy+sq; y++ {
		for x := ox; x < ox+sq; x++ {
			img.Set(x, y, color.RGBA{255, 255, 255, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		panic(err) // encoding into memory cannot fail for a valid RGBA image
	}
	return buf.Bytes()
}
