package store

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SeriesStats summarises one series.
type SeriesStats struct {
	SeriesKey
	Readings       int
	FirstMs        int64
	LastMs         int64
	SeedReadings   int  // only counted when asked for
	SeedsCounted   bool // whether SeedReadings is filled in
	MinMW, MaxMW   int64
	ValuesExamined bool // whether MinMW/MaxMW are filled in
}

// Series lists the series of endpoint ("" = every endpoint), sorted by
// endpoint, kind, device, with counts and time spans. With full set it also
// fills in the seed count and the power range. Either way it reads only
// the series stats, no chunk.
func (db *DB) Series(ctx context.Context, endpoint string, full bool) ([]SeriesStats, error) {
	var out []SeriesStats
	err := db.view(func(tx *bolt.Tx) error {
		eps := tx.Bucket(endpointsBucket)
		return eps.ForEachBucket(func(name []byte) error {
			if endpoint != "" && string(name) != endpoint {
				return nil
			}
			ep := eps.Bucket(name)
			sb, stats := ep.Bucket(seriesBucket), ep.Bucket(statsBucket)
			if sb == nil {
				return nil
			}
			return sb.ForEachBucket(func(sk []byte) error {
				if len(sk) != 5 || !Kind(sk[0]).Valid() {
					return fmt.Errorf("endpoint %q series %x: %w", name, sk, ErrCorrupt)
				}
				st := SeriesStats{SeriesKey: SeriesKey{string(name), Kind(sk[0]), int32(binary.BigEndian.Uint32(sk[1:]))}}
				if k, _ := sb.Bucket(sk).Cursor().First(); k == nil {
					return nil
				}
				var s seriesStats
				if stats == nil {
					return fmt.Errorf("series %s: stats missing: %w", st.SeriesKey, ErrCorrupt)
				}
				if err := decodeStats(&s, stats.Get(sk)); err != nil {
					return fmt.Errorf("series %s stats: %w", st.SeriesKey, err)
				}
				st.Readings, st.FirstMs, st.LastMs = int(s.n), s.first, s.last
				if full {
					st.SeedsCounted, st.ValuesExamined = true, true
					st.SeedReadings, st.MinMW, st.MaxMW = int(s.seeds), s.minMW, s.maxMW
				}
				out = append(out, st)
				return ctx.Err()
			})
		})
	})
	return out, err
}

// Scan calls fn for each reading of series k with fromMs <= TimeMs < toMs,
// oldest first (ties in arrival order), reading the chunks in short
// transactions and calling fn outside them, so that a slow fn never
// holds up the writer. The Reading passed to fn is only valid during the
// call. Scan stops at the first error from fn and returns
// it. A series that is not in the file is ErrNotFound.
func (db *DB) Scan(ctx context.Context, k SeriesKey, fromMs, toMs int64, fn func(*Reading) error) (err error) {
	g := arm()
	defer g.disarm(&err)
	r := Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device}
	var dec chunkDec
	return db.viewChunks(ctx, k, fromMs, toMs, func(h *chunkHeader, key []byte) error {
		dec.reset(h)
		for dec.next() {
			if dec.cur.t < fromMs {
				continue
			}
			if dec.cur.t >= toMs {
				break
			}
			dec.cur.fill(&r)
			g.inFn = true
			err := fn(&r)
			g.inFn = false
			if err != nil {
				return err
			}
		}
		if dec.err != nil {
			return fmt.Errorf("series %s chunk %x: %w", k, key, dec.err)
		}
		return nil
	})
}

