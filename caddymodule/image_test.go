package caddymodule

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/delivery-edge/edge/cache"
	"github.com/delivery-edge/edge/imaging"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/internal/stagingtest"
	"github.com/delivery-edge/edge/stagingclient"
)

func mustFolderStore(t *testing.T) imaging.Store {
	t.Helper()
	st, err := imaging.NewFolderStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "512k": 512 << 10, "64MiB": 64 << 20, "50MB": 50_000_000, "2g": 2 << 30, "3kb": 3000} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "0", "-1", "1.5MB", "12XB", "99999999999999999999"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) succeeded", in)
		}
	}
}

func TestPathPrefixOf(t *testing.T) {
	for pattern, want := range map[string]string{"/image/*": "/image", "/a/b/*": "/a/b", "/image*": "", "/*": "",
		"/img/*.jpg": "", "/x/{y}/*": ""} {
		set := caddy.ModuleMap{"path": json.RawMessage(`["` + pattern + `"]`)}
		if got := pathPrefixOf(set); got != want {
			t.Errorf("pathPrefixOf(%s) = %q, want %q", pattern, got, want)
		}
	}
	if got := pathPrefixOf(caddy.ModuleMap{"path": json.RawMessage(`["/a/*","/b/*"]`)}); got != "" {
		t.Errorf("two paths: %q", got)
	}
}

// TestImageServiceValidateJSON checks the handler's Validate, which also
// guards configurations given as JSON: each error names its option.
func TestImageServiceValidateJSON(t *testing.T) {
	for _, tc := range []struct {
		json, want string
	}{
		{`{"widths":[320,0]}`, "image_service widths: 0 is not in 1..10000"},
		{`{"widths":[640,640]}`, "image_service widths: 640 is listed twice"},
		{`{"long_max_age":-1}`, "image_service long_max_age: must not be negative"},
		{`{"long_max_age":60000000000,"short_max_age":120000000000}`, "image_service short_max_age"},
		{`{"jpeg_quality":101}`, "image_service jpeg_quality"},
		{`{"prefix":"image"}`, "image_service prefix"},
	} {
		var h ImageService
		if err := json.Unmarshal([]byte(tc.json), &h); err != nil {
			t.Fatal(err)
		}
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%s) = %v, want %q", tc.json, err, tc.want)
		}
	}
	h := ImageService{Widths: []int{320, 640}, LongMaxAge: caddy.Duration(1e12), ShortMaxAge: caddy.Duration(6e10)}
	if err := h.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// validateCaddyfile adapts a Caddyfile and runs what `caddy validate`
// runs: provisioning of every module, without starting anything.
func validateCaddyfile(t *testing.T, caddyfile string) error {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, _, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// TestImageConfigValidate: provisioning is side-effect free (no data or
// store folder is created, the S3 endpoint is not dialled), and the
// configuration errors that only provisioning can find name their option.
func TestImageConfigValidate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dials atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	global := func(store string, extra string) string {
		return `{
	admin off
	delivery {
		data_dir ` + data + `
		staging http://127.0.0.1:1 {
			token 00000000-0000-0000-0000-000000000000
		}
		` + store + `
		` + extra + `
	}
}
`
	}
	site := `
http://127.0.0.1:0 {
	image_service /image/* {
		widths 320 640
	}
	delivery_health
	respond 404
}
`
	s3 := `image_store s3 {
			bucket images
			endpoint http://` + ln.Addr().String() + `
			path_style
			access_key a
			secret_key b
		}`
	if err := validateCaddyfile(t, global(s3, "image_updates")+site); err != nil {
		t.Fatalf("validate with an S3 store: %v", err)
	}
	if err := validateCaddyfile(t, global("image_store file "+filepath.Join(dir, "images"), "")+site); err != nil {
		t.Fatalf("validate with a folder store: %v", err)
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("validate dialled the S3 endpoint %d times", n)
	}
	for _, p := range []string{data, filepath.Join(dir, "images")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("validate created %s", p)
		}
	}

	for _, tc := range []struct{ caddyfile, want string }{
		{`{
	delivery {
		data_dir ` + data + `
	}
}` + site, "image_service: the delivery app needs a `staging` block"},
		{`{
	delivery {
		data_dir ` + data + `
		image_updates
	}
}
`, "image_updates: no server given and no `staging` block"},
		{global(`image_store s3 {
			bucket images
			endpoint ftp://example
		}`, "") + site, "image_store s3: endpoint"},
		{global(`image_store s3 {
			bucket images
			access_key a
		}`, "") + site, "image_store s3: access_key and secret_key"},
		{global(`image_store s3 {
			bucket images
			ca_file `+filepath.Join(dir, "missing.pem")+`
		}`, "") + site, "image_store s3 store: read CA file"},
		{global("", `image_updates http://127.0.0.1:2 {
			token {env.DELIVERY_TEST_UNSET_TOKEN}
		}`), "image_updates: token"},
	} {
		err := validateCaddyfile(t, tc.caddyfile)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate error = %v, want it to contain %q", err, tc.want)
		}
	}
}

