package caddymodule

import (
	"fmt"

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
// also prune the flush log) from its `servlet_password`, `group` and
// `flush_log_retention` options, placeholders replaced. It connects to
// nothing.
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
		Logger:            a.log.Named("groups"),
	})
}
