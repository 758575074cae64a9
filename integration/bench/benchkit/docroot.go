package benchkit

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// StoryDocroot writes n story pages of minKB to maxKB kilobytes into dir
// (five section folders, like the anchors' docroot) and returns their URL
// paths. The content is deterministic.
func StoryDocroot(tb testing.TB, dir string, n, minKB, maxKB int) []string {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	sections := []string{"politik", "sport", "wirtschaft", "kultur", "wissen"}
	paths := make([]string, 0, n)
	para := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 8)
	for i := range n {
		sec := sections[i%len(sections)]
		name := fmt.Sprintf("%s/story%d.html", sec, 1000+i)
		size := (minKB + rng.IntN(maxKB-minKB+1)) * 1024
		var b strings.Builder
		fmt.Fprintf(&b, "<!DOCTYPE html><html><head><title>Story %d</title></head><body><article>\n", i)
		for b.Len() < size-40 {
			fmt.Fprintf(&b, "<p>%d %s</p>\n", rng.IntN(1e6), para)
		}
		b.WriteString("</article></body></html>\n")
		page := b.String()
		if len(page) > size {
			page = page[:size]
		}
		full := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(page), 0o644); err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, "/"+name)
	}
	return paths
}
