package store

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"
)

// This file is the chunk codec: a run of readings of one series in one
// bbolt value. store/doc.go documents the bytes.

// valueV2 is the version byte of chunk and series stats values.
const valueV2 = 0x02

// Chunk size limits. A chunk ends (is sealed) before it would exceed
// maxChunkBytes or maxChunkReadings, but never between two readings of the
// same millisecond, so that one millisecond's readings are always in one
// chunk. Two values of maxChunkBytes and their keys fill a 4 KiB bbolt
// page exactly: 16 (page header) + 2 × (16 (element) + 8 (key) + 2016).
const (
	maxChunkBytes    = 2016
	maxChunkReadings = 4096
	maxSameMs        = 1 << 16 // different readings of one series in one millisecond
)

// Header flags.
const (
	flagOptimised = 1 << 0 // the parameters were fitted to this chunk's readings: do not refit
	flagDoD       = 1 << 1 // time codes are delta-of-delta, not offsets from the mode
	flagSums      = 1 << 2 // the pair sums are present (they did not overflow)
	flagSwing     = 1 << 3 // the swing follows the pair sums (chunks written before it have none)
	flagsKnown    = flagOptimised | flagDoD | flagSums | flagSwing
)

// rd is one reading inside a chunk: corrected time, daemon − corrected
// time, milliwatts, seed flag.
type rd struct {
	t, d, mw int64
	seed     bool
}

func (r rd) daemon() int64 { return r.t + r.d }

// fill sets the time, value and seed flag of dst to r's.
func (r rd) fill(dst *Reading) {
	dst.TimeMs, dst.DaemonMs, dst.MilliWatts, dst.Seed = r.t, r.daemon(), r.mw, r.seed
}

// chunkParams are the coding parameters of one chunk.
type chunkParams struct {
	unit   int64 // daemon-time deltas are multiples of unit (>= 1)
	mode   int64 // predicted delta in units (offset mode)
	dod    bool  // predict each delta by the previous one instead
	kt, kv uint8 // Rice parameters of time and value codes
}

// defaultParams start a series' first chunk. They are refitted when the
// chunk first fills up, and each later chunk starts with its
// predecessor's.
var defaultParams = chunkParams{unit: 1, dod: true, kt: 2, kv: 10}

// chunkSums are the sums over consecutive pairs (r_i, r_{i+1}) inside a
// chunk that let an integral skip decoding it.
type chunkSums struct {
	hold  uint64 // Σ mw_i·(t_{i+1} − t_i), mW·ms
	trap2 uint64 // Σ (mw_i + mw_{i+1})·(t_{i+1} − t_i)
	peak  int64  // max mw_i over pairs with t_{i+1} > t_i; -1 if none
	// swing is Σ |mw_{i+1} − mw_i| over every pair (also those of one
	// millisecond), mW: what an error bound of the hold rule rests on.
	swing    uint64
	hasSwing bool // false in a chunk read from a file written before swing existed
	ok       bool // false once a sum overflowed int64
}

// add folds the pair (a, b) into s.
func (s *chunkSums) add(a, b rd) {
	if !s.ok {
		return
	}
	d := b.mw - a.mw // both in [0, maxMilliWatts]: no overflow
	if d < 0 {
		d = -d
	}
	swing, cs := bits.Add64(s.swing, uint64(d), 0)
	if cs != 0 || swing > math.MaxInt64 {
		s.ok = false
		return
	}
	s.swing = swing
	dt := uint64(b.t - a.t) // exact: b.t >= a.t
	if dt == 0 {
		return
	}
	s.peak = max(s.peak, a.mw)
	h1, l1 := bits.Mul64(uint64(a.mw), dt)
	h2, l2 := bits.Mul64(uint64(a.mw+b.mw), dt) // a.mw + b.mw <= 2^63: no overflow
	hold, c1 := bits.Add64(s.hold, l1, 0)
	trap, c2 := bits.Add64(s.trap2, l2, 0)
	if h1 != 0 || h2 != 0 || c1 != 0 || c2 != 0 || hold > math.MaxInt64 || trap > math.MaxInt64 {
		s.ok = false
		return
	}
	s.hold, s.trap2 = hold, trap
}

