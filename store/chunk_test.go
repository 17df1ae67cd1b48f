package store

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// randomRun returns n sorted readings in one of several shapes: a
// regular poll grid with change-only gaps, jittered timestamps, extreme
// and pre-1970 times, clock offset steps, seeds and same-millisecond
// ties.
func randomRun(rng *rand.Rand, n int) []rd {
	rs := make([]rd, 0, n)
	shape := rng.IntN(5)
	t := rng.Int64N(4_000_000_000_000) - 1_000_000_000_000 // 1938..2096
	switch shape {
	case 3:
		t = math.MinInt64 + rng.Int64N(1000)
	case 4:
		t = math.MaxInt64 - int64(n)*1000
	}
	d := rng.Int64N(20_000) - 10_000
	mw := rng.Int64N(400_000)
	for range n {
		switch shape {
		case 0, 3, 4: // 20 Hz grid, change-only
			t += 50 * (1 + int64(rng.IntN(3)/2))
		case 1: // jittered
			t += 45 + rng.Int64N(10)
		case 2: // anything, ties included
			t += rng.Int64N(3) * rng.Int64N(1<<20)
		}
		if rng.IntN(200) == 0 {
			d += rng.Int64N(5) - 2 // a new clock estimate
		}
		switch r := rng.IntN(100); {
		case r < 3:
			mw = rng.Int64N(1_000_000_000)
		case r < 4:
			mw = maxMilliWatts - rng.Int64N(3)
		case r < 5:
			mw = 0
		default:
			mw = min(maxMilliWatts, max(0, mw+rng.Int64N(4001)-2000))
		}
		rs = append(rs, rd{t: t, d: d, mw: mw, seed: rng.IntN(50) == 0})
	}
	return rs
}

func decodeValue(t *testing.T, first int64, v []byte) ([]rd, chunkHeader) {
	t.Helper()
	var h chunkHeader
	if err := parseChunk(&h, putInt64(nil, first), v); err != nil {
		t.Fatalf("parse: %v", err)
	}
	rs, err := decodeAll(nil, &h)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return rs, h
}

func TestChunk_RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 150 {
		in := randomRun(rng, 1+rng.IntN(3000))
		// The head's way: push one by one, sealing full chunks.
		c := newChunkEnc(defaultParams)
		var chunks []*chunkEnc
		for _, r := range in {
			chunks = append(chunks, c.push(r)...)
		}
		chunks = append(chunks, c)
		// And the rewrite's way.
		runs := encodeRun(in, defaultParams)
		for _, way := range [][]*chunkEnc{chunks, runs} {
			var out []rd
			for j, ch := range way {
				v := ch.value()
				if len(v) > maxChunkBytes && ch.first.t != ch.last.t && ch.n > 1 {
					// Only a run of one millisecond may pass the limit.
					rs, _ := decodeValue(t, ch.first.t, v)
					if rs[len(rs)-2].t != rs[len(rs)-1].t {
						t.Fatalf("run %d chunk %d: %d bytes", i, j, len(v))
					}
				}
				rs, h := decodeValue(t, ch.first.t, v)
				if j > 0 && out[len(out)-1].t == rs[0].t {
					t.Fatalf("run %d: a millisecond split between chunks", i)
				}
				sums := chunkSums{peak: -1, hasSwing: true, ok: true}
				for k := 1; k < len(rs); k++ {
					sums.add(rs[k-1], rs[k])
				}
				if sums != h.sums && (sums.ok || h.sums.ok) {
					t.Fatalf("run %d chunk %d: sums %+v, header %+v", i, j, h.sums, sums)
				}
				out = append(out, rs...)
			}
			if !reflect.DeepEqual(out, in) {
				t.Fatalf("run %d: %d readings back, want %d", i, len(out), len(in))
			}
		}
	}
}

