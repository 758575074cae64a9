package versitygw

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStartPutGetStopRestart(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "http"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			srv := Start(t, Options{TLS: useTLS})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := srv.S3Client()
			body := []byte("hello versitygw")
			put := func() error {
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("a/b.txt"),
					Body: bytes.NewReader(body)})
				return err
			}
			if err := put(); err != nil {
				t.Fatalf("put: %v", err)
			}
			get := func() ([]byte, error) {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("a/b.txt")})
				if err != nil {
					return nil, err
				}
				defer out.Body.Close()
				return io.ReadAll(out.Body)
			}
			if got, err := get(); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("get = %q, %v", got, err)
			}

			srv.Stop()
			sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := srv.S3Client().HeadBucket(sctx, &s3.HeadBucketInput{Bucket: aws.String(srv.Bucket)},
				func(o *s3.Options) { o.RetryMaxAttempts = 1 })
			scancel()
			if err == nil {
				t.Fatal("HeadBucket succeeded against a stopped server")
			}

			srv.Restart()
			if got, err := get(); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("get after restart = %q, %v", got, err)
			}
		})
	}
}

func TestBinaryErrorNamesInstallCommand(t *testing.T) {
	t.Setenv("VERSITYGW", "/nonexistent/versitygw")
	_, err := Binary()
	if err == nil {
		t.Fatal("Binary() succeeded with a missing VERSITYGW")
	}
}
