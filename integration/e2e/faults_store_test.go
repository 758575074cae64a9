package e2e

import (
	"bytes"
	"encoding/json"
	"image"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/delivery-edge/edge/integration/faults"
	"github.com/delivery-edge/edge/integration/harness"
	"github.com/delivery-edge/edge/integration/origin"
	"github.com/delivery-edge/edge/integration/versitygw"
)

// Faults on the link between the image service and its S3 store (see
// faults_test.go for the other partners).

// s3StoreVia is the S3 image store block of s, reached at endpoint.
func s3StoreVia(s *versitygw.Server, endpoint string) string {
	return strings.Replace(s3StoreBlock(s), "\nendpoint "+s.Endpoint+"\n", "\nendpoint "+endpoint+"\n", 1)
}

// imageStoreEdge is an image edge whose S3 store is reached through a
// fault proxy, with the image service's state_ttl (empty: default), and
// four variants stored and held in memory.
func imageStoreEdge(t *testing.T, stateTTL string) (*versitygw.Server, *faults.Proxy, *imageOrigin, *harness.Edge, []string) {
	t.Helper()
	s3 := versitygw.Start(t, versitygw.Options{})
	px := faults.StartForTest(t, strings.TrimPrefix(s3.Endpoint, "http://"))
	o := startImageOrigin(t, nil)
	route := imageRoute
	if stateTTL != "" {
		route = strings.Replace(route, "short_max_age 1m", "short_max_age 1m\nstate_ttl "+stateTTL, 1)
	}
	e := harness.StartEdge(t, harness.EdgeOptions{Origin: o.RenderAddr, Global: o.stagingBlock() + "\n" + s3StoreVia(s3, px.URL()),
		Route: route})
	var hits []string
	for n := range 4 {
		hits = append(hits, o.imageURL(t, origin.ImageID(n), "16x9-768", "jpg", 0))
	}
	for _, u := range hits {
		if status, _, _ := harness.Get(t, nil, e.URL()+u); status != 200 {
			t.Fatalf("%s: %d", u, status)
		}
	}
	return s3, px, o, e, hits
}

// TestFaultsImageStore: latency and resets on the link to the S3 store.
// Variants held in memory are served as before (their state records are
// trusted for state_ttl, here longer than the test); misses answer 503
// while the store cannot be reached and 200 once it can; every object
// stored is whole.
func TestFaultsImageStore(t *testing.T) {
	s3, px, o, e, hits := imageStoreEdge(t, "1m")
	miss := func(n int) string { return o.imageURL(t, origin.ImageID(n), "4x3", "webp", 320) }

	const workers = 4
	before := hitLoad(e.URL(), hits, workers, 2*time.Second, nil)
	stop := make(chan struct{})
	loaded := make(chan loadRun, 1)
	go func() { loaded <- hitLoad(e.URL(), hits, workers, time.Minute, stop) }()

	// Latency: misses are slow, but answered.
	px.Add(faults.Latency(300*time.Millisecond, 100*time.Millisecond))
	px.Add(faults.Latency(300*time.Millisecond, 100*time.Millisecond).On(faults.Upstream))
	start := time.Now()
	status, _, _ := harness.Get(t, nil, e.URL()+miss(4))
	t.Logf("miss with store latency 300±100ms each way: %d after %v", status, time.Since(start).Round(time.Millisecond))
	if status != 200 {
		t.Errorf("miss with a slow store: %d, want 200", status)
	}
	px.Clear()

	// Resets: misses fail with 503 and no internals.
	px.Add(faults.ResetPeer(0))
	px.Add(faults.ResetPeer(0).On(faults.Upstream))
	for n := 5; n < 8; n++ {
		status, h, body := harness.Get(t, nil, e.URL()+miss(n))
		if status != http.StatusServiceUnavailable || h.Get("Cache-Control") != "no-store" || strings.Contains(body, "127.0.0.1") {
			t.Errorf("miss with resets: %d %q %q, want 503 no-store", status, h.Get("Cache-Control"), body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(time.Second)
	px.Clear()
	close(stop)
	with := <-loaded
	after := hitLoad(e.URL(), hits, workers, 2*time.Second, nil)
	checkP99(t, "image hits from memory while the store link is faulty", before, with, after)

	for n := 5; n < 8; n++ {
		waitStatus(t, e.URL()+miss(n), 200, 15*time.Second)
	}
	checkStoredObjects(t, s3)
	st := px.Stats()
	t.Logf("proxy %+v", st)
	if st.Resets == 0 {
		t.Errorf("the resets did not bite: %+v", st)
	}
}

// TestFaultsImageStoreHitsOutlastStateTTL: with the default state_ttl
// (1s) a variant held in memory needs its image's state record from the
// store once a second; while the store resets, the expired record is
// served (imaging.MemoryCache, StaleIfError), so hits from memory are not
// affected.
func TestFaultsImageStoreHitsOutlastStateTTL(t *testing.T) {
	_, px, _, e, hits := imageStoreEdge(t, "")
	px.Add(faults.ResetPeer(0))
	px.Add(faults.ResetPeer(0).On(faults.Upstream))
	with := hitLoad(e.URL(), hits, 4, 3*time.Second, nil)
	px.Clear()
	t.Logf("image hits while the store resets, state_ttl 1s: %v", with)
	if with.failed > 0 {
		t.Errorf("%d of %d hits from memory failed while the store was unreachable; first: %s", with.failed, len(with.lat), with.firstErr)
	}
}

// checkStoredObjects reads every object of the bucket directly (not
// through the proxy): images must decode whole, JSON records must parse.
func checkStoredObjects(t *testing.T, s *versitygw.Server) {
	t.Helper()
	client := s.S3Client()
	list, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	images := 0
	for _, obj := range list.Contents {
		out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: obj.Key})
		if err != nil {
			t.Fatalf("%s: %v", *obj.Key, err)
		}
		data, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", *obj.Key, err)
		}
		switch ct := aws.ToString(out.ContentType); {
		case strings.HasPrefix(*obj.Key, "var/"): // index markers, empty
		case strings.HasPrefix(ct, "image/"):
			if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
				t.Errorf("stored %s (%s, %d bytes) does not decode: %v", *obj.Key, ct, len(data), err)
			}
			images++
		case !json.Valid(data):
			t.Errorf("stored %s (%s) is not valid JSON: %q", *obj.Key, ct, data[:min(len(data), 80)])
		}
	}
	t.Logf("%d stored objects checked, %d images, all whole", len(list.Contents), images)
	if images < 4 {
		t.Errorf("only %d images stored", images)
	}
}
