// Package origin is the project's sample origin: a small program that plays
// the CMS for demos and end-to-end tests. It has three faces that share one
// in-memory content store:
//
//   - a render backend (HTML pages, sections, teaser fragments) that reports
//     its dependencies in the Delivery-* response headers (render.go);
//   - the staging API of docs/staging-api.md (events, documents, binaries, image
//     variants), served by N replicas with configurable lag behind a
//     round-robin balancer (staging*.go);
//   - an admin API to publish, change, take offline and delete content.
//
// Nothing here is used by the edge itself; it only talks to it over HTTP.
package origin

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Document states as the staging API reports them.
const (
	StatePublished = "published"
	StateOffline   = "offline"
	StateDeleted   = "deleted"
)

// Event kinds of the staging API.
const (
	KindDocument = "document"
	KindNode     = "node"
	KindYellow   = "yellow"
)

// Document is one CMS document version. Structure nodes are documents too
// (NodeType "structureNode", ID like "/politik").
type Document struct {
	ID         string         `json:"id"`
	UUID       string         `json:"uuid"`
	NodeType   string         `json:"nodeType"`
	State      string         `json:"state"`
	Modified   int64          `json:"modified"`
	SourceTime int64          `json:"sourceTime"`
	Properties map[string]any `json:"properties"`
}

// Event is one entry of the event log, in the wire format of docs/staging-api.md.
type Event struct {
	SourceTime        int64    `json:"sourceTime"`
	Kind              string   `json:"kind"`
	ID                string   `json:"id"`
	UUID              string   `json:"uuid,omitempty"`
	NodeType          string   `json:"nodeType,omitempty"`
	State             string   `json:"state"`
	ChangedProperties []string `json:"changedProperties,omitempty"`
}

// VariantDef is an image variant definition (GET /api/v1/imagevariants).
type VariantDef struct {
	Name     string `json:"name"`
	Aspect   string `json:"aspect"`
	Width    int    `json:"width"`
	Modified int64  `json:"modified"`
}

// Content is the versioned content store with its event log. Every change
// gets a new, strictly increasing source time; a view "as of" a source time
// shows what a replica that has applied the log up to that time would see.
type Content struct {
	mu       sync.RWMutex
	changed  *sync.Cond            // broadcast on every new event (long poll)
	last     int64                 // newest source time handed out
	history  map[string][]Document // by ID, oldest first
	uuids    map[string]string     // UUID -> ID
	events   []Event
	binaries map[string][]byte // image UUID -> original bytes
	variants []VariantDef
	now      func() time.Time
}

// NewContent returns an empty store.
func NewContent() *Content {
	c := &Content{
		history:  map[string][]Document{},
		uuids:    map[string]string{},
		binaries: map[string][]byte{},
		now:      time.Now,
	}
	c.changed = sync.NewCond(c.mu.RLocker())
	return c
}

// nextSourceTime must be called with c.mu held for writing.
func (c *Content) nextSourceTime() int64 {
	st := c.now().UnixMilli()
	if st <= c.last {
		st = c.last + 1
	}
	c.last = st
	return st
}

// LastSourceTime is the newest source time of the store (the primary's).
func (c *Content) LastSourceTime() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.last
}

// Put stores a new version of a document (published unless doc.State says
// otherwise) and appends its event. changed lists the changed properties;
// nil means unknown (every property). It returns the event.
func (c *Content) Put(doc Document, changed []string) Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.nextSourceTime()
	if doc.State == "" {
		doc.State = StatePublished
	}
	doc.SourceTime = st
	doc.Modified = st
	doc.Properties = maps.Clone(doc.Properties)
	c.history[doc.ID] = append(c.history[doc.ID], doc)
	if doc.UUID != "" {
		c.uuids[doc.UUID] = doc.ID
	}
	ev := Event{
		SourceTime:        st,
		Kind:              kindOf(doc.NodeType),
		ID:                doc.ID,
		UUID:              doc.UUID,
		NodeType:          doc.NodeType,
		State:             doc.State,
		ChangedProperties: slices.Clone(changed),
	}
	c.events = append(c.events, ev)
	c.changed.Broadcast()
	return ev
}

// Update changes properties of the latest version of a document and
// publishes it with exactly those properties reported as changed. ok is
// false when the document does not exist.
func (c *Content) Update(id string, props map[string]any) (Event, bool) {
	doc, ok := c.Latest(id)
	if !ok {
		return Event{}, false
	}
	if doc.Properties == nil {
		doc.Properties = map[string]any{}
	}
	changed := make([]string, 0, len(props))
	for k, v := range props {
		doc.Properties[k] = v
		changed = append(changed, k)
	}
	slices.Sort(changed)
	doc.State = StatePublished
	return c.Put(doc, changed), true
}

