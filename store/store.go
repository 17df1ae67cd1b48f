package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// layoutVersion is the layout this build reads and writes, stored under
// meta/format. Files of any other version are refused with ErrFormat.
const layoutVersion = 2

// valueV1 is the version byte of the values whose encoding has not
// changed since the first layout: sessions, clock estimates, counter
// readings, and the JSON of runs, marks and endpoint info.
const valueV1 = 0x01

// allocSize is how much the file grows at a time, once bigger than that.
const allocSize = 1 << 20

// DefaultLockTimeout is how long Open waits for another process's lock.
const DefaultLockTimeout = time.Second

// Errors returned by the store. Callers test them with errors.Is.
var (
	// ErrLocked means another process (a running recorder) holds the file.
	ErrLocked = errors.New("database is in use by a running recorder")
	// ErrCorrupt means stored bytes do not decode under this layout.
	ErrCorrupt = errors.New("corrupt record")
	// ErrNotFound means the endpoint or series is not in the file.
	ErrNotFound = errors.New("not found")
	// ErrFormat means the file was written in a layout this build cannot read.
	ErrFormat = errors.New("unsupported file format")
	// ErrNotWattrec means the file is a bbolt file without wattrec's metadata.
	ErrNotWattrec = errors.New("not a wattrec database")
	// ErrInvalidMark means a mark's name or window breaks the rules of
	// CheckMarkName or AddMark.
	ErrInvalidMark = errors.New("invalid mark")
	// ErrNoOpenMark means EndMark found no open mark of that name.
	ErrNoOpenMark = errors.New("no open mark")
)

// Bucket and key names; store/doc.go draws the tree.
var (
	metaBucket      = []byte("meta")
	runsBucket      = []byte("runs")
	endpointsBucket = []byte("endpoints")
	seriesBucket    = []byte("series")
	sessionsBucket  = []byte("sessions")
	clockBucket     = []byte("clock")
	countersBucket  = []byte("counters")
	statsBucket     = []byte("stats")
	marksBucket     = []byte("marks")
	infoKey         = []byte("info")
	formatKey       = []byte("format")
	createdKey      = []byte("created")
)

// Options configure Open.
type Options struct {
	// ReadOnly opens the file with a shared lock and never writes to it.
	// A missing file is an error.
	ReadOnly bool
	// LockTimeout bounds the wait for another process's lock; zero means
	// DefaultLockTimeout. A negative value fails at once.
	LockTimeout time.Duration
	// NoSync skips fsync on commit. Only benchmarks and tests use it.
	NoSync bool
}

// DB is an open wattrec file. Its methods are safe for concurrent use;
// bbolt serialises writers.
type DB struct {
	bolt *bolt.DB
	path string

	// wmu serialises Write, which keeps heads in step with the file.
	wmu sync.Mutex
	// heads caches the open chunk and the stats of each series written
	// through this DB, as of the last commit.
	heads map[SeriesKey]*seriesHead
}

// Open opens or creates (unless opt.ReadOnly) the wattrec file at path.
// A file held by another process is reported as ErrLocked after the lock
// timeout instead of blocking forever.
func Open(path string, opt Options) (*DB, error) {
	if opt.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	timeout := opt.LockTimeout
	switch {
	case timeout == 0:
		timeout = DefaultLockTimeout
	case timeout < 0:
		timeout = time.Nanosecond
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opt.ReadOnly, NoSync: opt.NoSync})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	} else if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Grow the file 1 MiB at a time instead of bbolt's 16 MiB: a
	// recording grows slowly, and the slack shows in its size.
	bdb.AllocSize = allocSize
	db := &DB{bolt: bdb, path: path, heads: map[SeriesKey]*seriesHead{}}
	if err := db.init(opt.ReadOnly); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// init creates the top-level buckets of a new file, or checks the layout
// version of an existing one.
func (db *DB) init(readOnly bool) error {
	check := func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			return ErrNotWattrec
		}
		v := meta.Get(formatKey)
		if len(v) != 1 {
			return fmt.Errorf("meta/format: %w", ErrCorrupt)
		}
		if v[0] != layoutVersion {
			return fmt.Errorf("%w: layout version %d, this build reads version %d", ErrFormat, v[0], layoutVersion)
		}
		return nil
	}
	if readOnly {
		return db.bolt.View(func(tx *bolt.Tx) error {
			if tx.Bucket(metaBucket) == nil && isEmpty(tx) {
				return fmt.Errorf("%w (the file is empty)", ErrNotWattrec)
			}
			return check(tx)
		})
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(metaBucket) == nil {
			if !isEmpty(tx) {
				return ErrNotWattrec
			}
			meta, err := tx.CreateBucket(metaBucket)
			if err != nil {
				return err
			}
			if err := meta.Put(formatKey, []byte{layoutVersion}); err != nil {
				return err
			}
			if err := meta.Put(createdKey, putInt64(nil, time.Now().UnixMilli())); err != nil {
				return err
			}
			for _, name := range [][]byte{runsBucket, endpointsBucket} {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
		}
		return check(tx)
	})
}

func isEmpty(tx *bolt.Tx) bool {
	k, _ := tx.Cursor().First()
	return k == nil
}

// Path returns the file's path.
func (db *DB) Path() string { return db.path }

// Close releases the file.
func (db *DB) Close() error { return db.bolt.Close() }

// Size returns the file's size in bytes as bbolt sees it.
func (db *DB) Size() (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n, err
}

// putInt64 appends v as 8 big-endian bytes with the sign bit flipped, so
// that byte order is numeric order for negative values too.
func putInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

// getInt64 decodes the first 8 bytes of b, written by putInt64.
func getInt64(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}
