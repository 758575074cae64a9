package origin

// The endpoints of the staging API, as one replica answers them.

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// wireEvent is an event as the API sends it: changedProperties is left out
// when unknown (nil) and sent as [] when empty.
type stagingWireEvent struct {
	SourceTime        int64    `json:"sourceTime"`
	Kind              string   `json:"kind"`
	ID                string   `json:"id"`
	UUID              string   `json:"uuid,omitempty"`
	NodeType          string   `json:"nodeType,omitempty"`
	State             string   `json:"state"`
	ChangedProperties []string `json:"changedProperties,omitzero"`
}

func stagingWire(evs []Event) []stagingWireEvent {
	out := make([]stagingWireEvent, len(evs))
	for i, e := range evs {
		out[i] = stagingWireEvent(e)
	}
	return out
}

func (s *Staging) events(w http.ResponseWriter, r *http.Request) {
	rep := r.Context().Value(stagingReplicaKey{}).(*stagingReplica)
	q := r.URL.Query()
	since, err := stagingIntParam(q.Get("since"), 0)
	if err != nil || since < 0 {
		stagingError(w, http.StatusBadRequest, "BadRequest", "since must be a source time in ms")
		return
	}
	limit, err := stagingIntParam(q.Get("limit"), int64(s.cfg.MaxLimit))
	if err != nil || limit < 1 {
		stagingError(w, http.StatusBadRequest, "BadRequest", "limit must be a positive number")
		return
	}
	limit = min(limit, int64(s.cfg.MaxLimit))
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 || math.IsNaN(secs) || math.IsInf(secs, 0) {
			stagingError(w, http.StatusBadRequest, "BadRequest", "wait must be a number of seconds")
			return
		}
		wait = min(time.Duration(secs*float64(time.Second)), s.cfg.MaxWait)
	}
	if s.cfg.NoLongPoll {
		wait = 0
	}
	applied := s.appliedOf(rep)
	if wait > 0 && applied <= since {
		rep.longPolls.Add(1)
		rep.holding.Add(1)
		deadline := s.cfg.Now().Add(wait)
		for applied <= since && s.waitStep(r.Context(), rep, since, deadline) {
			applied = s.appliedOf(rep)
		}
		rep.holding.Add(-1)
		applied = s.appliedOf(rep)
	}
	evs := s.c.EventsAfter(since, applied, int(limit))
	w.Header().Set(HeaderSourceTime, strconv.FormatInt(applied, 10))
	stagingJSON(w, http.StatusOK, map[string]any{"events": stagingWire(evs), "sourceTime": applied})
}

// waitStep waits a little (at most 100ms) for the replica to get an event
// newer than since. It returns false once the deadline has passed, the
// request is gone or the staging API is closed.
func (s *Staging) waitStep(ctx context.Context, rep *stagingReplica, since int64, deadline time.Time) bool {
	now := s.cfg.Now()
	if !now.Before(deadline) || ctx.Err() != nil {
		return false
	}
	select {
	case <-s.closed:
		return false
	default:
	}
	until := stagingEarliest(deadline, now.Add(100*time.Millisecond))
	lag := time.Duration(rep.lag.Load())
	if next := s.c.EventsAfter(since, -1, 1); len(next) > 0 {
		// The primary has it; the replica sees it once its lag has passed.
		until = stagingEarliest(until, time.UnixMilli(next[0].SourceTime).Add(lag))
		t := time.NewTimer(max(until.Sub(now), 0))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		case <-s.closed:
			return false
		}
		return true
	}
	s.c.WaitForEvent(since, until) // wakes on the next event; bounded by until
	return ctx.Err() == nil
}

func (s *Staging) document(w http.ResponseWriter, r *http.Request) {
	doc, ok := s.published(r)
	if !ok {
		stagingError(w, http.StatusNotFound, "NotFound", "no published document "+strconv.Quote(r.PathValue("id")))
		return
	}
	if doc.Properties == nil {
		doc.Properties = map[string]any{}
	}
	stagingJSON(w, http.StatusOK, doc)
}

func (s *Staging) binary(w http.ResponseWriter, r *http.Request) {
	doc, ok := s.published(r)
	var data []byte
	if ok && doc.UUID != "" {
		data, ok = s.c.Binary(doc.UUID)
	}
	if !ok || doc.UUID == "" {
		stagingError(w, http.StatusNotFound, "NotFound", "no binary for "+strconv.Quote(r.PathValue("id")))
		return
	}
	w.Header().Set("Content-Type", http.DetectContentType(data))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Last-Modified", time.UnixMilli(doc.Modified).UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// published returns the document of the request path as the replica sees
// it, if it is published there.
func (s *Staging) published(r *http.Request) (Document, bool) {
	rep := r.Context().Value(stagingReplicaKey{}).(*stagingReplica)
	doc, ok := s.c.AsOf(r.PathValue("id"), s.appliedOf(rep))
	if !ok || doc.State != StatePublished {
		return Document{}, false
	}
	return doc, true
}

func (s *Staging) variants(w http.ResponseWriter, r *http.Request) {
	defs := s.c.Variants()
	if defs == nil {
		defs = []VariantDef{}
	}
	stagingJSON(w, http.StatusOK, defs)
}

func stagingEarliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func stagingIntParam(v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

func stagingJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		code, data = http.StatusInternalServerError, []byte(`{"error":"InternalError"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

func stagingError(w http.ResponseWriter, code int, kind, msg string) {
	stagingJSON(w, code, map[string]string{"error": kind, "message": msg})
}
