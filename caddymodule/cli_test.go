package caddymodule

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAdminClient: answers decode, error answers become the API's
// message with its status, and a request without an answer ends at the
// timeout.
func TestAdminClient(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/delivery/stats":
			w.Write([]byte(`{"cache":{"hits":3}}`))
		case "/delivery/files":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"unknown host \"x\""}`))
		case "/delivery/hang":
			<-block
		}
	}))
	defer srv.Close()
	defer close(block)
	a := &adminClient{addr: strings.TrimPrefix(srv.URL, "http://"), timeout: 200 * time.Millisecond}

	var v struct {
		Cache struct{ Hits int } `json:"cache"`
	}
	if st, err := a.do(http.MethodGet, "/delivery/stats", nil, &v); err != nil || st != 200 || v.Cache.Hits != 3 {
		t.Errorf("stats: %d %v %+v", st, err, v)
	}
	st, err := a.do(http.MethodGet, "/delivery/files", nil, nil)
	var apiErr *cliAPIError
	if !errors.As(err, &apiErr) || st != 404 || apiErr.Message != `unknown host "x"` {
		t.Errorf("files: %d %v", st, err)
	}
	if _, err := a.do(http.MethodGet, "/delivery/hang", nil, nil); err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("hang: %v", err)
	}
}

func TestReadURLs(t *testing.T) {
	f := filepath.Join(t.TempDir(), "urls")
	os.WriteFile(f, []byte("/a.html\n\n# comment\n  /b/  \n"), 0o644)
	got, err := readURLs(f, nil)
	if err != nil || !slices.Equal(got, []string{"/a.html", "/b/"}) {
		t.Errorf("%q %v", got, err)
	}
	got, err = readURLs("-", strings.NewReader("/c\n"))
	if err != nil || !slices.Equal(got, []string{"/c"}) {
		t.Errorf("stdin: %q %v", got, err)
	}
	big := strings.Repeat("/x\n", maxWarmFile/3+10)
	if _, err := readURLs("-", strings.NewReader(big)); err == nil {
		t.Error("a file over the bound was read")
	}
}
