package stagingclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// Event kinds the edge knows. Servers may send others (a newer CMS); the
// decoder passes them on, and KnownKind tells them apart.
const (
	KindDocument = "document"
	KindNode     = "node"
	KindYellow   = "yellow"
)

// Document states the edge knows. Servers may send others (a primary's
// "saved", a newer CMS); the decoder passes them on, and KnownState tells
// them apart.
const (
	StatePublished = "published"
	StateOffline   = "offline"
	StateDeleted   = "deleted"
)

// Node types the staging servers report. Others may occur and are passed on
// unchanged.
const (
	NodeTypeStory         = "story"
	NodeTypeImage         = "image"
	NodeTypeImageVariant  = "imageVariant"
	NodeTypeStructureNode = "structureNode"
)

// Event is one content change as the staging servers report it.
type Event struct {
	// SourceTime is the event's position in the log, identical on every
	// staging server and strictly increasing.
	SourceTime int64 `json:"sourceTime"`
	// Kind is KindDocument, KindNode or KindYellow, or a kind this client
	// does not know (at most MaxNameLen bytes).
	Kind string `json:"kind"`
	// ID is the document's ID ("story100"; "/politik" for a structure node).
	ID string `json:"id"`
	// UUID is the document's UUID, when it has one.
	UUID string `json:"uuid,omitempty"`
	// NodeType is "story", "image", "imageVariant", "structureNode", ….
	NodeType string `json:"nodeType,omitempty"`
	// State is StatePublished, StateOffline or StateDeleted, or a state
	// this client does not know (at most MaxNameLen bytes).
	State string `json:"state"`
	// ChangedProperties lists the properties that changed. nil means the
	// server did not say (treat as "everything changed"); an empty, non-nil
	// slice means that no property changed.
	ChangedProperties []string `json:"changedProperties,omitzero"`
}

// KnownKind reports whether kind is one of KindDocument, KindNode and
// KindYellow.
func KnownKind(kind string) bool { return validKinds[kind] }

// KnownState reports whether state is one of StatePublished, StateOffline
// and StateDeleted.
func KnownState(state string) bool { return validStates[state] }

// MaxNameLen bounds the kind and state of a decoded event: longer values
// (which no known one is) are cut to this many bytes at a UTF-8 boundary,
// so that an event of a kind or state nobody expected can still be
// logged, counted and passed over without carrying arbitrary data along.
const MaxNameLen = 64

// AllChanged reports whether the event must be taken to change every
// property (the server sent no property list).
func (e Event) AllChanged() bool { return e.ChangedProperties == nil }

// Page is one answer of GET /api/v1/events.
type Page struct {
	// Events are the events after the requested source time, in order.
	Events []Event `json:"events"`
	// SourceTime is the newest source time of the server that answered.
	SourceTime int64 `json:"sourceTime"`
}

// UpTo tells how far the page brings a reader: upTo is the source time up to
// which the reader has now seen every event, and more is true when the
// server has further events (the reader pages on from upTo).
//
// An empty page brings the reader up to the server's source time; a page
// whose last event reaches the server's source time does too. Otherwise the
// server returned fewer events than it has (a limit), and the reader pages
// on from the last event.
func (p Page) UpTo() (upTo int64, more bool) {
	if len(p.Events) == 0 {
		return p.SourceTime, false
	}
	last := p.Events[len(p.Events)-1].SourceTime
	if last >= p.SourceTime {
		return last, false
	}
	return last, true
}

// Document is a published document as the staging servers serve it.
type Document struct {
	ID         string         `json:"id"`
	UUID       string         `json:"uuid"`
	NodeType   string         `json:"nodeType"`
	State      string         `json:"state"`
	Modified   int64          `json:"modified"` // Unix ms
	SourceTime int64          `json:"sourceTime"`
	Properties map[string]any `json:"properties"`
}

// ModifiedTime is Modified as a time.
func (d *Document) ModifiedTime() time.Time { return time.UnixMilli(d.Modified) }

// VariantDef is an image variant definition (GET /api/v1/imagevariants).
type VariantDef struct {
	// Name is the variant's name as it appears in image URLs ("16x9-768").
	Name string `json:"name"`
	// Aspect is the aspect ratio ("16x9"); empty means the original's.
	Aspect string `json:"aspect"`
	// Width in pixels; 0 means it is taken from the URL's ?width=.
	Width int `json:"width"`
	// Modified is the definition's modification time (Unix ms).
	Modified int64 `json:"modified"`
}

// Binary is the original bytes of an image document. The caller must
// close Body.
type Binary struct {
	Body        io.ReadCloser
	Size        int64 // -1 when the server did not say
	ContentType string
}

// Limits on the size of JSON answers: far above anything sane, low enough
// that a broken server cannot make the edge allocate without bound.
const (
	maxPageBytes     = 64 << 20
	maxDocumentBytes = 16 << 20
	maxVariantsBytes = 4 << 20
)

var validKinds = map[string]bool{KindDocument: true, KindNode: true, KindYellow: true}
var validStates = map[string]bool{StatePublished: true, StateOffline: true, StateDeleted: true}

// wireEvent mirrors Event with pointers, so that missing required fields can
// be told apart from zero values.
type wireEvent struct {
	SourceTime        *int64   `json:"sourceTime"`
	Kind              *string  `json:"kind"`
	ID                *string  `json:"id"`
	UUID              string   `json:"uuid"`
	NodeType          string   `json:"nodeType"`
	State             *string  `json:"state"`
	ChangedProperties []string `json:"changedProperties"`
}

type wirePage struct {
	Events     *[]wireEvent `json:"events"`
	SourceTime *int64       `json:"sourceTime"`
}

