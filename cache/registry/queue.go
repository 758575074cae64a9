package registry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The queues are persistent: a job is written in the transaction that
// decides it (with the change, flush or expiry that caused it) and taken
// off in the transaction that records its end, so a crash loses none and
// repeats at most the file operation of a job. Each queue has a bucket
// ordered by priority, then age (order keys), and a FIFO of the same jobs
// by age, so an old job whose priority has aged past the head goes first.
// queue-files says, per file (or document to resolve), which job waits
// for it: there is at most one job per file across both queues.

// QueueKind names one of the two persistent queues.
type QueueKind byte

// The queues.
const (
	QueueRemoval QueueKind = 'r' // rename to .old (or purge), single-threaded
	QueuePregen  QueueKind = 'p' // render in place, N workers
)

func (q QueueKind) String() string {
	if q == QueueRemoval {
		return "removal"
	}
	return "pre-generation"
}

// Operations of queued jobs.
const (
	OpRename  = "rename"  // removal: rename to .old
	OpPurge   = "purge"   // removal: delete file and .old (the content is gone)
	OpRender  = "render"  // pre-generation: render Key in place
	OpResolve = "resolve" // pre-generation: ask the backend for the URL of Doc, then render it
)

var (
	bucketQueueFiles = []byte("queue-files") // file id -> queue kind + order key
	bucketQueueMeta  = []byte("queue-meta")
	metaQueueSeq     = []byte("seq")
)

func queueBuckets(q QueueKind) (byPrio, fifo []byte) {
	return []byte("queue-" + q.String()), []byte("queue-" + q.String() + "-fifo")
}

// QueuedJob is one file (or one document to resolve) in a queue.
type QueuedJob struct {
	Root     uint16 `json:"r"`
	File     string `json:"f,omitempty"`
	Op       string `json:"o"`
	Priority int    `json:"p"`
	Enqueued int64  `json:"t"` // Unix ms
	// Created is the registry entry's creation time when the job was
	// queued; a file rendered again since then is not touched.
	Created int64 `json:"c,omitempty"`
	// Key and Host say what to render (pre-generation).
	Key  string `json:"k,omitempty"`
	Host string `json:"h,omitempty"`
	// Doc is the document whose URL OpResolve asks for.
	Doc string `json:"d,omitempty"`
	// Rerender queues a pre-generation once a purge is done.
	Rerender bool `json:"rr,omitempty"`
	// Source is when the change that caused the job happened at its
	// source (a CMS event's source time, a flush's time; Unix ms, 0:
	// none), for the invalidation latency.
	Source int64 `json:"st,omitempty"`
	// Evict marks a purge that makes room in a docroot over its size
	// limit: the file is not rendered again.
	Evict bool `json:"ev,omitempty"`
	// Again counts the changes that found the job already waiting (with
	// at least their priority) and were merged into it. A worker that
	// took the job before the last of them rendered too early: its
	// CompleteUnchanged leaves the job queued.
	Again int `json:"ag,omitempty"`
	// Changed is when the newest of those changes was queued (Unix ms; 0:
	// none). A file written after Enqueued but before Changed predates a
	// change the job stands for: the removal worker renames it all the
	// same (Since).
	Changed int64 `json:"ch,omitempty"`

	order []byte // position in the priority bucket
}

// ID is the file the job is about.
func (j QueuedJob) ID() FileID { return FileID{Root: j.Root, File: j.File} }

// Since is when the newest change the job stands for was queued: a file
// written after it was rendered again since, and needs no removal.
func (j QueuedJob) Since() int64 { return max(j.Enqueued, j.Changed) }

// Order is the job's position in its queue, which tells jobs apart (the
// pre-generation workers skip the jobs of each other by it).
func (j QueuedJob) Order() string { return string(j.order) }

// dedupKey identifies the thing a job is about: a file, or a document to
// resolve.
func (j QueuedJob) dedupKey() []byte {
	if j.Op == OpResolve {
		return append([]byte{0xff, 0xff, '?'}, j.Doc...)
	}
	return j.ID().key()
}

// createQueueBuckets creates the queues' buckets and counts their jobs
// (queue_stats.go): once at every start, so counts that an older version
// or a damaged file left wrong are right again.
func createQueueBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketQueueFiles, bucketQueueMeta} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	for _, q := range []QueueKind{QueueRemoval, QueuePregen} {
		p, f := queueBuckets(q)
		if _, err := tx.CreateBucketIfNotExists(p); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(f); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(parkedBucket(q)); err != nil {
			return err
		}
	}
	return recountQueues(tx)
}

