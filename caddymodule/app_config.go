package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
)

// StagingConfig is how the edge reaches the CMS staging servers (the
// `staging` block), or, for `image_updates`, the primary.
type StagingConfig struct {
	// URLs are the base URLs: one load balancer or several servers that
	// are tried in turn. Empty in `image_updates` means: use `staging`.
	URLs []string `json:"urls,omitempty"`
	// Token is the access token, a UUID. Placeholders such as {env.X} are
	// replaced at provisioning.
	Token string `json:"token,omitempty"`
	// PollInterval is the interval of plain polling (default 500ms).
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`
	// LongPoll is how long the server may hold an events request (default
	// 25s); a server that answers at once is polled at PollInterval.
	// Negative turns long polling off.
	LongPoll caddy.Duration `json:"long_poll,omitempty"`
	// Timeout bounds one request (default 10s; long polls get LongPoll on
	// top).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxAttempts bounds the silent retries of a request that hits a
	// server which is not up to date (default 8).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// CAFile is a PEM file of CA certificates trusted, in addition to the
	// system's, for https URLs (servers with certificates of a private
	// CA). It is read at provisioning. In `image_updates` without URLs,
	// empty means: the one of `staging`.
	CAFile string `json:"ca_file,omitempty"`
}

// PregenerateConfig turns on the pre-generation queue (the `pregenerate`
// block).
type PregenerateConfig struct {
	// Workers is the number of renders pre-generation has at the render
	// backend at once (default 4); the edge's own work on each job
	// (putting its file in place) overlaps the backend's work on others.
	Workers int `json:"workers,omitempty"`
	// Recent: a file read within this interval, and at least once after it
	// was written, is pre-generated when invalidated (default 1h).
	Recent caddy.Duration `json:"recent,omitempty"`
	// GenerateNonexistent pre-generates, with priority 50, the page of a
	// published document that is not in the cache at all. The render
	// backend names its URL (see README, "Documents not in the cache").
	GenerateNonexistent bool `json:"generate_nonexistent,omitempty"`
	// ResolvePath is the render backend's path that names the URL of a
	// document (default /_delivery/url); it is asked with ?id=<document>.
	ResolvePath string `json:"resolve_path,omitempty"`
}

// GroupConfig is a group of edges that share cache flushes (`group`).
type GroupConfig struct {
	// Peers are the base URLs of the other edges of the group.
	Peers []string `json:"peers,omitempty"`
}

// ImageStoreConfig says where image variants are kept (`image_store`).
type ImageStoreConfig struct {
	// Type is "file" (a local folder, the default) or "s3".
	Type string `json:"type,omitempty"`
	// Dir is the folder of a "file" store (default <data_dir>/images).
	Dir string `json:"dir,omitempty"`
	// Bucket, Endpoint, Region, Prefix and PathStyle address an S3 store.
	Bucket    string `json:"bucket,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	Region    string `json:"region,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
	PathStyle bool   `json:"path_style,omitempty"`
	// AccessKey and SecretKey are static S3 credentials; without them the
	// standard AWS chain (environment, shared config, instance role) is used.
	AccessKey string `json:"access_key,omitempty"`
	SecretKey string `json:"secret_key,omitempty"`
	// CAFile is a PEM file of CAs to trust for the S3 endpoint.
	CAFile string `json:"ca_file,omitempty"`
}
