package origin

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestAdminAPI(t *testing.T) {
	c := NewContent()
	s, srv := stagingServer(t, c, StagingConfig{Replicas: 2})
	admin := srv.URL + "/admin"
	send := func(method, path, body string) answer {
		t.Helper()
		return call(t, method, admin+path, strings.NewReader(body), "Authorization", "")
	}
	type ev struct {
		SourceTime        int64     `json:"sourceTime"`
		Kind              string    `json:"kind"`
		ID                string    `json:"id"`
		UUID              string    `json:"uuid"`
		NodeType          string    `json:"nodeType"`
		State             string    `json:"state"`
		ChangedProperties *[]string `json:"changedProperties"`
	}
	var last int64
	for _, tc := range []struct {
		name, method, path, body string
		wantCode                 int
		want                     ev     // checked when wantCode < 300 and want.Kind != ""
		changed                  string // "-" = absent, else comma list
	}{
		{"create", "POST", "/documents", `{"id":"story1","properties":{"title":"T","topline":"L"}}`, 201,
			ev{Kind: "document", ID: "story1", UUID: DemoUUID("story1"), NodeType: "story", State: "published"}, "-"},
		{"replace with changed list", "POST", "/documents", `{"id":"story1","properties":{"title":"T2"},"changedProperties":["title"]}`, 200,
			ev{Kind: "document", ID: "story1", UUID: DemoUUID("story1"), NodeType: "story", State: "published"}, "title"},
		{"create node", "POST", "/documents", `{"id":"/politik","uuid":"p-uuid","nodeType":"structureNode"}`, 201,
			ev{Kind: "node", ID: "/politik", UUID: "p-uuid", NodeType: "structureNode", State: "published"}, "-"},
		{"change properties", "PATCH", "/documents/story1", `{"topline":"new","kicker":"k"}`, 200,
			ev{Kind: "document", ID: "story1", State: "published"}, "kicker,topline"},
		{"change nothing", "PATCH", "/documents/story1", `{}`, 200, ev{Kind: "document", ID: "story1"}, ""},
		{"change by UUID", "PATCH", "/documents/" + DemoUUID("story1"), `{"title":"x"}`, 200, ev{Kind: "document", ID: "story1"}, "title"},
		{"yellow", "POST", "/documents/story1/yellow", "", 200, ev{Kind: "yellow", ID: "story1", State: "published"}, "-"},
		{"offline", "POST", "/documents/story1/offline", "", 200, ev{Kind: "document", ID: "story1", State: "offline"}, "-"},
		{"publish again", "POST", "/documents/story1/publish", "", 200, ev{Kind: "document", ID: "story1", State: "published"}, "-"},
		{"node offline", "POST", "/documents/%2Fpolitik/offline", "", 200, ev{Kind: "node", ID: "/politik", State: "offline"}, "-"},
		{"delete", "DELETE", "/documents/story1", "", 200, ev{Kind: "document", ID: "story1", State: "deleted"}, "-"},
		{"create image", "POST", "/documents", `{"id":"image1","nodeType":"image","properties":{"focus":{"x":0.5,"y":0.5}}}`, 201,
			ev{Kind: "document", ID: "image1", NodeType: "image"}, "-"},
		{"unknown document", "PATCH", "/documents/nope", `{"a":1}`, 404, ev{}, ""},
		{"unknown for offline", "POST", "/documents/nope/offline", "", 404, ev{}, ""},
		{"unknown for delete", "DELETE", "/documents/nope", "", 404, ev{}, ""},
		{"unknown for yellow", "POST", "/documents/nope/yellow", "", 404, ev{}, ""},
		{"no id", "POST", "/documents", `{"properties":{}}`, 400, ev{}, ""},
		{"bad state", "POST", "/documents", `{"id":"x","state":"gone"}`, 400, ev{}, ""},
		{"bad JSON", "POST", "/documents", `{"id":`, 400, ev{}, ""},
		{"empty body", "POST", "/documents", ``, 400, ev{}, ""},
		{"two values", "PATCH", "/documents/image1", `{} {}`, 400, ev{}, ""},
		{"properties not an object", "PATCH", "/documents/image1", `[1]`, 400, ev{}, ""},
		{"unknown endpoint", "GET", "/nothing", "", 404, ev{}, ""},
	} {
		a := send(tc.method, tc.path, tc.body)
		if a.code != tc.wantCode {
			t.Errorf("%s: %d %s, want %d", tc.name, a.code, a.body, tc.wantCode)
			continue
		}
		if a.code >= 300 {
			var e map[string]string
			a.json(t, &e)
			if e["error"] == "" {
				t.Errorf("%s: error answer without a message: %s", tc.name, a.body)
			}
			continue
		}
		var got ev
		a.json(t, &got)
		if got.SourceTime <= last {
			t.Errorf("%s: source time %d not after %d", tc.name, got.SourceTime, last)
		}
		last = got.SourceTime
		w := tc.want
		if got.Kind != w.Kind || got.ID != w.ID || w.UUID != "" && got.UUID != w.UUID ||
			w.NodeType != "" && got.NodeType != w.NodeType || w.State != "" && got.State != w.State {
			t.Errorf("%s: event %s, want %+v", tc.name, a.body, w)
		}
		switch {
		case tc.changed == "-" && got.ChangedProperties != nil:
			t.Errorf("%s: changedProperties %v, want absent", tc.name, *got.ChangedProperties)
		case tc.changed != "-" && (got.ChangedProperties == nil || strings.Join(*got.ChangedProperties, ",") != tc.changed):
			t.Errorf("%s: changedProperties in %s, want %q", tc.name, a.body, tc.changed)
		}
	}

	// The admin API changes what the staging API serves.
	if a := get(t, srv.URL+"/api/v1/documents/story1"); a.code != 404 {
		t.Errorf("deleted story served: %d", a.code)
	}
	var doc Document
	send("GET", "/documents/story1", "").json(t, &doc)
	if doc.State != StateDeleted || doc.Properties["topline"] != "new" || doc.Properties["title"] != "x" {
		t.Errorf("admin view of the deleted story: %+v", doc)
	}
	var list []map[string]any
	send("GET", "/documents", "").json(t, &list)
	if len(list) != 3 {
		t.Errorf("document list %v", list)
	}

	// Binary: bytes plus a new version, or bytes only.
	jpeg := DemoJPEG(32, 32, 2)
	a := call(t, "PUT", admin+"/documents/image1/binary", bytes.NewReader(jpeg))
	var bev ev
	a.json(t, &bev)
	if a.code != 200 || bev.ID != "image1" || bev.ChangedProperties != nil {
		t.Errorf("binary: %d %s", a.code, a.body)
	}
	if got := get(t, srv.URL+"/api/v1/documents/image1/binary"); got.code != 200 || !bytes.Equal(got.body, jpeg) {
		t.Errorf("staging binary after PUT: %d, %d bytes", got.code, len(got.body))
	}
	before := c.EventCount()
	if a := call(t, "PUT", admin+"/documents/image1/binary?event=false", bytes.NewReader([]byte("GIF89a..."))); a.code != 200 || c.EventCount() != before {
		t.Errorf("binary without event: %d %s, %d events", a.code, a.body, c.EventCount()-before)
	}
	if a := call(t, "PUT", admin+"/documents/image1/binary", strings.NewReader("")); a.code != 400 {
		t.Errorf("empty binary: %d", a.code)
	}
	if a := call(t, "PUT", admin+"/documents/nope/binary", strings.NewReader("x")); a.code != 404 {
		t.Errorf("binary of unknown: %d", a.code)
	}

	// Variants: changed and new definitions make imageVariant events.
	before = c.EventCount()
	var defs []VariantDef
	send("PUT", "/imagevariants", `[{"name":"16x9","aspect":"16x9"},{"name":"1x1-144","aspect":"1x1","width":144}]`).json(t, &defs)
	if len(defs) != 2 || defs[1].Width != 144 || defs[0].Modified == 0 || c.EventCount() != before+2 {
		t.Errorf("variants %+v, %d events", defs, c.EventCount()-before)
	}
	send("PUT", "/imagevariants", `[{"name":"16x9","aspect":"16x9"},{"name":"1x1-144","aspect":"1x1","width":288}]`)
	evs := c.EventsAfter(0, -1, 1000)
	if e := evs[len(evs)-1]; c.EventCount() != before+3 || e.NodeType != "imageVariant" || e.ID != "imagevariant-1x1-144" {
		t.Errorf("variant change event %+v", e)
	}
	for _, bad := range []string{`[{"aspect":"1x1"}]`, `[{"name":"a","width":-1}]`, `[{"name":"a"},{"name":"a"}]`, `{}`} {
		if a := send("PUT", "/imagevariants", bad); a.code != 400 {
			t.Errorf("variants %s: %d", bad, a.code)
		}
	}
	send("GET", "/imagevariants", "").json(t, &defs)
	if len(defs) != 2 || defs[1].Width != 288 {
		t.Errorf("GET variants %+v", defs)
	}

	// Event log.
	var page struct {
		Events     []Event `json:"events"`
		SourceTime int64   `json:"sourceTime"`
	}
	send("GET", "/events?limit=3", "").json(t, &page)
	if len(page.Events) != 3 || page.SourceTime != c.LastSourceTime() || page.Events[0].ID != "story1" {
		t.Errorf("events %+v", page)
	}
	send("GET", "/events?since="+strconv.FormatInt(page.Events[2].SourceTime, 10), "").json(t, &page)
	if len(page.Events) != c.EventCount()-3 {
		t.Errorf("events since: %d", len(page.Events))
	}
	if a := send("GET", "/events?limit=0", ""); a.code != 400 {
		t.Errorf("limit=0: %d", a.code)
	}

	// Replica control and stats.
	get(t, srv.URL+"/api/v1/imagevariants")
	if a := send("PUT", "/staging/replicas/1", `{"lag":"1h","down":true}`); a.code != 200 {
		t.Errorf("replica PUT: %d %s", a.code, a.body)
	}
	for _, bad := range []struct {
		path, body string
		code       int
	}{{"/staging/replicas/7", `{"down":true}`, 404}, {"/staging/replicas/x", `{}`, 400}, {"/staging/replicas/0", `{"lag":"soon"}`, 400}} {
		if a := send("PUT", bad.path, bad.body); a.code != bad.code {
			t.Errorf("PUT %s %s: %d, want %d", bad.path, bad.body, a.code, bad.code)
		}
	}
	var st AdminStats
	send("GET", "/stats", "").json(t, &st)
	if st.LastSourceTime != c.LastSourceTime() || st.Events != c.EventCount() || st.Documents != 3 || st.Staging == nil ||
		len(st.Staging.Replicas) != 2 || !st.Staging.Replicas[1].Down || st.Staging.Replicas[1].LagMillis != 3600000 ||
		st.Staging.Requests != s.Stats().Requests || st.Staging.Requests == 0 {
		t.Errorf("stats %+v %+v", st, st.Staging)
	}
	// The replica is down now: every other request gets 502.
	codes := []int{get(t, srv.URL+"/api/v1/imagevariants").code, get(t, srv.URL+"/api/v1/imagevariants").code}
	slices.Sort(codes)
	if codes[0] != 200 || codes[1] != 502 {
		t.Errorf("codes with one replica down: %v", codes)
	}
}

