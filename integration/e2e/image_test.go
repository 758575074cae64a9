package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/gen2brain/webp" // registers the WebP decoder

	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/integration/versitygw"
)

// imageOrigin is the sample origin for the image tests: the demo content,
// the render backend and the staging API, with counters of the documents
// and original binaries the edge fetched.
type imageOrigin struct {
	Content    *origin.Content
	StagingURL string
	RenderAddr string
	binaries   atomic.Int64
	documents  atomic.Int64
}

func startImageOrigin(t testing.TB, imageURL func(*origin.Content) func(origin.Document, string) string) *imageOrigin {
	t.Helper()
	o := &imageOrigin{Content: origin.NewContent()}
	origin.SeedDemo(o.Content)
	st := origin.NewStaging(o.Content, origin.StagingConfig{Replicas: 2})
	stSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/documents/"); {
		case !ok:
		case strings.HasSuffix(rest, "/binary"):
			o.binaries.Add(1)
		default:
			o.documents.Add(1)
		}
		st.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { st.Close(); stSrv.Close() })
	var render origin.RenderConfig
	if imageURL != nil {
		render.ImageURL = imageURL(o.Content)
	}
	rdSrv := httptest.NewServer(origin.NewRender(o.Content, render))
	t.Cleanup(rdSrv.Close)
	o.StagingURL, o.RenderAddr = stSrv.URL, rdSrv.Listener.Addr().String()
	return o
}

// Binaries is how many originals the edge fetched so far.
func (o *imageOrigin) Binaries() int64 { return o.binaries.Load() }

// Documents is how many documents the edge fetched so far.
func (o *imageOrigin) Documents() int64 { return o.documents.Load() }

func (o *imageOrigin) stagingBlock() string {
	return "staging " + o.StagingURL + " {\ntoken " + origin.DemoToken + "\npoll_interval 100ms\nlong_poll 10s\n}"
}

// imageURL is the URL path of an image variant as a page that saw the
// current documents would write it; width is for aspect-only variants.
func (o *imageOrigin) imageURL(t testing.TB, id, variant, format string, width int) string {
	t.Helper()
	return imaging.BuildURL("/image", o.parts(t, id, variant, format, width))
}

func (o *imageOrigin) parts(t testing.TB, id, variant, format string, width int) imaging.URLParts {
	t.Helper()
	doc, ok := o.Content.Latest(id)
	if !ok {
		t.Fatalf("no document %s", id)
	}
	u := imaging.URLParts{UUID: doc.UUID, ImageModified: doc.Modified, Variant: variant, Format: format, Width: width}
	for _, d := range o.Content.Variants() {
		if d.Name == variant {
			u.VariantModified = d.Modified
		}
	}
	if _, w, _ := imaging.ParseVariantName(variant); w > 0 {
		u.Width = w
	}
	return u
}

// imageRoute is the image service and the health endpoint of a test edge.
const imageRoute = `image_service /image/* {
	widths 320 640 960 1280
	long_max_age 30d
	short_max_age 1m
}
delivery_health /actuator/health`

const (
	longMaxAge  = "max-age=2592000"
	shortMaxAge = "max-age=60"
)

func s3StoreBlock(s *versitygw.Server) string {
	b := "image_store s3 {\nbucket " + s.Bucket + "\nendpoint " + s.Endpoint + "\nregion " + s.Region +
		"\npath_style\naccess_key " + s.AccessKey + "\nsecret_key " + s.SecretKey
	if s.CAFile != "" {
		b += "\nca_file " + s.CAFile
	}
	return b + "\n}"
}

func startImageEdge(t testing.TB, o *imageOrigin, global string) *harness.Edge {
	t.Helper()
	return harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: o.stagingBlock() + "\n" + global,
		Route: imageRoute})
}

