// Package stagingtest serves the sample origin's staging API to the unit
// tests of the packages that read it through a staging client.
package stagingtest

import (
	"net/http/httptest"
	"testing"

	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/stagingclient"
)

// Serve serves the staging API over c on 127.0.0.1 and returns a client
// for it (at most two attempts per request); both are closed when the test
// ends.
func Serve(t testing.TB, c *origin.Content) *stagingclient.Client {
	t.Helper()
	st := origin.NewStaging(c, origin.StagingConfig{})
	srv := httptest.NewServer(st)
	t.Cleanup(func() { st.Close(); srv.Close() })
	client, err := stagingclient.New(stagingclient.Config{BaseURLs: []string{srv.URL}, Token: origin.DemoToken, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

// Demo is Serve over the demo content.
func Demo(t testing.TB) (*origin.Content, *stagingclient.Client) {
	t.Helper()
	c := origin.NewContent()
	origin.SeedDemo(c)
	return c, Serve(t, c)
}