// TestParseChunk_Corrupt is the corruption table for chunk values: every
// malformed input is ErrCorrupt, never a panic or a guess.
func TestParseChunk_Corrupt(t *testing.T) {
	rs := []rd{{t: 100, d: -3, mw: 5000, seed: true}, {t: 150, d: -3, mw: 6000}, {t: 200, d: -2, mw: 300_000}}
	c := encodeRun(rs, defaultParams)[0]
	key, val := putInt64(nil, 100), c.value()
	if got, _ := decodeValue(t, 100, val); !reflect.DeepEqual(got, rs) {
		t.Fatalf("valid: %+v", got)
	}
	with := func(i int, x byte) []byte {
		v := slices.Clone(val)
		v[i] = x
		return v
	}
	for _, tc := range []struct {
		name     string
		key, val []byte
	}{
		{"ShortKey", key[:7], val},
		{"Empty", key, nil},
		{"Version", key, with(0, 1)},
		{"UnknownFlag", key, with(1, val[1]|0x80)},
		{"ZeroReadings", key, with(2, 0)},
		{"Truncated", key, val[:len(val)-1]},
		{"TruncatedHeader", key, val[:8]},
		{"Trailing", key, append(slices.Clone(val), 0xff)},
		{"TrailingZeros", key, append(slices.Clone(val), 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h chunkHeader
			err := parseChunk(&h, tc.key, tc.val)
			if err == nil {
				_, err = decodeAll(nil, &h)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
	// Every single-byte change decodes to an error or to readings in
	// order, never a panic.
	for i := range val {
		for _, x := range []byte{0, 1, 0x7f, 0x80, 0xff, val[i] ^ 1} {
			var h chunkHeader
			if parseChunk(&h, key, with(i, x)) == nil {
				decodeAll(nil, &h)
			}
		}
	}
}

func FuzzParseChunk(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 8 {
		rs := randomRun(rng, 1+rng.IntN(40))
		f.Add(putInt64(nil, rs[0].t), encodeRun(rs, defaultParams)[0].value())
	}
	f.Fuzz(func(t *testing.T, key, val []byte) {
		var h chunkHeader
		if parseChunk(&h, key, val) != nil {
			return
		}
		rs, err := decodeAll(nil, &h)
		if err != nil {
			return
		}
		// What decodes is sorted, inside the header's span, and codes
		// back to readings equal to it.
		if len(rs) != h.n || rs[0].t != h.firstT || rs[len(rs)-1].t != h.lastT {
			t.Fatalf("decoded %d readings for a header of %d", len(rs), h.n)
		}
		back := encodeRun(rs, defaultParams)
		var again []rd
		for _, c := range back {
			got, _ := decodeValue(t, c.first.t, c.value())
			again = append(again, got...)
		}
		if !reflect.DeepEqual(again, rs) {
			t.Fatal("re-encoding changed the readings")
		}
	})
}

func TestRice(t *testing.T) {
	var w bitWriter
	rng := rand.New(rand.NewPCG(3, 4))
	type code struct {
		z uint64
		k uint
	}
	var codes []code
	bitsWant := 0
	for range 10000 {
		k := uint(rng.IntN(57))
		z := rng.Uint64() >> rng.IntN(64)
		codes = append(codes, code{z, k})
		w.rice(z, k)
		bitsWant += int(riceCost(z, k))
	}
	if w.bitLen() != bitsWant {
		t.Fatalf("wrote %d bits, costs say %d", w.bitLen(), bitsWant)
	}
	buf := append(w.appendTo(nil), make([]byte, 8)...)
	r := bitReader{buf: buf, end: uint(w.bitLen())}
	for i, c := range codes {
		if got := r.rice(c.k); got != c.z {
			t.Fatalf("code %d: %d, want %d (k=%d)", i, got, c.z, c.k)
		}
	}
	if r.pos != r.end {
		t.Fatalf("read %d bits, wrote %d", r.pos, r.end)
	}
}
