package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/delivery-edge/edge/integration/versitygw"
)

func TestCheckHealth(t *testing.T) {
	store := &flakyStore{Store: newTestFolderStore(t)}
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("staging: connection refused") }
	for _, tt := range []struct {
		name       string
		storeDown  bool
		cms        func(context.Context) error
		status     int
		want       string
		components map[string]string
	}{
		{"all up", false, ok, 200, StatusUp, map[string]string{ComponentImageStore: StatusUp, ComponentStaging: StatusUp}},
		{"no staging configured", false, nil, 200, StatusUp, map[string]string{ComponentImageStore: StatusUp}},
		{"store down", true, ok, 503, StatusDown, map[string]string{ComponentImageStore: StatusDown, ComponentStaging: StatusUp}},
		{"staging down", false, down, 503, StatusDown, map[string]string{ComponentImageStore: StatusUp, ComponentStaging: StatusDown}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store.down.Store(tt.storeDown)
			h, status := CheckHealth(testCtx(t), store, tt.cms)
			if status != tt.status || h.Status != tt.want || len(h.Components) != len(tt.components) {
				t.Fatalf("CheckHealth = %d %+v", status, h)
			}
			for name, want := range tt.components {
				c := h.Components[name]
				if c.Status != want || (want == StatusDown) != (c.Details["error"] != nil) {
					t.Fatalf("component %s = %+v, want %s", name, c, want)
				}
			}
			rec := httptest.NewRecorder()
			WriteHealth(rec, h, status)
			var body struct {
				Status     string `json:"status"`
				Components map[string]struct {
					Status string `json:"status"`
				} `json:"components"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != status ||
				body.Status != tt.want || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("JSON answer %d %q: %v", rec.Code, rec.Body.String(), err)
			}
		})
	}
}

func TestHealthFollowsS3ServerDownAndBack(t *testing.T) {
	srv := versitygw.Start(t, versitygw.Options{TLS: true})
	store := newTestS3Store(t, srv, "")
	if _, status := CheckHealth(testCtx(t), store, nil); status != http.StatusOK {
		t.Fatalf("up: %d", status)
	}
	srv.Stop()
	h, status := CheckHealth(testCtx(t), store, nil)
	if status != http.StatusServiceUnavailable || h.Components[ComponentImageStore].Status != StatusDown {
		t.Fatalf("down: %d %+v", status, h)
	}
	srv.Restart()
	if h, status := CheckHealth(testCtx(t), store, nil); status != http.StatusOK {
		t.Fatalf("back: %d %+v", status, h)
	}
}
