package edgegroup

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/delivery-edge/edge/cache"
)

// GroupStatus is one group of edges as this edge sees it.
type GroupStatus struct {
	Name  string
	Peers []PeerStatus
}

// PeerStatus is one peer of a group: what waits for it in the outbox and
// when it last answered.
type PeerStatus struct {
	URL string // the peer's servlet URL
	// OutboxEntries and OutboxBytes are the flushes waiting to be
	// forwarded to the peer (for all its groups).
	OutboxEntries, OutboxBytes int64
	// LastForward is when the peer last confirmed a forwarded flush,
	// LastSync when it last answered a catch-up sync of this group; zero:
	// not since this configuration started.
	LastForward, LastSync time.Time
}

// peerStatus remembers when the peers last answered.
type peerStatus struct {
	mu      sync.Mutex
	forward map[string]time.Time    // peer -> last confirmed forward
	sync    map[[2]string]time.Time // group, peer -> last sync answer
}

func (s *peerStatus) forwarded(peer string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forward == nil {
		s.forward = map[string]time.Time{}
	}
	s.forward[peer] = at
}

func (s *peerStatus) synced(group, peer string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sync == nil {
		s.sync = map[[2]string]time.Time{}
	}
	s.sync[[2]string{group, peer}] = at
}

// Status returns every configured group with its peers, by name. The
// outbox figures need the engine: before Start they are zero, and err
// reports a registry that could not be read (the rest is still filled).
func (g *Groups) Status() (groups []GroupStatus, err error) {
	g.mu.Lock()
	eng := g.eng
	g.mu.Unlock()
	var outbox map[string]cache.SizeCount
	if eng != nil {
		var fs cache.FlushSizes
		fs, err = eng.FlushSizes()
		outbox = fs.Outbox
	}
	g.status.mu.Lock()
	defer g.status.mu.Unlock()
	for name, peers := range g.groups {
		gs := GroupStatus{Name: name, Peers: make([]PeerStatus, 0, len(peers))}
		for _, p := range peers {
			gs.Peers = append(gs.Peers, PeerStatus{URL: p, OutboxEntries: outbox[p].Entries, OutboxBytes: outbox[p].Bytes,
				LastForward: g.status.forward[p], LastSync: g.status.sync[[2]string{name, p}]})
		}
		groups = append(groups, gs)
	}
	slices.SortFunc(groups, func(a, b GroupStatus) int { return strings.Compare(a.Name, b.Name) })
	return groups, err
}

// Peers returns the servlet URL of every peer of every group, once each.
func (g *Groups) Peers() []string { return slices.Clone(g.peers) }