// Before returns the last reading of series k with TimeMs < t (the latest
// one stored, if several share that millisecond), and whether there is
// one.
func (db *DB) Before(ctx context.Context, k SeriesKey, t int64) (Reading, bool, error) {
	r := Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device}
	found := false
	err := db.view(func(tx *bolt.Tx) error {
		b := seriesBucketOf(tx, k)
		if b == nil {
			return fmt.Errorf("series %s: %w", k, ErrNotFound)
		}
		// The last chunk that starts before t holds the answer.
		c := b.Cursor()
		key, v := c.Seek(putInt64(nil, t))
		if key == nil {
			key, v = c.Last()
		} else {
			key, v = c.Prev()
		}
		if key == nil {
			return nil
		}
		var h chunkHeader
		if err := parseChunk(&h, key, v); err != nil {
			return fmt.Errorf("series %s chunk %x: %w", k, key, err)
		}
		if h.firstT >= t {
			return fmt.Errorf("series %s chunk %x: %w", k, key, ErrCorrupt)
		}
		found = true
		if h.lastT < t {
			h.lastReading(&r)
			return ctx.Err()
		}
		var dec chunkDec
		dec.reset(&h)
		var last rd
		for dec.next() && dec.cur.t < t {
			last = dec.cur
		}
		if dec.err != nil {
			return fmt.Errorf("series %s chunk %x: %w", k, key, dec.err)
		}
		last.fill(&r)
		return ctx.Err()
	})
	return r, found, err
}

// Chunk is a run of consecutive readings of one series, in Scan order, as
// ScanChunks passes it: one stored chunk. Its fields summarise the run, so
// that a computation over a window that holds all of it can skip decoding
// it; Readings decodes it. A Chunk and what it
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
	// SwingMW is Σ |mw_{i+1} − mw_i| over every pair, also those of one
	// millisecond; HasSwing is false for a chunk written before the swing
	// was stored (it must be decoded to get it).
	SwingMW  int64
	HasSwing bool

	k    SeriesKey
	hdr  *chunkHeader
	dec  chunkDec
	read Reading
}