// dchange says that from reading idx on, daemon − corrected time is d.
type dchange struct {
	idx int
	d   int64
}

// chunkEnc builds one chunk reading by reading. The open chunk of a
// series (its head) lives in one between commits, so that appending a
// reading costs a few bit writes, not a re-encoding.
type chunkEnc struct {
	p         chunkParams
	optimised bool
	n         int
	first     rd // the first reading
	last      rd // the last reading
	xprev     int64
	sums      chunkSums
	dchg      []dchange
	seeds     []int
	body      bitWriter
	// tail holds the readings at last.t, for the duplicate check.
	tail []rd
	// listBytes is the length of the coded change and seed lists.
	listBytes int
	// histT and histV count the bit lengths of the time and value codes'
	// z values, to choose Rice parameters without another pass.
	histT, histV [65]uint32
	// fitAge is the number of chunks since unit, mode and the
	// delta-of-delta choice were last fitted.
	fitAge int
}

// fullFitEvery is how many chunks keep the fitted unit, mode and
// delta-of-delta choice before they are fitted again; in between, a full
// head only has its Rice parameters adjusted, from the histograms.
const fullFitEvery = 16

// maxFixedHeader bounds the header without its change and seed lists.
const maxFixedHeader = 2 + 5 + 10 + 10 + 9 + 9 + 10 + 10 + 2 + 4*10 + 5 + 5

func newChunkEnc(p chunkParams) *chunkEnc {
	return &chunkEnc{p: p, sums: chunkSums{peak: -1, hasSwing: true, ok: true}, fitAge: fullFitEvery}
}

// errRefit means a reading cannot be coded with the chunk's parameters
// (its daemon-time delta is not a multiple of the unit).
var errRefit = errors.New("chunk parameters do not fit")

// timeCode returns the code of r's time after the last reading and the
// delta in units that becomes xprev.
func (c *chunkEnc) timeCode(r rd) (z uint64, x int64, ok bool) {
	delta := r.daemon() - c.last.daemon() // wrapping: decoding wraps the same way
	if c.p.unit != 1 {
		if delta%c.p.unit != 0 {
			return 0, 0, false
		}
		delta /= c.p.unit
	}
	if c.p.dod {
		return zigzag(delta - c.xprev), delta, true
	}
	return zigzag(delta - c.p.mode), delta, true
}

// cost returns the bits r would add to the body, and false when r needs
// other parameters.
func (c *chunkEnc) cost(r rd) (uint, bool) {
	if c.n == 0 {
		return 0, true
	}
	z, _, ok := c.timeCode(r)
	if !ok {
		return 0, false
	}
	return riceCost(z, uint(c.p.kt)) + riceCost(zigzag(r.mw-c.last.mw), uint(c.p.kv)), true
}

// append adds r, which must not sort before the last reading.
func (c *chunkEnc) append(r rd) error {
	if c.n == 0 {
		c.first, c.last, c.n = r, r, 1
		c.xprev = c.p.mode
		if r.seed {
			c.seeds = append(c.seeds, 0)
			c.listBytes = 1
		}
		c.tail = append(c.tail[:0], r)
		return nil
	}
	z, x, ok := c.timeCode(r)
	if !ok {
		return errRefit
	}
	zv := zigzag(r.mw - c.last.mw)
	c.body.rice(z, uint(c.p.kt))
	c.body.rice(zv, uint(c.p.kv))
	c.histT[bits.Len64(z)]++
	c.histV[bits.Len64(zv)]++
	c.xprev = x
	if r.d != c.last.d {
		c.listBytes += c.dchangeLen(r.d)
		c.dchg = append(c.dchg, dchange{c.n, r.d})
	}
	if r.seed {
		c.listBytes += uvarintLen(uint64(c.n - c.lastSeed() - 1))
		c.seeds = append(c.seeds, c.n)
	}
	c.sums.add(c.last, r)
	if r.t == c.last.t {
		c.tail = append(c.tail, r)
	} else {
		c.tail = append(c.tail[:0], r)
	}
	c.last = r
	c.n++
	return nil
}

