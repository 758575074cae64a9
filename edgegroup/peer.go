package edgegroup

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/delivery-edge/edge/cache"
)

// syncOnce asks a peer for the flushes of a group since the last seen one
// and applies them.
func (g *Groups) syncOnce(ctx context.Context, eng *cache.Engine, group, peer string) (applied, listed int, since int64, err error) {
	pos, err := eng.SyncPosition(group, peer)
	if err != nil {
		return 0, 0, 0, err
	}
	since = max(0, pos-syncOverlap.Milliseconds())
	body, err := g.call(ctx, peer, url.Values{
		paramAction: {actionSync}, paramGroup: {group}, paramSince: {strconv.FormatInt(since, 10)}, paramForward: {"false"},
	}, maxSyncAnswer)
	if err != nil {
		return 0, 0, since, err
	}
	flushes, bad := parseSyncAnswer(body)
	if bad > 0 {
		g.log.Warn("peer's sync answer has malformed lines; skipped", zap.String("peer", peer), zap.Int("lines", bad))
	}
	applied, err = eng.ApplySync(group, peer, flushes)
	return applied, len(flushes), since, err
}

// call POSTs to a peer's servlet: the parameters in the query string, the
// password in the form body (so it stays out of access logs). Only a 2xx
// answer counts; its body is returned.
func (g *Groups) call(ctx context.Context, peer string, params url.Values, limit int64) ([]byte, error) {
	u, err := url.Parse(peer)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	var form url.Values
	if g.password != "" {
		form = url.Values{paramPassword: {g.password}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, fmt.Errorf("peer answered %s: %q", resp.Status, strings.TrimSpace(string(snippet)))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("peer's answer is larger than %d bytes", limit)
	}
	return body, nil
}

// forward delivers one flush to a peer, with forward=false (the peer
// never forwards it again) and the original timestamp.
func (g *Groups) forward(ctx context.Context, fw cache.Forward) error {
	_, err := g.call(ctx, fw.Peer, url.Values{
		paramAction: {actionFlush}, paramKey: {fw.Key}, paramGroup: {fw.Group},
		paramForward: {"false"}, paramTimestamp: {strconv.FormatInt(fw.Time, 10)},
	}, 4096)
	return err
}
