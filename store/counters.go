package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// CounterReading is one reading of a device's hardware energy counter
// (zeusd's get_cumulative_energy). Counters count from an arbitrary origin:
// only the difference of two readings of one series means something.
type CounterReading struct {
	Endpoint string
	Kind     Kind
	Device   int32
	// TakenMs is the recorder's clock (the clock of corrected reading
	// times) at the midpoint of the request's send and receive. The
	// counter was read within RTTUs/2 of it.
	TakenMs int64
	RTTUs   int64 // the request's round trip, µs
	// EnergyUJ is the counter in µJ: a GPU's energy_mj × 1000 (so a GPU
	// counter has 1 mJ resolution), a CPU's cpu_energy_uj, a DRAM domain's
	// dram_energy_uj.
	EnergyUJ int64
	Trigger  CounterTrigger
}

// Series returns the series r measures.
func (r *CounterReading) Series() SeriesKey { return SeriesKey{r.Endpoint, r.Kind, r.Device} }

// CounterTrigger says why a counter reading was taken.
type CounterTrigger uint8

// The reasons for a counter reading.
const (
	TriggerStart    CounterTrigger = 1 // when an endpoint's recording started
	TriggerPeriodic CounterTrigger = 2 // every counter interval
	TriggerMark     CounterTrigger = 3 // on request, e.g. for a mark
	TriggerStop     CounterTrigger = 4 // when the recorder stopped
)

// Valid reports whether t is one of the defined triggers.
func (t CounterTrigger) Valid() bool { return t >= TriggerStart && t <= TriggerStop }

func (t CounterTrigger) String() string {
	switch t {
	case TriggerStart:
		return "start"
	case TriggerPeriodic:
		return "periodic"
	case TriggerMark:
		return "mark"
	case TriggerStop:
		return "stop"
	}
	return fmt.Sprintf("trigger(%d)", uint8(t))
}

// Counters returns the counter readings of series k with
// fromMs <= TakenMs < toMs, oldest first (ties in arrival order). A
// series without counter readings gives none and no error; an endpoint
// that is not in the file is ErrNotFound.
func (db *DB) Counters(ctx context.Context, k SeriesKey, fromMs, toMs int64) ([]CounterReading, error) {
	var out []CounterReading
	err := db.EachCounter(ctx, k, fromMs, toMs, func(r *CounterReading) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}

// EachCounter calls fn for each reading Counters would return, in one
// read transaction, without collecting them; the reading passed to fn is
// only valid during the call. It stops at the first error from fn and
// returns it.
func (db *DB) EachCounter(ctx context.Context, k SeriesKey, fromMs, toMs int64, fn func(*CounterReading) error) error {
	return db.view(func(tx *bolt.Tx) error {
		b, err := countersOf(tx, k.Endpoint)
		if b == nil {
			return err
		}
		r := CounterReading{Endpoint: k.Endpoint}
		c, end, n := b.Cursor(), counterKey(nil, k.Kind, k.Device, toMs), 0
		for key, v := c.Seek(counterKey(nil, k.Kind, k.Device, fromMs)); key != nil && bytes.Compare(key, end) < 0; key, v = c.Next() {
			if err := decodeCounter(&r, key, v); err != nil {
				return fmt.Errorf("counters %s key %x: %w", k, key, err)
			}
			if err := fn(&r); err != nil {
				return err
			}
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return ctx.Err()
	})
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
	err := db.view(func(tx *bolt.Tx) error {
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

// countersOf returns endpoint's counters bucket: nil if the endpoint has
// none yet, ErrNotFound if the endpoint is not in the file.
func countersOf(tx *bolt.Tx, endpoint string) (*bolt.Bucket, error) {
	ep := tx.Bucket(endpointsBucket).Bucket([]byte(endpoint))
	if ep == nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, ErrNotFound)
	}
	return ep.Bucket(countersBucket), nil
}

// counterKey is kind (1) | device (4 BE) | taken ms (8, sign-flipped BE),
// the 13-byte prefix of a counter key; the dup index (2 BE) follows.
func counterKey(dst []byte, k Kind, device int32, takenMs int64) []byte {
	dst = append(dst, byte(k))
	dst = binary.BigEndian.AppendUint32(dst, uint32(device))
	return putInt64(dst, takenMs)
}

// The lengths of a counter key's prefix (without the dup index) and of
// the whole key.
const (
	counterPrefixLen = 13
	counterKeyLen    = 15
)

func encodeCounter(dst []byte, r *CounterReading) []byte {
	dst = append(dst, valueV1, byte(r.Trigger))
	dst = binary.AppendUvarint(dst, uint64(r.EnergyUJ))
	return binary.AppendUvarint(dst, uint64(r.RTTUs))
}

// decodeCounter fills r's series, time and value from key and v; the
// endpoint is the caller's.
func decodeCounter(r *CounterReading, key, v []byte) error {
	if len(key) != counterKeyLen || !Kind(key[0]).Valid() || len(v) < 4 || v[0] != valueV1 || !CounterTrigger(v[1]).Valid() {
		return ErrCorrupt
	}
	e, n := binary.Uvarint(v[2:])
	if n <= 0 || e > math.MaxInt64 {
		return ErrCorrupt
	}
	rtt, m := binary.Uvarint(v[2+n:])
	if m <= 0 || rtt > math.MaxInt64 || 2+n+m != len(v) {
		return ErrCorrupt
	}
	r.Kind, r.Device = Kind(key[0]), int32(binary.BigEndian.Uint32(key[1:5]))
	r.TakenMs = getInt64(key[5:13])
	r.Trigger, r.EnergyUJ, r.RTTUs = CounterTrigger(v[1]), int64(e), int64(rtt)
	return nil
}
