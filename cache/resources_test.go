package cache

import (
	"testing"
	"time"
)

// TestResourceStragglerIsNotAChangeBack: a render that began before the
// edge learnt a template's new hash and reports the old one afterwards (it
// was rendered with the old template) is not taken for a change back,
// which would invalidate every page rendered with the new template since;
// its own answer is outdated and the next reader renders the page again.
func TestResourceStragglerIsNotAChangeBack(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	f.ensure("/s1.html")
	answered, release, done := f.heldRender("/s2.html") // with t1
	<-answered

	// The deploy: the first render with t2 invalidates s1 (t1); s1 and
	// the list are rendered with t2.
	f.pages.set(func(p *pages) { p.template = "t2" })
	f.ensure("/list.html")
	f.settle()
	f.ensure("/s1.html")
	f.settle()
	before := f.pages.count("/s1.html") + f.pages.count("/list.html")

	close(release) // the straggler ends, reporting t1
	<-done
	f.site.Store.bg.Wait()
	time.Sleep(200 * time.Millisecond) // a resource change is applied in the background
	f.settle()
	for _, name := range []string{"s1.html", "list.html"} {
		if _, ok := f.file(name); !ok {
			t.Errorf("%s, rendered with the new template, was invalidated by a render that began before it", name)
		}
	}
	if after := f.pages.count("/s1.html") + f.pages.count("/list.html"); after != before {
		t.Errorf("%d renders of s1 and the list after the straggler, want none", after-before)
	}
	if h := f.eng.resources.newest("page.tmpl"); h != "t2" {
		t.Errorf("newest hash %q, want t2", h)
	}
	f.ensure("/s2.html") // a reader gets the .old copy and starts a render
	f.site.Store.bg.Wait()
	f.site.Store.reg.Sync()
	if e, ok, _ := f.site.Store.reg.Get(f.site.Store.ID("s2.html")); !ok || e.Deps[len(e.Deps)-1].Hash != "t2" {
		t.Errorf("s2's entry %+v (%v), want one rendered with t2", e, ok)
	}
}
