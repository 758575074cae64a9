package imaging

import (
	"context"
	"io"
)

// Document states (docs/staging-api.md).
const (
	// StatePublished is a live document.
	StatePublished = "published"
	// StateOffline is a document taken offline: its variants answer 404.
	StateOffline = "offline"
	// StateDeleted is a deleted document: its variants answer 410.
	StateDeleted = "deleted"
)

// CMS is what the image service needs from the CMS (in production, the
// staging client adapted to it). Implementations return an error wrapping
// ErrNotFound for an unknown, deleted or offline document; any other error
// means the CMS could not be asked (the service answers 503).
type CMS interface {
	// Image returns the image document uuid.
	Image(ctx context.Context, uuid string) (*ImageDoc, error)
	// Original returns the original bytes of the image document uuid. The
	// caller closes the reader.
	Original(ctx context.Context, uuid string) (io.ReadCloser, error)
	// Variants returns all variant definitions.
	Variants(ctx context.Context) ([]VariantDef, error)
}

// ImageDoc is the part of an image document the image service uses.
type ImageDoc struct {
	// UUID is the document's UUID.
	UUID string `json:"uuid"`
	// State is StatePublished, StateOffline or StateDeleted ("" counts as
	// published: a staging server serves published documents only).
	State string `json:"state,omitempty"`
	// Modified is the document's modification time in Unix ms: the
	// version of the image.
	Modified int64 `json:"modified"`
	// Focus is the focal point from the document's "focus" property, nil
	// if it has none.
	Focus *Point `json:"focus,omitempty"`
}

// VariantDef is a variant definition document (docs/staging-api.md).
type VariantDef struct {
	// Name is the variant's name as used in URLs ("16x9-768", "16x9").
	Name string `json:"name"`
	// Aspect is the aspect ratio ("16x9"; empty = the original's).
	Aspect string `json:"aspect,omitempty"`
	// Width is the fixed width (0 = taken from ?width=).
	Width int `json:"width,omitempty"`
	// Modified is the definition's modification time in Unix ms.
	Modified int64 `json:"modified"`
}

// ImageEvent is a change of an image or variant definition document, as
// the update service receives it from the CMS event stream.
type ImageEvent struct {
	// NodeType is "image" or "imageVariant"; other types are ignored.
	NodeType string `json:"nodeType"`
	// UUID is the document's UUID.
	UUID string `json:"uuid"`
	// ID is the document's CMS ID (for logs).
	ID string `json:"id,omitempty"`
	// State is StatePublished, StateOffline or StateDeleted.
	State string `json:"state"`
	// SourceTime is the event's source time in Unix ms; it is recorded on
	// offline/deleted markers.
	SourceTime int64 `json:"sourceTime"`
}

// Node types handled by the Updater.
const (
	// NodeTypeImage is an image document.
	NodeTypeImage = "image"
	// NodeTypeImageVariant is a variant definition document.
	NodeTypeImageVariant = "imageVariant"
)
