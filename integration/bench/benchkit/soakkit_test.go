package benchkit

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 26
delivery_queue_length{queue="pregeneration"} 3
delivery_queue_length{queue="removal"} 0
process_resident_memory_bytes 8.4103168e+07
odd{label="a b} c"} 7 1700000000000
`))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		"go_goroutines": 26, `delivery_queue_length{queue="pregeneration"}`: 3,
		"process_resident_memory_bytes": 84103168, `odd{label="a b} c"}`: 7,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", k, got, ok, want)
		}
	}
	if got := m.Sum("delivery_queue_length"); got != 3 {
		t.Errorf("Sum = %v, want 3", got)
	}
	if _, err := ParseMetrics(strings.NewReader("broken\n")); err == nil {
		t.Error("a line without a value was accepted")
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(c.q)
		if math.Abs(float64(got-c.want)) > 0.021*float64(c.want) {
			t.Errorf("q%.2f = %v, want %v ± 2 %%", c.q, got, c.want)
		}
	}
	part := h.Swap()
	if part.Count() != 1000 || h.Count() != 0 || part.Max() != time.Second {
		t.Errorf("after Swap: part %d (max %v), rest %d", part.Count(), part.Max(), h.Count())
	}
	h.Merge(part)
	if h.Count() != 1000 || h.Quantile(1) != time.Second {
		t.Errorf("after Merge: %d, max %v", h.Count(), h.Quantile(1))
	}
	var empty Histogram
	if empty.Quantile(0.99) != 0 {
		t.Error("empty histogram has a quantile")
	}
}

func TestFitTrend(t *testing.T) {
	var flat, growing []Point
	for s := 0.0; s <= 600; s += 6 {
		flat = append(flat, Point{s, 100 + math.Sin(s)})
		growing = append(growing, Point{s, 100 + s/60*2}) // +2 a minute
	}
	if tr := FitTrend(flat, 200); math.Abs(tr.PctPerMinute) > 0.1 || tr.N != 67 {
		t.Errorf("flat: %+v", tr)
	}
	tr := FitTrend(growing, 200)
	if math.Abs(tr.SlopePerMin-2) > 1e-9 || math.Abs(tr.PctPerMinute-100*2/tr.Mean) > 1e-9 {
		t.Errorf("growing: %+v", tr)
	}
	if tr := FitTrend(growing[:2], 0); !math.IsNaN(tr.PctPerMinute) {
		t.Errorf("two points gave a trend: %+v", tr)
	}
}

func TestWritePanels(t *testing.T) {
	dir := t.TempDir()
	panels := []Panel{{Title: "rss", YLabel: "MB", Lines: []Line{{Name: "a",
		Segments: [][]Point{{{0, 1}, {1, 2}}, {{2, 1}, {3, 2}}}}, {Name: "b", Scatter: true,
		Segments: [][]Point{{{0, 3}, {1, 4}}}}}}, {Title: "empty"}}
	for _, name := range []string{"p.svg", "p.png"} {
		if err := WritePanels(filepath.Join(dir, name), "t", panels); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := WritePanels(filepath.Join(dir, "p.gif"), "t", panels); err == nil {
		t.Error("a .gif was written")
	}
}

func TestProcFigures(t *testing.T) {
	pid := os.Getpid()
	if rss, err := ProcRSS(pid); err != nil || rss <= 0 {
		t.Errorf("ProcRSS: %d, %v", rss, err)
	}
	if n, err := ProcOpenFiles(pid); err != nil || n < 3 {
		t.Errorf("ProcOpenFiles: %d, %v", n, err)
	}
	before, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); { // burn some CPU
	}
	if after, err := ProcCPU(pid); err != nil || after <= before {
		t.Errorf("ProcCPU did not grow: %v → %v, %v", before, after, err)
	}
	if _, err := LoadAverage(); err != nil {
		t.Error(err)
	}
}