// decoded checks the answer is an image of the format and returns its size.
func decoded(t testing.TB, url, body, format string) (int, int) {
	t.Helper()
	cfg, got, err := image.DecodeConfig(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: not an image: %v", url, err)
	}
	want := map[string]string{"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "gif": "gif"}[format]
	if got != want {
		t.Fatalf("%s: decoded as %s, want %s", url, got, want)
	}
	return cfg.Width, cfg.Height
}

const demoSVG = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="90" viewBox="0 0 160 90">` +
	`<rect width="160" height="90" fill="#036"/><text x="10" y="50" fill="#fff">Logo</text></svg>`

// addSVGImage publishes an image document whose original is an SVG.
func addSVGImage(o *imageOrigin) string {
	uuid := origin.DemoUUID("logo-svg")
	o.Content.SetBinary(uuid, []byte(demoSVG))
	o.Content.Put(origin.Document{ID: "logo-svg", UUID: uuid, NodeType: "image",
		Properties: map[string]any{"title": "Logo"}}, nil)
	return "logo-svg"
}

// TestImageFormats: every format, from a store in a real S3 server
// (versitygw over HTTP); the second request comes from the store without
// fetching the original again; ETag, 304, HEAD; 400 and 404 answers.
func TestImageFormats(t *testing.T) {
	s3 := versitygw.Start(t, versitygw.Options{})
	o := startImageOrigin(t, nil)
	svg := addSVGImage(o)
	e := startImageEdge(t, o, s3StoreBlock(s3))
	img := origin.ImageID(0)

	for _, f := range []string{"jpg", "jpeg", "png", "webp", "gif"} {
		u := o.imageURL(t, img, "16x9-768", f, 0)
		status, h, body := harness.Get(t, nil, e.URL()+u)
		if status != 200 {
			t.Fatalf("%s: %d %q", u, status, body)
		}
		if ct := h.Get("Content-Type"); ct != imaging.ContentType(f) {
			t.Errorf("%s: Content-Type %q", u, ct)
		}
		if w, hh := decoded(t, u, body, f); w != 768 || hh != 432 {
			t.Errorf("%s: %d×%d, want 768×432", u, w, hh)
		}
		if h.Get("Content-Length") != fmt.Sprint(len(body)) || h.Get("Etag") == "" {
			t.Errorf("%s: Content-Length %q (body %d), ETag %q", u, h.Get("Content-Length"), len(body), h.Get("Etag"))
		}
		if cc := h.Get("Cache-Control"); !strings.Contains(cc, longMaxAge) {
			t.Errorf("%s: Cache-Control %q, want %s", u, cc, longMaxAge)
		}
	}
	// The original at its own size, an aspect-only variant with ?width=.
	u := o.imageURL(t, img, "original", "png", 0)
	if status, _, body := harness.Get(t, nil, e.URL()+u); status != 200 {
		t.Fatalf("%s: %d", u, status)
	} else if w, h := decoded(t, u, body, "png"); w != 1600 || h != 900 {
		t.Errorf("%s: %d×%d, want 1600×900", u, w, h)
	}
	u = o.imageURL(t, img, "4x3", "webp", 640)
	if status, _, body := harness.Get(t, nil, e.URL()+u); status != 200 {
		t.Fatalf("%s: %d", u, status)
	} else if w, h := decoded(t, u, body, "webp"); w != 640 || h != 480 {
		t.Errorf("%s: %d×%d, want 640×480", u, w, h)
	}

	// The svg original, served as is with the CSP and nosniff.
	u = o.imageURL(t, svg, "original", "svg", 0)
	status, h, body := harness.Get(t, nil, e.URL()+u)
	if status != 200 || body != demoSVG {
		t.Fatalf("%s: %d %q", u, status, body)
	}
	if h.Get("Content-Type") != "image/svg+xml" || h.Get("X-Content-Type-Options") != "nosniff" ||
		h.Get("Content-Security-Policy") != "default-src 'none'; style-src 'unsafe-inline'; sandbox" {
		t.Errorf("svg headers: %v", h)
	}

	// Every variant is stored: asking again fetches no original.
	before := o.Binaries()
	if before == 0 {
		t.Fatal("no original was fetched at all")
	}
	u = o.imageURL(t, img, "16x9-768", "webp", 0)
	status, h, body = harness.Get(t, nil, e.URL()+u)
	if status != 200 {
		t.Fatalf("second request: %d", status)
	}
	status, _, _ = harness.Get(t, nil, e.URL()+u, "If-None-Match", h.Get("Etag"))
	if status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", status)
	}
	resp, err := http.Head(e.URL() + u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) {
		t.Errorf("HEAD: %d length %d, want 200 %d", resp.StatusCode, resp.ContentLength, len(body))
	}
	for _, f := range []string{"jpg", "jpeg", "png", "gif"} {
		harness.Get(t, nil, e.URL()+o.imageURL(t, img, "16x9-768", f, 0))
	}
	if n := o.Binaries(); n != before {
		t.Fatalf("stored variants fetched %d more originals", n-before)
	}
	// The objects are in the bucket, under the image's prefix.
	if n := countFiles(t, filepath.Join(s3.Dir, s3.Bucket, "img", origin.DemoUUID(img))); n < 6 {
		t.Errorf("%d objects of the image in the bucket folder, want ≥ 6", n)
	}

	// Refused URLs.
	bad := map[string]int{
		o.imageURL(t, img, "16x9", "jpg", 700):                                              400, // width not allowed
		o.imageURL(t, img, "16x9-768", "svg", 0):                                            400, // svg only for original
		strings.Replace(o.imageURL(t, img, "1x1-144", "jpg", 0), "/image/", "/image/x/", 1): 404, // outside the prefix
		"/image/" + origin.DemoUUID(img) + "/AAAA/AAAA/1x1-144.jpg":                         400,
		o.imageURL(t, origin.StoryID(0), "1x1-144", "jpg", 0):                               404, // not an image
		"/image/00000000-1111-2222-3333-444444444444/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg":   404,
		o.imageURL(t, img, "2x1-100", "jpg", 0):                                             404, // no such variant
	}
	for u, want := range bad {
		status, h, body := harness.Get(t, nil, e.URL()+u)
		if status != want {
			t.Errorf("%s: %d, want %d", u, status, want)
		}
		if strings.Contains(body, "imaging:") || strings.Contains(body, s3.Endpoint) {
			t.Errorf("%s: body shows internals: %q", u, body)
		}
		if status == 404 && !strings.Contains(h.Get("Cache-Control"), shortMaxAge) {
			t.Errorf("%s: 404 with Cache-Control %q", u, h.Get("Cache-Control"))
		}
	}
}

func countFiles(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	return n
}

// TestImageStampsCacheControl: a URL whose stamps are newer than the
// documents the CMS serves (the replica is behind, or the page is from the
// future) gets the short max-age; otherwise the long one.
func TestImageStampsCacheControl(t *testing.T) {
	s3 := versitygw.Start(t, versitygw.Options{})
	o := startImageOrigin(t, nil)
	e := startImageEdge(t, o, s3StoreBlock(s3))
	img := origin.ImageID(3)

	current := o.parts(t, img, "16x9-768", "jpg", 0)
	newerImage, newerVariant, older := current, current, current
	newerImage.ImageModified += 3_600_000
	newerVariant.VariantModified += 3_600_000
	older.ImageModified -= 1000
	older.VariantModified -= 1000
	for _, tc := range []struct {
		name string
		u    imaging.URLParts
		want string
	}{
		{"current stamps", current, longMaxAge},
		{"image stamp newer than the CMS", newerImage, shortMaxAge},
		{"variant stamp newer than the CMS", newerVariant, shortMaxAge},
		{"older stamps", older, longMaxAge},
		{"current stamps again (stored)", current, longMaxAge},
	} {
		status, h, _ := harness.Get(t, nil, e.URL()+imaging.BuildURL("/image", tc.u))
		if status != 200 || !strings.Contains(h.Get("Cache-Control"), tc.want) {
			t.Errorf("%s: %d Cache-Control %q, want %s", tc.name, status, h.Get("Cache-Control"), tc.want)
		}
	}
	// One original for all of them: they name the same stored version.
	if n := o.Binaries(); n != 1 {
		t.Errorf("%d originals fetched, want 1", n)
	}
}

// TestImageDeletedAfterUpdate: once the update service has applied the
// event, a deleted image answers 410 and an offline one 404, without
// asking the CMS; a republished image is served again.
func TestImageDeletedAfterUpdate(t *testing.T) {
	s3 := versitygw.Start(t, versitygw.Options{})
	o := startImageOrigin(t, nil)
	e := startImageEdge(t, o, s3StoreBlock(s3)+"\nimage_updates")
	deleted, offline := origin.ImageID(4), origin.ImageID(5)
	urlDeleted := o.imageURL(t, deleted, "1x1-144", "jpg", 0)
	urlOffline := o.imageURL(t, offline, "16x9-768", "webp", 0)
	for _, u := range []string{urlDeleted, urlOffline} {
		if status, _, _ := harness.Get(t, nil, e.URL()+u); status != 200 {
			t.Fatalf("%s before the change: %d", u, status)
		}
	}

	o.Content.SetState(deleted, origin.StateDeleted)
	o.Content.SetState(offline, origin.StateOffline)
	waitStatus(t, e.URL()+urlDeleted, http.StatusGone, 15*time.Second)
	waitStatus(t, e.URL()+urlOffline, http.StatusNotFound, 15*time.Second)
	// The markers are tagged in the bucket (state=deleted / offline).
	tags := s3Tags(t, s3, imaging.StateKey(origin.DemoUUID(deleted)))
	if tags["state"] != "deleted" {
		t.Errorf("state record tags = %v, want state=deleted", tags)
	}
	// Other variants of the images answer the same, from the marker.
	if status, _, _ := harness.Get(t, nil, e.URL()+o.imageURL(t, deleted, "original", "png", 0)); status != http.StatusGone {
		t.Errorf("other variant of the deleted image: %d, want 410", status)
	}

	o.Content.SetState(offline, origin.StatePublished)
	urlRepublished := o.imageURL(t, offline, "16x9-768", "webp", 0)
	waitStatus(t, e.URL()+urlRepublished, http.StatusOK, 15*time.Second)
	if log := e.Log(); !strings.Contains(log, "image update service started") {
		t.Errorf("no start message of the update service in the log")
	}
}

// waitStatus polls url until it answers want.
func waitStatus(t testing.TB, url string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := 0
	for time.Now().Before(deadline) {
		status, _, _ := harness.Get(t, nil, url)
		if status == want {
			return
		}
		last = status
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still %d after %v, want %d", url, last, within, want)
}

func s3Tags(t testing.TB, s *versitygw.Server, key string) map[string]string {
	t.Helper()
	st, err := imaging.NewS3Store(t.Context(), imaging.S3Config{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket,
		PathStyle: true, AccessKey: s.AccessKey, SecretKey: s.SecretKey, CAPEM: s.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := st.GetTags(t.Context(), key)
	if err != nil {
		t.Fatalf("tags of %s: %v", key, err)
	}
	return tags
}

type healthBody struct {
	Status     string `json:"status"`
	Components map[string]struct {
		Status  string         `json:"status"`
		Details map[string]any `json:"details"`
	} `json:"components"`
}

func getHealth(t testing.TB, base string) (int, healthBody) {
	t.Helper()
	status, h, body := harness.Get(t, nil, base+"/actuator/health")
	var hb healthBody
	if err := json.Unmarshal([]byte(body), &hb); err != nil {
		t.Fatalf("health body %q: %v", body, err)
	}
	if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("health headers: %v", h)
	}
	return status, hb
}

// TestImageStoreDown: with the S3 server stopped the health endpoint says
// DOWN (503) and images answer 503 without internals; when it is back,
// UP and 200 again.
func TestImageStoreDown(t *testing.T) {
	s3 := versitygw.Start(t, versitygw.Options{})
	o := startImageOrigin(t, nil)
	e := startImageEdge(t, o, s3StoreBlock(s3))
	u := e.URL() + o.imageURL(t, origin.ImageID(6), "16x9-768", "jpg", 0)

	status, hb := getHealth(t, e.URL())
	if status != 200 || hb.Status != "UP" || hb.Components["imageStore"].Status != "UP" || hb.Components["staging"].Status != "UP" {
		t.Fatalf("health before: %d %+v", status, hb)
	}
	if status, _, _ := harness.Get(t, nil, u); status != 200 {
		t.Fatalf("image before: %d", status)
	}

	s3.Stop()
	status, hb = getHealth(t, e.URL())
	if status != http.StatusServiceUnavailable || hb.Status != "DOWN" || hb.Components["imageStore"].Status != "DOWN" ||
		hb.Components["staging"].Status != "UP" {
		t.Fatalf("health with the store stopped: %d %+v", status, hb)
	}
	if _, ok := hb.Components["imageStore"].Details["error"]; ok {
		t.Errorf("health shows the error without show_details: %+v", hb.Components["imageStore"])
	}
	// A variant held in memory is still served: its state record, expired
	// after state_ttl (1s), is served from memory while the store fails
	// (imaging.StaleIfError). A variant not in memory cannot be: 503.
	time.Sleep(1500 * time.Millisecond)
	if status, _, _ := harness.Get(t, nil, u); status != 200 {
		t.Fatalf("variant held in memory with the store stopped: %d, want 200", status)
	}
	miss := e.URL() + o.imageURL(t, origin.ImageID(6), "4x3", "webp", 320)
	status, h, body := harness.Get(t, nil, miss)
	if status != http.StatusServiceUnavailable || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("variant not in memory with the store stopped: %d %q", status, h.Get("Cache-Control"))
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "s3") {
		t.Errorf("503 body shows internals: %q", body)
	}

	s3.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, hb = getHealth(t, e.URL())
		if status == 200 && hb.Status == "UP" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health after restart: %d %+v", status, hb)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status, _, _ := harness.Get(t, nil, u); status != 200 {
		t.Fatalf("image after restart: %d", status)
	}
	log := e.Log()
	if n := strings.Count(log, "health: DOWN"); n != 1 {
		t.Errorf("health DOWN logged %d times, want once", n)
	}
	if !strings.Contains(log, "health: UP again") {
		t.Errorf("health recovery not logged")
	}
}

// TestImageTLSStore: the S3 store over TLS with the server's CA.
func TestImageTLSStore(t *testing.T) {
	s3 := versitygw.Start(t, versitygw.Options{TLS: true})
	o := startImageOrigin(t, nil)
	e := startImageEdge(t, o, s3StoreBlock(s3))
	u := o.imageURL(t, origin.ImageID(7), "16x9", "webp", 960)
	status, _, body := harness.Get(t, nil, e.URL()+u)
	if status != 200 {
		t.Fatalf("%s: %d %q", u, status, body)
	}
	if w, h := decoded(t, u, body, "webp"); w != 960 || h != 540 {
		t.Errorf("%d×%d, want 960×540", w, h)
	}
	before := o.Binaries()
	if status, _, _ := harness.Get(t, nil, e.URL()+u); status != 200 || o.Binaries() != before {
		t.Errorf("second request: %d, originals %d → %d", status, before, o.Binaries())
	}
	if status, hb := getHealth(t, e.URL()); status != 200 || hb.Components["imageStore"].Status != "UP" {
		t.Errorf("health: %d %+v", status, hb)
	}
}

// sampleImageURL is the sample origin's image URL builder (see
// integration/cmd/sample-origin).
func sampleImageURL(c *origin.Content) func(origin.Document, string) string {
	return func(doc origin.Document, variant string) string {
		u := imaging.URLParts{UUID: doc.UUID, ImageModified: doc.Modified, Variant: variant, Slug: "bild", Format: "jpg"}
		for _, d := range c.Variants() {
			if d.Name == variant {
				u.VariantModified = d.Modified
			}
		}
		_, u.Width, _ = imaging.ParseVariantName(variant)
		if u.Width == 0 {
			u.Width = 640
		}
		return imaging.BuildURL("/image", u)
	}
}

var imgSrc = regexp.MustCompile(`<img src="([^"]+)"`)

