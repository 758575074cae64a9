package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden files of the Caddyfile adapt tests")

// TestCaddyfileAdapt adapts every testdata/adapt/*.caddyfile and compares
// the JSON with the golden file next to it. Files named *.error.caddyfile
// must fail, with the golden .txt being part of the message.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".caddyfile")
		t.Run(name, func(t *testing.T) {
			input, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := adapter.Adapt(input, map[string]any{"filename": filepath.Base(f)})
			if strings.HasSuffix(name, ".error") {
				golden := strings.TrimSuffix(f, ".caddyfile") + ".txt"
				if err == nil {
					t.Fatalf("adapted without error:\n%s", out)
				}
				if *update {
					writeGolden(t, golden, []byte(err.Error()+"\n"))
					return
				}
				want, _ := os.ReadFile(golden)
				if !strings.Contains(err.Error(), strings.TrimSpace(string(want))) {
					t.Fatalf("error %q does not contain %q", err, strings.TrimSpace(string(want)))
				}
				return
			}
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				writeGolden(t, golden, pretty.Bytes())
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestCaddyfileAdapt -update)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

func writeGolden(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
