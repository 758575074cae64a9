package imaging

import (
	"errors"
	"net/http"
	"strconv"
)

// Sentinel errors. Functions of this package wrap them with context; test
// with errors.Is.
var (
	// ErrNotFound means that a store object, a CMS document or an image
	// variant does not exist (HTTP 404).
	ErrNotFound = errors.New("imaging: not found")
	// ErrGone means that the image was deleted in the CMS (HTTP 410).
	ErrGone = errors.New("imaging: image deleted")
	// ErrBadURL means that an image URL is malformed or not allowed
	// (HTTP 400). Errors returned by Parse are *URLError values that match
	// ErrBadURL.
	ErrBadURL = errors.New("imaging: bad image URL")
	// ErrStoreUnavailable means that the image store could not be reached or
	// failed (HTTP 503).
	ErrStoreUnavailable = errors.New("imaging: image store unavailable")
	// ErrCMSUnavailable means that the CMS could not be reached or failed
	// (HTTP 503).
	ErrCMSUnavailable = errors.New("imaging: CMS unavailable")
	// ErrSourceTooLarge means that an original exceeds the configured pixel
	// or byte limit; it is refused before it is decoded (HTTP 422).
	ErrSourceTooLarge = errors.New("imaging: source image too large")
	// ErrBusy means that no generation slot became free in time (HTTP 503).
	ErrBusy = errors.New("imaging: too many concurrent generations")
	// ErrUnsupported means that an original cannot be decoded or that the
	// requested format cannot be made from it (for example svg from a JPEG)
	// (HTTP 422).
	ErrUnsupported = errors.New("imaging: unsupported image")
)

// URLError describes why an image URL was refused. It matches ErrBadURL
// with errors.Is.
type URLError struct {
	// Path is the refused URL path (possibly truncated).
	Path string
	// Reason says what is wrong, for logs and the 400 response body.
	Reason string
}

// Error implements error.
func (e *URLError) Error() string {
	return "imaging: bad image URL " + quoteTrunc(e.Path, 200) + ": " + e.Reason
}

// Is makes errors.Is(err, ErrBadURL) true for every *URLError.
func (e *URLError) Is(target error) bool { return target == ErrBadURL }

// HTTPStatus maps an error returned by this package to the HTTP status the
// image service answers with: 400 bad URL, 404 not found, 410 gone, 422
// original refused (exceeds the limits or cannot be decoded: no variant can
// be made of it until the image changes), 503 store or CMS unavailable or
// too busy, 500 for everything else. A nil error maps to 200.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrBadURL):
		return http.StatusBadRequest
	case errors.Is(err, ErrGone):
		return http.StatusGone
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrStoreUnavailable), errors.Is(err, ErrCMSUnavailable), errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrSourceTooLarge), errors.Is(err, ErrUnsupported):
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// quoteTrunc quotes s for an error message, cutting it to at most n bytes.
func quoteTrunc(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}
