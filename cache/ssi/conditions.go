package ssi

import (
	"net/http"
	"strings"
	"time"
)

// Conditions answers the preconditions of a request for an assembled page
// (RFC 9110 §13.2.2) with its ETag and Last-Modified ("" and zero when the
// answer has no validators: parts rendered into it); it reports whether it
// answered. Ranges are not offered for assembled pages.
func Conditions(w http.ResponseWriter, r *http.Request, etag string, mod time.Time) bool {
	h := r.Header
	mod = mod.Truncate(time.Second)
	if im := h.Get("If-Match"); im != "" {
		if !etagMatches(im, etag, true) {
			w.WriteHeader(http.StatusPreconditionFailed)
			return true
		}
	} else if ius := h.Get("If-Unmodified-Since"); ius != "" && !mod.IsZero() {
		if t, err := http.ParseTime(ius); err == nil && mod.After(t) {
			w.WriteHeader(http.StatusPreconditionFailed)
			return true
		}
	}
	notModified := false
	if inm := h.Get("If-None-Match"); inm != "" {
		notModified = etagMatches(inm, etag, false)
	} else if ims := h.Get("If-Modified-Since"); ims != "" && !mod.IsZero() {
		t, err := http.ParseTime(ims)
		notModified = err == nil && !mod.After(t)
	}
	if !notModified {
		return false
	}
	hdr := w.Header()
	hdr.Del("Content-Type")
	hdr.Del("Content-Length")
	w.WriteHeader(http.StatusNotModified)
	return true
}

// etagMatches compares an If-Match / If-None-Match list with etag.
func etagMatches(list, etag string, strong bool) bool {
	for _, tag := range strings.Split(list, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true // the page exists
		}
		if etag == "" {
			continue
		}
		if strings.HasPrefix(tag, "W/") {
			if strong {
				continue
			}
			tag = tag[2:]
		}
		if tag == etag {
			return true
		}
	}
	return false
}