// headerLen is the exact length of the header (with its version byte)
// of a chunk of n readings with the given last reading and sums, and the
// change and seed lists of c plus extra list bytes.
func (c *chunkEnc) headerLen(n int, last rd, sums *chunkSums, listBytes, dchg, seeds int) int {
	l := 2 + uvarintLen(uint64(n)) + uvarintLen(uint64(last.t-c.first.t)) + uvarintLen(zigzag(c.first.d)) +
		uvarintLen(uint64(c.first.mw)) + uvarintLen(uint64(last.mw)) + uvarintLen(uint64(c.p.unit)) +
		uvarintLen(zigzag(c.p.mode)) + 2 + uvarintLen(uint64(dchg)) + uvarintLen(uint64(seeds)) + listBytes
	if sums.ok {
		l += uvarintLen(sums.hold) + uvarintLen(sums.trap2) + uvarintLen(uint64(sums.peak+1)) + uvarintLen(sums.swing)
	}
	return l
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// fits reports whether r can join the chunk without passing the limits.
// A reading of the last reading's millisecond always joins it.
func (c *chunkEnc) fits(r rd) bool {
	if c.n == 0 || r.t == c.last.t {
		return true
	}
	if c.n >= maxChunkReadings {
		return false
	}
	// Far from the limit no reading can pass it: the header's fixed
	// fields take at most maxFixedHeader bytes, a d change or a seed at
	// most 30 more, a reading's codes at most maxCodeBytes.
	const maxCodeBytes = (2*(riceQ+6+64) + 7) / 8
	if c.listBytes+30+maxFixedHeader+(c.body.bitLen()+7)/8+maxCodeBytes <= maxChunkBytes {
		return true
	}
	bitsNeeded, ok := c.cost(r)
	if !ok {
		bitsNeeded = 2 * (riceQ + 6 + 64) // the most a refitted reading can cost
	}
	body := (c.body.bitLen() + int(bitsNeeded) + 7) / 8
	// Cheap test first: the header's fixed fields take at most
	// maxFixedHeader bytes.
	if c.listBytes+maxFixedHeader+body <= maxChunkBytes {
		return true
	}
	sums := c.sums
	sums.add(c.last, r)
	lb, nd, ns := c.listBytes, len(c.dchg), len(c.seeds)
	if r.d != c.last.d {
		lb += c.dchangeLen(r.d)
		nd++
	}
	if r.seed {
		lb += uvarintLen(uint64(c.n - c.lastSeed() - 1))
		ns++
	}
	return c.headerLen(c.n+1, r, &sums, lb, nd, ns)+body <= maxChunkBytes
}

// dchangeLen is the length of a change to d at reading c.n.
func (c *chunkEnc) dchangeLen(d int64) int {
	prevIdx, prevD := 0, c.first.d
	if k := len(c.dchg); k > 0 {
		prevIdx, prevD = c.dchg[k-1].idx, c.dchg[k-1].d
	}
	return uvarintLen(uint64(c.n-prevIdx)) + uvarintLen(zigzag(d-prevD))
}

// lastSeed is the index of the last seed reading, or -1.
func (c *chunkEnc) lastSeed() int {
	if k := len(c.seeds); k > 0 {
		return c.seeds[k-1]
	}
	return -1
}

// appendHeader appends the value's version byte and header.
func (c *chunkEnc) appendHeader(dst []byte) []byte {
	var flags byte
	if c.optimised {
		flags |= flagOptimised
	}
	if c.p.dod {
		flags |= flagDoD
	}
	if c.sums.ok {
		flags |= flagSums | flagSwing
	}
	dst = append(dst, valueV2, flags)
	dst = binary.AppendUvarint(dst, uint64(c.n))
	dst = binary.AppendUvarint(dst, uint64(c.last.t-c.first.t))
	dst = binary.AppendVarint(dst, c.first.d)
	dst = binary.AppendUvarint(dst, uint64(c.first.mw))
	dst = binary.AppendUvarint(dst, uint64(c.last.mw))
	dst = binary.AppendUvarint(dst, uint64(c.p.unit))
	dst = binary.AppendVarint(dst, c.p.mode)
	dst = append(dst, c.p.kt, c.p.kv)
	if c.sums.ok {
		dst = binary.AppendUvarint(dst, c.sums.hold)
		dst = binary.AppendUvarint(dst, c.sums.trap2)
		dst = binary.AppendUvarint(dst, uint64(c.sums.peak+1))
		dst = binary.AppendUvarint(dst, c.sums.swing)
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.dchg)))
	prevIdx, prevD := 0, c.first.d
	for _, ch := range c.dchg {
		dst = binary.AppendUvarint(dst, uint64(ch.idx-prevIdx))
		dst = binary.AppendVarint(dst, ch.d-prevD)
		prevIdx, prevD = ch.idx, ch.d
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.seeds)))
	prev := -1
	for _, i := range c.seeds {
		dst = binary.AppendUvarint(dst, uint64(i-prev-1))
		prev = i
	}
	return dst
}