// Readings calls fn for each reading of the chunk, oldest first (also
// those outside the range ScanChunks was asked for). The Reading passed
// to fn is only valid during the call.
func (c *Chunk) Readings(fn func(*Reading) error) (err error) {
	g := arm()
	defer g.disarm(&err)
	r := &c.read
	*r = Reading{Endpoint: c.k.Endpoint, Kind: c.k.Kind, Device: c.k.Device}
	dec := &c.dec
	dec.reset(c.hdr)
	for dec.next() {
		dec.cur.fill(r)
		g.inFn = true
		err := fn(r)
		g.inFn = false
		if err != nil {
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
// transaction (fn works on the file's own memory, which is what makes it
// fast: keep fn short; Scan is the one for slow consumers). A chunk can also hold readings outside that range: its
// first chunk can start before fromMs and its last one end at or after
// toMs. Chunks partition the series: each reading is in exactly one, and
// the readings of one millisecond share a chunk. ScanChunks stops at the
// first error from fn and returns it. A series that is not in the file is
// ErrNotFound.
func (db *DB) ScanChunks(ctx context.Context, k SeriesKey, fromMs, toMs int64, fn func(*Chunk) error) (err error) {
	g := arm()
	defer g.disarm(&err)
	ch := Chunk{k: k}
	return db.viewChunksTx(ctx, k, fromMs, toMs, func(h *chunkHeader, _ []byte) error {
		ch.hdr = h
		ch.Len, ch.FirstMs, ch.LastMs, ch.FirstMW, ch.LastMW = h.n, h.firstT, h.lastT, h.firstMW, h.lastMW
		ch.HasSums, ch.HoldUJ, ch.Trapezoid2UJ, ch.PeakMW = h.sums.ok, int64(h.sums.hold), int64(h.sums.trap2), h.sums.peak
		ch.SwingMW, ch.HasSwing = int64(h.sums.swing), h.sums.ok && h.sums.hasSwing
		g.inFn = true
		err := fn(&ch)
		g.inFn = false
		return err
	})
}

// scanBatchBytes bounds the chunk bytes one read transaction of a scan
// copies out: a scan reads the series in short transactions, so that a
// caller that stops reading (a paused export) never holds one open.
const scanBatchBytes = 256 << 10

// viewChunks calls fn with the header of each chunk of series k that
// holds a time in [fromMs, toMs), oldest first, and the chunk's key. It
// reads the chunks in short read transactions, copying up to
// scanBatchBytes of them out of each, and calls fn outside any
// transaction: however long fn takes, it never keeps the writer from
// growing the file. Each chunk is seen as of the transaction that read
// it, and each chunk key at most once. It stops at the first error from
// fn. A series that is not in the file is ErrNotFound.
func (db *DB) viewChunks(ctx context.Context, k SeriesKey, fromMs, toMs int64, fn func(h *chunkHeader, key []byte) error) error {
	if fromMs >= toMs {
		// Still say whether the series exists.
		return db.bolt.View(func(tx *bolt.Tx) error {
			if seriesBucketOf(tx, k) == nil {
				return fmt.Errorf("series %s: %w", k, ErrNotFound)
			}
			return nil
		})
	}
	var (
		buf     []byte // the batch's chunk values, back to back
		ends    []int  // buf[ends[i-1]:ends[i]] is chunk i's value
		keys    [][8]byte
		h       chunkHeader
		started bool
		last    [8]byte // the key of the last chunk handed to fn
	)
	for {
		buf, ends, keys = buf[:0], ends[:0], keys[:0]
		more := false
		err := db.bolt.View(func(tx *bolt.Tx) error {
			b := seriesBucketOf(tx, k)
			if b == nil {
				return fmt.Errorf("series %s: %w", k, ErrNotFound)
			}
			c := b.Cursor()
			var key, v []byte
			if started {
				key, v = c.Seek(last[:])
				if key != nil && string(key) == string(last[:]) {
					key, v = c.Next()
				}
			} else {
				key, v = seekChunk(c, fromMs)
			}
			for ; key != nil && getInt64(key) < toMs; key, v = c.Next() {
				if len(key) != 8 {
					return fmt.Errorf("series %s chunk key %x: %w", k, key, ErrCorrupt)
				}
				if len(buf) > 0 && len(buf)+len(v) > scanBatchBytes {
					more = true
					return nil
				}
				buf = append(buf, v...) // bbolt's memory is only valid in the transaction
				ends = append(ends, len(buf))
				keys = append(keys, [8]byte(key))
			}
			return nil
		})
		if err != nil {
			return err
		}
		start := 0
		for i, end := range ends {
			started, last = true, keys[i]
			if err := visitChunk(ctx, k, &h, keys[i][:], buf[start:end], fromMs, fn); err != nil {
				return err
			}
			start = end
		}
		if !more {
			return ctx.Err()
		}
	}
}

// viewChunksTx is viewChunks inside one read transaction, with fn
// called inside it on the file's memory.
func (db *DB) viewChunksTx(ctx context.Context, k SeriesKey, fromMs, toMs int64, fn func(h *chunkHeader, key []byte) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		b := seriesBucketOf(tx, k)
		if b == nil {
			return fmt.Errorf("series %s: %w", k, ErrNotFound)
		}
		if fromMs >= toMs {
			return nil
		}
		var h chunkHeader
		c := b.Cursor()
		for key, v := seekChunk(c, fromMs); key != nil && getInt64(key) < toMs; key, v = c.Next() {
			if err := visitChunk(ctx, k, &h, key, v, fromMs, fn); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}

// visitChunk parses the chunk at key, value v into h and, unless it ends
// before fromMs, calls fn with it.
func visitChunk(ctx context.Context, k SeriesKey, h *chunkHeader, key, v []byte, fromMs int64, fn func(h *chunkHeader, key []byte) error) error {
	if err := parseChunk(h, key, v); err != nil {
		return fmt.Errorf("series %s chunk %x: %w", k, key, err)
	}
	if h.lastT < fromMs {
		return nil
	}
	if err := fn(h, key); err != nil {
		return err
	}
	return ctx.Err()
}

// seriesBucketOf returns the bucket of series k's chunks, or nil.
func seriesBucketOf(tx *bolt.Tx, k SeriesKey) *bolt.Bucket {
	ep := tx.Bucket(endpointsBucket).Bucket([]byte(k.Endpoint))
	if ep == nil {
		return nil
	}
	sb := ep.Bucket(seriesBucket)
	if sb == nil {
		return nil
	}
	return sb.Bucket(seriesName(k.Kind, k.Device))
}

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
