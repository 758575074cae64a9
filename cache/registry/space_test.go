package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// smallFS mounts a tmpfs of size bytes at a new folder (root on Linux
// only) and unmounts it when the test ends.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs file system to fill needs root on Linux")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("skipped: cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file into dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for range 1 << 16 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
	t.Fatal("file system never full")
	return ""
}

// TestJournalShortWriteLeavesNoHalfRecord: an append that the full disk
// cuts short is taken back, so the journal holds whole lines only and
// every record appended (before and after the disk was full) is read back
// at the next start; the condition is logged once each way.
func TestJournalShortWriteLeavesNoHalfRecord(t *testing.T) {
	dir := smallFS(t, "256k")
	j, err := openJournal(filepath.Join(dir, "journal.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	core, logs := observer.New(zapcore.InfoLevel)
	space := NewSpace("data folder", dir, zap.New(core))
	big := strings.Repeat("x", 1500) // a record spans pages
	rec := func(i int) journalRecord {
		return journalRecord{Root: 1, File: "f" + strings.Repeat("0", i%7) + ".html", Entry: &Entry{Key: "/" + big, Created: int64(i)}}
	}
	var ok []uint64
	for i := range 4 {
		seq, err := j.append(rec(i))
		if err != nil {
			t.Fatal(err)
		}
		ok = append(ok, seq)
	}
	ballast := fill(t, dir)
	failed := 0
	for i := 4; i < 40; i++ {
		seq, err := j.append(rec(i))
		if err != nil {
			if !space.Failed(err) {
				t.Fatalf("append on a full disk: %v, want ENOSPC", err)
			}
			failed++
			continue
		}
		space.Wrote()
		ok = append(ok, seq)
	}
	if failed == 0 {
		t.Fatal("no append failed on a full disk")
	}
	data, err := os.ReadFile(filepath.Join(dir, "journal.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("journal ends with half a record (%d bytes)", len(data))
	}
	for n, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var r journalRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d is not a record: %v", n+1, err)
		}
	}
	if err := space.Full(); err == nil {
		t.Error("Space does not report the full disk")
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	seq, err := j.append(rec(99))
	if err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	space.Wrote()
	ok = append(ok, seq)
	if space.Full() != nil {
		t.Error("Space still reports a full disk")
	}

	// What the next start reads: every record that was appended.
	j2, err := openJournal(filepath.Join(dir, "journal.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer j2.close()
	db := openBolt(t, dir)
	recs, bad, err := j2.unapplied(db)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 0 || len(recs) != len(ok) {
		t.Errorf("read back %d records and %d bad lines, want %d records", len(recs), len(bad), len(ok))
	}
	if n := logs.FilterMessageSnippet("disk full").Len(); n != 1 {
		t.Errorf("disk full logged %d times, want 1", n)
	}
	if n := logs.FilterMessageSnippet("space available again").Len(); n != 1 {
		t.Errorf("space available logged %d times, want 1", n)
	}
	if space.Refused() != int64(failed) || space.Periods() != 1 {
		t.Errorf("refused %d, periods %d; want %d, 1", space.Refused(), space.Periods(), failed)
	}
}

// openBolt opens an empty database with the meta bucket (nothing applied).
func openBolt(t *testing.T, _ string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketMeta)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestSpaceBackOnlyWhenAPageFits: a small write that still fits while the
// file system is full does not end the condition (no flapping of the log
// and of health); a whole-page probe that works does.
func TestSpaceBackOnlyWhenAPageFits(t *testing.T) {
	var probeErr syscall.Errno = syscall.ENOSPC
	s := NewSpace("test", t.TempDir(), nil).WithProbe(func() error {
		if probeErr != 0 {
			return probeErr
		}
		return nil
	})
	if !s.Failed(fmt.Errorf("write: %w", syscall.ENOSPC)) {
		t.Fatal("ENOSPC not taken as no space")
	}
	s.Wrote() // a small record fitted into a page the file system had
	if s.Full() == nil {
		t.Fatal("a small write ended the full condition while a page does not fit")
	}
	probeErr = 0
	s.Wrote()
	if err := s.Full(); err != nil {
		t.Fatalf("still full after a page fitted: %v", err)
	}
	if s.Periods() != 1 {
		t.Fatalf("%d full periods, want 1", s.Periods())
	}
}