// value returns the chunk's bbolt value in a fresh slice.
func (c *chunkEnc) value() []byte {
	dst := c.appendHeader(make([]byte, 0, 64+c.listBytes+len(c.body.buf)+1))
	return c.body.appendTo(dst)
}

// chunkHeader is a decoded chunk header.
type chunkHeader struct {
	flags     byte
	n         int
	firstT    int64 // from the key
	lastT     int64
	firstD    int64
	firstMW   int64
	lastMW    int64
	p         chunkParams
	sums      chunkSums
	dchg      []dchange
	seeds     []int
	body      []byte // the bit stream, inside the value
	lastD     int64
	lastSeed  bool
	optimised bool
}

// maxMilliWatts bounds a stored value: sums of two stay inside int64.
const maxMilliWatts = 1 << 62

// parseChunk decodes the key and header of a chunk value. It checks
// everything the header states; the body is checked as it is decoded.
// dchg and seeds reuse h's slices.
func parseChunk(h *chunkHeader, key, v []byte) error {
	if len(key) != 8 || len(v) < 2 || v[0] != valueV2 || v[1]&^flagsKnown != 0 {
		return ErrCorrupt
	}
	h.flags = v[1]
	h.optimised = h.flags&flagOptimised != 0
	h.firstT = getInt64(key)
	p := v[2:]
	bad := false
	uv := func() uint64 {
		x, n := binary.Uvarint(p)
		if n <= 0 {
			bad = true
			return 0
		}
		p = p[n:]
		return x
	}
	sv := func() int64 {
		x, n := binary.Varint(p)
		if n <= 0 {
			bad = true
			return 0
		}
		p = p[n:]
		return x
	}
	n := uv()
	span := uv()
	h.firstD = sv()
	firstMW, lastMW := uv(), uv()
	unit := uv()
	h.p.mode = sv()
	if bad || len(p) < 2 || n == 0 || n > math.MaxInt32 || firstMW > maxMilliWatts || lastMW > maxMilliWatts ||
		unit == 0 || unit > math.MaxInt64 || span > math.MaxInt64 || (h.firstT > 0 && int64(span) > math.MaxInt64-h.firstT) {
		return ErrCorrupt
	}
	h.n, h.firstMW, h.lastMW = int(n), int64(firstMW), int64(lastMW)
	h.lastT = h.firstT + int64(span)
	h.p.unit, h.p.dod = int64(unit), h.flags&flagDoD != 0
	h.p.kt, h.p.kv = p[0], p[1]
	p = p[2:]
	if h.p.kt > 56 || h.p.kv > 56 {
		return ErrCorrupt
	}
	h.sums = chunkSums{peak: -1}
	if h.flags&flagSums != 0 {
		hold, trap, peak := uv(), uv(), uv()
		if bad || hold > math.MaxInt64 || trap > math.MaxInt64 || peak > maxMilliWatts+1 {
			return ErrCorrupt
		}
		h.sums = chunkSums{hold: hold, trap2: trap, peak: int64(peak) - 1, ok: true}
		if h.flags&flagSwing != 0 {
			swing := uv()
			if bad || swing > math.MaxInt64 {
				return ErrCorrupt
			}
			h.sums.swing, h.sums.hasSwing = swing, true
		}
	} else if h.flags&flagSwing != 0 {
		return ErrCorrupt
	}
	m := uv()
	if bad || m >= n {
		return ErrCorrupt
	}
	h.dchg = h.dchg[:0]
	idx, d := 0, h.firstD
	for range m {
		di, dd := uv(), sv()
		if bad || di == 0 || di >= n || idx+int(di) >= int(n) {
			return ErrCorrupt
		}
		idx, d = idx+int(di), d+dd
		h.dchg = append(h.dchg, dchange{idx, d})
	}
	h.lastD = d
	s := uv()
	if bad || s > n {
		return ErrCorrupt
	}
	h.seeds = h.seeds[:0]
	prev := -1
	for range s {
		di := uv()
		if bad || di >= n || prev+1+int(di) >= int(n) {
			return ErrCorrupt
		}
		prev += 1 + int(di)
		h.seeds = append(h.seeds, prev)
	}
	h.lastSeed = s > 0 && h.seeds[len(h.seeds)-1] == int(n)-1
	if n == 1 && (len(p) != 0 || span != 0 || firstMW != lastMW) {
		return ErrCorrupt
	}
	h.body = p
	return nil
}

