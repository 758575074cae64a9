package imaging

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config configures an S3Store.
type S3Config struct {
	// Endpoint is the base URL of an S3-compatible service, e.g.
	// "https://minio.internal:9000"; empty = AWS S3 of Region.
	Endpoint string `json:"endpoint,omitempty"`
	// Region is the signing region; empty = from the AWS environment, or
	// "us-east-1" with a custom Endpoint.
	Region string `json:"region,omitempty"`
	// Bucket is the bucket holding the store (required; it must exist).
	Bucket string `json:"bucket"`
	// Prefix is prepended to every key ("images/"), so that several stores
	// can share a bucket. Empty = none.
	Prefix string `json:"prefix,omitempty"`
	// PathStyle addresses the bucket as <endpoint>/<bucket> instead of
	// <bucket>.<endpoint>, as most self-hosted services need.
	PathStyle bool `json:"path_style,omitempty"`
	// AccessKey and SecretKey are static credentials (with the optional
	// SessionToken). Empty = the standard AWS chain: AWS_ACCESS_KEY_ID /
	// AWS_SECRET_ACCESS_KEY, shared config files, web identity, ECS/EC2
	// roles.
	AccessKey string `json:"access_key,omitempty"`
	// SecretKey is the secret of AccessKey.
	SecretKey string `json:"secret_key,omitempty"`
	// SessionToken is the optional session token of temporary credentials.
	SessionToken string `json:"session_token,omitempty"`
	// CAFile is a PEM file of CA certificates trusted in addition to the
	// system pool (for a service with a private CA).
	CAFile string `json:"ca_file,omitempty"`
	// CAPEM is like CAFile but holds the PEM text itself.
	CAPEM string `json:"ca_pem,omitempty"`
	// Timeout bounds every single store operation, retries included
	// (0 = 15s).
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxAttempts is how often the SDK tries a failing request (0 = the
	// SDK's default of 3).
	MaxAttempts int `json:"max_attempts,omitempty"`
}

// S3Store is a Store in an S3 bucket (AWS S3 or any compatible service),
// using aws-sdk-go-v2 with its default request and response checksums.
// State is kept in object metadata and object tags.
type S3Store struct {
	client  *s3.Client
	bucket  string
	prefix  string
	timeout time.Duration
	desc    string
}

// NewS3Store creates the client for cfg. It does not contact the service;
// use Ping for that.
func NewS3Store(ctx context.Context, cfg S3Config) (*S3Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 store: bucket is required")
	}
	if cfg.Prefix != "" {
		cfg.Prefix = strings.Trim(cfg.Prefix, "/") + "/"
		if !validPrefix(cfg.Prefix) {
			return nil, fmt.Errorf("s3 store: invalid prefix %q", cfg.Prefix)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Region == "" && cfg.Endpoint != "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		cfg.Region = "us-east-1"
	}
	httpClient := awshttp.NewBuildableClient()
	if cfg.CAFile != "" || cfg.CAPEM != "" {
		pool, err := caPool(cfg)
		if err != nil {
			return nil, err
		}
		httpClient = httpClient.WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = pool
		})
	}
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(httpClient)}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	if cfg.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(cfg.MaxAttempts))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: load AWS config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	desc := "s3 " + cfg.Endpoint + "/" + cfg.Bucket + "/" + cfg.Prefix
	return &S3Store{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix, timeout: cfg.Timeout, desc: desc}, nil
}

func caPool(cfg S3Config) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem := []byte(cfg.CAPEM)
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3 store: read CA file: %w", err)
		}
		pem = append(pem, '\n')
		pem = append(pem, b...)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("s3 store: no certificate found in the CA PEM")
	}
	return pool, nil
}

// Client returns the underlying S3 client (for tests and tools).
func (s *S3Store) Client() *s3.Client { return s.client }

// String describes the store for logs.
func (s *S3Store) String() string { return s.desc }