// orderKey sorts higher priorities first, then older jobs first.
func orderKey(prio int, seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = byte(255 - prio)
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func priorityOf(order []byte) int { return 255 - int(order[0]) }

// Enqueue adds a job unless the same file already waits in a queue with
// at least the same priority; a queued job of lower priority is replaced
// (also across queues). A purge is never replaced by a rename or a
// render: the content is gone, so the job stays a purge (with the higher
// priority, and the render queued after it). It reports whether the job
// was added.
func (tx *Tx) Enqueue(q QueueKind, j QueuedJob) (bool, error) { return enqueue(tx.tx, q, j) }

func enqueue(tx *bolt.Tx, q QueueKind, j QueuedJob) (bool, error) {
	files := tx.Bucket(bucketQueueFiles)
	dk := j.dedupKey()
	if cur := files.Get(dk); len(cur) == 10 {
		if priorityOf(cur[1:]) >= j.Priority {
			return false, markAgain(tx, QueueKind(cur[0]), cur[1:], j.Enqueued)
		}
		curQ, order := QueueKind(cur[0]), bytes.Clone(cur[1:])
		var old QueuedJob
		if v := queuedValue(tx, curQ, order); v != nil && json.Unmarshal(v, &old) == nil {
			if j.Op != OpPurge && curQ == QueueRemoval && old.Op == OpPurge {
				j.Rerender = old.Rerender || j.Op == OpRender
				j.Op, j.Evict, q = OpPurge, old.Evict, QueueRemoval
			}
			// The latency runs from the first change the file waits for.
			if old.Source > 0 && (j.Source == 0 || old.Source < j.Source) {
				j.Source = old.Source
			}
		}
		if err := dequeue(tx, curQ, order, dk); err != nil {
			return false, err
		}
	}
	meta := tx.Bucket(bucketQueueMeta)
	var seq uint64 = 1
	if v := meta.Get(metaQueueSeq); len(v) == 8 {
		seq = binary.BigEndian.Uint64(v) + 1
	}
	if err := meta.Put(metaQueueSeq, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return false, err
	}
	order := orderKey(j.Priority, seq)
	v, err := json.Marshal(j)
	if err != nil {
		return false, fmt.Errorf("encode queue job: %w", err)
	}
	byPrio, fifo := queueBuckets(q)
	if err := tx.Bucket(byPrio).Put(order, v); err != nil {
		return false, err
	}
	if err := tx.Bucket(fifo).Put(order[1:], order); err != nil {
		return false, err
	}
	if err := addQueueLength(tx, q, 1); err != nil {
		return false, err
	}
	return true, files.Put(dk, append([]byte{byte(q)}, order...))
}

// queuedValue is the stored job at order in queue q, waiting or parked
// (nil: none).
func queuedValue(tx *bolt.Tx, q QueueKind, order []byte) []byte {
	_, _, v := queuedSlot(tx, q, order)
	return v
}

// queuedSlot finds a job, waiting or parked, by its order key: the bucket
// and key it is stored under, and its value (nil if it is not queued).
func queuedSlot(tx *bolt.Tx, q QueueKind, order []byte) (b *bolt.Bucket, key, value []byte) {
	byPrio, _ := queueBuckets(q)
	b = tx.Bucket(byPrio)
	if v := b.Get(order); v != nil {
		return b, order, v
	}
	key = parkedKey(order)
	b = tx.Bucket(parkedBucket(q))
	return b, key, b.Get(key)
}

// dequeue removes a job, waiting or parked, by its order key; dk is its
// dedup key.
func dequeue(tx *bolt.Tx, q QueueKind, order, dk []byte) error {
	if len(order) != 9 {
		return nil // not a job that was read from a queue
	}
	byPrio, fifo := queueBuckets(q)
	found := false
	if b := tx.Bucket(byPrio); b.Get(order) != nil {
		if err := b.Delete(order); err != nil {
			return err
		}
		if err := tx.Bucket(fifo).Delete(order[1:]); err != nil {
			return err
		}
		found = true
	} else if b := tx.Bucket(parkedBucket(q)); b.Get(parkedKey(order)) != nil {
		if err := b.Delete(parkedKey(order)); err != nil {
			return err
		}
		found = true
	}
	if found {
		if err := addQueueLength(tx, q, -1); err != nil {
			return err
		}
	}
	files := tx.Bucket(bucketQueueFiles)
	if cur := files.Get(dk); len(cur) == 10 && cur[0] == byte(q) && bytes.Equal(cur[1:], order) {
		return files.Delete(dk)
	}
	return nil
}

// markAgain counts one more change merged into the job at order.
func markAgain(tx *bolt.Tx, q QueueKind, order []byte, at int64) error {
	b, key, raw := queuedSlot(tx, q, order)
	if raw == nil {
		return nil
	}
	var j QueuedJob
	if json.Unmarshal(raw, &j) != nil {
		return nil // Complete takes an undecodable job off as it is
	}
	j.Again++
	j.Changed = max(j.Changed, at)
	v, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode queue job: %w", err)
	}
	return b.Put(bytes.Clone(key), v)
}

