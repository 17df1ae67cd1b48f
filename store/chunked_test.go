package store_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// model is the reference for what a series holds: readings in corrected
// time order, ties in arrival order, a reading equal to a stored one in
// times and value (whatever its seed flag) dropped.
type model map[store.SeriesKey][]store.Reading

func (m model) put(r store.Reading) {
	k := r.Series()
	rs := m[k]
	i := len(rs)
	for i > 0 && rs[i-1].TimeMs > r.TimeMs {
		i--
	}
	for j := i - 1; j >= 0 && rs[j].TimeMs == r.TimeMs; j-- {
		if rs[j].DaemonMs == r.DaemonMs && rs[j].MilliWatts == r.MilliWatts {
			return
		}
	}
	m[k] = slices.Insert(rs, i, r)
}

func (m model) clone() model {
	c := model{}
	for k, rs := range m {
		c[k] = slices.Clone(rs)
	}
	return c
}

// streamGen makes random streams for a few series: mostly in order on a
// poll grid, with identical replays (recent and old), different readings
// of the same millisecond, seeds, late (out of order) readings, clock
// steps, pre-1970 and extreme times.
type streamGen struct {
	rng    *rand.Rand
	keys   []store.SeriesKey
	next   map[store.SeriesKey]int64
	offset map[store.SeriesKey]int64
	sent   []store.Reading
}

func newStreamGen(seed uint64) *streamGen {
	g := &streamGen{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), next: map[store.SeriesKey]int64{}, offset: map[store.SeriesKey]int64{}}
	starts := []int64{1_700_000_000_000, -86_400_000, math.MinInt64 + 10, math.MaxInt64 - 10_000_000, 0}
	for i, ep := range []string{"n1:4938", "/run/zeusd.sock"} {
		for _, kind := range []store.Kind{store.KindGPU, store.KindCPU, store.KindDRAM} {
			k := store.SeriesKey{Endpoint: ep, Kind: kind, Device: int32(i)}
			g.keys = append(g.keys, k)
			g.next[k] = starts[len(g.keys)%len(starts)]
			g.offset[k] = g.rng.Int64N(10_000) - 5_000
		}
	}
	return g
}

func (g *streamGen) reading() store.Reading {
	rng := g.rng
	switch p := rng.IntN(1000); {
	case p < 20 && len(g.sent) > 0: // an identical replay of a recent reading
		return g.sent[len(g.sent)-1-rng.IntN(min(len(g.sent), 50))]
	case p < 30 && len(g.sent) > 0: // of any reading
		return g.sent[rng.IntN(len(g.sent))]
	case p < 50 && len(g.sent) > 0: // a different reading of a recent millisecond
		r := g.sent[len(g.sent)-1-rng.IntN(min(len(g.sent), 20))]
		switch rng.IntN(3) {
		case 0:
			r.MilliWatts++
		case 1:
			r.DaemonMs--
		default:
			r.Seed = !r.Seed
		}
		g.sent = append(g.sent, r)
		return r
	}
	k := g.keys[rng.IntN(len(g.keys))]
	t := g.next[k]
	step := int64(50 * (1 + rng.IntN(3)/2))
	if t < math.MaxInt64-10*step {
		g.next[k] = t + step
	}
	switch p := rng.IntN(1000); {
	case p < 15: // late: anywhere before
		t -= rng.Int64N(2_000_000)
		if t > g.next[k] { // wrapped
			t = math.MinInt64
		}
	case p < 25: // a clock step
		g.offset[k] += rng.Int64N(7) - 3
	}
	r := store.Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device, TimeMs: t,
		DaemonMs: t - g.offset[k], MilliWatts: 60_000 + rng.Int64N(240_000), Seed: rng.IntN(100) == 0}
	g.sent = append(g.sent, r)
	return r
}

