package imaging

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDirectlyUnderPrefix(t *testing.T) {
	a := NewAccess(AccessConfig{Prefix: "/image/"}, nil, nil, nil)
	const id = "491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a"
	for path, want := range map[string]bool{
		"/image/" + id + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg":   true,
		"/image/x/" + id + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg": false,
		"/image//" + id + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg":  false,
		"/other/" + id + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg":   true, // refused by the access service
	} {
		if got := a.directlyUnderPrefix(path); got != want {
			t.Errorf("directlyUnderPrefix(%s) = %v, want %v", path, got, want)
		}
	}
	a = NewAccess(AccessConfig{}, nil, nil, nil)
	if !a.directlyUnderPrefix("/a/b/" + id + "/x") {
		t.Error("without a prefix every path is left to the access service")
	}

	// Such a path answers 404 with the short max-age before anything else
	// is looked at (the method included), and asks neither store nor CMS.
	a = NewAccess(AccessConfig{Prefix: "/image", ShortMaxAge: 90 * time.Second}, nil, nil, nil)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(method, "/image/x/"+id+"/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg", nil))
		if w.Code != http.StatusNotFound || w.Header().Get("Cache-Control") != "public, max-age=90" {
			t.Errorf("%s alias: %d, Cache-Control %q; want 404, public, max-age=90", method, w.Code, w.Header().Get("Cache-Control"))
		}
	}
}
