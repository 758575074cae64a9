package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// FuzzRenderRecord feeds backend headers through everything a render's
// record passes: ParseRenderInfo, the entry, the registry's checks, the
// journal and its apply into a real bbolt file, and a restart's replay.
// The invariants: an answer within the limits is stored exactly; a record
// that bypassed the checks (as from an older edge, or written into the
// journal before a start) is either applied or moved aside, never left to
// block the journal or the start.
func FuzzRenderRecord(f *testing.F) {
	f.Add(`"story100";props="topline title", "/politik";type=node`, `"k1", k2`, uint16(20), byte(0), uint8(1), false)
	f.Add(`"t";type=resource;hash="abc"`, `"a"`, uint16(2000), byte(3), uint8(100), true)
	f.Add(`"`+strings.Repeat("d", 1025)+`"`, `"`+strings.Repeat("k", 1024)+`"`, uint16(0), byte(4), uint8(40), true)
	f.Add(`"x", "y";type=yellow`, strings.Repeat("k", 600), uint16(1000), byte(1), uint8(60), false)
	f.Add("", "", uint16(0), byte(3), uint8(0), true)

	dir := f.TempDir()
	reg, err := OpenRegistry(dir, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { reg.Close() })
	seq := 0

	f.Fuzz(func(t *testing.T, deps, keys string, fileLen uint16, kind byte, repeat uint8, restart bool) {
		seq++
		file := fmt.Sprintf("f%d/", seq)
		file += strings.Repeat("x", int(fileLen)%(maxFileBytes-len(file)+1))
		id := FileID{Root: 1, File: file}
		h := http.Header{}
		if deps != "" {
			h.Set(HeaderDependencies, deps)
		}
		if keys != "" {
			h.Set(HeaderCacheKeys, keys)
		}

		// The render path: what ParseRenderInfo accepts is stored as is.
		if info, err := ParseRenderInfo(h, time.Unix(1700000000, 0)); err == nil {
			if len(info.Deps) > MaxDependencies || len(info.Keys) > MaxCacheKeys {
				t.Fatalf("%d dependencies, %d keys accepted", len(info.Deps), len(info.Keys))
			}
			for _, k := range info.Keys {
				if k == "" || len(k) > MaxNameBytes {
					t.Fatalf("key of %d bytes accepted", len(k))
				}
			}
			for _, d := range info.Deps {
				if checkDependencySizes(d) != nil {
					t.Fatalf("dependency beyond the limits accepted: %.100v", d)
				}
			}
			e := Entry{Key: "/" + file, Created: 1700000000000, Deps: info.Deps, Keys: info.Keys}
			if err := reg.Put(id, e); err != nil {
				t.Fatalf("an answer within the limits was refused by the registry: %v", err)
			}
			rejected := reg.JournalRejected()
			syncWithin(t, reg, 20*time.Second)
			got, ok, err := reg.Get(id)
			if err != nil || !ok || !bytes.Equal(marshalEntry(&got), marshalEntry(&e)) {
				t.Fatalf("stored entry: %v %v\n got %+v\nwant %+v", ok, err, got, e)
			}
			if reg.JournalRejected() != rejected {
				t.Fatal("a checked record was moved aside")
			}
		}

		// A record that never passed the checks: the header values as one
		// name each, repeated to reach bbolt's limits.
		raw := Entry{Key: "/" + file + "raw", Created: 1700000000000, Keys: []string{strings.Repeat(keys, int(repeat))}}
		k := []DepKind{DepDocument, DepNode, DepYellow, DepResource, DepKey}[int(kind)%5]
		raw.Deps = []Dependency{{Kind: k, Name: strings.Repeat(deps, int(repeat)%3+1)}}
		if k == DepResource {
			raw.Deps[0].Hash = "h"
		}
		rawID := FileID{Root: 1, File: file + "raw"}
		storable := checkEntry(rawID, &raw) == nil
		rejected := reg.JournalRejected()
		if restart {
			// Written into the journal of a stopped edge, replayed at start.
			reg.mu.Lock()
			next := reg.journal.lastSeq() + 1
			reg.mu.Unlock()
			if err := reg.Close(); err != nil {
				t.Fatal(err)
			}
			line, err := json.Marshal(journalRecord{Seq: next, Root: rawID.Root, File: rawID.File, Entry: &raw})
			if err != nil {
				t.Fatal(err)
			}
			j, err := os.OpenFile(filepath.Join(dir, "journal.log"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, werr := j.Write(append(line, '\n'))
			if err := j.Close(); werr != nil || err != nil {
				t.Fatal(werr, err)
			}
			if reg, err = OpenRegistry(dir, zap.NewNop()); err != nil {
				t.Fatalf("a journal record stopped the start: %v", err)
			}
			rejected = 0 // counted since the start
		} else {
			if err := reg.submit(rawID, &raw); err != nil {
				t.Fatal(err)
			}
			syncWithin(t, reg, 20*time.Second)
		}
		_, applied, err := reg.Get(rawID)
		if err != nil {
			t.Fatal(err)
		}
		moved := reg.JournalRejected() - rejected
		switch {
		case storable && (!applied || moved != 0):
			t.Fatalf("storable record: applied %v, moved aside %d", applied, moved)
		case !storable && (applied || moved != 1):
			t.Fatalf("unstorable record: applied %v, moved aside %d", applied, moved)
		}
		if reg.journal.appliedSeq() != reg.journal.lastSeq() {
			t.Fatalf("journal stuck at %d of %d", reg.journal.appliedSeq(), reg.journal.lastSeq())
		}
	})
}
