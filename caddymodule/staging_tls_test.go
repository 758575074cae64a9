package caddymodule

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"go.uber.org/zap"

	"github.com/delivery-edge/edge/integration/origin"
)

// tlsStagingServer serves the sample staging API over HTTPS with a
// certificate of httptest's own CA, and writes that CA as a PEM file.
func tlsStagingServer(t *testing.T) (st *origin.Staging, url, caFile string) {
	t.Helper()
	c := origin.NewContent()
	c.Put(origin.Document{ID: "story1", NodeType: "story"}, nil)
	st = origin.NewStaging(c, origin.StagingConfig{})
	srv := httptest.NewUnstartedServer(st)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(func() { st.Close(); srv.Close() })
	caFile = filepath.Join(t.TempDir(), "staging-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return st, srv.URL, caFile
}

// TestStagingCAFile: the staging block's ca_file makes the client trust a
// private CA (also through a placeholder); errors name the option.
func TestStagingCAFile(t *testing.T) {
	_, url, caFile := tlsStagingServer(t)
	ping := func(sc StagingConfig, option string) error {
		t.Helper()
		sc.URLs, sc.Token, sc.MaxAttempts = []string{url}, origin.DemoToken, 1
		client, _, err := newStagingClient(&sc, option, zap.NewNop())
		if err != nil {
			return err
		}
		defer client.Close()
		return client.Ping(context.Background())
	}
	var verr *tls.CertificateVerificationError
	if err := ping(StagingConfig{}, "staging"); !errors.As(err, &verr) {
		t.Fatalf("without ca_file: %v, want a certificate verification error", err)
	}
	if err := ping(StagingConfig{CAFile: caFile}, "staging"); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	t.Setenv("DELIVERY_TEST_STAGING_CA", caFile)
	if err := ping(StagingConfig{CAFile: "{env.DELIVERY_TEST_STAGING_CA}"}, "image_updates"); err != nil {
		t.Fatalf("with ca_file from a placeholder: %v", err)
	}

	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ option, file, want string }{
		{"staging", filepath.Join(t.TempDir(), "missing.pem"), "staging: ca_file: open "},
		{"image_updates", empty, "image_updates: ca_file: " + empty + ": no PEM certificate found"},
	} {
		if err := ping(StagingConfig{CAFile: tc.file}, tc.option); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s ca_file %s: %v, want %q", tc.option, tc.file, err, tc.want)
		}
	}
}

// TestStagingCAFileValidate: `caddy validate` reads the CA files of both
// blocks and reports a bad one by its option, and it connects nowhere.
func TestStagingCAFileValidate(t *testing.T) {
	st, url, caFile := tlsStagingServer(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	config := func(stagingCA, updatesCA string) string {
		return `{
	admin off
	delivery {
		data_dir ` + filepath.Join(t.TempDir(), "data") + `
		staging ` + url + ` {
			token ` + origin.DemoToken + `
			ca_file ` + stagingCA + `
		}
		image_updates ` + url + ` {
			token ` + origin.DemoToken + `
			ca_file ` + updatesCA + `
		}
	}
}
`
	}
	validate := func(caddyfile string) error {
		t.Helper()
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			t.Fatalf("adapt: %v", err)
		}
		var cfg caddy.Config
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		return caddy.Validate(&cfg)
	}
	if err := validate(config(caFile, caFile)); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if err := validate(config(missing, caFile)); err == nil || !strings.Contains(err.Error(), "staging: ca_file: open "+missing) {
		t.Errorf("staging ca_file missing: %v", err)
	}
	if err := validate(config(caFile, missing)); err == nil || !strings.Contains(err.Error(), "image_updates: ca_file: open "+missing) {
		t.Errorf("image_updates ca_file missing: %v", err)
	}
	if n := st.Stats().Requests; n != 0 {
		t.Errorf("validate sent %d requests to the staging server", n)
	}
}

// TestImageUpdatesSourceCAFile: image_updates without servers takes the
// CA file of staging unless it names its own; with servers of its own it
// uses only its own.
func TestImageUpdatesSourceCAFile(t *testing.T) {
	staging := &StagingConfig{URLs: []string{"https://s"}, Token: "t", CAFile: "/staging.pem"}
	for _, tc := range []struct {
		updates StagingConfig
		want    string
	}{
		{StagingConfig{}, "/staging.pem"},
		{StagingConfig{CAFile: "/own.pem"}, "/own.pem"},
		{StagingConfig{URLs: []string{"https://primary"}, Token: "t"}, ""},
		{StagingConfig{URLs: []string{"https://primary"}, Token: "t", CAFile: "/own.pem"}, "/own.pem"},
	} {
		a := &App{Staging: staging, ImageUpdates: &tc.updates}
		sc, err := imageUpdatesSource(a)
		if err != nil || sc.CAFile != tc.want {
			t.Errorf("image_updates %+v: ca_file %q, %v; want %q", tc.updates, sc.CAFile, err, tc.want)
		}
	}
}
