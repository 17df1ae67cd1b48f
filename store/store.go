package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
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
	// ErrCorrupt means stored bytes do not decode under this format.
	ErrCorrupt = errors.New("corrupt record")
	// ErrNotFound means the endpoint or series is not in the file.
	ErrNotFound = errors.New("not found")
	// ErrFormat means the file was written in a layout this build cannot read.
	ErrFormat = errors.New("unsupported file format")
	// ErrNotWattrec means the file is a bbolt file without wattrec's metadata.
	ErrNotWattrec = errors.New("not a wattrec database")
)

var (
	metaBucket      = []byte("meta")
	runsBucket      = []byte("runs")
	endpointsBucket = []byte("endpoints")
	seriesBucket    = []byte("series")
	sessionsBucket  = []byte("sessions")
	clockBucket     = []byte("clock")
	countersBucket  = []byte("counters")
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

// Batch is everything one commit writes. Any field may be empty.
type Batch struct {
	Readings  []Reading
	Sessions  []Session // upserted by (Endpoint, Stream, Start)
	Clocks    []ClockEstimate
	Endpoints []EndpointInfo // replaces the endpoint's info
	Runs      []Run
	Counters  []CounterReading
	Marks     []Mark // upserted by ID; ID 0 adds a new mark
}

// Len is the number of records in b.
func (b *Batch) Len() int {
	return len(b.Readings) + len(b.Sessions) + len(b.Clocks) + len(b.Endpoints) + len(b.Runs) + len(b.Counters) + len(b.Marks)
}

// Reset empties b, keeping its capacity.
func (b *Batch) Reset() {
	b.Readings, b.Sessions, b.Clocks = b.Readings[:0], b.Sessions[:0], b.Clocks[:0]
	b.Endpoints, b.Runs, b.Counters, b.Marks = b.Endpoints[:0], b.Runs[:0], b.Counters[:0], b.Marks[:0]
}

// Append writes rs in one transaction. It does not retain rs.
func (db *DB) Append(ctx context.Context, rs []Reading) error {
	return db.Write(ctx, &Batch{Readings: rs})
}

// Write commits b in one transaction: all of it or, on error, none of it.
// Identical replays of stored readings and counter readings are skipped
// (see the package documentation for the duplicate policy). It does not
// retain b.
func (db *DB) Write(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	w := writer{db: db}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		w.tx, w.endpoints = tx, tx.Bucket(endpointsBucket)
		for _, e := range b.Endpoints {
			if err := w.putEndpoint(e); err != nil {
				return fmt.Errorf("endpoint %q info: %w", e.Endpoint, err)
			}
		}
		for _, r := range b.Runs {
			if err := w.putRun(r); err != nil {
				return fmt.Errorf("run record: %w", err)
			}
		}
		for _, c := range b.Clocks {
			if err := w.putClock(c); err != nil {
				return fmt.Errorf("endpoint %q clock estimate: %w", c.Endpoint, err)
			}
		}
		for _, s := range b.Sessions {
			if err := w.putSession(s); err != nil {
				return fmt.Errorf("endpoint %q %s session: %w", s.Endpoint, s.Stream, err)
			}
		}
		for i := range b.Readings {
			if err := w.putReading(&b.Readings[i]); err != nil {
				r := &b.Readings[i]
				return fmt.Errorf("put %s %s:%d @%d: %w", r.Endpoint, r.Kind, r.Device, r.TimeMs, err)
			}
		}
		if err := w.flushHeads(); err != nil {
			return err
		}
		for i := range b.Marks {
			if _, err := w.putMark(b.Marks[i]); err != nil {
				return fmt.Errorf("mark %q: %w", b.Marks[i].Name, err)
			}
		}
		for i := range b.Counters {
			if err := w.putCounter(&b.Counters[i]); err != nil {
				r := &b.Counters[i]
				return fmt.Errorf("put counter %s %s:%d @%d: %w", r.Endpoint, r.Kind, r.Device, r.TakenMs, err)
			}
		}
		return nil
	})
	if err != nil {
		// The cached heads of the series this batch touched may hold
		// readings that were not committed: read them again next time.
		for k := range w.series {
			delete(db.heads, k)
		}
	}
	return err
}

