package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// RepairReport says what Repair copied and what it left behind.
type RepairReport struct {
	Copied Counts
	// Lost lists what could not be read, by bucket, in file order.
	Lost []Loss
}

// Repair copies every record of the wattrec file at src that can be read
// into a new file at dst: the chunks that decode (their readings,
// re-encoded), and the runs, marks (with their ids), endpoint info,
// sessions, clock estimates and counter readings that decode. It reads
// src page by page without bbolt's trust in it, so a damaged page, record
// or chunk costs only itself, and it never writes to src. The new file is
// written beside dst and checked, then put in place; dst must not exist.
// The series stats and chunk sums are computed anew. When the root page
// of the last commit is lost, Repair copies the commit before, which
// bbolt keeps whole until the next commit. Losses are in the
// report, not errors: the error says why no new file was made (src is
// missing, not a wattrec file, of another layout version, or held by a
// running recorder; dst exists; writing failed).
func Repair(ctx context.Context, src, dst string) (*RepairReport, error) {
	if _, err := os.Lstat(dst); err == nil {
		return nil, fmt.Errorf("repair: %s: %w", dst, fs.ErrExist)
	}
	bf, unlock, err := openShared(src)
	if err != nil {
		return nil, fmt.Errorf("repair %s: %w", src, err)
	}
	defer bf.Close()
	defer unlock()

	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	tmp := f.Name()
	f.Close()
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmp)
		}
	}()
	out, err := Open(tmp, Options{NoSync: true}) // synced once, at the end
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	c := &copier{ctx: ctx, db: out, rep: &RepairReport{}}
	walk := &treeWalk{ctx: ctx, w: newWalker(bf), out: c}
	err = walk.run()
	if err == nil && walk.rootLost && bf.useOlderMeta() {
		// Nothing was found: the tree of the commit before may be
		// whole.
		c.lost(Loss{Where: "the last commit", Keys: "all", Err: fmt.Errorf("%w: its root is lost: copied the commit before (transaction %d)", ErrCorrupt, bf.meta.txid)})
		walk = &treeWalk{ctx: ctx, w: newWalker(bf), out: c}
		err = walk.run()
	}
	c.rep.Copied = walk.counts
	if err == nil {
		err = c.finish()
	}
	if err == nil {
		err = out.Check()
	}
	err = errors.Join(err, out.Close())
	if err == nil {
		err = syncFile(tmp)
	}
	if err != nil {
		return nil, fmt.Errorf("repair %s: %w", src, err)
	}
	if err := os.Link(tmp, dst); err != nil { // never replaces dst
		return nil, fmt.Errorf("repair: %w", err)
	}
	os.Remove(tmp)
	placed = true
	return c.rep, nil
}

// openShared opens path page by page, holding bbolt's shared lock
// meanwhile, so that a running recorder does not write to it: a file it
// holds is ErrLocked. The lock is taken with bbolt only when the file
// has both meta pages, so that bbolt cannot fault; without them the file
// is read unlocked (no recorder could open it either).
func openShared(path string) (bf *boltFile, unlock func(), err error) {
	bf, err = openBoltFile(path)
	if err != nil {
		return nil, nil, err
	}
	unlock = func() {}
	if bf.size >= 2*int64(bf.pageSize) {
		bdb, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout})
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			bf.Close()
			return nil, nil, ErrLocked
		case err == nil:
			unlock = func() { bdb.Close() }
			// Read the meta pages again: a writer may have committed
			// before the lock.
			if err := bf.readMeta(); err != nil {
				unlock()
				bf.Close()
				return nil, nil, err
			}
		}
	}
	return bf, unlock, nil
}

// syncFile flushes path to disk.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// copier is the records Repair's walk hands on: it writes each batch to
// the new file.
type copier struct {
	ctx       context.Context
	db        *DB
	rep       *RepairReport
	createdMs int64
	hasCreate bool
	maxMark   uint64
}

func (c *copier) created(ms int64)                          { c.createdMs, c.hasCreate = ms, true }
func (c *copier) chunk(SeriesKey, *chunkHeader, []rd) error { return nil } // the sums are computed anew
func (c *copier) stats(SeriesKey, seriesStats)              {}             // computed anew
func (c *copier) lost(l Loss)                               { c.rep.Lost = append(c.rep.Lost, l) }

func (c *copier) batch(b *Batch) error {
	for _, m := range b.Marks {
		c.maxMark = max(c.maxMark, m.ID)
	}
	return c.db.Write(c.ctx, b)
}

// finish writes the file's creation time and the marks' sequence, so
// that the next mark gets a new id.
func (c *copier) finish() error {
	return c.db.update(func(tx *bolt.Tx) error {
		if c.hasCreate {
			if err := tx.Bucket(metaBucket).Put(createdKey, putInt64(nil, c.createdMs)); err != nil {
				return err
			}
		}
		if c.maxMark == 0 {
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(marksBucket)
		if err != nil {
			return err
		}
		return b.SetSequence(max(b.Sequence(), c.maxMark))
	})
}