// TestImageURLTemplateFunctions runs the template functions as Caddy's
// templates handler does (text/template with the extension's FuncMap).
func TestImageURLTemplateFunctions(t *testing.T) {
	f := &ImageURLFunctions{Widths: []int{320, 640}}
	if err := f.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	const uuid = "491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a"
	run := func(tpl string, data any) (string, error) {
		tm, err := template.New("t").Funcs(f.CustomTemplateFunctions()).Parse(tpl)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		err = tm.Execute(&b, data)
		return b.String(), err
	}
	for _, tc := range []struct {
		tpl  string
		data any
		want string
	}{
		{`{{imageURL "` + uuid + `" 1693175642190 1690882394067 "1x1-144" "" "jpg"}}`, nil,
			"/image/" + uuid + "/AAABijkh-E4/AAABibBxx9M/1x1-144.jpg"},
		{`{{imageURL .UUID .Img .Var "16x9" "mein-bild" "webp" 640}}`,
			map[string]any{"UUID": strings.ToUpper(uuid), "Img": float64(1693175642190), "Var": "1690882394067"},
			"/image/" + uuid + "/AAABijkh-E4/AAABibBxx9M/16x9/mein-bild.webp?width=640"},
		{`{{imageURL "` + uuid + `" 1 2 "original" "x" "svg"}}`, nil,
			"/image/" + uuid + "/AAAAAAAAAAE/AAAAAAAAAAI/original/x.svg"},
		{`{{imageURL "` + uuid + `" 1 2 "1x1-144" .Slug "jpg"}}`, map[string]any{"Slug": "Grüße aus Köln / 2024"},
			"/image/" + uuid + "/AAAAAAAAAAE/AAAAAAAAAAI/1x1-144/Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln%20%2F%202024.jpg"},
		{`{{imageStamp 1693175642190}}`, nil, "AAABijkh-E4"},
	} {
		got, err := run(tc.tpl, tc.data)
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.tpl, got, err, tc.want)
		}
		// What the template makes, the service accepts.
		if strings.HasPrefix(got, "/image/") {
			path, query, _ := strings.Cut(got, "?")
			q := map[string][]string{}
			if w, ok := strings.CutPrefix(query, "width="); ok {
				q["width"] = []string{w}
			}
			if _, err := imaging.Parse(strings.TrimPrefix(path, "/image"), q, f.Widths); err != nil {
				t.Errorf("service refuses %s: %v", got, err)
			}
		}
	}
	for _, tc := range []struct{ tpl, want string }{
		{`{{imageURL "` + uuid + `" 1 2 "16x9" "" "jpg" 700}}`, "width"},
		{`{{imageURL "` + uuid + `" 1 2 "16x9" "" "jpg"}}`, "width"},
		{`{{imageURL "` + uuid + `" 1 2 "16x9-768" "" "svg"}}`, "svg"},
		{`{{imageURL "not-a-uuid" 1 2 "16x9-768" "" "jpg"}}`, "uuid"},
		{`{{imageURL "` + uuid + `" -5 2 "16x9-768" "" "jpg"}}`, "image modification time"},
		{`{{imageURL "` + uuid + `" 1 2 "16x9-768" "` + strings.Repeat("ü", 101) + `" "jpg"}}`, "slug"},
		{`{{imageURL "` + uuid + `" 1 2 "16x9-768" "" "bmp"}}`, "format"},
	} {
		if got, err := run(tc.tpl, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s = %q, %v; want an error about %s", tc.tpl, got, err, tc.want)
		}
	}
}