func (s *S3Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// wrap turns an SDK error into this package's: ErrNotFound for a missing
// key, else the error with the operation and key.
func (s *S3Store) wrap(op, key string, err error) error {
	if isS3NotFound(err) {
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("s3 store %s %s: %w", op, key, err)
}

func isS3NotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound && (apiErr == nil || apiErr.ErrorCode() == "")
}

// Get implements Store.
func (s *S3Store) Get(ctx context.Context, key string) (*Object, error) {
	if !ValidKey(key) {
		return nil, errInvalidKey("get", key)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	defer out.Body.Close()
	if out.ContentLength != nil && *out.ContentLength > MaxObjectSize {
		return nil, fmt.Errorf("s3 store get %s: object of %d bytes exceeds %d", key, *out.ContentLength, MaxObjectSize)
	}
	data, err := io.ReadAll(io.LimitReader(out.Body, MaxObjectSize))
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return &Object{ObjectInfo: ObjectInfo{
		Key: key, Size: int64(len(data)), ETag: unquote(aws.ToString(out.ETag)),
		ModTime: aws.ToTime(out.LastModified), ContentType: aws.ToString(out.ContentType),
		Meta: lowerMeta(out.Metadata),
	}, Data: data}, nil
}

// Stat implements Store.
func (s *S3Store) Stat(ctx context.Context, key string) (*ObjectInfo, error) {
	if !ValidKey(key) {
		return nil, errInvalidKey("stat", key)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		return nil, s.wrap("stat", key, err)
	}
	return &ObjectInfo{
		Key: key, Size: aws.ToInt64(out.ContentLength), ETag: unquote(aws.ToString(out.ETag)),
		ModTime: aws.ToTime(out.LastModified), ContentType: aws.ToString(out.ContentType),
		Meta: lowerMeta(out.Metadata),
	}, nil
}

// Put implements Store (a single PutObject, atomic in S3).
func (s *S3Store) Put(ctx context.Context, key string, data []byte, contentType string, meta map[string]string) error {
	if !ValidKey(key) {
		return errInvalidKey("put", key)
	}
	if err := checkMeta(meta); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	in := &s3.PutObjectInput{
		Bucket: &s.bucket, Key: aws.String(s.prefix + key), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), Metadata: lowerMeta(meta),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

// Delete implements Store.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return errInvalidKey("delete", key)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil && !isS3NotFound(err) {
		return s.wrap("delete", key, err)
	}
	return nil
}

// DeletePrefix implements Store with DeleteObjects of up to 1000 keys.
func (s *S3Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if !validPrefix(prefix) {
		return 0, errInvalidKey("delete prefix", prefix)
	}
	return deletePrefixByList(ctx, s, prefix, s.DeleteKeys)
}

// DeleteKeys implements Store with DeleteObjects of up to 1000 keys.
func (s *S3Store) DeleteKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if !ValidKey(k) {
			return errInvalidKey("delete", k)
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := s.deleteObjects(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (s *S3Store) deleteObjects(ctx context.Context, keys []string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(s.prefix + k)}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &s.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return s.wrap("delete", fmt.Sprintf("%d keys from %s", len(keys), keys[0]), err)
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		return fmt.Errorf("s3 store delete %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
	}
	return nil
}

// List implements Store (ListObjectsV2, 1000 keys per page, lexical
// order). ContentType and Meta are not filled in.
func (s *S3Store) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if prefix != "" && !validPrefix(prefix) {
		return errInvalidKey("list", prefix)
	}
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: &s.bucket, Prefix: aws.String(s.prefix + prefix), MaxKeys: aws.Int32(1000),
	})
	for p.HasMorePages() {
		pctx, cancel := s.ctx(ctx)
		page, err := p.NextPage(pctx)
		cancel()
		if err != nil {
			return s.wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if !ValidKey(key) {
				continue // not ours (foreign object in a shared bucket)
			}
			err := fn(ObjectInfo{Key: key, Size: aws.ToInt64(o.Size), ETag: unquote(aws.ToString(o.ETag)),
				ModTime: aws.ToTime(o.LastModified)})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// SetTags implements Store (PutObjectTagging).
func (s *S3Store) SetTags(ctx context.Context, key string, tags map[string]string) error {
	if !ValidKey(key) {
		return errInvalidKey("set tags", key)
	}
	if err := checkTags(tags); err != nil {
		return fmt.Errorf("set tags %s: %w", key, err)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	set := make([]types.Tag, 0, len(tags))
	for k, v := range tags {
		set = append(set, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	_, err := s.client.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: &s.bucket, Key: aws.String(s.prefix + key), Tagging: &types.Tagging{TagSet: set},
	})
	if err != nil {
		return s.wrap("set tags", key, err)
	}
	return nil
}

// GetTags implements Store (GetObjectTagging).
func (s *S3Store) GetTags(ctx context.Context, key string) (map[string]string, error) {
	if !ValidKey(key) {
		return nil, errInvalidKey("get tags", key)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &s.bucket, Key: aws.String(s.prefix + key)})
	if err != nil {
		return nil, s.wrap("get tags", key, err)
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}

// Ping implements Store (HeadBucket).
func (s *S3Store) Ping(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("s3 store %s: head bucket: %w", s.desc, err)
	}
	return nil
}

func unquote(etag string) string {
	return strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
}
