// Admin API of the sample origin; the endpoints are listed in the package
// documentation (staging.go).

package origin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxAdminBody bounds request bodies of the admin API (binaries included).
const maxAdminBody = 64 << 20

type adminAPI struct {
	c       *Content
	staging *Staging // nil when not mounted by a Staging
	mux     *http.ServeMux
}

// AdminHandler returns the admin API over c (see the package doc). Mount
// it at the root or under /admin/ of a server; Staging does that itself.
func AdminHandler(c *Content) http.Handler { return newAdminAPI(c, nil) }

func newAdminAPI(c *Content, s *Staging) *adminAPI {
	a := &adminAPI{c: c, staging: s, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /admin/documents", a.listDocuments)
	a.mux.HandleFunc("POST /admin/documents", a.putDocument)
	a.mux.HandleFunc("GET /admin/documents/{id}", a.getDocument)
	a.mux.HandleFunc("PATCH /admin/documents/{id}", a.patchDocument)
	a.mux.HandleFunc("DELETE /admin/documents/{id}", a.stateChange(StateDeleted))
	a.mux.HandleFunc("POST /admin/documents/{id}/publish", a.stateChange(StatePublished))
	a.mux.HandleFunc("POST /admin/documents/{id}/offline", a.stateChange(StateOffline))
	a.mux.HandleFunc("POST /admin/documents/{id}/yellow", a.yellow)
	a.mux.HandleFunc("PUT /admin/documents/{id}/binary", a.putBinary)
	a.mux.HandleFunc("GET /admin/imagevariants", a.getVariants)
	a.mux.HandleFunc("PUT /admin/imagevariants", a.putVariants)
	a.mux.HandleFunc("GET /admin/events", a.events)
	a.mux.HandleFunc("POST /admin/events", a.appendEvents)
	a.mux.HandleFunc("GET /admin/stats", a.stats)
	a.mux.HandleFunc("PUT /admin/staging/replicas/{i}", a.putReplica)
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		adminErr(w, http.StatusNotFound, "no such admin endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a
}

func (a *adminAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mux.ServeHTTP(w, r)
}

// docSummary is one line of GET /admin/documents.
type adminDocSummary struct {
	ID         string `json:"id"`
	UUID       string `json:"uuid"`
	NodeType   string `json:"nodeType"`
	State      string `json:"state"`
	SourceTime int64  `json:"sourceTime"`
}

func (a *adminAPI) listDocuments(w http.ResponseWriter, r *http.Request) {
	out := []adminDocSummary{}
	for _, id := range a.c.IDs() {
		if d, ok := a.c.Latest(id); ok {
			out = append(out, adminDocSummary{d.ID, d.UUID, d.NodeType, d.State, d.SourceTime})
		}
	}
	stagingJSON(w, http.StatusOK, out)
}

func (a *adminAPI) getDocument(w http.ResponseWriter, r *http.Request) {
	d, ok := a.c.Latest(r.PathValue("id"))
	if !ok {
		adminErr(w, http.StatusNotFound, "unknown document "+strconv.Quote(r.PathValue("id")))
		return
	}
	stagingJSON(w, http.StatusOK, d)
}

// putRequest is the body of POST /admin/documents.
type adminPutRequest struct {
	ID                string         `json:"id"`
	UUID              string         `json:"uuid"`
	NodeType          string         `json:"nodeType"`
	State             string         `json:"state"`
	Properties        map[string]any `json:"properties"`
	ChangedProperties *[]string      `json:"changedProperties"`
}

func (a *adminAPI) putDocument(w http.ResponseWriter, r *http.Request) {
	var req adminPutRequest
	if !adminReadJSON(w, r, &req) {
		return
	}
	if req.ID == "" {
		adminErr(w, http.StatusBadRequest, `"id" is required`)
		return
	}
	switch req.State {
	case "", StatePublished, StateOffline, StateDeleted:
	default:
		adminErr(w, http.StatusBadRequest, "unknown state "+strconv.Quote(req.State))
		return
	}
	prev, existed := a.c.Latest(req.ID)
	doc := Document{ID: req.ID, UUID: req.UUID, NodeType: req.NodeType, State: req.State, Properties: req.Properties}
	if doc.UUID == "" {
		doc.UUID = prev.UUID
		if !existed || doc.UUID == "" {
			doc.UUID = DemoUUID(req.ID)
		}
	}
	if doc.NodeType == "" {
		doc.NodeType = prev.NodeType
		if doc.NodeType == "" {
			doc.NodeType = "story"
		}
	}
	if doc.Properties == nil {
		doc.Properties = map[string]any{}
	}
	var changed []string
	if req.ChangedProperties != nil {
		changed = append([]string{}, *req.ChangedProperties...)
	}
	code := http.StatusOK
	if !existed {
		code = http.StatusCreated
	}
	stagingJSON(w, code, stagingWireEvent(a.c.Put(doc, changed)))
}

func (a *adminAPI) patchDocument(w http.ResponseWriter, r *http.Request) {
	var props map[string]any
	if !adminReadJSON(w, r, &props) {
		return
	}
	if props == nil {
		adminErr(w, http.StatusBadRequest, "want a JSON object of properties")
		return
	}
	ev, ok := a.c.Update(r.PathValue("id"), props)
	if !ok {
		adminErr(w, http.StatusNotFound, "unknown document "+strconv.Quote(r.PathValue("id")))
		return
	}
	stagingJSON(w, http.StatusOK, stagingWireEvent(ev))
}

func (a *adminAPI) stateChange(state string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ev, ok := a.c.SetState(r.PathValue("id"), state)
		if !ok {
			adminErr(w, http.StatusNotFound, "unknown document "+strconv.Quote(r.PathValue("id")))
			return
		}
		stagingJSON(w, http.StatusOK, stagingWireEvent(ev))
	}
}

func (a *adminAPI) yellow(w http.ResponseWriter, r *http.Request) {
	ev, ok := a.c.Yellow(r.PathValue("id"))
	if !ok {
		adminErr(w, http.StatusNotFound, "unknown document "+strconv.Quote(r.PathValue("id")))
		return
	}
	stagingJSON(w, http.StatusOK, stagingWireEvent(ev))
}

func (a *adminAPI) putBinary(w http.ResponseWriter, r *http.Request) {
	doc, ok := a.c.Latest(r.PathValue("id"))
	if !ok {
		adminErr(w, http.StatusNotFound, "unknown document "+strconv.Quote(r.PathValue("id")))
		return
	}
	if doc.UUID == "" {
		adminErr(w, http.StatusBadRequest, "document "+strconv.Quote(doc.ID)+" has no UUID")
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		adminErr(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	if len(data) == 0 {
		adminErr(w, http.StatusBadRequest, "empty body")
		return
	}
	a.c.SetBinary(doc.UUID, data)
	if r.URL.Query().Get("event") == "false" {
		stagingJSON(w, http.StatusOK, map[string]any{"uuid": doc.UUID, "bytes": len(data)})
		return
	}
	if doc.State != StatePublished {
		doc.State = StatePublished
	}
	stagingJSON(w, http.StatusOK, stagingWireEvent(a.c.Put(doc, nil)))
}

func (a *adminAPI) getVariants(w http.ResponseWriter, r *http.Request) {
	defs := a.c.Variants()
	if defs == nil {
		defs = []VariantDef{}
	}
	stagingJSON(w, http.StatusOK, defs)
}

func (a *adminAPI) putVariants(w http.ResponseWriter, r *http.Request) {
	var defs []VariantDef
	if !adminReadJSON(w, r, &defs) {
		return
	}
	seen := map[string]bool{}
	for i, d := range defs {
		switch {
		case d.Name == "":
			adminErr(w, http.StatusBadRequest, fmt.Sprintf("definition %d has no name", i))
			return
		case d.Width < 0:
			adminErr(w, http.StatusBadRequest, fmt.Sprintf("definition %q has a negative width", d.Name))
			return
		case seen[d.Name]:
			adminErr(w, http.StatusBadRequest, fmt.Sprintf("definition %q twice", d.Name))
			return
		}
		seen[d.Name] = true
	}
	a.c.SetVariants(defs)
	a.getVariants(w, r)
}

func (a *adminAPI) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err1 := stagingIntParam(q.Get("since"), 0)
	limit, err2 := stagingIntParam(q.Get("limit"), 1000)
	if err1 != nil || err2 != nil || since < 0 || limit < 1 {
		adminErr(w, http.StatusBadRequest, "since must be >= 0 and limit >= 1")
		return
	}
	limit = min(limit, 100000)
	stagingJSON(w, http.StatusOK, map[string]any{
		"events":     stagingWire(a.c.EventsAfter(since, -1, int(limit))),
		"sourceTime": a.c.LastSourceTime(),
	})
}

// appendEvents adds raw events to the log (Content.AppendEvents): any kind
// and state, so that tests can send what a newer CMS might.
func (a *adminAPI) appendEvents(w http.ResponseWriter, r *http.Request) {
	var evs []Event
	if !adminReadJSON(w, r, &evs) {
		return
	}
	for i, ev := range evs {
		if ev.Kind == "" || ev.ID == "" || ev.State == "" {
			adminErr(w, http.StatusBadRequest, fmt.Sprintf(`event %d: "kind", "id" and "state" are required`, i))
			return
		}
	}
	stagingJSON(w, http.StatusOK, stagingWire(a.c.AppendEvents(evs...)))
}

// AdminStats is the answer of GET /admin/stats.
type AdminStats struct {
	LastSourceTime int64         `json:"lastSourceTime"`
	Events         int           `json:"events"`
	Documents      int           `json:"documents"`
	Staging        *StagingStats `json:"staging,omitempty"`
}

func (a *adminAPI) stats(w http.ResponseWriter, r *http.Request) {
	st := AdminStats{
		LastSourceTime: a.c.LastSourceTime(),
		Events:         a.c.EventCount(),
		Documents:      len(a.c.IDs()),
	}
	if a.staging != nil {
		ss := a.staging.Stats()
		st.Staging = &ss
	}
	stagingJSON(w, http.StatusOK, st)
}

func (a *adminAPI) putReplica(w http.ResponseWriter, r *http.Request) {
	if a.staging == nil {
		adminErr(w, http.StatusNotFound, "no staging replicas here")
		return
	}
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil {
		adminErr(w, http.StatusBadRequest, "replica index must be a number")
		return
	}
	var req struct {
		Lag  *string `json:"lag"`
		Down *bool   `json:"down"`
	}
	if !adminReadJSON(w, r, &req) {
		return
	}
	var lag time.Duration
	if req.Lag != nil {
		if lag, err = time.ParseDuration(*req.Lag); err != nil || lag < 0 {
			adminErr(w, http.StatusBadRequest, `"lag" must be a duration like "250ms"`)
			return
		}
	}
	if i < 0 || i >= len(a.staging.replicas) {
		adminErr(w, http.StatusNotFound, fmt.Sprintf("no replica %d (have %d)", i, len(a.staging.replicas)))
		return
	}
	if req.Lag != nil {
		_ = a.staging.SetLag(i, lag)
	}
	if req.Down != nil {
		_ = a.staging.SetDown(i, *req.Down)
	}
	stagingJSON(w, http.StatusOK, a.staging.Stats().Replicas[i])
}

// readJSON decodes the request body into v, answering 400 itself when it
// cannot.
func adminReadJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err := dec.Decode(v); err != nil {
		msg := "bad JSON body: " + err.Error()
		if errors.Is(err, io.EOF) {
			msg = "empty body, want JSON"
		}
		adminErr(w, http.StatusBadRequest, msg)
		return false
	}
	if dec.More() {
		adminErr(w, http.StatusBadRequest, "bad JSON body: more than one value")
		return false
	}
	return true
}

func adminErr(w http.ResponseWriter, code int, msg string) {
	stagingJSON(w, code, map[string]string{"error": msg})
}