// TestImageDemoPages: pages cached by the edge carry image URLs that the
// same edge serves, from the embedded folder store (no S3 needed).
func TestImageDemoPages(t *testing.T) {
	o := startImageOrigin(t, sampleImageURL)
	e := startImageEdge(t, o, "")
	status, _, page := harness.Get(t, nil, e.URL()+"/politik/")
	if status != 200 {
		t.Fatalf("section page: %d", status)
	}
	srcs := imgSrc.FindAllStringSubmatch(page, -1)
	if len(srcs) != origin.StoriesPerSection {
		t.Fatalf("%d images on the section page, want %d", len(srcs), origin.StoriesPerSection)
	}
	for _, m := range srcs {
		status, h, body := harness.Get(t, nil, e.URL()+m[1])
		if status != 200 || h.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("%s: %d %q", m[1], status, h.Get("Content-Type"))
		}
		if w, hh := decoded(t, m[1], body, "jpg"); w != 768 || hh != 432 {
			t.Errorf("%s: %d×%d", m[1], w, hh)
		}
	}
	_, _, story := harness.Get(t, nil, e.URL()+"/politik/story100.html")
	m := imgSrc.FindStringSubmatch(story)
	if m == nil || !strings.Contains(m[1], "?width=640") {
		t.Fatalf("story page image: %v", m)
	}
	if status, _, _ := harness.Get(t, nil, e.URL()+m[1]); status != 200 {
		t.Fatalf("%s: %d", m[1], status)
	}
	// The folder store is the default, under the data folder.
	if n := countFiles(t, filepath.Join(e.DataDir, "images", "img")); n < 6 {
		t.Errorf("%d files in the folder store, want ≥ 6", n)
	}
}

