package cache

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

func testEntry(n int) *hotEntry { return &hotEntry{body: make([]byte, n)} }

func TestHotSetFillGetInvalidate(t *testing.T) {
	h := NewHotSet(1<<20, 64<<10, DefaultHotValid)
	ep := h.epoch("a.html")
	h.fill("a.html", testEntry(1000), ep)
	if h.get("a.html") == nil {
		t.Fatal("filled entry not found")
	}
	h.invalidate("a.html")
	if h.get("a.html") != nil {
		t.Fatal("invalidated entry still served")
	}
	// A fill that read the file before an invalidation is not kept.
	ep = h.epoch("a.html")
	h.invalidate("a.html")
	h.fill("a.html", testEntry(1000), ep)
	if h.get("a.html") != nil {
		t.Fatal("stale fill kept")
	}
	if st := h.Stats(); st.Rejected != 1 || st.Fills != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHotSetStaysWithinBudget(t *testing.T) {
	h := NewHotSet(100_000, 20_000, DefaultHotValid)
	for i := range 1000 {
		name := fmt.Sprintf("p%d.html", i%200)
		if h.get(name) == nil {
			h.fill(name, testEntry(5000), h.epoch(name))
		}
	}
	if b := h.Stats().Bytes; b > 100_000 || b <= 0 {
		t.Fatalf("bytes held %d, budget 100000", b)
	}
	var held int
	for i := range h.shards {
		held += mapLen(h.shards[i].m.Load())
	}
	if held == 0 || held > 100_000/5000 {
		t.Fatalf("%d entries held", held)
	}
}

// TestHotSetCoherentUnderRace reads, fills and invalidates the same files
// from many goroutines: after an invalidation of a version has returned,
// no read may return that version.
func TestHotSetCoherentUnderRace(t *testing.T) {
	h := NewHotSet(1<<20, 64<<10, DefaultHotValid)
	const files = 8
	var versions [files]atomic.Int64 // the newest version on "disk"
	var invalidated [files]atomic.Int64
	stop := time.Now().Add(500 * time.Millisecond)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for time.Now().Before(stop) {
				i := rng.IntN(files)
				name := fmt.Sprintf("f%d", i)
				if w == 0 && rng.IntN(4) == 0 { // the writer: new version, then invalidate
					versions[i].Add(1)
					h.invalidate(name)
					invalidated[i].Store(versions[i].Load())
					continue
				}
				floor := invalidated[i].Load()
				if e := h.get(name); e != nil {
					if v := int64(len(e.body)); v < floor {
						t.Errorf("%s: served version %d after version %d was invalidated", name, v, floor)
						return
					}
					continue
				}
				ep := h.epoch(name)
				v := versions[i].Load() // "read the file"
				h.fill(name, testEntry(int(v)), ep)
			}
		}()
	}
	wg.Wait()
}

// zipfKeys returns a Zipf-like request sequence over n files.
func zipfKeys(n, count int, s float64, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	z := newZipfSampler(rng, s, n)
	out := make([]int, count)
	for i := range out {
		out[i] = z()
	}
	return out
}

// newZipfSampler draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s.
func newZipfSampler(rng *rand.Rand, s float64, n int) func() int {
	cdf := make([]float64, n)
	sum := 0.0
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	return func() int {
		x := rng.Float64() * sum
		lo, hi := 0, n-1
		for lo < hi {
			mid := (lo + hi) / 2
			if cdf[mid] < x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		return lo
	}
}

// BenchmarkHotSetPolicy compares the hot set's S3-FIFO with ristretto on
// a Zipf request mix over 20,000 pages of 20–60 KB with a budget that
// holds about a tenth of them: hit ratio and throughput (lookups and
// fills from all cores).
func BenchmarkHotSetPolicy(b *testing.B) {
	const pages, budget = 20_000, 80 << 20
	sizes := make([]int, pages)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range sizes {
		sizes[i] = 20<<10 + rng.IntN(40<<10)
	}
	names := make([]string, pages)
	for i := range names {
		names[i] = fmt.Sprintf("section%d/story%d.html", i%50, i)
	}
	for _, s := range []float64{0.8, 1.0, 1.2} {
		keys := zipfKeys(pages, 400_000, s, 9)
		b.Run(fmt.Sprintf("s3fifo/zipf%.1f", s), func(b *testing.B) {
			var hits, total atomic.Int64
			for range b.N {
				h := NewHotSet(budget, 1<<20, DefaultHotValid)
				runMix(keys, func(k int) bool {
					if h.get(names[k]) != nil {
						return true
					}
					h.fill(names[k], testEntry(sizes[k]), h.epoch(names[k]))
					return false
				}, &hits, &total)
			}
			b.ReportMetric(float64(hits.Load())/float64(total.Load()), "hit-ratio")
			b.ReportMetric(float64(total.Load())/b.Elapsed().Seconds(), "lookups/s")
		})
		b.Run(fmt.Sprintf("ristretto/zipf%.1f", s), func(b *testing.B) {
			var hits, total atomic.Int64
			for range b.N {
				c, err := ristretto.NewCache(&ristretto.Config[string, *hotEntry]{
					NumCounters: pages * 10, MaxCost: budget, BufferItems: 64})
				if err != nil {
					b.Fatal(err)
				}
				runMix(keys, func(k int) bool {
					if _, ok := c.Get(names[k]); ok {
						return true
					}
					c.Set(names[k], testEntry(sizes[k]), int64(sizes[k]))
					return false
				}, &hits, &total)
				c.Close()
			}
			b.ReportMetric(float64(hits.Load())/float64(total.Load()), "hit-ratio")
			b.ReportMetric(float64(total.Load())/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}

// runMix replays the request mix on two goroutines (the machine's cores).
func runMix(keys []int, lookup func(int) bool, hits, total *atomic.Int64) {
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h, n int64
			for i := w; i < len(keys); i += 2 {
				if lookup(keys[i]) {
					h++
				}
				n++
			}
			hits.Add(h)
			total.Add(n)
		}()
	}
	wg.Wait()
}
