package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
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
	// ErrCorrupt means the file is damaged: stored bytes do not decode
	// under this layout, or bbolt's pages are not as bbolt wrote them
	// (a truncated file, a page that points outside the file).
	ErrCorrupt = errors.New("corrupt data")
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
	// MustExist refuses to create the file: a missing or empty file is
	// an error, as with ReadOnly.
	MustExist bool
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
	// commits counts the commits of Write, for releaseMapped.
	commits int
}

// Open opens or creates (unless opt.ReadOnly or opt.MustExist) the
// wattrec file at path. A file held by another process is reported as
// ErrLocked after the lock timeout instead of blocking forever.
//
// Before bbolt maps the file, Open reads its meta pages and checks that
// the file holds every page they count; then, holding the lock, it walks
// the whole page tree (about 0.6 s per GB in the page cache, 15 ms for a
// day of 10 devices): every page inside the file and used once, element
// offsets inside their pages, keys in order, the freelist consistent.
// bbolt follows page ids and offsets blindly, so a damaged one would send
// it to any address; a write could spread the damage. A damaged file is
// ErrCorrupt, a file that is not bbolt's (an empty one too, unless it is
// to be created) ErrNotWattrec. Damage inside records fails the read
// that meets it with ErrCorrupt: see CheckFile and Repair.
func Open(path string, opt Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("open: the path is empty")
	}
	exists := false
	switch fi, err := os.Stat(path); {
	case err != nil && (opt.ReadOnly || opt.MustExist || !errors.Is(err, fs.ErrNotExist)):
		return nil, fmt.Errorf("open %s: %w", path, err)
	case err != nil: // to be created
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("open %s: %w: not a regular file (%v)", path, ErrNotWattrec, fi.Mode())
	case fi.Size() == 0 && (opt.ReadOnly || opt.MustExist):
		return nil, fmt.Errorf("open %s: %w: the file is empty", path, ErrNotWattrec)
	case fi.Size() > 0:
		exists = true
		bf, err := openBoltFile(path)
		if err == nil {
			err = bf.truncated
			bf.Close()
		}
		if err != nil {
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
	bdb, err := openBolt(path, &bolt.Options{Timeout: timeout, ReadOnly: opt.ReadOnly, NoSync: opt.NoSync})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	} else if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Grow the file 1 MiB at a time instead of bbolt's 16 MiB: a
	// recording grows slowly, and the slack shows in its size.
	bdb.AllocSize = allocSize
	db := &DB{bolt: bdb, path: path, heads: map[SeriesKey]*seriesHead{}}
	// The lock is held now: nobody writes meanwhile. A file that was
	// empty is bbolt's new one.
	if exists {
		err = checkPages(path)
	}
	if err == nil {
		err = db.init(opt.ReadOnly || opt.MustExist)
	}
	if err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// openBolt is bolt.Open under a guard. Should bbolt panic inside Open,
// the file descriptor it opened stays open: Open's checks make that the
// rarest case.
func openBolt(path string, opt *bolt.Options) (bdb *bolt.DB, err error) {
	g := arm()
	defer g.disarm(&err)
	return bolt.Open(path, 0o600, opt)
}

// init checks the layout version of an existing file, or creates the
// top-level buckets of a new one (unless mustExist). An existing file is
// only read, so that opening it changes nothing.
func (db *DB) init(mustExist bool) error {
	fresh := false
	err := db.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			if !isEmpty(tx) {
				return ErrNotWattrec
			}
			fresh = true
			return nil
		}
		v := meta.Get(formatKey)
		if len(v) != 1 {
			return fmt.Errorf("meta/format: %w", ErrCorrupt)
		}
		if v[0] != layoutVersion {
			return fmt.Errorf("%w: layout version %d, this build reads version %d", ErrFormat, v[0], layoutVersion)
		}
		return nil
	})
	switch {
	case err != nil || !fresh:
		return err
	case mustExist:
		return fmt.Errorf("%w (the file is empty)", ErrNotWattrec)
	}
	return db.update(func(tx *bolt.Tx) error {
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
		return nil
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
	err := db.view(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
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