// TestImageTemplateFunction: Caddy's templates handler with the image_urls
// extension writes URLs that the image service serves.
func TestImageTemplateFunction(t *testing.T) {
	o := startImageOrigin(t, nil)
	dir := t.TempDir()
	port := harness.FreePort(t)
	img, _ := o.Content.Latest(origin.ImageID(8))
	var variantMs int64
	for _, d := range o.Content.Variants() {
		if d.Name == "16x9" {
			variantMs = d.Modified
		}
	}
	tpl := fmt.Sprintf(`<img src="{{imageURL %q %d %d "16x9" "teaser" "webp" 320}}">`+"\n"+
		`<img src="{{imageURL %q %d %d "16x9" "teaser" "webp" 330}}">`, img.UUID, img.Modified, variantMs,
		img.UUID, img.Modified, variantMs)
	if err := os.MkdirAll(filepath.Join(dir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site", "ok.html"), []byte(strings.SplitN(tpl, "\n", 2)[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site", "bad.html"), []byte(strings.SplitN(tpl, "\n", 2)[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	delivery {
		data_dir %[1]s/data
		%[3]s
	}
}
http://127.0.0.1:%[2]d {
	root * %[1]s/site
	image_service /image/* {
		widths 320 640
	}
	templates {
		extensions {
			image_urls {
				prefix /image
				widths 320 640
			}
		}
	}
	file_server
}
`, dir, port, strings.ReplaceAll(o.stagingBlock(), "\n", "\n\t\t"))
	c := harness.StartCaddy(t, dir, caddyfile, port)
	status, _, body := harness.Get(t, nil, c.URL()+"/ok.html")
	m := imgSrc.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("template page: %d %q", status, body)
	}
	want := imaging.BuildURL("/image", imaging.URLParts{UUID: img.UUID, ImageModified: img.Modified,
		VariantModified: variantMs, Variant: "16x9", Width: 320, Slug: "teaser", Format: "webp"})
	if m[1] != want {
		t.Fatalf("template wrote %q, want %q", m[1], want)
	}
	status, _, data := harness.Get(t, nil, c.URL()+m[1])
	if status != 200 {
		t.Fatalf("%s: %d", m[1], status)
	}
	if w, h := decoded(t, m[1], data, "webp"); w != 320 || h != 180 {
		t.Errorf("%d×%d, want 320×180", w, h)
	}
	// A width the service does not allow fails the template, not the
	// image request later.
	if status, _, body := harness.Get(t, nil, c.URL()+"/bad.html"); status != 500 || bytes.Contains([]byte(body), []byte("/image/")) {
		t.Errorf("bad template: %d %q", status, body)
	}
}
