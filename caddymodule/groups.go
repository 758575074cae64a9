package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/delivery-edge/edge/edgegroup"
)

// servletPassword is the app's servlet password with placeholders
// replaced. A password that is configured but resolves to nothing (an
// unset environment variable) is an error: the servlet would be open.
func servletPassword(a *App) (string, error) {
	if a.ServletPassword == "" {
		return "", nil
	}
	pw := caddy.NewReplacer().ReplaceKnown(a.ServletPassword, "")
	if pw == "" {
		return "", fmt.Errorf("servlet_password %q resolves to an empty value (is the environment variable set?)", a.ServletPassword)
	}
	return pw, nil
}

// provisionGroups makes the app's edge groups (every app has them: they
// also prune the flush log) from its `servlet_password`, `group`,
// `flush_log_retention`, `flush_log_max_size` and `outbox_max_size`
// options, placeholders replaced. It connects to nothing.
func provisionGroups(a *App) (*edgegroup.Groups, error) {
	pw, err := servletPassword(a)
	if err != nil {
		return nil, err
	}
	repl := caddy.NewReplacer()
	peers := make(map[string][]string, len(a.Groups))
	for name, g := range a.Groups {
		urls := make([]string, len(g.Peers))
		for i, p := range g.Peers {
			urls[i] = repl.ReplaceKnown(p, "")
		}
		peers[name] = urls
	}
	return edgegroup.New(edgegroup.Config{
		Password:          pw,
		Peers:             peers,
		FlushLogRetention: timeDuration(a.FlushLogRetention),
		FlushLogMaxBytes:  a.FlushLogMaxSize,
		OutboxMaxBytes:    a.OutboxMaxSize,
		Logger:            a.log.Named("groups"),
	})
}

// GroupStats is one edge group in the Snapshot.
type GroupStats struct {
	Name  string      `json:"name"`
	Peers []PeerStats `json:"peers"`
}

// PeerStats is one peer of a group: the flushes waiting for it in the
// outbox (for all its groups) and when it last confirmed a forwarded
// flush and answered a catch-up sync of the group (absent: not since this
// config started).
type PeerStats struct {
	URL          string     `json:"url"`
	OutboxLength int64      `json:"outbox_length"`
	OutboxBytes  int64      `json:"outbox_bytes"`
	LastForward  *time.Time `json:"last_forward,omitempty"`
	LastSync     *time.Time `json:"last_sync,omitempty"`
}

// FlushLogStats is the flush log in the Snapshot.
type FlushLogStats struct {
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
}

// fillGroups adds the groups and the flush log to a Snapshot.
func (s *Snapshot) fillGroups(a *App) {
	if a.groups != nil {
		groups, _ := a.groups.Status() // without the registry, the outboxes count 0
		for _, g := range groups {
			gs := GroupStats{Name: g.Name, Peers: make([]PeerStats, 0, len(g.Peers))}
			for _, p := range g.Peers {
				gs.Peers = append(gs.Peers, PeerStats{URL: p.URL, OutboxLength: p.OutboxEntries,
					OutboxBytes: p.OutboxBytes, LastForward: timeOrNil(p.LastForward), LastSync: timeOrNil(p.LastSync)})
			}
			s.Groups = append(s.Groups, gs)
		}
	}
	if eng := a.engine.opened(); eng != nil {
		if sizes, err := eng.FlushSizes(); err == nil {
			s.FlushLog = &FlushLogStats{Entries: sizes.Log.Entries, Bytes: sizes.Log.Bytes}
		}
	}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
