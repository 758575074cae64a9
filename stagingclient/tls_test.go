package stagingclient_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/stagingclient"
)

// tlsStaging serves the sample staging API over HTTPS with httptest's own
// CA and returns its URL and the CA certificate as a PEM file.
func tlsStaging(t *testing.T) (url, caFile string) {
	t.Helper()
	c := origin.NewContent()
	c.Put(origin.Document{ID: "story1", NodeType: "story"}, nil)
	st := origin.NewStaging(c, origin.StagingConfig{})
	srv := httptest.NewUnstartedServer(st)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(func() { st.Close(); srv.Close() })
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile
}

// TestPrivateCA: an https staging server with a certificate of a private
// CA is refused with the system's CAs and works with the CA file.
func TestPrivateCA(t *testing.T) {
	url, caFile := tlsStaging(t)
	events := func(cfg stagingclient.Config) (stagingclient.Page, error) {
		t.Helper()
		cfg.BaseURLs, cfg.Token, cfg.MaxAttempts = []string{url}, token, 1
		c, err := stagingclient.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Events(context.Background(), 0, 0, 0)
	}

	_, err := events(stagingclient.Config{})
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("without the CA file: %v, want a certificate verification error", err)
	}

	pool, err := stagingclient.LoadCAFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := events(stagingclient.Config{RootCAs: pool})
	if err != nil || len(p.Events) != 1 || p.Events[0].ID != "story1" {
		t.Fatalf("with the CA file: %+v, %v", p, err)
	}
	// With a TLSConfig as well, RootCAs are used.
	if _, err := events(stagingclient.Config{RootCAs: pool, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}); err != nil {
		t.Fatalf("with the CA file and a TLSConfig: %v", err)
	}

	if _, err := stagingclient.New(stagingclient.Config{BaseURLs: []string{url}, Token: token, RootCAs: pool,
		HTTPClient: &http.Client{}}); err == nil || !strings.Contains(err.Error(), "RootCAs") {
		t.Errorf("RootCAs with HTTPClient: %v", err)
	}
}

func TestLoadCAFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	if _, err := stagingclient.LoadCAFile(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
	notPEM := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(notPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := stagingclient.LoadCAFile(notPEM); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("file without a certificate: %v", err)
	}
}