// TestImageURLTemplateBaseURL: with base_url, imageURL writes absolute
// URLs; a bad base fails provisioning, naming the option.
func TestImageURLTemplateBaseURL(t *testing.T) {
	t.Setenv("IMAGE_HOST", "img.example.com")
	f := &ImageURLFunctions{BaseURL: "https://{env.IMAGE_HOST}/edge/", Widths: []int{640}}
	if err := f.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	const uuid = "491e3bf6-3b4a-4f3e-9a43-0c6b8f4f1d2a"
	got, err := f.imageURL(uuid, 1693175642190, 1690882394067, "16x9", "Köln", "webp", 640)
	want := "https://img.example.com/edge/image/" + uuid + "/AAABijkh-E4/AAABibBxx9M/16x9/K%C3%B6ln.webp?width=640"
	if err != nil || got != want {
		t.Fatalf("imageURL = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"img.example.com", "ftp://img.example.com", "https://img.example.com/?a=b", "https://u:p@x"} {
		f := &ImageURLFunctions{BaseURL: bad}
		if err := f.Provision(caddy.Context{}); err == nil || !strings.Contains(err.Error(), "image_urls base_url") {
			t.Errorf("base_url %q: %v, want an error naming base_url", bad, err)
		}
	}
}

// TestImageUpdatesApply feeds a batch through the update feature's apply:
// an image taken offline is marked in the store, other events are
// skipped, and the position is stored.
func TestImageUpdatesApply(t *testing.T) {
	content, client := stagingtest.Demo(t)
	store := mustFolderStore(t)
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	f := &imageUpdatesFeature{client: client, log: zap.NewNop(),
		updater: imaging.NewUpdater(store, imaging.NewStagingCMS(client), zap.NewNop()), unknown: stagingclient.NewUnknownEvents(nil)}
	ctx := context.Background()

	imgUUID := origin.DemoUUID(origin.ImageID(2))
	// A generated variant exists before the event.
	access := imaging.NewAccess(imaging.AccessConfig{}, store, imaging.NewStagingCMS(client), zap.NewNop())
	doc, _ := content.Latest(imgUUID)
	p := imaging.URLParts{UUID: imgUUID, ImageModified: doc.Modified, VariantModified: 0, Variant: imaging.VariantOriginal, Format: "png"}
	if _, err := access.Lookup(ctx, p); err != nil {
		t.Fatal(err)
	}

	ev, _ := content.SetState(origin.ImageID(2), origin.StateDeleted)
	story, _ := content.Update(origin.StoryID(0), map[string]any{"title": "x"})
	events := []stagingclient.Event{
		{SourceTime: ev.SourceTime, Kind: ev.Kind, ID: ev.ID, UUID: ev.UUID, NodeType: ev.NodeType, State: ev.State},
		{SourceTime: story.SourceTime, Kind: story.Kind, ID: story.ID, UUID: story.UUID, NodeType: story.NodeType, State: story.State},
	}
	if err := f.apply(ctx, eng, events, story.SourceTime); err != nil {
		t.Fatal(err)
	}
	if pos, _ := eng.Position(imageUpdatesPosition); pos != story.SourceTime {
		t.Fatalf("position = %d, want %d", pos, story.SourceTime)
	}
	if _, err := access.Lookup(ctx, p); imaging.HTTPStatus(err) != http.StatusGone {
		t.Fatalf("after the delete event: %v (status %d), want 410", err, imaging.HTTPStatus(err))
	}
	n := 0
	_ = store.List(ctx, imaging.ImagePrefix(imgUUID), func(imaging.ObjectInfo) error { n++; return nil })
	if n != 1 {
		t.Fatalf("%d objects left under the image, want only its marker", n)
	}
}

func TestImageUpdatesSource(t *testing.T) {
	a := &App{
		Staging:      &StagingConfig{URLs: []string{"http://s"}, Token: "t1", PollInterval: caddy.Duration(1)},
		ImageUpdates: &StagingConfig{PollInterval: caddy.Duration(5)},
	}
	sc, err := imageUpdatesSource(a)
	if err != nil || sc.URLs[0] != "http://s" || sc.Token != "t1" || sc.PollInterval != 5 {
		t.Fatalf("from staging: %+v, %v", sc, err)
	}
	a.ImageUpdates = &StagingConfig{URLs: []string{"http://primary"}, Token: "t2"}
	if sc, err := imageUpdatesSource(a); err != nil || sc.URLs[0] != "http://primary" || sc.Token != "t2" {
		t.Fatalf("own servers: %+v, %v", sc, err)
	}
}

// TestImageUpdatesFeatureLifecycle runs the feature as the app does: the
// poller applies an offline event and stores the position, the cleanup
// job runs, and stop ends both goroutines.
func TestImageUpdatesFeatureLifecycle(t *testing.T) {
	content, client := stagingtest.Demo(t)
	store := mustFolderStore(t)
	eng, err := cache.Open(cache.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	f := &imageUpdatesFeature{
		client: client, log: log,
		cfg:          stagingclient.PollerConfig{Interval: 20 * time.Millisecond, Logger: log, Name: "image updates"},
		updater:      imaging.NewUpdater(store, imaging.NewStagingCMS(client), log),
		cleanupFirst: 10 * time.Millisecond, cleanupEvery: 50 * time.Millisecond,
		unknown: stagingclient.NewUnknownEvents(log),
	}
	f.start(context.Background(), eng)
	ev, _ := content.SetState(origin.ImageID(3), origin.StateOffline)
	deadline := time.Now().Add(10 * time.Second)
	for {
		pos, _ := eng.Position(imageUpdatesPosition)
		if pos >= ev.SourceTime {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("position %d, want ≥ %d", pos, ev.SourceTime)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tags, err := store.GetTags(context.Background(), imaging.StateKey(ev.UUID))
	if err != nil || tags["state"] != "offline" {
		t.Fatalf("marker tags = %v, %v", tags, err)
	}
	for logs.FilterMessage("image store cleanup").Len() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the cleanup job did not run twice")
		}
		time.Sleep(20 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { f.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return")
	}
	if logs.FilterMessage("image update service stopped").Len() != 1 {
		t.Error("no stop message")
	}
	// The leases are free again: a new config can take over at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, name := range []string{imageUpdatesPosition, imageCleanupLease} {
		release, err := eng.Lease(ctx, name)
		if err != nil {
			t.Fatalf("lease %s still held after stop: %v", name, err)
		}
		release()
	}
}
