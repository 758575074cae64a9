// Command sample-origin plays the CMS behind the delivery edge for demos and
// end-to-end tests: a render backend for a small news site, and (on its own
// port) the staging API with its admin API. See package origin.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/delivery-edge/edge/integration/origin"
)

func main() {
	renderAddr := flag.String("render", "127.0.0.1:9000", "listen address of the render backend")
	stagingAddr := flag.String("staging", "127.0.0.1:1196", "listen address of the staging API (with /admin/)")
	latency := flag.Duration("latency", 0, "added to every render")
	ssi := flag.Bool("ssi", false, "section pages include teasers as SSI fragments")
	replicas := flag.Int("replicas", 2, "staging replicas behind the balancer")
	lag := flag.Duration("lag", 0, "how far each replica lags behind the primary")
	token := flag.String("token", origin.DemoToken, "the access token the staging API accepts")
	flag.Parse()

	content := origin.NewContent()
	origin.SeedDemo(content)
	render := origin.NewRender(content, origin.RenderConfig{Latency: *latency, SSI: *ssi})
	staging := origin.NewStaging(content, origin.StagingConfig{Replicas: *replicas, Lag: *lag, Tokens: []string{*token}})
	defer staging.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	servers := []*http.Server{
		serve(ctx, "render backend", *renderAddr, render),
		serve(ctx, "staging API", *stagingAddr, staging),
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdown)
	}
}

func serve(ctx context.Context, name, addr string, h http.Handler) *http.Server {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	log.Printf("%s listening on http://%s", name, ln.Addr())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("%s: %v", name, err)
		}
	}()
	return srv
}
