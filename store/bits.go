package store

import (
	"encoding/binary"
	"math/bits"
)

// Bit streams are little-endian: the first bit written is bit 0 of the
// first byte. Numbers are Rice-coded with an escape (see riceQ).

// riceQ is the escape threshold of the Rice code. A value z with
// parameter k is written as q = z>>k one bits, a zero bit and the k low
// bits of z, when q < riceQ; otherwise as riceQ one bits, the bit length L
// of z minus one in 6 bits, and the L bits of z. The escape bounds the
// cost of a rare large value (a GPU jumping from idle to full load) at
// riceQ + 6 + 64 bits.
const riceQ = 6

// bitWriter appends bits to buf.
type bitWriter struct {
	buf  []byte
	acc  uint64 // pending bits, the oldest in bit 0
	nacc uint   // number of pending bits, < 32 between calls
}

// write appends the n low bits of v (n <= 32).
func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= (v & (1<<n - 1)) << w.nacc
	w.nacc += n
	if w.nacc >= 32 {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(w.acc))
		w.acc >>= 32
		w.nacc -= 32
	}
}

// write64 appends the n low bits of v (n <= 64).
func (w *bitWriter) write64(v uint64, n uint) {
	if n > 32 {
		w.write(v, 32)
		v, n = v>>32, n-32
	}
	w.write(v, n)
}

// rice appends z with parameter k (k <= 56).
func (w *bitWriter) rice(z uint64, k uint) {
	if q := uint(z >> k); q < riceQ {
		// q ones, a zero, then the k low bits of z.
		if n := q + 1 + k; n <= 32 {
			w.write(1<<q-1|(z&(1<<k-1))<<(q+1), n)
			return
		}
		w.write(1<<q-1, q+1)
		w.write64(z, k)
		return
	}
	l := uint(bits.Len64(z))
	w.write(1<<riceQ-1|uint64(l-1)<<riceQ, riceQ+6)
	w.write64(z, l)
}

// riceCost is the number of bits rice(z, k) appends.
func riceCost(z uint64, k uint) uint {
	if q := z >> k; q < riceQ {
		return uint(q) + 1 + k
	}
	return riceQ + 6 + uint(bits.Len64(z))
}

// bitLen is the number of bits written.
func (w *bitWriter) bitLen() int { return len(w.buf)*8 + int(w.nacc) }

// appendTo appends the stream, padded with zero bits to a whole byte.
func (w *bitWriter) appendTo(dst []byte) []byte {
	dst = append(dst, w.buf...)
	for acc, n := w.acc, int(w.nacc); n > 0; acc, n = acc>>8, n-8 {
		dst = append(dst, byte(acc))
	}
	return dst
}

// bitReader reads a stream written by bitWriter. buf carries at least 8
// bytes of zero padding past the stream, so every peek is one load; a
// read past the stream's end sets pos beyond end, which the decoder
// reports as corruption.
type bitReader struct {
	buf []byte // stream + 8 zero bytes
	pos uint   // next bit
	end uint   // bits in the stream
}

// peek returns at least 57 valid bits from pos on (zeros past the end).
func (r *bitReader) peek() uint64 {
	i := r.pos >> 3
	if i+8 > uint(len(r.buf)) {
		return 0 // past the padding: only reached on corrupt input
	}
	return binary.LittleEndian.Uint64(r.buf[i:]) >> (r.pos & 7)
}

// read returns the next n bits (n <= 56).
func (r *bitReader) read(n uint) uint64 {
	v := r.peek() & (1<<n - 1)
	r.pos += n
	return v
}

// rice reads a value written by bitWriter.rice with parameter k.
func (r *bitReader) rice(k uint) uint64 {
	x := r.peek()
	q := uint(bits.TrailingZeros64(^x))
	if q < riceQ {
		if q+1+k <= 57 {
			r.pos += q + 1 + k
			return uint64(q)<<k | (x>>(q+1))&(1<<k-1)
		}
		r.pos += q + 1
		return uint64(q)<<k | r.read(k)
	}
	r.pos += riceQ
	l := uint(r.read(6)) + 1
	if l > 32 {
		lo := r.read(32)
		return lo | r.read(l-32)<<32
	}
	return r.read(l)
}

// rice2 reads two values, with parameters k1 and k2: from one load when
// both are short, the common case.
func (r *bitReader) rice2(k1, k2 uint) (uint64, uint64) {
	x := r.peek()
	q1 := uint(bits.TrailingZeros64(^x))
	if n1 := q1 + 1 + k1; q1 < riceQ && n1 <= 57 {
		y := x >> n1
		q2 := uint(bits.TrailingZeros64(^y))
		if n2 := q2 + 1 + k2; q2 < riceQ && n1+n2 <= 57 {
			r.pos += n1 + n2
			return uint64(q1)<<k1 | (x>>(q1+1))&(1<<k1-1), uint64(q2)<<k2 | (y>>(q2+1))&(1<<k2-1)
		}
	}
	a := r.rice(k1)
	return a, r.rice(k2)
}

func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

func unzigzag(z uint64) int64 { return int64(z>>1) ^ -int64(z&1) }