// CompleteUnchanged is Complete for a job whose work depends on when it
// ran (a render): if a change was merged into it after the worker took
// it, the job stays queued and done is false.
func (tx *Tx) CompleteUnchanged(q QueueKind, j QueuedJob) (done bool, err error) {
	if raw := queuedValue(tx.tx, q, j.order); raw != nil {
		var cur QueuedJob
		if json.Unmarshal(raw, &cur) == nil && cur.Again != j.Again {
			return false, nil
		}
	}
	return true, tx.Complete(q, j)
}

// Complete removes a finished job (if it is still queued: a job of higher
// priority for the same file may have replaced it meanwhile).
func (tx *Tx) Complete(q QueueKind, j QueuedJob) error {
	return dequeue(tx.tx, q, j.order, j.dedupKey())
}

// Queued returns the job that waits for the thing j is about (its file,
// or its document to resolve), and its queue; found is false if none
// does. A job that cannot be decoded is returned with only its position
// set, so that Complete can still take it off.
func (tx *Tx) Queued(j QueuedJob) (q QueueKind, cur QueuedJob, found bool) {
	v := tx.tx.Bucket(bucketQueueFiles).Get(j.dedupKey())
	if len(v) != 10 {
		return 0, QueuedJob{}, false
	}
	q, order := QueueKind(v[0]), bytes.Clone(v[1:])
	if raw := queuedValue(tx.tx, q, order); raw != nil && json.Unmarshal(raw, &cur) != nil {
		cur = QueuedJob{}
	}
	cur.order = order
	return q, cur, true
}

// effectivePriority adds one point for every ageStep a job has waited, so
// that low priorities cannot starve behind a constant stream of high ones.
func effectivePriority(prio int, enqueued int64, now time.Time, ageStep time.Duration) int {
	if ageStep <= 0 {
		return prio
	}
	waited := max(0, now.Sub(time.UnixMilli(enqueued)))
	return prio + int(waited/ageStep)
}

// NextJobs returns up to n jobs to run next, skipping those whose Order
// is in busy: the highest priority first, but an old job whose aged
// priority (one point per ageStep waited) beats the head of the queue
// goes before it.
func (tx *Tx) NextJobs(q QueueKind, n int, busy map[string]bool, now time.Time, ageStep time.Duration) ([]QueuedJob, error) {
	return nextJobs(tx.tx, q, n, busy, now, ageStep)
}

func nextJobs(tx *bolt.Tx, q QueueKind, n int, busy map[string]bool, now time.Time, ageStep time.Duration) ([]QueuedJob, error) {
	byPrio, fifo := queueBuckets(q)
	pc := tx.Bucket(byPrio).Cursor()
	fc := tx.Bucket(fifo).Cursor()
	pk, pv := pc.First()
	_, fo := fc.First()
	taken := map[string]bool{}
	skip := func(order []byte) bool { return busy[string(order)] || taken[string(order)] }
	var out []QueuedJob
	for len(out) < n {
		for pk != nil && skip(pk) {
			pk, pv = pc.Next()
		}
		for fo != nil && skip(fo) {
			_, fo = fc.Next()
		}
		if pk == nil {
			break
		}
		order, val := pk, pv
		if fo != nil && !bytes.Equal(fo, pk) {
			if oldVal := tx.Bucket(byPrio).Get(fo); oldVal != nil {
				var old QueuedJob
				if json.Unmarshal(oldVal, &old) == nil {
					var head QueuedJob
					_ = json.Unmarshal(pv, &head)
					if effectivePriority(old.Priority, old.Enqueued, now, ageStep) >
						effectivePriority(head.Priority, head.Enqueued, now, ageStep) {
						order, val = fo, oldVal
					}
				}
			}
		}
		var j QueuedJob
		if err := json.Unmarshal(val, &j); err != nil {
			return nil, fmt.Errorf("decode queue job: %w", err)
		}
		j.order = append([]byte(nil), order...)
		taken[string(order)] = true
		out = append(out, j)
	}
	return out, nil
}

// QueueWaiting reports whether a queue holds jobs.
func (r *Registry) QueueWaiting(q QueueKind) bool {
	byPrio, _ := queueBuckets(q)
	waiting := false
	_ = r.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(byPrio).Cursor().First()
		waiting = k != nil
		return nil
	})
	return waiting
}
