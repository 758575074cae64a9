package registry

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// replay applies journal records that a crash left unapplied; records
// (and lines) the database refuses are moved aside, so no record can stop
// the edge from starting.
func (r *Registry) replay() error {
	recs, bad, err := r.journal.unapplied(r.db)
	if err != nil {
		return err
	}
	if err := r.journal.moveAside(bad); err != nil {
		return fmt.Errorf("replay registry journal: %w", err)
	}
	for _, b := range bad {
		r.noteRejected(b)
	}
	if len(recs) == 0 {
		return r.journal.reset()
	}
	done, err := r.applyOrReject(recs)
	if err != nil {
		return fmt.Errorf("replay registry journal: %w", err)
	}
	r.journal.markApplied(recs[done-1].Seq)
	r.log.Info("registry journal replayed", zap.Int("records", len(recs)))
	return r.journal.reset()
}

// apply writes records (skipping those moved aside) and the applied
// sequence number in one transaction.
func (r *Registry) apply(recs []journalRecord) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		r.trackApply(tx, recs)
		if err := applyRecords(tx, recs); err != nil {
			return err
		}
		return setAppliedSeq(tx, recs[len(recs)-1].Seq)
	})
}

// applyOrReject applies a batch of records, moving aside those the
// database refuses, and returns how many of them (from the start) are
// done. A record that fails CheckEntry is moved aside at once; if the
// batch still fails because of a record, the records are applied one by
// one to find it. Any other error (disk, database) leaves the records not
// done in place for a retry.
func (r *Registry) applyOrReject(recs []journalRecord) (done int, err error) {
	var bad []rejection
	for i := range recs {
		rec := &recs[i]
		if rec.skip || rec.Entry == nil {
			continue
		}
		if err := CheckEntry(FileID{rec.Root, rec.File}, rec.Entry); err != nil {
			bad = append(bad, rejection{Time: time.Now(), Error: err.Error(), Record: rec})
		}
	}
	if err := r.rejectRecords(bad); err != nil {
		return 0, err
	}
	switch err := r.apply(recs); {
	case err == nil:
		return len(recs), nil
	case !isRecordError(err):
		return 0, err
	}
	for i := range recs {
		rec := &recs[i]
		err := r.apply(recs[i : i+1])
		if err != nil && isRecordError(err) {
			if err := r.rejectRecords([]rejection{{Time: time.Now(), Error: err.Error(), Record: rec}}); err != nil {
				return i, err
			}
			err = r.apply(recs[i : i+1]) // now only the sequence number
		}
		if err != nil {
			return i, err
		}
	}
	return len(recs), nil
}

// rejectRecords moves records aside and marks them so they are skipped.
func (r *Registry) rejectRecords(bad []rejection) error {
	if err := r.journal.moveAside(bad); err != nil {
		return err
	}
	for _, b := range bad {
		b.Record.skip = true
		r.noteRejected(b)
	}
	return nil
}

// noteRejected counts a record moved aside and logs the first one.
func (r *Registry) noteRejected(b rejection) {
	r.rejected.Add(1)
	fields := []zap.Field{zap.String("moved_to", r.journal.rejectedPath), zap.String("error", b.Error)}
	if b.Record != nil {
		fields = append(fields, zap.Uint64("seq", b.Record.Seq), zap.String("file", b.Record.File))
	}
	if r.rejectedLogged.CompareAndSwap(false, true) {
		r.log.Error("registry journal record cannot be applied; moved aside (later ones are logged at debug level)",
			fields...)
		return
	}
	r.log.Debug("registry journal record cannot be applied; moved aside", fields...)
}

// JournalRejected is the number of journal records moved aside since the
// start (see JournalRejectedFile).
func (r *Registry) JournalRejected() int64 { return r.rejected.Load() }

// writer applies pending journal records in batches until Close. When the
// database fails (disk full, I/O error), it retries with a growing pause
// rather than at every tick; the records wait in the journal meanwhile.
func (r *Registry) writer() {
	defer close(r.done)
	tick := time.NewTicker(applyEvery)
	defer tick.Stop()
	lastRelease := time.Now()
	var fail writeFailures
	for {
		closing := false
		select {
		case <-r.wake:
		case <-tick.C:
		case <-r.closing:
			closing = true
		}
		if closing || time.Now().After(fail.retryAt) {
			err := r.flushPending()
			fail.record(r.log, err)
			r.noteApply(err)
		}
		if closing {
			return
		}
		if time.Since(lastRelease) >= mappingReleaseEvery {
			r.ReleaseMapping()
			lastRelease = time.Now()
		}
	}
}

// writeFailures paces the retries of a failing journal apply and its log:
// the first failure at error level, then one reminder a minute.
type writeFailures struct {
	n        int
	retryAt  time.Time
	loggedAt time.Time
}

const (
	minApplyRetry = 100 * time.Millisecond
	maxApplyRetry = 10 * time.Second
)

func (f *writeFailures) record(log *zap.Logger, err error) {
	now := time.Now()
	if err == nil {
		if f.n > 0 {
			log.Info("registry journal applied again", zap.Int("failed_attempts", f.n))
		}
		*f = writeFailures{}
		return
	}
	f.n++
	f.retryAt = now.Add(min(minApplyRetry<<min(f.n-1, 10), maxApplyRetry))
	switch {
	case f.n == 1:
		log.Error("applying registry journal failed; will retry", zap.Error(err))
		f.loggedAt = now
	case now.Sub(f.loggedAt) >= time.Minute:
		log.Error("applying registry journal still fails; will retry", zap.Int("attempts", f.n), zap.Error(err))
		f.loggedAt = now
	}
}

const maxBatch = 2000

// applyEvery is the writer's tick: records wait at most this long in the
// journal before they are applied (Sync and wakeBatch wake it sooner).
// The longer a record waits, the likelier a removal meets it in the
// journal; such a removal ends only the entry it decided on
// (RemoveEnded), or a reader's render in between would lose its entry.
const applyEvery = 50 * time.Millisecond

// flushPending applies the journal's queue in batches; on an error that
// is not about a record, what is not done goes back to the queue.
func (r *Registry) flushPending() error {
	for {
		r.mu.Lock()
		recs := r.journal.take(maxBatch)
		r.mu.Unlock()
		if len(recs) == 0 {
			return nil
		}
		done, err := r.applyOrReject(recs)
		r.mu.Lock()
		if done > 0 {
			r.journal.markApplied(recs[done-1].Seq)
			for _, rec := range recs[:done] {
				id := FileID{rec.Root, rec.File}
				if p, ok := r.pending[id]; ok && p.seq == rec.Seq {
					delete(r.pending, id)
				}
			}
			if len(r.pending) == 0 && err == nil {
				if err := r.journal.truncateIfLarge(); err != nil {
					r.log.Warn("truncating registry journal failed", zap.Error(err))
				}
			}
			r.applied.Broadcast()
		}
		if err != nil {
			r.journal.giveBack(recs[done:])
			r.mu.Unlock()
			return err
		}
		r.mu.Unlock()
	}
}
