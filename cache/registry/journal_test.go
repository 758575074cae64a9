package registry

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// syncWithin is Registry.Sync with a deadline: a journal that cannot make
// progress fails the test instead of hanging it.
func syncWithin(t *testing.T, r *Registry, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		r.Sync()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("the registry journal made no progress in %v", d)
	}
}

// rejectedLines reads journal.rejected.
func rejectedLines(t *testing.T, dir string) []rejection {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, JournalRejectedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []rejection
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r rejection
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", JournalRejectedFile, err)
		}
		out = append(out, r)
	}
	return out
}

func keyEntry(file string, keys ...string) Entry {
	return Entry{Key: "/" + file, Created: time.Now().UnixMilli(), Keys: keys}
}

// TestJournalMovesAsideUnstorableRecords: a record bbolt refuses (here
// one that reached the journal without the checks, as from an older
// edge) is moved aside by the writer; the records around it are applied.
func TestJournalMovesAsideUnstorableRecords(t *testing.T) {
	dir := t.TempDir()
	core, logs := observer.New(zapcore.DebugLevel)
	r, err := Open(dir, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	huge := strings.Repeat("k", 40000)
	for _, rec := range []struct {
		file string
		keys []string
	}{{"a.html", []string{"a"}}, {"b.html", []string{huge}}, {"c.html", []string{"c"}}, {"d.html", []string{huge, "d"}}} {
		e := keyEntry(rec.file, rec.keys...)
		if err := r.submit(FileID{1, rec.file}, &e); err != nil { // no CheckEntry, unlike Put
			t.Fatal(err)
		}
	}
	syncWithin(t, r, 10*time.Second)
	for key, want := range map[string][]string{"a": {"a.html"}, "c": {"c.html"}, "d": nil, huge: nil} {
		if got := findFiles(t, r, DepKey, key); !slices.Equal(got, want) {
			t.Errorf("key %.10s: %v, want %v", key, got, want)
		}
	}
	if _, ok, _ := r.Get(FileID{1, "b.html"}); ok || r.HasPending(FileID{1, "b.html"}) {
		t.Error("the refused record is still visible")
	}
	if n := r.JournalRejected(); n != 2 {
		t.Errorf("JournalRejected = %d, want 2", n)
	}
	lines := rejectedLines(t, dir)
	if len(lines) != 2 || lines[0].Record == nil || lines[0].Record.File != "b.html" || lines[1].Record.File != "d.html" ||
		lines[0].Error == "" || len(lines[0].Record.Entry.Keys[0]) != 40000 {
		t.Fatalf("%s: %+.200v", JournalRejectedFile, lines)
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 1 {
		t.Errorf("%d error lines, want 1 (the first record moved aside)", n)
	}
	// New records still flow.
	if err := r.Put(FileID{1, "e.html"}, keyEntry("e.html", "e")); err != nil {
		t.Fatal(err)
	}
	syncWithin(t, r, 10*time.Second)
	if got := findFiles(t, r, DepKey, "e"); !slices.Equal(got, []string{"e.html"}) {
		t.Errorf("after: %v", got)
	}
}

// TestJournalFindsRecordErrorsOneByOne: a failure CheckEntry cannot
// foresee (the file's stored entry is damaged) makes the writer apply the
// batch record by record, so only that record is moved aside.
func TestJournalFindsRecordErrorsOneByOne(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	defer r.Close()
	a := FileID{1, "a.html"}
	if err := r.Put(a, keyEntry("a.html", "a")); err != nil {
		t.Fatal(err)
	}
	syncWithin(t, r, 10*time.Second)
	if err := r.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEntries).Put(a.key(), []byte{99}) }); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock() // hold the writer back so the three records form one batch
	for _, rec := range []journalRecord{
		{Root: 1, File: "b.html", Entry: &Entry{Key: "/b.html", Keys: []string{"b"}}},
		{Root: 1, File: "a.html", Entry: &Entry{Key: "/a.html", Keys: []string{"a2"}}},
		{Root: 1, File: "c.html", Entry: &Entry{Key: "/c.html", Keys: []string{"c"}}},
	} {
		seq, err := r.journal.append(rec)
		if err != nil {
			t.Fatal(err)
		}
		r.pending[FileID{rec.Root, rec.File}] = pendingRecord{seq: seq, entry: rec.Entry}
	}
	r.mu.Unlock()
	syncWithin(t, r, 10*time.Second)
	for key, want := range map[string][]string{"b": {"b.html"}, "c": {"c.html"}, "a2": nil} {
		if got := findFiles(t, r, DepKey, key); !slices.Equal(got, want) {
			t.Errorf("key %s: %v, want %v", key, got, want)
		}
	}
	if lines := rejectedLines(t, dir); len(lines) != 1 || lines[0].Record.File != "a.html" ||
		!strings.Contains(lines[0].Error, errBadEntry.Error()) {
		t.Fatalf("%s: %+v", JournalRejectedFile, lines)
	}
}

