package imaging

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/delivery-edge/edge/integration/versitygw"
)

func newTestS3Store(t *testing.T, srv *versitygw.Server, prefix string) *S3Store {
	t.Helper()
	s, err := NewS3Store(context.Background(), S3Config{
		Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, Prefix: prefix, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CAPEM: srv.CAPEM,
		Timeout: 10 * time.Second, MaxAttempts: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3StoreSuite(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			srv := versitygw.Start(t, versitygw.Options{TLS: useTLS})
			n := 0
			runStoreSuite(t, func(t *testing.T) Store {
				// A fresh key prefix per test keeps the tests apart in one bucket.
				n++
				return newTestS3Store(t, srv, "t"+string(rune('a'+n)))
			})
		})
	}
}

func TestS3StoreDownAndBack(t *testing.T) {
	srv := versitygw.Start(t, versitygw.Options{})
	s := newTestS3Store(t, srv, "")
	ctx := testCtx(t)
	if err := s.Put(ctx, "a/b", []byte("x"), "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with the server down")
	}
	_, err := s.Get(ctx, "a/b")
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get with the server down = %v, want a non-NotFound error", err)
	}
	srv.Restart()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	if obj, err := s.Get(ctx, "a/b"); err != nil || string(obj.Data) != "x" {
		t.Fatalf("Get after restart: %v", err)
	}
}

func TestS3StoreTLSNeedsTrustedCA(t *testing.T) {
	srv := versitygw.Start(t, versitygw.Options{TLS: true})
	s, err := NewS3Store(context.Background(), S3Config{
		Endpoint: srv.Endpoint, Bucket: srv.Bucket, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, MaxAttempts: 1, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(testCtx(t)); err == nil {
		t.Fatal("Ping succeeded against a self-signed server without its CA")
	}
}

func TestS3StoreWrongCredentials(t *testing.T) {
	srv := versitygw.Start(t, versitygw.Options{})
	s, err := NewS3Store(context.Background(), S3Config{
		Endpoint: srv.Endpoint, Bucket: srv.Bucket, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: "wrong-secret", MaxAttempts: 1, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(testCtx(t), "a/b"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get with a wrong secret = %v, want an access error", err)
	}
}

func TestNewS3StoreValidatesConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := NewS3Store(ctx, S3Config{}); err == nil {
		t.Fatal("no bucket accepted")
	}
	if _, err := NewS3Store(ctx, S3Config{Bucket: "b", Prefix: "../x"}); err == nil {
		t.Fatal("bad prefix accepted")
	}
	if _, err := NewS3Store(ctx, S3Config{Bucket: "b", CAPEM: "not a pem"}); err == nil {
		t.Fatal("bad CA accepted")
	}
}