// DecodePage decodes and checks an events answer for a request with the
// given since. It rejects anything that is not exactly one JSON object with
// an "events" array and a "sourceTime", events that lack a required field
// or have an empty kind or state, are not strictly ordered, or are not
// newer than since. Unknown fields are ignored. A kind or state the client
// does not know is no error: one such event must not hold up every later
// one, so it is passed on (cut to MaxNameLen bytes) for the caller to
// decide about (KnownKind, KnownState). Errors wrap ErrBadResponse.
func DecodePage(data []byte, since int64) (Page, error) {
	var w wirePage
	if err := decodeStrict(data, &w); err != nil {
		return Page{}, badResponse("events answer", err)
	}
	if w.SourceTime == nil {
		return Page{}, badResponse("events answer", errors.New(`missing "sourceTime"`))
	}
	if *w.SourceTime < 0 {
		return Page{}, badResponse("events answer", fmt.Errorf("negative sourceTime %d", *w.SourceTime))
	}
	if w.Events == nil {
		return Page{}, badResponse("events answer", errors.New(`missing "events" (or null)`))
	}
	p := Page{SourceTime: *w.SourceTime, Events: make([]Event, 0, len(*w.Events))}
	prev := since
	for i, we := range *w.Events {
		ev, err := we.check()
		if err != nil {
			return Page{}, badResponse("events answer", fmt.Errorf("event %d: %w", i, err))
		}
		if ev.SourceTime <= prev {
			if i == 0 {
				return Page{}, badResponse("events answer", fmt.Errorf("event 0: sourceTime %d is not after since=%d", ev.SourceTime, since))
			}
			return Page{}, badResponse("events answer", fmt.Errorf("event %d: sourceTime %d is not after the previous event's %d", i, ev.SourceTime, prev))
		}
		if ev.SourceTime > p.SourceTime {
			return Page{}, badResponse("events answer", fmt.Errorf("event %d: sourceTime %d is newer than the answer's sourceTime %d", i, ev.SourceTime, p.SourceTime))
		}
		prev = ev.SourceTime
		p.Events = append(p.Events, ev)
	}
	return p, nil
}

func (we wireEvent) check() (Event, error) {
	switch {
	case we.SourceTime == nil:
		return Event{}, errors.New(`missing "sourceTime"`)
	case *we.SourceTime <= 0:
		return Event{}, fmt.Errorf("sourceTime %d is not positive", *we.SourceTime)
	case we.Kind == nil:
		return Event{}, errors.New(`missing "kind"`)
	case *we.Kind == "":
		return Event{}, errors.New(`empty "kind"`)
	case we.ID == nil || *we.ID == "":
		return Event{}, errors.New(`missing "id"`)
	case we.State == nil:
		return Event{}, errors.New(`missing "state"`)
	case *we.State == "":
		return Event{}, errors.New(`empty "state"`)
	}
	for _, p := range we.ChangedProperties {
		if p == "" {
			return Event{}, errors.New("empty name in changedProperties")
		}
	}
	return Event{
		SourceTime:        *we.SourceTime,
		Kind:              cutName(*we.Kind),
		ID:                *we.ID,
		UUID:              we.UUID,
		NodeType:          we.NodeType,
		State:             cutName(*we.State),
		ChangedProperties: we.ChangedProperties,
	}, nil
}

// cutName cuts s to at most MaxNameLen bytes without splitting a UTF-8
// sequence.
func cutName(s string) string {
	if len(s) <= MaxNameLen {
		return s
	}
	n := MaxNameLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// DecodeDocument decodes and checks a document answer. Errors wrap
// ErrBadResponse.
func DecodeDocument(data []byte) (*Document, error) {
	var w struct {
		ID         *string        `json:"id"`
		UUID       string         `json:"uuid"`
		NodeType   string         `json:"nodeType"`
		State      string         `json:"state"`
		Modified   int64          `json:"modified"`
		SourceTime int64          `json:"sourceTime"`
		Properties map[string]any `json:"properties"`
	}
	if err := decodeStrict(data, &w); err != nil {
		return nil, badResponse("document", err)
	}
	if w.ID == nil || *w.ID == "" {
		return nil, badResponse("document", errors.New(`missing "id"`))
	}
	if w.SourceTime < 0 || w.Modified < 0 {
		return nil, badResponse("document", errors.New("negative time"))
	}
	if w.Properties == nil {
		w.Properties = map[string]any{}
	}
	return &Document{ID: *w.ID, UUID: w.UUID, NodeType: w.NodeType, State: w.State,
		Modified: w.Modified, SourceTime: w.SourceTime, Properties: w.Properties}, nil
}

// DecodeVariants decodes and checks an image variants answer. Errors wrap
// ErrBadResponse.
func DecodeVariants(data []byte) ([]VariantDef, error) {
	var defs *[]VariantDef
	if err := decodeStrict(data, &defs); err != nil {
		return nil, badResponse("image variants", err)
	}
	if defs == nil {
		return nil, badResponse("image variants", errors.New("null instead of an array"))
	}
	for i, d := range *defs {
		if d.Name == "" {
			return nil, badResponse("image variants", fmt.Errorf("definition %d has no name", i))
		}
		if d.Width < 0 {
			return nil, badResponse("image variants", fmt.Errorf("definition %q: negative width", d.Name))
		}
	}
	return *defs, nil
}

// decodeStrict decodes exactly one JSON value and refuses trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body")
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func badResponse(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrBadResponse, what, err)
}

// readLimited reads all of r, refusing more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", ErrBadResponse, limit)
	}
	return data, nil
}