// TestJournalReplayMovesAside: at start-up, records bbolt refuses and lines
// that are not records are moved aside; the others are applied and the
// registry opens.
func TestJournalReplayMovesAside(t *testing.T) {
	dir := t.TempDir()
	var journal []byte
	for _, rec := range []journalRecord{
		{Seq: 1, Root: 1, File: "a.html", Entry: &Entry{Key: "/a.html", Keys: []string{"a"}}},
		{Seq: 2, Root: 1, File: "huge.html", Entry: &Entry{Key: "/huge.html", Deps: []Dependency{{Kind: DepDocument, Name: strings.Repeat("d", 40000)}}}},
	} {
		line, _ := json.Marshal(rec)
		journal = append(journal, append(line, '\n')...)
	}
	journal = append(journal, "not a record\n"...)
	line, _ := json.Marshal(journalRecord{Seq: 3, Root: 1, File: "b.html", Entry: &Entry{Key: "/b.html", Keys: []string{"b"}}})
	journal = append(journal, append(line, '\n')...)
	journal = append(journal, `{"s":4,"r":1,"f":"tor`...) // torn by a power loss
	if err := os.WriteFile(filepath.Join(dir, "journal.log"), journal, 0o600); err != nil {
		t.Fatal(err)
	}

	r, err := Open(dir, zap.NewNop())
	if err != nil {
		t.Fatalf("open with a poisoned journal: %v", err)
	}
	for key, want := range map[string][]string{"a": {"a.html"}, "b": {"b.html"}} {
		if got := findFiles(t, r, DepKey, key); !slices.Equal(got, want) {
			t.Errorf("key %s: %v, want %v", key, got, want)
		}
	}
	if n := r.JournalRejected(); n != 3 {
		t.Errorf("JournalRejected = %d, want 3", n)
	}
	if st, err := os.Stat(filepath.Join(dir, "journal.log")); err != nil || st.Size() != 0 {
		t.Errorf("journal not emptied after replay: %v %v", st.Size(), err)
	}
	if err := r.Put(FileID{1, "c.html"}, keyEntry("c.html", "c")); err != nil {
		t.Fatal(err)
	}
	r.Close()

	r = openTestRegistry(t, dir)
	defer r.Close()
	if n := r.JournalRejected(); n != 0 {
		t.Errorf("second start moved %d records aside, want 0", n)
	}
	if got := findFiles(t, r, DepKey, "c"); !slices.Equal(got, []string{"c.html"}) {
		t.Errorf("key c: %v", got)
	}
	lines := rejectedLines(t, dir)
	if len(lines) != 3 || lines[0].Line != "not a record" || lines[1].Line != `{"s":4,"r":1,"f":"tor` ||
		lines[2].Record == nil || lines[2].Record.Seq != 2 {
		t.Fatalf("%s: %+.300v", JournalRejectedFile, lines)
	}
}

func TestJournalReadLineIsBounded(t *testing.T) {
	in := "short\n" + strings.Repeat("x", 100) + "\n\nlast"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	want := []struct {
		line    string
		tooLong bool
		eof     bool
	}{{"short", false, false}, {strings.Repeat("x", 10), true, false}, {"", false, false}, {"last", false, true}}
	var buf []byte
	for i, w := range want {
		line, tooLong, err := readLine(br, buf[:0], 10)
		if string(line) != w.line || tooLong != w.tooLong || errors.Is(err, io.EOF) != w.eof {
			t.Fatalf("line %d: %q %v %v, want %q %v eof %v", i, line, tooLong, err, w.line, w.tooLong, w.eof)
		}
		buf = line
	}
}

func TestPutRefusesUnstorableEntries(t *testing.T) {
	r := openTestRegistry(t, t.TempDir())
	defer r.Close()
	err := r.Put(FileID{1, "a.html"}, keyEntry("a.html", strings.Repeat("k", 32768)))
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("Put = %v, want a *LimitError", err)
	}
	if r.journal.lastSeq() != 0 || r.HasPending(FileID{1, "a.html"}) {
		t.Error("the refused entry reached the journal")
	}
}

// TestJournalKeepsRecordsOnDatabaseErrors: a failure that is not about a
// record moves nothing aside; the records stay for a retry.
func TestJournalKeepsRecordsOnDatabaseErrors(t *testing.T) {
	dir := t.TempDir()
	r := openTestRegistry(t, dir)
	r.Close()
	recs := []journalRecord{{Seq: 1, Root: 1, File: "a.html", Entry: &Entry{Key: "/a.html", Keys: []string{"a"}}}}
	done, err := r.applyOrReject(recs)
	if err == nil || done != 0 || isRecordError(err) {
		t.Fatalf("applyOrReject on a closed database = %d, %v; want 0 and a database error", done, err)
	}
	if r.JournalRejected() != 0 || rejectedLines(t, dir) != nil || recs[0].skip {
		t.Error("a record was moved aside for a database error")
	}
}

func TestJournalRetriesBackOff(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	var f writeFailures
	var last time.Duration
	for i := range 20 {
		f.record(log, errors.New("disk full"))
		wait := time.Until(f.retryAt)
		if wait < last-10*time.Millisecond || wait > maxApplyRetry {
			t.Fatalf("attempt %d: retry in %v after %v", i, wait, last)
		}
		last = wait
	}
	if last < maxApplyRetry-time.Second {
		t.Errorf("retry pause reached only %v", last)
	}
	if n := logs.FilterMessageSnippet("applying registry journal").Len(); n != 1 {
		t.Errorf("%d failure lines in quick succession, want 1", n)
	}
	f.record(log, nil)
	if !f.retryAt.IsZero() || f.n != 0 || logs.FilterMessage("registry journal applied again").Len() != 1 {
		t.Errorf("success did not reset the pacing: %+v", f)
	}
}
