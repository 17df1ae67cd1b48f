package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Endpoints returns the endpoints in the file, sorted by name. An endpoint
// that has data but no stored info comes back with only its name.
func (db *DB) Endpoints(ctx context.Context) ([]EndpointInfo, error) {
	var out []EndpointInfo
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(endpointsBucket).ForEachBucket(func(name []byte) error {
			info := EndpointInfo{Endpoint: string(name)}
			if v := tx.Bucket(endpointsBucket).Bucket(name).Get(infoKey); v != nil {
				if len(v) < 1 || v[0] != valueV1 {
					return fmt.Errorf("endpoint %q info: %w", name, ErrCorrupt)
				}
				if err := json.Unmarshal(v[1:], &info); err != nil {
					return fmt.Errorf("endpoint %q info: %w: %v", name, ErrCorrupt, err)
				}
			}
			out = append(out, info)
			return ctx.Err()
		})
	})
	return out, err
}

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
// reads every value to count seeds and find the power range.
func (db *DB) Series(ctx context.Context, endpoint string, full bool) ([]SeriesStats, error) {
	var out []SeriesStats
	err := db.bolt.View(func(tx *bolt.Tx) error {
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
// oldest first (ties in arrival order). The Reading passed to fn is only
// valid during the call. Scan stops at the first error from fn and returns
// it. A series that is not in the file is ErrNotFound.
func (db *DB) Scan(ctx context.Context, k SeriesKey, fromMs, toMs int64, fn func(*Reading) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		b := seriesBucketOf(tx, k)
		if b == nil {
			return fmt.Errorf("series %s: %w", k, ErrNotFound)
		}
		if fromMs >= toMs {
			return nil
		}
		r := Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device}
		var h chunkHeader
		var dec chunkDec
		c := b.Cursor()
		for key, v := seekChunk(c, fromMs); key != nil && getInt64(key) < toMs; key, v = c.Next() {
			if err := parseChunk(&h, key, v); err != nil {
				return fmt.Errorf("series %s chunk %x: %w", k, key, err)
			}
			if h.lastT < fromMs {
				continue
			}
			dec.reset(&h)
			for dec.next() {
				if dec.cur.t < fromMs {
					continue
				}
				if dec.cur.t >= toMs {
					break
				}
				r.TimeMs, r.DaemonMs, r.MilliWatts, r.Seed = dec.cur.t, dec.cur.daemon(), dec.cur.mw, dec.cur.seed
				if err := fn(&r); err != nil {
					return err
				}
			}
			if dec.err != nil {
				return fmt.Errorf("series %s chunk %x: %w", k, key, dec.err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}

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

// Sessions returns the stream sessions of endpoint, ordered by start time.
func (db *DB) Sessions(ctx context.Context, endpoint string) ([]Session, error) {
	var out []Session
	err := db.forEach(endpoint, sessionsBucket, func(k, v []byte) error {
		s := Session{Endpoint: endpoint}
		if err := decodeSession(&s, k, v); err != nil {
			return fmt.Errorf("endpoint %q session %x: %w", endpoint, k, err)
		}
		out = append(out, s)
		return ctx.Err()
	})
	return out, err
}

// ClockEstimates returns every clock estimate of endpoint, oldest first.
func (db *DB) ClockEstimates(ctx context.Context, endpoint string) ([]ClockEstimate, error) {
	var out []ClockEstimate
	err := db.forEach(endpoint, clockBucket, func(k, v []byte) error {
		c := ClockEstimate{Endpoint: endpoint}
		if err := decodeClock(&c, k, v); err != nil {
			return fmt.Errorf("endpoint %q clock estimate %x: %w", endpoint, k, err)
		}
		out = append(out, c)
		return ctx.Err()
	})
	return out, err
}

func (db *DB) forEach(endpoint string, bucket []byte, fn func(k, v []byte) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		ep := tx.Bucket(endpointsBucket).Bucket([]byte(endpoint))
		if ep == nil {
			return fmt.Errorf("endpoint %q: %w", endpoint, ErrNotFound)
		}
		b := ep.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(fn)
	})
}

// Runs returns the recorder starts on this file, oldest first.
func (db *DB) Runs(ctx context.Context) ([]Run, error) {
	var out []Run
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(runsBucket).ForEach(func(k, v []byte) error {
			var r Run
			if len(v) < 1 || v[0] != valueV1 {
				return fmt.Errorf("run %x: %w", k, ErrCorrupt)
			}
			if err := json.Unmarshal(v[1:], &r); err != nil {
				return fmt.Errorf("run %x: %w: %v", k, ErrCorrupt, err)
			}
			out = append(out, r)
			return ctx.Err()
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedMs < out[j].StartedMs })
	return out, err
}

// Before returns the last reading of series k with TimeMs < t (the latest
// one stored, if several share that millisecond), and whether there is
// one.
func (db *DB) Before(ctx context.Context, k SeriesKey, t int64) (Reading, bool, error) {
	r := Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device}
	found := false
	err := db.bolt.View(func(tx *bolt.Tx) error {
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
		r.TimeMs, r.DaemonMs, r.MilliWatts, r.Seed = last.t, last.daemon(), last.mw, last.seed
		return ctx.Err()
	})
	return r, found, err
}

// countersOf returns endpoint's counters bucket: nil if the endpoint has
// none yet, ErrNotFound if the endpoint is not in the file.
func countersOf(tx *bolt.Tx, endpoint string) (*bolt.Bucket, error) {
	ep := tx.Bucket(endpointsBucket).Bucket([]byte(endpoint))
	if ep == nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, ErrNotFound)
	}
	return ep.Bucket(countersBucket), nil
}

