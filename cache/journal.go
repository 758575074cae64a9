package cache

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// journal is the append-only log of registry writes that are not yet in
// the database. A record is appended (one write system call, so a killed
// process never leaves half of it) before the file it describes is renamed
// into the docroot; the registry's writer applies records in batches and
// stores the last applied sequence number in the same transaction. After a
// crash, OpenRegistry replays what was not applied.
//
// The journal's methods are called with Registry.mu held.
type journal struct {
	f       *os.File
	size    int64
	seq     uint64          // last sequence number handed out
	applied uint64          // last sequence number in the database
	queue   []journalRecord // appended, not yet taken by the writer
}

type journalRecord struct {
	Seq   uint64 `json:"s"`
	Root  uint16 `json:"r"`
	File  string `json:"f"`
	Entry *Entry `json:"e,omitempty"` // nil: the file was removed
}

var metaJournalApplied = []byte("journal-applied")

const journalTruncateSize = 1 << 20

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open registry journal: %w", err)
	}
	return &journal{f: f}, nil
}

func (j *journal) close() error { return j.f.Close() }

// unapplied reads the records after the last applied sequence number.
// A torn last line (only possible after a power loss) is ignored.
func (j *journal) unapplied(db *bolt.DB) ([]journalRecord, error) {
	err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(metaJournalApplied); len(v) == 8 {
			j.applied = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read registry journal position: %w", err)
	}
	j.seq = j.applied
	if _, err := j.f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("read registry journal: %w", err)
	}
	var recs []journalRecord
	sc := bufio.NewScanner(j.f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var rec journalRecord
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			break
		}
		if rec.Seq > j.seq {
			j.seq = rec.Seq
		}
		if rec.Seq > j.applied {
			recs = append(recs, rec)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read registry journal: %w", err)
	}
	return recs, nil
}

func (j *journal) append(rec journalRecord) (uint64, error) {
	rec.Seq = j.seq + 1
	line, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encode registry journal record: %w", err)
	}
	line = append(line, '\n')
	n, err := j.f.Write(line)
	j.size += int64(n)
	if err != nil {
		return 0, fmt.Errorf("write registry journal: %w", err)
	}
	j.seq = rec.Seq
	j.queue = append(j.queue, rec)
	return rec.Seq, nil
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
