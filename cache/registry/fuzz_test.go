package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// FuzzJournalRecord feeds records that never passed the registry's checks
// (as from an older edge, or written into the journal before a start)
// through the journal, its apply into a real bbolt file and a restart's
// replay. The invariant: such a record is either applied or moved aside,
// never left to block the journal or the start. The render path's half of
// these records (headers within the limits are stored exactly) is
// cache.FuzzRenderRecord.
func FuzzJournalRecord(f *testing.F) {
	f.Add(`"story100";props="topline title", "/politik";type=node`, `"k1", k2`, uint16(20), byte(0), uint8(1), false)
	f.Add(`"t";type=resource;hash="abc"`, `"a"`, uint16(2000), byte(3), uint8(100), true)
	f.Add(`"`+strings.Repeat("d", 1025)+`"`, `"`+strings.Repeat("k", 1024)+`"`, uint16(0), byte(4), uint8(40), true)
	f.Add(`"x", "y";type=yellow`, strings.Repeat("k", 600), uint16(1000), byte(1), uint8(60), false)
	f.Add("", "", uint16(0), byte(3), uint8(0), true)

	dir := f.TempDir()
	reg, err := Open(dir, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { reg.Close() })
	seq := 0

	f.Fuzz(func(t *testing.T, deps, keys string, fileLen uint16, kind byte, repeat uint8, restart bool) {
		seq++
		file := fmt.Sprintf("f%d/", seq)
		file += strings.Repeat("x", int(fileLen)%(longestFileName-len(file)+1))

		// The header values as one name each, repeated to reach bbolt's
		// limits.
		raw := Entry{Key: "/" + file + "raw", Created: 1700000000000, Keys: []string{strings.Repeat(keys, int(repeat))}}
		k := []DepKind{DepDocument, DepNode, DepYellow, DepResource, DepKey}[int(kind)%5]
		raw.Deps = []Dependency{{Kind: k, Name: strings.Repeat(deps, int(repeat)%3+1)}}
		if k == DepResource {
			raw.Deps[0].Hash = "h"
		}
		rawID := FileID{Root: 1, File: file + "raw"}
		storable := CheckEntry(rawID, &raw) == nil
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
			if reg, err = Open(dir, zap.NewNop()); err != nil {
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

// longestFileName is the longest file name the cache's mapping produces
// (cache.maxFileBytes).
const longestFileName = 2048
