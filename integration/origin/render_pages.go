package origin

import (
	"fmt"
	"strings"
)

func (p *page) header(title string) {
	p.printf("<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><title>%s</title></head><body>\n", title)
	p.printf("<nav><a href=\"/\">Startseite</a>")
	for _, s := range Sections {
		if doc, ok := p.rd.published(s.ID); ok {
			p.dependOnNode(s.ID, "name")
			p.printf(" | <a href=\"%s/\">%s</a>", s.ID, prop(doc, "name"))
		}
	}
	p.printf("</nav>\n")
}

func (p *page) footer() { p.printf("<footer>Demo-Nachrichten</footer>\n</body></html>\n") }

// stories lists the published stories of a section in ID order.
func (rd *Render) stories(section string) []Document {
	var out []Document
	for _, id := range rd.c.IDs() {
		doc, ok := rd.published(id)
		if ok && doc.NodeType == "story" && doc.Properties["section"] == section {
			out = append(out, doc)
		}
	}
	return out
}

// teaser adds the teaser of a story: as an SSI include of its fragment, or
// inline with a property dependency on what it shows.
func (p *page) teaser(doc Document) {
	if p.rd.cfg.SSI {
		p.printf("<!--#include virtual=\"/fragments/teaser/%s.html\" -->\n", doc.ID)
		return
	}
	p.dependOn(doc.ID, teaserProps...)
	p.teaserHTML(doc)
}

var teaserProps = []string{"image", "teasertext", "title", "topline"}

func (p *page) teaserHTML(doc Document) {
	p.printf("<article class=\"teaser\"><a href=\"%s\">", urlOf(doc))
	if img := p.image(doc, "16x9-768"); img != "" {
		p.printf("%s", img)
	}
	p.printf("<span class=\"topline\">%s</span><h2>%s</h2></a><p>%s</p></article>\n",
		prop(doc, "topline"), prop(doc, "title"), prop(doc, "teasertext"))
}

// image renders the image of a story, depending on the image document.
func (p *page) image(doc Document, variant string) string {
	if p.rd.cfg.ImageURL == nil {
		return ""
	}
	uuid, _ := doc.Properties["image"].(string)
	img, ok := p.rd.published(uuid)
	if !ok {
		return ""
	}
	p.dependOn(img.ID, "alttext")
	return fmt.Sprintf("<img src=\"%s\" alt=\"%s\">", p.rd.cfg.ImageURL(img, variant), prop(img, "alttext"))
}

func (rd *Render) home(p *page) bool {
	home, ok := rd.published("/")
	if !ok {
		return false
	}
	p.dependOnNode("/", "title")
	p.keys = append(p.keys, "home")
	p.header(prop(home, "title"))
	p.printf("<main><h1>%s</h1>\n", prop(home, "title"))
	for _, s := range Sections {
		p.dependOnChildren(s.ID)
		stories := rd.stories(s.ID)
		if len(stories) == 0 {
			continue
		}
		p.printf("<section><h2>%s</h2>\n", s.Name)
		p.teaser(stories[len(stories)-1])
		p.printf("</section>\n")
	}
	p.printf("</main>\n")
	p.footer()
	return true
}

func (rd *Render) section(p *page, id string) bool {
	node, ok := rd.published(id)
	if !ok || node.NodeType != "structureNode" {
		return false
	}
	p.dependOnChildren(id) // a section page lists the children of its node
	p.keys = append(p.keys, "section:"+id)
	p.header(prop(node, "title"))
	p.printf("<main><h1>%s</h1>\n", prop(node, "title"))
	for _, doc := range rd.stories(id) {
		p.teaser(doc)
	}
	p.printf("</main>\n")
	p.footer()
	return true
}

func (rd *Render) story(p *page, path string) bool {
	section, file, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok {
		return false
	}
	doc, ok := rd.published(strings.TrimSuffix(file, ".html"))
	if !ok || doc.NodeType != "story" || doc.Properties["section"] != "/"+section {
		return false
	}
	p.dependOn(doc.ID)
	p.dependOn(doc.UUID)
	p.keys = append(p.keys, doc.ID, doc.UUID)
	p.header(prop(doc, "title"))
	p.printf("<main><article><span class=\"topline\">%s</span><h1>%s</h1>\n", prop(doc, "topline"), prop(doc, "title"))
	if img := p.image(doc, "16x9"); img != "" {
		p.printf("<figure>%s</figure>\n", img)
	}
	p.printf("<p class=\"teaser\">%s</p>\n", prop(doc, "teasertext"))
	// A long body, as real stories have (about 20 KB).
	copytext := prop(doc, "copytext")
	for i := 0; i < 40; i++ {
		p.printf("<p>%s Absatz %d: %s</p>\n", copytext, i+1, strings.Repeat("Lorem ipsum dolor sit amet. ", 15))
	}
	p.printf("</article>\n<aside><h2>Mehr zum Thema</h2>\n")
	related, _ := doc.Properties["related"].([]any)
	for _, r := range related {
		id, _ := r.(string)
		if rel, ok := rd.published(id); ok {
			p.teaser(rel)
		}
	}
	p.printf("</aside></main>\n")
	p.footer()
	return true
}

// teaserFragment renders the teaser of one story as its own cache
// fragment. It registers the story's ID as a cache key, so a flush of the
// story (cache servlet, key=<id>) renews its teasers as well as its page.
func (rd *Render) teaserFragment(p *page, id string) bool {
	doc, ok := rd.published(id)
	if !ok || doc.NodeType != "story" {
		return false
	}
	p.dependOn(doc.ID, teaserProps...)
	p.keys = append(p.keys, doc.ID)
	p.teaserHTML(doc)
	return true
}