// lastReading is the chunk's last reading, from the header alone.
func (h *chunkHeader) lastReading(r *Reading) {
	r.TimeMs, r.DaemonMs, r.MilliWatts, r.Seed = h.lastT, h.lastT+h.lastD, h.lastMW, h.lastSeed
}

// chunkDec decodes the readings of one chunk in order.
type chunkDec struct {
	h      *chunkHeader
	br     bitReader
	pad    []byte // the body with zero padding
	i      int    // readings decoded
	cur    rd
	xprev  int64
	nextD  int // index into h.dchg
	nextSd int // index into h.seeds
	err    error
}

// reset starts decoding h's chunk. The body is copied, so the decoder
// does not keep bbolt's memory.
func (dec *chunkDec) reset(h *chunkHeader) {
	dec.h = h
	dec.pad = append(append(dec.pad[:0], h.body...), make([]byte, 8)...)
	dec.br = bitReader{buf: dec.pad, end: uint(len(h.body)) * 8}
	dec.i, dec.nextD, dec.nextSd, dec.err = 0, 0, 0, nil
	dec.xprev = h.p.mode
}

// next decodes the next reading into dec.cur. It returns false after the
// last one, or on corruption (dec.err).
func (dec *chunkDec) next() bool {
	h := dec.h
	if dec.i >= h.n {
		return false
	}
	if dec.i == 0 {
		dec.cur = rd{t: h.firstT, d: h.firstD, mw: h.firstMW}
	} else {
		prev := dec.cur
		zt, zv := dec.br.rice2(uint(h.p.kt), uint(h.p.kv))
		x := unzigzag(zt)
		if h.p.dod {
			x += dec.xprev
		} else {
			x += h.p.mode
		}
		dec.xprev = x
		daemon := prev.daemon() + x*h.p.unit
		mw := prev.mw + unzigzag(zv)
		d := prev.d
		if dec.nextD < len(h.dchg) && h.dchg[dec.nextD].idx == dec.i {
			d = h.dchg[dec.nextD].d
			dec.nextD++
		}
		dec.cur = rd{t: daemon - d, d: d, mw: mw}
		if dec.br.pos > dec.br.end || mw < 0 || mw > maxMilliWatts || dec.cur.t < prev.t || dec.cur.t > h.lastT {
			dec.err = ErrCorrupt
			return false
		}
	}
	dec.cur.seed = dec.nextSd < len(h.seeds) && h.seeds[dec.nextSd] == dec.i
	if dec.cur.seed {
		dec.nextSd++
	}
	dec.i++
	if dec.i == h.n {
		// The last reading must be the one the header states, and the
		// body must end in padding.
		if dec.cur.t != h.lastT || dec.cur.mw != h.lastMW || (dec.br.end-dec.br.pos) >= 8 || (dec.br.end > dec.br.pos && dec.br.peek() != 0) {
			dec.err = ErrCorrupt
			return false
		}
	}
	return true
}