// check compares everything db reports about m's series with m.
func check(t *testing.T, db *store.DB, m model) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(len(m)), 99))
	series, err := db.Series(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != len(m) {
		t.Fatalf("Series: %d, want %d", len(series), len(m))
	}
	for _, s := range series {
		want := m[s.SeriesKey]
		seeds, lo, hi := 0, int64(math.MaxInt64), int64(math.MinInt64)
		for _, r := range want {
			if r.Seed {
				seeds++
			}
			lo, hi = min(lo, r.MilliWatts), max(hi, r.MilliWatts)
		}
		if s.Readings != len(want) || s.FirstMs != want[0].TimeMs || s.LastMs != want[len(want)-1].TimeMs ||
			s.SeedReadings != seeds || s.MinMW != lo || s.MaxMW != hi {
			t.Fatalf("Series %s: %d readings, %d..%d, %d seeds, %d..%d mW; want %d, %d..%d, %d, %d..%d", s.SeriesKey,
				s.Readings, s.FirstMs, s.LastMs, s.SeedReadings, s.MinMW, s.MaxMW,
				len(want), want[0].TimeMs, want[len(want)-1].TimeMs, seeds, lo, hi)
		}
	}
	for k, want := range m {
		if got := scanAll(t, db, k, math.MinInt64, math.MaxInt64); !reflect.DeepEqual(got, want) {
			t.Fatalf("Scan %s: %d readings, want %d", k, len(got), len(want))
		}
		// The chunks partition the series, and their sums are right.
		var bounds []int64
		var fromChunks []store.Reading
		err := db.ScanChunks(ctx, k, math.MinInt64, math.MaxInt64, func(c *store.Chunk) error {
			bounds = append(bounds, c.FirstMs, c.LastMs)
			var rs []store.Reading
			if err := c.Readings(func(r *store.Reading) error { rs = append(rs, *r); return nil }); err != nil {
				return err
			}
			hold, trap, peak := int64(0), int64(0), int64(-1)
			for i := 1; i < len(rs); i++ {
				dt := rs[i].TimeMs - rs[i-1].TimeMs
				hold += rs[i-1].MilliWatts * dt
				trap += (rs[i-1].MilliWatts + rs[i].MilliWatts) * dt
				if dt > 0 {
					peak = max(peak, rs[i-1].MilliWatts)
				}
			}
			first, last := rs[0], rs[len(rs)-1]
			if c.Len != len(rs) || c.FirstMs != first.TimeMs || c.LastMs != last.TimeMs || c.FirstMW != first.MilliWatts || c.LastMW != last.MilliWatts {
				t.Fatalf("chunk %+v does not describe its %d readings", *c, len(rs))
			}
			if c.HasSums && (c.HoldUJ != hold || c.Trapezoid2UJ != trap || c.PeakMW != peak) {
				t.Fatalf("chunk sums %d %d %d, want %d %d %d", c.HoldUJ, c.Trapezoid2UJ, c.PeakMW, hold, trap, peak)
			}
			fromChunks = append(fromChunks, rs...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromChunks, want) {
			t.Fatalf("ScanChunks %s: %d readings, want %d", k, len(fromChunks), len(want))
		}
		// Scan and Before at chunk boundaries and at random times.
		var times []int64
		for _, b := range bounds {
			times = append(times, b-1, b, b+1)
		}
		for range 20 {
			times = append(times, want[rng.IntN(len(want))].TimeMs+rng.Int64N(3)-1)
		}
		for _, tm := range times {
			r, ok, err := db.Before(ctx, k, tm)
			if err != nil {
				t.Fatal(err)
			}
			i := len(want)
			for i > 0 && want[i-1].TimeMs >= tm {
				i--
			}
			if ok != (i > 0) || (ok && r != want[i-1]) {
				t.Fatalf("Before(%s, %d) = %+v, %v; want %d readings before", k, tm, r, ok, i)
			}
		}
		for range 12 {
			from, to := times[rng.IntN(len(times))], times[rng.IntN(len(times))]
			var exp []store.Reading
			for _, r := range want {
				if from <= r.TimeMs && r.TimeMs < to {
					exp = append(exp, r)
				}
			}
			if got := scanAll(t, db, k, from, to); !reflect.DeepEqual(got, exp) {
				t.Fatalf("Scan %s [%d, %d): %d readings, want %d", k, from, to, len(got), len(exp))
			}
		}
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestDB_ChunkedRoundTrip is the property test of the chunked layout:
// random streams with replays, ties, seeds, late batches and extreme
// times come back exactly as the reference model says, across failed
// batches and reopening.
func TestDB_ChunkedRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, seed := range []uint64{1, 2} {
		path := filepath.Join(t.TempDir(), "w.db")
		db, err := store.Open(path, store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		g := newStreamGen(seed)
		m := model{}
		for batch := range 40 {
			var b store.Batch
			n := 1 + g.rng.IntN(1200)
			for range n {
				b.Readings = append(b.Readings, g.reading())
			}
			if g.rng.IntN(5) == 0 { // a late batch: shuffled
				g.rng.Shuffle(len(b.Readings), func(i, j int) { b.Readings[i], b.Readings[j] = b.Readings[j], b.Readings[i] })
			}
			if batch%7 == 3 { // a batch that fails as a whole
				bad := b.Readings[0]
				bad.MilliWatts = -1
				b.Readings = append(b.Readings, bad)
				if err := db.Write(ctx, &b); err == nil {
					t.Fatal("a negative power was stored")
				}
				continue
			}
			if err := db.Write(ctx, &b); err != nil {
				t.Fatal(err)
			}
			for _, r := range b.Readings {
				m.put(r)
			}
			if batch%20 == 19 {
				check(t, db, m)
				// Reopen: the heads come back from the file.
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				if db, err = store.Open(path, store.Options{NoSync: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
		check(t, db, m)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDB_ReplayOfWholeHistory replays every stored reading again, in
// order and shuffled: nothing changes.
func TestDB_ReplayOfWholeHistory(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	g := newStreamGen(9)
	m := model{}
	var all []store.Reading
	for range 10 {
		var b store.Batch
		for range 1000 {
			r := g.reading()
			b.Readings = append(b.Readings, r)
			all = append(all, r)
			m.put(r)
		}
		if err := db.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	for _, shuffle := range []bool{false, true} {
		again := slices.Clone(all)
		if shuffle {
			g.rng.Shuffle(len(again), func(i, j int) { again[i], again[j] = again[j], again[i] })
		}
		if err := db.Write(ctx, &store.Batch{Readings: again}); err != nil {
			t.Fatal(err)
		}
		check(t, db, m)
	}
}

func TestDB_SameMillisecondSpansNoChunks(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	k := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU}
	m := model{}
	var rs []store.Reading
	// 5000 different readings of one millisecond between two runs of
	// ordinary ones: more than one chunk's worth, kept in one chunk.
	for i := range 3000 {
		rs = append(rs, gpu(int64(i)*50, int64(i)*50, int64(i%7)*1000))
	}
	for i := range 5000 {
		rs = append(rs, gpu(150_000, 150_000-int64(i), 5))
	}
	for i := range 3000 {
		rs = append(rs, gpu(150_050+int64(i)*50, 150_050+int64(i)*50, int64(i%5)*1000))
	}
	for _, r := range rs {
		m.put(r)
	}
	if err := db.Write(ctx, &store.Batch{Readings: rs}); err != nil {
		t.Fatal(err)
	}
	check(t, db, m)
	n := 0
	err := db.ScanChunks(ctx, k, 150_000, 150_001, func(c *store.Chunk) error {
		n++
		if c.FirstMs > 150_000 || c.LastMs < 150_000 {
			t.Errorf("chunk [%d, %d] does not hold 150000", c.FirstMs, c.LastMs)
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("millisecond 150000 in %d chunks (%v), want 1", n, err)
	}
}

func TestDB_FailedBatchKeepsHeads(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	k := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU}
	if err := db.Write(ctx, &store.Batch{Readings: []store.Reading{gpu(10, 5, 1), gpu(20, 15, 2)}}); err != nil {
		t.Fatal(err)
	}
	bad := gpu(40, 35, -1)
	if err := db.Write(ctx, &store.Batch{Readings: []store.Reading{gpu(30, 25, 3), gpu(5, 0, 4), bad}}); err == nil {
		t.Fatal("negative power stored")
	}
	if err := db.Write(ctx, &store.Batch{Readings: []store.Reading{gpu(50, 45, 5)}}); err != nil {
		t.Fatal(err)
	}
	want := []store.Reading{gpu(10, 5, 1), gpu(20, 15, 2), gpu(50, 45, 5)}
	if got := scanAll(t, db, k, math.MinInt64, math.MaxInt64); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if err := db.Write(ctx, &store.Batch{Readings: []store.Reading{{Endpoint: "n1:4938", Kind: store.KindGPU, MilliWatts: 1 << 62}}}); err != nil {
		t.Fatalf("largest power: %v", err)
	}
	if err := db.Write(ctx, &store.Batch{Readings: []store.Reading{{Endpoint: "n1:4938", Kind: store.KindGPU, MilliWatts: 1<<62 + 1}}}); err == nil {
		t.Fatal("power beyond 2^62 mW stored")
	}
}
