package store

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// This file is the reading part of Write: readings go into the open
// chunk (the head) of their series, kept decoded-and-ready in memory
// between commits and rewritten at every commit.

// seriesHead is the write state of one series, as of the last commit
// (or, during a Write, of the readings put so far).
type seriesHead struct {
	c      *chunkEnc // the open chunk; c.n == 0 for a series without readings
	stored bool      // c was Put under key c.first.t
	stats  seriesStats
	buf    []byte // the head's value as last Put
}

// txEndpoint holds the buckets of an endpoint written in the current
// transaction.
type txEndpoint struct {
	series, stats *bolt.Bucket
}

// txSeries is a series written in the current transaction.
type txSeries struct {
	k     SeriesKey
	b     *bolt.Bucket // the series' chunks
	stats *bolt.Bucket // the endpoint's stats bucket
	h     *seriesHead
	late  []rd // readings that sort before the head's last, in arrival order
}

// txSeries returns the write state of series k, loading its head from
// the file the first time this DB writes it.
func (w *writer) txSeries(k SeriesKey) (*txSeries, error) {
	// A small direct-mapped cache in front of the map: a batch
	// interleaves the devices of a few endpoints.
	slot := &w.recent[(uint(k.Kind)*31+uint(k.Device))%uint(len(w.recent))]
	if s := *slot; s != nil && s.k == k {
		return s, nil
	}
	if s := w.series[k]; s != nil {
		*slot = s
		return s, nil
	}
	if !k.Kind.Valid() {
		return nil, fmt.Errorf("invalid kind %d", k.Kind)
	}
	if k.Device < 0 {
		return nil, fmt.Errorf("negative device %d", k.Device)
	}
	ep := w.eps[k.Endpoint]
	if ep == nil {
		ep = &txEndpoint{}
		var err error
		if ep.series, err = w.sub(k.Endpoint, seriesBucket); err != nil {
			return nil, err
		}
		if ep.stats, err = w.sub(k.Endpoint, statsBucket); err != nil {
			return nil, err
		}
		if w.eps == nil {
			w.eps = map[string]*txEndpoint{}
		}
		w.eps[k.Endpoint] = ep
	}
	b, err := ep.series.CreateBucketIfNotExists(seriesName(k.Kind, k.Device))
	if err != nil {
		return nil, err
	}
	b.FillPercent = 1 // chunks are appended in time order: fill pages
	stats := ep.stats
	h := w.db.heads[k]
	if h == nil {
		if h, err = loadHead(b, stats, seriesName(k.Kind, k.Device)); err != nil {
			return nil, fmt.Errorf("series %s: %w", k, err)
		}
		w.db.heads[k] = h
	}
	s := &txSeries{k: k, b: b, stats: stats, h: h}
	if w.series == nil {
		w.series = map[SeriesKey]*txSeries{}
	}
	w.series[k], *slot = s, s
	return s, nil
}

