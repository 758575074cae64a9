// Package versitygw runs a real S3 server for tests: the Versity S3 Gateway
// (github.com/versity/versitygw, Apache-2.0) with its posix backend in a
// temporary folder, on 127.0.0.1 and a free port, over HTTP or TLS.
//
// Install the binary once (about 100 s to build):
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// Start looks for it in $VERSITYGW, in $(go env GOPATH)/bin and on PATH.
// When it is missing, tests are skipped with a message naming the install
// command, unless DELIVERY_REQUIRE_S3 is set (as in CI), in which case they
// fail.
package versitygw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/delivery-edge/edge/integration/procgroup"
)

// InstallCommand is the command that installs the expected versitygw.
const InstallCommand = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// RequireEnv is the environment variable that turns a missing binary from
// a skip into a failure.
const RequireEnv = "DELIVERY_REQUIRE_S3"

// Options configures Start. The zero value is an HTTP server with a bucket
// named "images".
type Options struct {
	// TLS serves HTTPS with a self-signed certificate for 127.0.0.1 and
	// localhost, made for this server; its PEM is in Server.CAPEM.
	TLS bool
	// Bucket is the bucket created at start ("images" if empty).
	Bucket string
	// AccessKey and SecretKey are the root credentials (defaults if empty).
	AccessKey string
	// SecretKey is the secret of AccessKey.
	SecretKey string
}

// Server is a running (or stopped) versitygw.
type Server struct {
	// Endpoint is the base URL, http://127.0.0.1:<port> or https://….
	Endpoint string
	// Region is the signing region the server expects.
	Region string
	// Bucket is the bucket created at start.
	Bucket string
	// AccessKey and SecretKey are the credentials.
	AccessKey string
	// SecretKey is the secret of AccessKey.
	SecretKey string
	// CAPEM is the PEM of the server's self-signed certificate (TLS only);
	// trust it as a CA.
	CAPEM string
	// CAFile is the path of CAPEM on disk (TLS only).
	CAFile string
	// Dir is the posix backend's root folder.
	Dir string

	t    testing.TB
	bin  string
	args []string
	addr string

	mu   sync.Mutex
	proc *procgroup.Process
	logs *bytes.Buffer
}

// Binary returns the path of the versitygw binary, or an error saying how
// to install it.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	var candidates []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			candidates = append(candidates, filepath.Join(dir, "bin", "versitygw"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "versitygw"))
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			return c, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("versitygw not found in $VERSITYGW, $(go env GOPATH)/bin or PATH; install it with: %s", InstallCommand)
}

// Start starts a versitygw for the test and stops it at the test's
// cleanup. It skips the test if the binary is missing (fails if
// DELIVERY_REQUIRE_S3 is set).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%v (%s is set, so a real S3 server is required)", err, RequireEnv)
		}
		t.Skipf("skipping S3 test: %v", err)
	}
	if opts.Bucket == "" {
		opts.Bucket = "images"
	}
	if opts.AccessKey == "" {
		opts.AccessKey = "delivery-test-access"
	}
	if opts.SecretKey == "" {
		opts.SecretKey = "delivery-test-secret-0123456789"
	}
	tmp := t.TempDir()
	s := &Server{
		Region: "us-east-1", Bucket: opts.Bucket, AccessKey: opts.AccessKey, SecretKey: opts.SecretKey,
		Dir: filepath.Join(tmp, "data"), t: t, bin: bin,
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	var tlsArgs []string
	if opts.TLS {
		certFile, keyFile, pemText, err := selfSignedCert(tmp)
		if err != nil {
			t.Fatalf("versitygw: make certificate: %v", err)
		}
		s.CAPEM, s.CAFile = pemText, certFile
		tlsArgs = []string{"--cert", certFile, "--key", keyFile}
		scheme = "https"
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("versitygw output:\n%s", s.Logs())
		}
	})
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("versitygw: find a free port: %v", err)
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.Endpoint = scheme + "://" + s.addr
		s.args = append([]string{"--port", s.addr, "--access", s.AccessKey, "--secret", s.SecretKey,
			"--region", s.Region, "--quiet"}, tlsArgs...)
		s.args = append(s.args, "posix", s.Dir)
		if lastErr = s.start(); lastErr == nil {
			break
		}
		s.Stop()
	}
	if lastErr != nil {
		t.Fatalf("versitygw: %v\n%s", lastErr, s.Logs())
	}
	if err := s.createBucket(); err != nil {
		t.Fatalf("versitygw: create bucket %s: %v\n%s", s.Bucket, err, s.Logs())
	}
	return s
}

// start launches the process and waits until it accepts S3 requests.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}
	if s.logs == nil {
		s.logs = &bytes.Buffer{}
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout = lockedWriter{&s.mu, s.logs}
	cmd.Stderr = lockedWriter{&s.mu, s.logs}
	proc, err := procgroup.Start(cmd, syscall.SIGTERM)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.proc = proc
	s.mu.Unlock()
	err = s.waitReady(proc.Done())
	s.mu.Lock()
	return err
}

// waitReady polls until an HTTP request gets any S3 answer (10 s at most).
func (s *Server) waitReady(done <-chan struct{}) error {
	client := s.httpClient()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return errors.New("versitygw exited during start-up")
		default:
		}
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil // 403 without credentials: it is serving
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready at %s after 10s", s.Endpoint)
}

// Stop stops the server (SIGTERM, then SIGKILL to its process group after
// 5 s). Its data stays for Restart. Stopping a stopped server does nothing.
// A process of its group that outlived it fails the test.
func (s *Server) Stop() {
	s.mu.Lock()
	proc := s.proc
	s.proc = nil
	s.mu.Unlock()
	if proc == nil {
		return
	}
	if err := proc.Stop(5 * time.Second); err != nil {
		s.t.Errorf("stopping versitygw: %v", err)
	}
}

// Restart starts a stopped server again on the same address with the same
// data (stopping it first if it runs).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		s.Stop()
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("versitygw restart: %v\n%s", err, s.Logs())
}

// Logs returns what the server wrote to stdout and stderr.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

// S3Client returns an SDK client for the server (path-style, its
// credentials, trusting its certificate).
func (s *Server) S3Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  staticCreds{s.AccessKey, s.SecretKey},
		HTTPClient:   s.httpClient(),
	})
}

func (s *Server) createBucket() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.S3Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)})
	return err
}

func (s *Server) httpClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.CAPEM != "" {
		tr.TLSClientConfig = tlsConfigFor(s.CAPEM)
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

type staticCreds struct{ id, secret string }

// Retrieve implements aws.CredentialsProvider.
func (c staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret, Source: "versitygw test"}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

// Write appends to the buffer, keeping at most the last 64 KB.
func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.buf.Len() > 64<<10 {
		b := w.buf.Bytes()
		keep := append([]byte(nil), b[len(b)-32<<10:]...)
		w.buf.Reset()
		w.buf.Write(keep)
	}
	return len(p), nil
}