// decodeAll appends every reading of the chunk to dst.
func decodeAll(dst []rd, h *chunkHeader) ([]rd, error) {
	var dec chunkDec
	dec.reset(h)
	for dec.next() {
		dst = append(dst, dec.cur)
	}
	return dst, dec.err
}

// fitParams chooses the parameters that code rs (sorted) in the fewest
// bits, starting from p.
func fitParams(rs []rd, p chunkParams) chunkParams {
	if len(rs) < 2 {
		return p
	}
	// The unit: the gcd of the daemon-time deltas.
	var g uint64
	for i := 1; i < len(rs); i++ {
		delta := rs[i].daemon() - rs[i-1].daemon()
		if delta == math.MinInt64 {
			g = 1
			break
		}
		if delta < 0 {
			delta = -delta
		}
		g = gcd(g, uint64(delta))
	}
	if g == 0 || g > math.MaxInt64 {
		g = 1
	}
	unit := int64(g)
	xs := make([]int64, len(rs)-1)
	for i := 1; i < len(rs); i++ {
		xs[i-1] = (rs[i].daemon() - rs[i-1].daemon()) / unit
	}
	mode := modeOf(xs)
	zs := make([]uint64, len(xs))
	for i, x := range xs {
		zs[i] = zigzag(x - mode)
	}
	ktOff, costOff := bestK(zs)
	prev := mode
	for i, x := range xs {
		zs[i] = zigzag(x - prev)
		prev = x
	}
	ktDoD, costDoD := bestK(zs)
	for i := 1; i < len(rs); i++ {
		zs[i-1] = zigzag(rs[i].mw - rs[i-1].mw)
	}
	kv, _ := bestK(zs)
	q := chunkParams{unit: unit, mode: mode, dod: costDoD < costOff, kt: ktOff, kv: kv}
	if q.dod {
		q.kt = ktDoD
	}
	return q
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// modeOf returns the most frequent value of xs (the smallest on a tie).
func modeOf(xs []int64) int64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	best, bestN := s[0], 0
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		if j-i > bestN {
			best, bestN = s[i], j-i
		}
		i = j
	}
	return best
}

// bestK returns the Rice parameter that codes zs in the fewest bits, and
// that number of bits. It tries the parameters around the median's bit
// length: the mean would follow the rare large values.
func bestK(zs []uint64) (uint8, uint64) {
	var hist [65]int
	for _, z := range zs {
		hist[bits.Len64(z)]++
	}
	k0, seen := 0, 0
	for l, n := range hist {
		if seen += n; 2*seen >= len(zs) {
			k0 = l - 1
			break
		}
	}
	best, bestCost := uint8(0), uint64(math.MaxUint64)
	for k := max(0, k0-2); k <= min(56, k0+2); k++ {
		var c uint64
		for _, z := range zs {
			c += uint64(riceCost(z, uint(k)))
		}
		if c < bestCost {
			best, bestCost = uint8(k), c
		}
	}
	return best, bestCost
}