// Counters returns the counter readings of series k with
// fromMs <= TakenMs < toMs, oldest first (ties in arrival order). A
// series without counter readings gives none and no error; an endpoint
// that is not in the file is ErrNotFound.
func (db *DB) Counters(ctx context.Context, k SeriesKey, fromMs, toMs int64) ([]CounterReading, error) {
	var out []CounterReading
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b, err := countersOf(tx, k.Endpoint)
		if b == nil {
			return err
		}
		c, end := b.Cursor(), counterKey(nil, k.Kind, k.Device, toMs)
		for key, v := c.Seek(counterKey(nil, k.Kind, k.Device, fromMs)); key != nil && bytes.Compare(key, end) < 0; key, v = c.Next() {
			r := CounterReading{Endpoint: k.Endpoint}
			if err := decodeCounter(&r, key, v); err != nil {
				return fmt.Errorf("counters %s key %x: %w", k, key, err)
			}
			out = append(out, r)
			if len(out)%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return ctx.Err()
	})
	return out, err
}

// CounterBracket is the pair of counter readings that encloses a window
// [t0, t1] of one series, as far as the file has them.
type CounterBracket struct {
	// Start is the last reading with TakenMs <= t0 (the latest stored, if
	// several share that millisecond); HasStart says whether there is one.
	Start    CounterReading
	HasStart bool
	// End is the first reading with TakenMs >= t1 (the first stored, if
	// several share that millisecond); HasEnd says whether there is one.
	End    CounterReading
	HasEnd bool
}

// Complete reports whether both ends were found.
func (b CounterBracket) Complete() bool { return b.HasStart && b.HasEnd }

// CounterBracket finds, in one read transaction, the last counter reading
// of series k at or before t0 and the first at or after t1: two cursor
// seeks, whatever the file's size. The counter delta End − Start then
// covers [t0, t1] and at most the time to the bracketing readings on
// either side. A series without counter readings gives an empty bracket
// and no error; an endpoint that is not in the file is ErrNotFound.
func (db *DB) CounterBracket(ctx context.Context, k SeriesKey, t0, t1 int64) (CounterBracket, error) {
	var br CounterBracket
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b, err := countersOf(tx, k.Endpoint)
		if b == nil {
			return err
		}
		inSeries := func(key []byte) bool {
			return len(key) == counterKeyLen && key[0] == byte(k.Kind) && binary.BigEndian.Uint32(key[1:5]) == uint32(k.Device)
		}
		c := b.Cursor()

		// Start: step back from the first key after t0's millisecond.
		var key, v []byte
		if t0 == math.MaxInt64 {
			key, v = c.Seek(seriesName(k.Kind, k.Device+1)) // past the series
		} else {
			key, v = c.Seek(counterKey(nil, k.Kind, k.Device, t0+1))
		}
		if key == nil {
			key, v = c.Last()
		} else {
			key, v = c.Prev()
		}
		if key != nil && inSeries(key) {
			br.Start.Endpoint, br.HasStart = k.Endpoint, true
			if err := decodeCounter(&br.Start, key, v); err != nil {
				return fmt.Errorf("counters %s key %x: %w", k, key, err)
			}
		}

		// End: the first key at or after t1's millisecond.
		if key, v = c.Seek(counterKey(nil, k.Kind, k.Device, t1)); key != nil && inSeries(key) {
			br.End.Endpoint, br.HasEnd = k.Endpoint, true
			if err := decodeCounter(&br.End, key, v); err != nil {
				return fmt.Errorf("counters %s key %x: %w", k, key, err)
			}
		}
		return ctx.Err()
	})
	return br, err
}

// CounterStats summarises the counter readings of one series.
type CounterStats struct {
	SeriesKey
	Readings        int
	FirstMs, LastMs int64 // TakenMs of the first and last reading
}

// CounterSeries lists the series of endpoint ("" = every endpoint) that
// have counter readings, sorted by endpoint, kind, device, with counts and
// time spans.
func (db *DB) CounterSeries(ctx context.Context, endpoint string) ([]CounterStats, error) {
	var out []CounterStats
	err := db.bolt.View(func(tx *bolt.Tx) error {
		eps := tx.Bucket(endpointsBucket)
		return eps.ForEachBucket(func(name []byte) error {
			if endpoint != "" && string(name) != endpoint {
				return nil
			}
			b := eps.Bucket(name).Bucket(countersBucket)
			if b == nil {
				return nil
			}
			var st *CounterStats
			c, n := b.Cursor(), 0
			for key, _ := c.First(); key != nil; key, _ = c.Next() {
				if len(key) != counterKeyLen || !Kind(key[0]).Valid() {
					return fmt.Errorf("endpoint %q counter key %x: %w", name, key, ErrCorrupt)
				}
				sk := SeriesKey{string(name), Kind(key[0]), int32(binary.BigEndian.Uint32(key[1:5]))}
				t := getInt64(key[5:13])
				if st == nil || st.SeriesKey != sk {
					out = append(out, CounterStats{SeriesKey: sk, FirstMs: t})
					st = &out[len(out)-1]
				}
				st.Readings++
				st.LastMs = t
				if n++; n%4096 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
			}
			return ctx.Err()
		})
	})
	return out, err
}
