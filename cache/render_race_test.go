package cache

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// heldRender starts a reader's render of path whose backend answer is
// made at once, as the backend stands now, and held back until release is
// closed; answered is closed once the answer is made, done once the render
// has ended.
func (f *engineFixture) heldRender(path string) (answered, release, done chan struct{}) {
	answered, release, done = make(chan struct{}), make(chan struct{}), make(chan struct{})
	held := func(w http.ResponseWriter, r *http.Request) error {
		rec := httptest.NewRecorder()
		if err := f.pages.render(rec, r); err != nil {
			return err
		}
		close(answered) // the answer is made: what follows cannot change it
		<-release
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, err := w.Write(rec.Body.Bytes())
		return err
	}
	go func() {
		defer close(done)
		_ = f.site.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil), held)
	}()
	return answered, release, done
}

// TestChangeDuringTheFirstRenderOfAPage: a change that arrives while a
// page with no registry entry (never rendered, or removed) is being
// rendered, after the backend made its answer, does not leave that answer
// in place as the page: the next reader gets the page as of the change.
func TestChangeDuringTheFirstRenderOfAPage(t *testing.T) {
	f := newEngineFixture(t, InvalidationConfig{})
	answered, release, done := f.heldRender("/s1.html")
	<-answered
	f.pages.set(func(p *pages) { p.version = 2 })
	f.apply(Change{Kind: DepDocument, ID: "story1", State: StatePublished})
	close(release)
	<-done
	f.settle()
	f.site.Store.bg.Wait()
	var got string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = f.get("/s1.html"); strings.HasSuffix(got, "v2") {
			return
		}
	}
	disk, _ := f.file("s1.html")
	t.Fatalf("readers get %q (on disk %q), want the page as of the change (v2)", got, disk)
}