// SetState takes a document offline or deletes it (or republishes it with
// every property reported as changed).
func (c *Content) SetState(id, state string) (Event, bool) {
	doc, ok := c.Latest(id)
	if !ok {
		return Event{}, false
	}
	doc.State = state
	return c.Put(doc, nil), true
}

// Yellow records a change of a document's yellow data.
func (c *Content) Yellow(id string) (Event, bool) {
	doc, ok := c.Latest(id)
	if !ok {
		return Event{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := Event{SourceTime: c.nextSourceTime(), Kind: KindYellow, ID: doc.ID, UUID: doc.UUID,
		NodeType: doc.NodeType, State: doc.State}
	c.events = append(c.events, ev)
	c.changed.Broadcast()
	return ev, true
}

func kindOf(nodeType string) string {
	if nodeType == "structureNode" {
		return KindNode
	}
	return KindDocument
}

// Latest returns the newest version of a document by ID or UUID, whatever
// its state.
func (c *Content) Latest(idOrUUID string) (Document, bool) {
	return c.AsOf(idOrUUID, -1)
}

// AsOf returns the newest version of a document (by ID or UUID) whose source
// time is at most asOf (asOf < 0: the newest), whatever its state.
func (c *Content) AsOf(idOrUUID string, asOf int64) (Document, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id := idOrUUID
	if mapped, ok := c.uuids[idOrUUID]; ok {
		id = mapped
	}
	versions := c.history[id]
	for i := len(versions) - 1; i >= 0; i-- {
		if asOf < 0 || versions[i].SourceTime <= asOf {
			d := versions[i]
			d.Properties = maps.Clone(d.Properties)
			return d, true
		}
	}
	return Document{}, false
}

// IDs lists the IDs of every document ever stored, sorted.
func (c *Content) IDs() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.history))
}

// EventsAfter returns up to limit events with since < sourceTime <= upTo
// (upTo < 0: no upper bound), in order.
func (c *Content) EventsAfter(since, upTo int64, limit int) []Event {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.eventsAfterLocked(since, upTo, limit)
}

func (c *Content) eventsAfterLocked(since, upTo int64, limit int) []Event {
	i, _ := slices.BinarySearchFunc(c.events, since+1, func(e Event, t int64) int {
		switch {
		case e.SourceTime < t:
			return -1
		case e.SourceTime > t:
			return 1
		}
		return 0
	})
	var out []Event
	for ; i < len(c.events) && len(out) < limit; i++ {
		if upTo >= 0 && c.events[i].SourceTime > upTo {
			break
		}
		out = append(out, c.events[i])
	}
	return out
}

// WaitForEvent blocks until an event newer than since exists or the deadline
// passes; it returns false on timeout. The caller checks the events itself.
func (c *Content) WaitForEvent(since int64, deadline time.Time) bool {
	stop := time.AfterFunc(time.Until(deadline), func() {
		c.mu.Lock() // wake the waiters so they notice the deadline
		c.changed.Broadcast()
		c.mu.Unlock()
	})
	defer stop.Stop()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for c.last <= since {
		if !time.Now().Before(deadline) {
			return false
		}
		c.changed.Wait()
	}
	return true
}

// SetBinary stores the original bytes of an image document.
func (c *Content) SetBinary(uuid string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.binaries[uuid] = data
}

// Binary returns the original bytes of an image document.
func (c *Content) Binary(uuid string) ([]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	b, ok := c.binaries[uuid]
	return b, ok
}

// SetVariants replaces the image variant definitions. Each definition that
// is new or changed gets the current time as its modification time and is
// reported as an event of node type "imageVariant".
func (c *Content) SetVariants(defs []VariantDef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := map[string]VariantDef{}
	for _, d := range c.variants {
		old[d.Name] = d
	}
	next := make([]VariantDef, 0, len(defs))
	for _, d := range defs {
		prev, existed := old[d.Name]
		if existed && prev.Aspect == d.Aspect && prev.Width == d.Width {
			d.Modified = prev.Modified
		} else {
			st := c.nextSourceTime()
			d.Modified = st
			c.events = append(c.events, Event{SourceTime: st, Kind: KindDocument, ID: "imagevariant-" + d.Name,
				NodeType: "imageVariant", State: StatePublished})
		}
		next = append(next, d)
	}
	c.variants = next
	c.changed.Broadcast()
}

// Variants returns the image variant definitions.
func (c *Content) Variants() []VariantDef {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.variants)
}