// encodeRun codes rs (sorted, at least one) into chunks within the
// limits, each cut where the time changes, with parameters fitted to the
// whole run, all marked optimised: a head made this way is not refitted.
func encodeRun(rs []rd, p chunkParams) []*chunkEnc {
	p = fitParams(rs, p)
	var out []*chunkEnc
	c := newChunkEnc(p)
	c.optimised = true
	for _, r := range rs {
		if !c.fits(r) {
			out = append(out, c)
			c = newChunkEnc(p)
			c.optimised = true
		}
		if err := c.append(r); err != nil {
			panic("store: fitted parameters do not fit") // fitParams chose the unit from these deltas
		}
	}
	return append(out, c)
}

// readings decodes the chunk's readings.
func (c *chunkEnc) readings() []rd {
	var h chunkHeader
	v := c.value()
	if err := parseChunk(&h, putInt64(nil, c.first.t), v); err != nil {
		panic("store: chunk does not decode: " + err.Error())
	}
	rs, err := decodeAll(make([]rd, 0, c.n+1), &h)
	if err != nil {
		panic("store: chunk does not decode: " + err.Error())
	}
	return rs
}

// rebuild replaces c's readings with rs (sorted, at least one), refitted
// with encodeRun. It returns the full chunks that precede the new head.
func (c *chunkEnc) rebuild(rs []rd) []*chunkEnc {
	pieces := encodeRun(rs, c.p)
	*c = *pieces[len(pieces)-1]
	return pieces[:len(pieces)-1]
}

// push appends r, which must not sort before the last reading, to the
// head c. When c is full it is refitted once (its parameters fitted to
// its readings) and, if still full, sealed: push then returns the
// sealed chunk and c starts over with r and the same parameters.
func (c *chunkEnc) push(r rd) []*chunkEnc {
	if !c.fits(r) && !c.optimised {
		c.refit()
	}
	var sealed []*chunkEnc
	if !c.fits(r) {
		full := *c
		sealed = append(sealed, &full)
		*c = chunkEnc{p: c.p, sums: chunkSums{peak: -1, hasSwing: true, ok: true}, fitAge: c.fitAge + 1}
	}
	if err := c.append(r); err != nil { // errRefit
		sealed = append(sealed, c.rebuild(append(c.readings(), r))...)
	}
	return sealed
}

// refit fits c's parameters to its readings, once: all of them every
// fullFitEvery chunks, else the Rice parameters alone. It keeps the old
// coding when the new one would not fit one chunk (the fit is a
// heuristic).
func (c *chunkEnc) refit() {
	c.optimised = true
	p := c.p
	if c.fitAge >= fullFitEvery {
		p = fitParams(c.readings(), c.p)
	} else {
		p.kt, p.kv = kFromHist(&c.histT), kFromHist(&c.histV)
		if p == c.p {
			return
		}
	}
	n := newChunkEnc(p)
	for _, r := range c.readings() {
		if !n.fits(r) || n.append(r) != nil {
			return
		}
	}
	n.optimised, n.fitAge = true, 0
	if c.fitAge < fullFitEvery {
		n.fitAge = c.fitAge
	}
	*c = *n
}

// kFromHist chooses the Rice parameter for values whose bit lengths are
// counted in h, taking each value as the middle of its bit length's range.
func kFromHist(h *[65]uint32) uint8 {
	best, bestCost := uint8(0), uint64(math.MaxUint64)
	for k := range uint(57) {
		var cost uint64
		for l, n := range h {
			if n == 0 {
				continue
			}
			bits := uint64(1 + k) // q = 0
			if shift := l - 1 - int(k); shift >= 0 {
				// z >> k is about 1.5 × 2^shift
				if q := uint64(3) << min(shift, 16) >> 1; q < riceQ {
					bits += q
				} else {
					bits = riceQ + 6 + uint64(l)
				}
			}
			cost += bits * uint64(n)
		}
		if cost < bestCost {
			best, bestCost = uint8(k), cost
		}
	}
	return best
}
