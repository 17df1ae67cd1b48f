package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// This file is the read path of format 2 (chunks), and ScanChunks for
// both formats.

// seekChunk positions c on the chunk that holds time t: the last chunk
// whose key is <= t, or the first chunk if t precedes them all.
func seekChunk(c *bolt.Cursor, t int64) (key, v []byte) {
	key, v = c.Seek(putInt64(nil, t))
	switch {
	case key == nil:
		return c.Last()
	case getInt64(key) > t:
		if pk, pv := c.Prev(); pk != nil {
			return pk, pv
		}
		return c.First()
	}
	return key, v
}

// Chunk is a run of consecutive readings of one series, in Scan order, as
// ScanChunks passes it: one stored chunk. Its fields
// summarise the run, so that a computation over a window that holds all
// of it can skip decoding it; Readings decodes it. A Chunk and what it
// returns are only valid during the call to ScanChunks' fn.
type Chunk struct {
	Len             int   // readings, at least one
	FirstMs, LastMs int64 // corrected times of the first and last reading
	FirstMW, LastMW int64 // their values

	// Sums over each pair of consecutive readings (r_i, r_{i+1}) of the
	// chunk, with t their corrected times and mw their values. They are
	// exact; HasSums is false when one would overflow an int64, and then
	// the chunk must be decoded.
	HasSums bool
	HoldUJ  int64 // Σ mw_i·(t_{i+1} − t_i), mW·ms (= µJ): each value held until the next
	// Trapezoid2UJ is Σ (mw_i + mw_{i+1})·(t_{i+1} − t_i): twice the
	// integral of the straight lines between the readings.
	Trapezoid2UJ int64
	// PeakMW is the largest mw_i with t_{i+1} > t_i (a value that held
	// for a while inside the chunk); -1 if there is none.
	PeakMW int64

	k    SeriesKey
	hdr  *chunkHeader
	dec  chunkDec
	read Reading
}

// Readings calls fn for each reading of the chunk, oldest first (also
// those outside the range ScanChunks was asked for). The Reading passed
// to fn is only valid during the call.
func (c *Chunk) Readings(fn func(*Reading) error) error {
	r := &c.read
	*r = Reading{Endpoint: c.k.Endpoint, Kind: c.k.Kind, Device: c.k.Device}
	dec := &c.dec
	dec.reset(c.hdr)
	for dec.next() {
		r.TimeMs, r.DaemonMs, r.MilliWatts, r.Seed = dec.cur.t, dec.cur.daemon(), dec.cur.mw, dec.cur.seed
		if err := fn(r); err != nil {
			return err
		}
	}
	if dec.err != nil {
		return fmt.Errorf("series %s chunk at %d: %w", c.k, c.hdr.firstT, dec.err)
	}
	return nil
}

// ScanChunks calls fn for each chunk of series k that holds a reading
// with fromMs <= TimeMs < toMs, oldest first, inside one read
// transaction. A chunk can also hold readings outside that range: its
// first chunk can start before fromMs and its last one end at or after
// toMs. Chunks partition the series: each reading is in exactly one, and
// the readings of one millisecond share a chunk. ScanChunks stops at the
// first error from fn and returns it. A series that is not in the file is
// ErrNotFound.
func (db *DB) ScanChunks(ctx context.Context, k SeriesKey, fromMs, toMs int64, fn func(*Chunk) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		b := seriesBucketOf(tx, k)
		if b == nil {
			return fmt.Errorf("series %s: %w", k, ErrNotFound)
		}
		if fromMs >= toMs {
			return nil
		}
		var h chunkHeader
		ch := Chunk{k: k, hdr: &h}
		c := b.Cursor()
		for key, v := seekChunk(c, fromMs); key != nil && getInt64(key) < toMs; key, v = c.Next() {
			if err := parseChunk(&h, key, v); err != nil {
				return fmt.Errorf("series %s chunk %x: %w", k, key, err)
			}
			if h.lastT < fromMs {
				continue
			}
			ch.Len, ch.FirstMs, ch.LastMs, ch.FirstMW, ch.LastMW = h.n, h.firstT, h.lastT, h.firstMW, h.lastMW
			ch.HasSums, ch.HoldUJ, ch.Trapezoid2UJ, ch.PeakMW = h.sums.ok, int64(h.sums.hold), int64(h.sums.trap2), h.sums.peak
			if err := fn(&ch); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}
