package origin

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// RenderConfig configures the render backend.
type RenderConfig struct {
	// Latency is added to every render.
	Latency time.Duration
	// SSI makes section pages include their teasers as SSI fragments
	// instead of inlining them.
	SSI bool
	// ImageURL builds the URL of an image variant for a page; nil leaves
	// images out.
	ImageURL func(doc Document, variant string) string
}

// Render is the render backend of the demo site. It renders from the
// newest state of the content store and reports, in the Delivery-*
// headers, exactly what each page read.
type Render struct {
	c   *Content
	cfg RenderConfig

	mu       sync.Mutex
	counts   map[string]int64
	faults   []Fault
	template int // version of the page template (a resource dependency)
}

// Fault makes renders of paths with a prefix fail or slow down.
type Fault struct {
	Prefix string        `json:"prefix"`
	Status int           `json:"status,omitempty"` // answer with this status (0: render normally)
	Delay  time.Duration `json:"delay,omitempty"`  // wait this long first
	Count  int           `json:"count,omitempty"`  // apply this many times (0: until cleared)
}

// NewRender returns the render backend over c.
func NewRender(c *Content, cfg RenderConfig) *Render {
	return &Render{c: c, cfg: cfg, counts: map[string]int64{}, template: 1}
}

// Counts returns how often each path was rendered.
func (rd *Render) Counts() map[string]int64 {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	out := make(map[string]int64, len(rd.counts))
	for k, v := range rd.counts {
		out[k] = v
	}
	return out
}

// SetFaults replaces the fault rules.
func (rd *Render) SetFaults(f []Fault) {
	rd.mu.Lock()
	rd.faults = f
	rd.mu.Unlock()
}

// BumpTemplate changes the page template, so every page reports a new
// resource hash from now on.
func (rd *Render) BumpTemplate() int {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.template++
	return rd.template
}

func (rd *Render) templateHash() string {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return fmt.Sprintf("v%d", rd.template)
}

// fault returns the rule that applies to path, consuming one use of it.
func (rd *Render) fault(path string) (Fault, bool) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	for i, f := range rd.faults {
		if strings.HasPrefix(path, f.Prefix) {
			if f.Count > 0 {
				rd.faults[i].Count--
				if rd.faults[i].Count == 0 {
					rd.faults = append(rd.faults[:i:i], rd.faults[i+1:]...)
				}
			}
			return f, true
		}
	}
	return Fault{}, false
}

func (rd *Render) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/_origin/stats":
		writeJSON(w, map[string]any{"renders": rd.Counts()})
		return
	case r.URL.Path == "/_origin/faults" && r.Method == http.MethodPost:
		var f []Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, "bad fault list: "+err.Error(), http.StatusBadRequest)
			return
		}
		rd.SetFaults(f)
		return
	case r.URL.Path == "/_origin/template" && r.Method == http.MethodPost:
		writeJSON(w, map[string]any{"template": rd.BumpTemplate()})
		return
	case r.URL.Path == "/_delivery/url":
		rd.documentURL(w, r)
		return
	}
	rd.mu.Lock()
	rd.counts[r.URL.Path]++
	rd.mu.Unlock()
	if f, ok := rd.fault(r.URL.Path); ok {
		time.Sleep(f.Delay)
		if f.Status != 0 {
			http.Error(w, "injected failure", f.Status)
			return
		}
	}
	time.Sleep(rd.cfg.Latency)
	p := newPage(rd)
	var ok bool
	switch path := r.URL.Path; {
	case path == "/" || path == "/index.html":
		ok = rd.home(p)
	case strings.HasPrefix(path, "/fragments/teaser/") && strings.HasSuffix(path, ".html"):
		ok = rd.teaserFragment(p, strings.TrimSuffix(strings.TrimPrefix(path, "/fragments/teaser/"), ".html"))
	case strings.HasSuffix(path, "/"):
		ok = rd.section(p, strings.TrimSuffix(path, "/"))
	case strings.HasSuffix(path, ".html"):
		ok = rd.story(p, path)
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	p.write(w)
}

// documentURL tells the edge the canonical URL of a document (used when it
// pre-generates documents that are not in its cache yet).
func (rd *Render) documentURL(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	doc, ok := rd.published(r.URL.Query().Get("id"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	u := urlOf(doc)
	if u == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Delivery-Document-URL", u)
	w.WriteHeader(http.StatusNoContent)
}

// urlOf is the page URL of a story or section.
func urlOf(doc Document) string {
	switch doc.NodeType {
	case "story":
		section, _ := doc.Properties["section"].(string)
		return section + "/" + doc.ID + ".html"
	case "structureNode":
		if doc.ID == "/" {
			return "/"
		}
		return doc.ID + "/"
	}
	return ""
}

func (rd *Render) published(id string) (Document, bool) {
	doc, ok := rd.c.Latest(id)
	if !ok || doc.State != StatePublished {
		return Document{}, false
	}
	return doc, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// page collects the HTML and the dependencies of one render.
type page struct {
	rd   *Render
	body strings.Builder
	deps []string
	keys []string
}

func newPage(rd *Render) *page { return &page{rd: rd} }

func (p *page) dependOn(id string, props ...string) {
	sort.Strings(props)
	if len(props) == 0 {
		p.deps = append(p.deps, fmt.Sprintf("%q", id))
		return
	}
	p.deps = append(p.deps, fmt.Sprintf("%q;props=%q", id, strings.Join(props, " ")))
}

func (p *page) dependOnNode(id string, props ...string) {
	if len(props) == 0 {
		p.deps = append(p.deps, fmt.Sprintf("%q;type=node", id))
		return
	}
	p.deps = append(p.deps, fmt.Sprintf("%q;type=node;props=%q", id, strings.Join(props, " ")))
}

// dependOnChildren records that the page lists the children of a node.
func (p *page) dependOnChildren(node string) {
	p.deps = append(p.deps, fmt.Sprintf("%q;type=node;children", node))
}

func (p *page) write(w http.ResponseWriter) {
	p.deps = append(p.deps, fmt.Sprintf(`"templates/page.tmpl";type=resource;hash=%q`, p.rd.templateHash()))
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Delivery-Dependencies", strings.Join(p.deps, ", "))
	if len(p.keys) > 0 {
		quoted := make([]string, len(p.keys))
		for i, k := range p.keys {
			quoted[i] = fmt.Sprintf("%q", k)
		}
		h.Set("Delivery-Cache-Keys", strings.Join(quoted, ", "))
	}
	_, _ = w.Write([]byte(p.body.String()))
}

func (p *page) printf(format string, args ...any) { fmt.Fprintf(&p.body, format, args...) }

func prop(doc Document, name string) string {
	s, _ := doc.Properties[name].(string)
	return html.EscapeString(s)
}