// writer caches the buckets of one write transaction.
type writer struct {
	db        *DB
	tx        *bolt.Tx
	endpoints *bolt.Bucket
	lastEP    string
	epBucket  *bolt.Bucket

	// The series written in this transaction, and their endpoints.
	series map[SeriesKey]*txSeries
	eps    map[string]*txEndpoint
	recent [64]*txSeries
}

func (w *writer) endpoint(name string) (*bolt.Bucket, error) {
	if w.epBucket != nil && w.lastEP == name {
		return w.epBucket, nil
	}
	if name == "" {
		return nil, errors.New("empty endpoint name")
	}
	b, err := w.endpoints.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, err
	}
	w.lastEP, w.epBucket = name, b
	return b, nil
}

func (w *writer) sub(endpoint string, name []byte) (*bolt.Bucket, error) {
	ep, err := w.endpoint(endpoint)
	if err != nil {
		return nil, err
	}
	return ep.CreateBucketIfNotExists(name)
}

func (w *writer) putEndpoint(e EndpointInfo) error {
	ep, err := w.endpoint(e.Endpoint)
	if err != nil {
		return err
	}
	js, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return ep.Put(infoKey, append([]byte{valueV1}, js...))
}

func (w *writer) putRun(r Run) error {
	b := w.tx.Bucket(runsBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	js, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), append([]byte{valueV1}, js...))
}

func (w *writer) putClock(c ClockEstimate) error {
	b, err := w.sub(c.Endpoint, clockBucket)
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(putInt64(nil, c.TakenMs), seq), encodeClock(c))
}

func (w *writer) putSession(s Session) error {
	if s.Stream != StreamGPU && s.Stream != StreamCPU {
		return fmt.Errorf("invalid stream %d", s.Stream)
	}
	b, err := w.sub(s.Endpoint, sessionsBucket)
	if err != nil {
		return err
	}
	return b.Put(sessionKey(s.Start, s.Stream), encodeSession(s))
}

// checkReading rejects values the store cannot hold.
func checkReading(r *Reading) error {
	if r.MilliWatts < 0 {
		return fmt.Errorf("negative power %d mW", r.MilliWatts)
	}
	if r.MilliWatts > maxMilliWatts {
		return fmt.Errorf("power %d mW out of range", r.MilliWatts)
	}
	return nil
}

func (w *writer) putCounter(r *CounterReading) error {
	switch {
	case !r.Kind.Valid():
		return fmt.Errorf("invalid kind %d", r.Kind)
	case r.Device < 0:
		return fmt.Errorf("negative device %d", r.Device)
	case !r.Trigger.Valid():
		return fmt.Errorf("invalid trigger %d", r.Trigger)
	case r.EnergyUJ < 0:
		return fmt.Errorf("negative energy %d µJ", r.EnergyUJ)
	case r.RTTUs < 0:
		return fmt.Errorf("negative round trip %d µs", r.RTTUs)
	}
	b, err := w.sub(r.Endpoint, countersBucket)
	if err != nil {
		return err
	}
	b.FillPercent = 0.9 // each series only appends at its end: pack pages tightly
	// Same duplicate policy as readings: skip an identical replay, keep a
	// different reading of the same millisecond under the next dup index.
	val := encodeCounter(make([]byte, 0, 24), r)
	prefix := counterKey(make([]byte, 0, counterKeyLen), r.Kind, r.Device, r.TakenMs)
	c := b.Cursor()
	var dup uint16
	for k, v := c.Seek(prefix); k != nil && len(k) == counterKeyLen && string(k[:counterPrefixLen]) == string(prefix); k, v = c.Next() {
		if string(v) == string(val) {
			return nil // identical replay
		}
		dup = binary.BigEndian.Uint16(k[counterPrefixLen:]) + 1
		if dup == 0 {
			return errors.New("more than 65536 different counter readings at one millisecond")
		}
	}
	return b.Put(binary.BigEndian.AppendUint16(prefix, dup), val)
}

// putInt64 appends v as 8 big-endian bytes with the sign bit flipped, so
// that byte order is numeric order for negative values too.
func putInt64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func getInt64(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

func seriesName(k Kind, device int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{byte(k)}, uint32(device))
}

func sessionKey(start int64, s Stream) []byte {
	return append(putInt64(make([]byte, 0, 9), start), byte(s))
}