// loadHead reads the last chunk and the stats of a series.
func loadHead(b, stats *bolt.Bucket, name []byte) (*seriesHead, error) {
	h := &seriesHead{c: newChunkEnc(defaultParams)}
	key, v := b.Cursor().Last()
	if key == nil {
		return h, nil
	}
	var hdr chunkHeader
	if err := parseChunk(&hdr, key, v); err != nil {
		return nil, fmt.Errorf("chunk %x: %w", key, err)
	}
	rs, err := decodeAll(nil, &hdr)
	if err != nil {
		return nil, fmt.Errorf("chunk %x: %w", key, err)
	}
	h.c = newChunkEnc(hdr.p)
	h.c.optimised = hdr.optimised
	for _, r := range rs {
		if err := h.c.append(r); err != nil {
			return nil, fmt.Errorf("chunk %x: %w", key, ErrCorrupt)
		}
	}
	h.stored = true
	sv := stats.Get(name)
	if sv == nil {
		return nil, fmt.Errorf("stats missing: %w", ErrCorrupt)
	}
	if err := decodeStats(&h.stats, sv); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return h, nil
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

// sameReading reports whether a and b are one reading: the same
// corrected and daemon time and the same milliwatts. The seed flag does
// not count: a seed (get_power at a connect) is usually the very sample
// the stream then sends first, and is stored once, as the seed.
func sameReading(a, b rd) bool { return a.t == b.t && a.d == b.d && a.mw == b.mw }

// putReading stores r. A reading at or after its series'
// last one goes into the head at once; one that sorts before it (late)
// waits for the end of the batch, when mergeLate puts all of them into
// their chunks with one rewrite per chunk.
func (w *writer) putReading(r *Reading) error {
	if err := checkReading(r); err != nil {
		return err
	}
	s, err := w.txSeries(r.Series())
	if err != nil {
		return err
	}
	x := rd{t: r.TimeMs, d: r.DaemonMs - r.TimeMs, mw: r.MilliWatts, seed: r.Seed}
	h := s.h
	c := h.c
	switch {
	case c.n == 0 || x.t > c.last.t:
		// The common case: a new millisecond at the end of the series.
	case x.t == c.last.t:
		for _, y := range c.tail {
			if sameReading(y, x) {
				return nil // a replay, or a seed's value arriving on the stream
			}
		}
		if len(c.tail) >= maxSameMs {
			return fmt.Errorf("more than %d different readings at one millisecond", maxSameMs)
		}
	default:
		s.late = append(s.late, x)
		return nil
	}
	for _, full := range c.push(x) {
		if err := s.b.Put(putInt64(nil, full.first.t), full.value()); err != nil {
			return err
		}
		h.stored = false // the head now starts at a later reading
	}
	h.stats.add(x)
	return nil
}

// mergeLate stores the late readings of s in the chunks whose time
// ranges hold them. Sequentially or merged, the result is the same: late
// readings arrive after every stored reading, so each goes after the
// readings of its millisecond already there, and the stable sort keeps
// the arrival order of those of one millisecond.
func (w *writer) mergeLate(s *txSeries) error {
	late := s.late
	s.late = nil
	slices.SortStableFunc(late, func(a, b rd) int { return cmp.Compare(a.t, b.t) })
	h := s.h
	for len(late) > 0 {
		c := h.c
		if late[0].t >= c.first.t {
			return w.mergeHead(s, late)
		}
		// The chunk with the greatest key <= the time; else the first.
		cur := s.b.Cursor()
		key, v := seekChunk(cur, late[0].t)
		if key == nil || (h.stored && getInt64(key) == c.first.t) {
			return w.mergeHead(s, late) // the head is the first chunk
		}
		oldKey := getInt64(key)
		// It holds the times up to the next chunk's key.
		upper := c.first.t
		if nk, _ := cur.Next(); nk != nil {
			upper = min(upper, getInt64(nk))
		}
		j, _ := slices.BinarySearchFunc(late, upper, func(r rd, t int64) int { return cmp.Compare(r.t, t) })
		var hdr chunkHeader
		if err := parseChunk(&hdr, key, v); err != nil {
			return fmt.Errorf("chunk %x: %w", key, err)
		}
		rs, err := decodeAll(nil, &hdr)
		if err != nil {
			return fmt.Errorf("chunk %x: %w", key, err)
		}
		rs, added, err := merge(rs, late[:j], &h.stats)
		if err != nil {
			return err
		}
		late = late[j:]
		if added == 0 {
			continue
		}
		pieces := encodeRun(rs, hdr.p)
		if pieces[0].first.t != oldKey {
			if err := s.b.Delete(putInt64(nil, oldKey)); err != nil {
				return err
			}
		}
		for _, p := range pieces {
			if err := s.b.Put(putInt64(nil, p.first.t), p.value()); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergeHead merges late readings, all at or after the first chunk or the
// head's start, into the head.
func (w *writer) mergeHead(s *txSeries, late []rd) error {
	h := s.h
	c := h.c
	rs, added, err := merge(c.readings(), late, &h.stats)
	if err != nil || added == 0 {
		return err
	}
	if h.stored && rs[0].t < c.first.t {
		if err := s.b.Delete(putInt64(nil, c.first.t)); err != nil {
			return err
		}
		h.stored = false
	}
	for _, full := range c.rebuild(rs) {
		if err := s.b.Put(putInt64(nil, full.first.t), full.value()); err != nil {
			return err
		}
		h.stored = false
	}
	return nil
}

// merge merges the readings late (sorted by time, in arrival order within
// a millisecond) into rs (sorted): each after the readings of its
// millisecond, unless identical to one of them. It counts the added ones
// into stats.
func merge(rs, late []rd, stats *seriesStats) (out []rd, added int, err error) {
	out = make([]rd, 0, len(rs)+len(late))
	i := 0
	for _, x := range late {
		for i < len(rs) && rs[i].t <= x.t {
			out = append(out, rs[i])
			i++
		}
		same, dup := 0, false
		for k := len(out) - 1; k >= 0 && out[k].t == x.t; k-- {
			if sameReading(out[k], x) {
				dup = true
				break
			}
			same++
		}
		if dup {
			continue
		}
		if same >= maxSameMs {
			return nil, 0, fmt.Errorf("more than %d different readings at one millisecond", maxSameMs)
		}
		out = append(out, x)
		stats.add(x)
		added++
	}
	return append(out, rs[i:]...), added, nil
}

// flushHeads merges the late readings, then writes the head and the
// stats of every series this transaction touched.
func (w *writer) flushHeads() error {
	for _, s := range w.series {
		if len(s.late) > 0 {
			if err := w.mergeLate(s); err != nil {
				return fmt.Errorf("series %s: %w", s.k, err)
			}
		}
		h := s.h
		if h.c.n == 0 {
			continue
		}
		// The head's value buffer is reused from commit to commit: bbolt
		// only needs a value until its transaction ends.
		h.buf = h.c.body.appendTo(h.c.appendHeader(h.buf[:0]))
		if err := s.b.Put(putInt64(nil, h.c.first.t), h.buf); err != nil {
			return fmt.Errorf("series %s: %w", s.k, err)
		}
		h.stored = true
		if err := s.stats.Put(seriesName(s.k.Kind, s.k.Device), encodeStats(&h.stats)); err != nil {
			return fmt.Errorf("series %s: %w", s.k, err)
		}
	}
	return nil
}

// seriesStats is what Series reports without reading the chunks.
type seriesStats struct {
	n, seeds     int64
	first, last  int64 // corrected ms
	minMW, maxMW int64
}

func (s *seriesStats) add(r rd) {
	if s.n == 0 {
		s.first, s.last, s.minMW, s.maxMW = r.t, r.t, r.mw, r.mw
	}
	s.n++
	if r.seed {
		s.seeds++
	}
	s.first, s.last = min(s.first, r.t), max(s.last, r.t)
	s.minMW, s.maxMW = min(s.minMW, r.mw), max(s.maxMW, r.mw)
}

// encodeStats: v2 | n | seeds | first (zigzag) | last − first | min mW | max mW.
func encodeStats(s *seriesStats) []byte {
	b := []byte{valueV2}
	b = binary.AppendUvarint(b, uint64(s.n))
	b = binary.AppendUvarint(b, uint64(s.seeds))
	b = binary.AppendVarint(b, s.first)
	b = binary.AppendUvarint(b, uint64(s.last-s.first))
	b = binary.AppendUvarint(b, uint64(s.minMW))
	return binary.AppendUvarint(b, uint64(s.maxMW))
}

func decodeStats(s *seriesStats, v []byte) error {
	if len(v) < 7 || v[0] != valueV2 {
		return ErrCorrupt
	}
	p := v[1:]
	var f [6]uint64
	for i := range f {
		var n int
		if i == 2 {
			var x int64
			x, n = binary.Varint(p)
			f[i] = uint64(x)
		} else {
			f[i], n = binary.Uvarint(p)
		}
		if n <= 0 {
			return ErrCorrupt
		}
		p = p[n:]
	}
	if len(p) != 0 || f[0] == 0 || f[1] > f[0] || f[0] > math.MaxInt64 || f[4] > f[5] || f[5] > maxMilliWatts ||
		f[3] > math.MaxInt64 || (int64(f[2]) > 0 && int64(f[3]) > math.MaxInt64-int64(f[2])) {
		return ErrCorrupt
	}
	*s = seriesStats{n: int64(f[0]), seeds: int64(f[1]), first: int64(f[2]), last: int64(f[2]) + int64(f[3]),
		minMW: int64(f[4]), maxMW: int64(f[5])}
	return nil
}
