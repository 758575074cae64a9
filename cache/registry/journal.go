package registry

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// journal is the append-only log of registry writes that are not yet in
// the database. A record is appended (one write system call, so a killed
// process never leaves half of it) before the file it describes is renamed
// into the docroot; the registry's writer applies records in batches and
// stores the last applied sequence number in the same transaction. After a
// crash, Open replays what was not applied.
//
// A record the database refuses (see isRecordError) would stop every
// record after it, now and at each start; it is moved aside instead, to
// JournalRejectedFile, and the rest applied.
//
// The journal's methods are called with Registry.mu held, except those of
// the writer (moveAside), which only it calls.
type journal struct {
	f       *os.File
	size    int64
	seq     uint64          // last sequence number handed out
	applied uint64          // last sequence number in the database
	queue   []journalRecord // appended, not yet taken by the writer

	rejectedPath string
	rejected     *os.File // opened at the first record moved aside
}

type journalRecord struct {
	Seq   uint64 `json:"s"`
	Root  uint16 `json:"r"`
	File  string `json:"f"`
	Entry *Entry `json:"e,omitempty"` // nil: the file was removed
	// skip marks a record already moved aside: applying it only moves
	// the applied sequence number past it.
	skip bool
}

// JournalRejectedFile is the file in the data folder that holds journal
// records the registry could not apply, one JSON object a line:
// {"time", "error", "record"} or, for a line that was not a record,
// {"time", "error", "line"} with (the start of) the line.
const JournalRejectedFile = "journal.rejected"

// maxJournalLine bounds a journal line the reader takes; a longer one is
// moved aside. Records within maxEntryBytes are far shorter.
const maxJournalLine = 16 << 20

// rejectedLinePrefix is how much of an unreadable line is kept.
const rejectedLinePrefix = 4 << 10

// rejection is one record (or unreadable line) moved aside.
type rejection struct {
	Time   time.Time      `json:"time"`
	Error  string         `json:"error"`
	Record *journalRecord `json:"record,omitempty"`
	Line   string         `json:"line,omitempty"`
}

var metaJournalApplied = []byte("journal-applied")

const journalTruncateSize = 1 << 20

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open registry journal: %w", err)
	}
	return &journal{f: f, rejectedPath: filepath.Join(filepath.Dir(path), JournalRejectedFile)}, nil
}

func (j *journal) close() error {
	err := j.f.Close()
	if j.rejected != nil {
		err = errors.Join(err, j.rejected.Close())
	}
	return err
}

// moveAside appends rejections to JournalRejectedFile and syncs it, so a
// record is there before the applied sequence number passes it (after a
// crash in between, a record may be there twice).
func (j *journal) moveAside(rs []rejection) error {
	if len(rs) == 0 {
		return nil
	}
	if j.rejected == nil {
		f, err := os.OpenFile(j.rejectedPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open %s: %w", JournalRejectedFile, err)
		}
		j.rejected = f
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encode rejected journal record: %w", err)
		}
	}
	if _, err := j.rejected.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", JournalRejectedFile, err)
	}
	if err := j.rejected.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", JournalRejectedFile, err)
	}
	return nil
}

// unapplied reads the records after the last applied sequence number.
// Lines that are not records (a torn last line after a power loss, or
// damage) and over-long lines are returned as rejections, not read.
func (j *journal) unapplied(db *bolt.DB) ([]journalRecord, []rejection, error) {
	err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(metaJournalApplied); len(v) == 8 {
			j.applied = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read registry journal position: %w", err)
	}
	j.seq = j.applied
	if _, err := j.f.Seek(0, 0); err != nil {
		return nil, nil, fmt.Errorf("read registry journal: %w", err)
	}
	var recs []journalRecord
	var bad []rejection
	br := bufio.NewReaderSize(j.f, 64<<10)
	var line []byte
	for {
		var tooLong bool
		var rerr error
		line, tooLong, rerr = readLine(br, line[:0], maxJournalLine)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, nil, fmt.Errorf("read registry journal: %w", rerr)
		}
		if len(line) > 0 || tooLong {
			var rec journalRecord
			switch err := json.Unmarshal(line, &rec); {
			case tooLong:
				bad = append(bad, rejection{Time: time.Now(), Line: prefix(line),
					Error: fmt.Sprintf("journal line longer than %d bytes", maxJournalLine)})
			case err != nil:
				bad = append(bad, rejection{Time: time.Now(), Line: prefix(line), Error: "not a journal record: " + err.Error()})
			default:
				j.seq = max(j.seq, rec.Seq)
				if rec.Seq > j.applied {
					recs = append(recs, rec)
				}
			}
		}
		if rerr != nil {
			return recs, bad, nil // io.EOF
		}
	}
}

func prefix(line []byte) string { return string(line[:min(len(line), rejectedLinePrefix)]) }

// readLine reads a line into buf without its newline. Of a line longer
// than limit, the first limit bytes are returned with tooLong set and the
// rest is skipped. At the end of the file it returns what is left and
// io.EOF.
func readLine(br *bufio.Reader, buf []byte, limit int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		chunk = bytes.TrimSuffix(chunk, []byte("\n"))
		if room := limit - len(buf); len(chunk) > room {
			chunk, tooLong = chunk[:max(room, 0)], true
		}
		buf = append(buf, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, tooLong, err
		}
	}
}

func (j *journal) append(rec journalRecord) (uint64, error) {
	rec.Seq = j.seq + 1
	line, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encode registry journal record: %w", err)
	}
	line = append(line, '\n')
	n, err := j.f.Write(line)
	if err != nil {
		// A short write (the disk is full) would leave half a line that
		// the next record is appended to, and both would be unreadable
		// at the next start: the part written goes again.
		if n > 0 {
			if terr := j.cutTail(int64(n)); terr != nil {
				err = errors.Join(err, terr)
			}
		}
		return 0, fmt.Errorf("write registry journal: %w", err)
	}
	j.size += int64(n)
	j.seq = rec.Seq
	j.queue = append(j.queue, rec)
	return rec.Seq, nil
}

// cutTail removes the last n bytes of the file (a record written in part).
func (j *journal) cutTail(n int64) error {
	info, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("cut short registry journal record: %w", err)
	}
	if err := j.f.Truncate(max(info.Size()-n, 0)); err != nil {
		return fmt.Errorf("cut short registry journal record: %w", err)
	}
	return nil
}

func (j *journal) take(n int) []journalRecord {
	n = min(n, len(j.queue))
	recs := j.queue[:n:n]
	j.queue = j.queue[n:]
	return recs
}

func (j *journal) giveBack(recs []journalRecord) {
	j.queue = append(recs[:len(recs):len(recs)], j.queue...)
}

func (j *journal) markApplied(seq uint64) { j.applied = seq }
func (j *journal) appliedSeq() uint64     { return j.applied }
func (j *journal) lastSeq() uint64        { return j.seq }

func setAppliedSeq(tx *bolt.Tx, seq uint64) error {
	return tx.Bucket(bucketMeta).Put(metaJournalApplied, binary.BigEndian.AppendUint64(nil, seq))
}

// reset empties the file once every record in it is applied.
func (j *journal) reset() error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate registry journal: %w", err)
	}
	j.size = 0
	return nil
}

func (j *journal) truncateIfLarge() error {
	if j.size < journalTruncateSize || len(j.queue) > 0 || j.applied != j.seq {
		return nil
	}
	return j.reset()
}
