package cache

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// tempFiles counts the files in the docroot's temp folder.
func tempFiles(t *testing.T, s *Site) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Store.Dir(), TempDir))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestMaxFileSize: an answer larger than max_file_size reaches the client
// whole and is not stored; with a Content-Length no temp file is even
// created, without one the temp file is dropped once the limit is passed.
// Each URL is logged once, every answer counted.
func TestMaxFileSize(t *testing.T) {
	body := strings.Repeat("x", 1000)
	for _, tt := range []struct {
		name          string
		contentLength bool
		method        string
	}{
		{"Content-Length over the limit", true, "GET"},
		{"streamed past the limit", false, "GET"},
		{"HEAD of a streamed answer past the limit", false, "HEAD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			s, _ := newTestSiteLogged(t, zap.New(core))
			s.MaxFileSize = 100
			p := probe(s)
			tempsDuring := -1
			render := func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Type", "text/html")
				if tt.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				w.WriteHeader(200)
				_, _ = w.Write([]byte(body[:50]))
				tempsDuring = tempFiles(t, s)
				_, err := w.Write([]byte(body[50:]))
				return err
			}
			for range 2 {
				a := ask(t, s, p, render, tt.method, "/big.html")
				// A HEAD request gets its own render, as it was sent (the
				// server drops the body of an answer to HEAD).
				if a.code != 200 || tt.method == "GET" && a.body != body {
					t.Fatalf("%d, %d bytes, want 200 with %d", a.code, len(a.body), len(body))
				}
			}
			if tt.contentLength && tempsDuring != 0 {
				t.Errorf("%d temp files for an answer known to be too large", tempsDuring)
			}
			if s.exists("big.html") || tempFiles(t, s) != 0 {
				t.Fatalf("stored %v, %d temp files left", s.exists("big.html"), tempFiles(t, s))
			}
			if n := logs.FilterMessageSnippet("max_file_size").FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
				t.Errorf("logged %d times, want once", n)
			}
			if st := servingStats([]*Store{s.Store}); st.TooLarge < 2 {
				t.Errorf("counted %d answers too large, want 2 at least", st.TooLarge)
			}
		})
	}
}

// TestMaxFileSizeKeepsSmallerAnswers: an answer up to the limit is stored.
func TestMaxFileSizeKeepsSmallerAnswers(t *testing.T) {
	s, _ := newTestSite(t)
	s.MaxFileSize = 100
	b := &backend{body: strings.Repeat("x", 100)}
	serve(t, s, b, "GET", "/exact.html")
	if !s.exists("exact.html") {
		t.Fatal("an answer of exactly max_file_size bytes was not stored")
	}
}
