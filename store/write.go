package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

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

// releaseMappedEvery is how many commits of a DB go between two releases
// of the file's mapped pages (releaseMapped).
const releaseMappedEvery = 64

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
	db.commits++
	err := db.update(func(tx *bolt.Tx) error {
		if db.commits%releaseMappedEvery == 0 {
			releaseMapped(tx)
		}
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
			if _, err := putMark(tx, b.Marks[i]); err != nil {
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
	v, err := encodeJSON(e)
	if err != nil {
		return err
	}
	return ep.Put(infoKey, v)
}

func (w *writer) putRun(r Run) error {
	b := w.tx.Bucket(runsBucket)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := encodeJSON(r)
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
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

func sessionKey(start int64, s Stream) []byte {
	return append(putInt64(make([]byte, 0, 9), start), byte(s))
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