func TestAdminHandlerAlone(t *testing.T) {
	c := NewContent()
	h := AdminHandler(c)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/admin/documents", strings.NewReader(`{"id":"a"}`)))
	if rec.Code != 201 || c.EventCount() != 1 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/stats", nil))
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "staging") {
		t.Errorf("stats without staging: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("PUT", "/admin/staging/replicas/0", strings.NewReader(`{}`)))
	if rec.Code != http.StatusNotFound {
		t.Errorf("replicas without staging: %d", rec.Code)
	}
}

// TestAdminAppendEvents: raw events of any kind and state go into the log
// in one step, with new source times, and the staging API serves them.
func TestAdminAppendEvents(t *testing.T) {
	c := NewContent()
	_, srv := stagingServer(t, c, StagingConfig{})
	before := c.LastSourceTime()
	a := call(t, "POST", srv.URL+"/admin/events", strings.NewReader(
		`[{"kind":"folder","id":"story1","state":"published"},{"kind":"document","id":"story2","state":"saved","changedProperties":["title"]}]`))
	var got []Event
	a.json(t, &got)
	if a.code != 200 || len(got) != 2 || got[0].SourceTime <= before || got[1].SourceTime <= got[0].SourceTime ||
		got[0].Kind != "folder" || got[1].State != "saved" || strings.Join(got[1].ChangedProperties, ",") != "title" {
		t.Fatalf("%d %s", a.code, a.body)
	}
	if len(c.IDs()) != 0 {
		t.Errorf("raw events changed documents: %v", c.IDs())
	}
	var page struct {
		Events []Event `json:"events"`
	}
	get(t, srv.URL+"/api/v1/events?since=0").json(t, &page)
	if len(page.Events) != 2 || page.Events[1].State != "saved" {
		t.Errorf("staging API serves %+v", page.Events)
	}
	for _, bad := range []string{`[{"kind":"folder","id":"a"}]`, `[{"id":"a","state":"x"}]`, `{}`, ``} {
		if a := call(t, "POST", srv.URL+"/admin/events", strings.NewReader(bad)); a.code != 400 {
			t.Errorf("POST %s: %d %s", bad, a.code, a.body)
		}
	}
}
