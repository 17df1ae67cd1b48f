package simulator

// This file holds the simulated hardware: deterministic power traces and
// the energy counters that integrate them. Everything here is a pure
// function of the seed, the device and an index on an absolute time grid
// (nanoseconds since the Unix epoch on the daemon clock), so two simulators
// with the same seed agree no matter when they started or how often they
// were polled.

// Trace parameters.
const (
	gpuSlotNs      = int64(100e6) // GPU plateaus start on a 100 ms grid
	gpuForceEvery  = 32           // and last at most 32 slots (3.2 s)
	gpuChangeMille = 150          // chance in 1000 that a slot starts a new plateau
	gpuJitterEvery = 8            // GPU jitter holds at most 8 ticks
	gpuJitterNewPc = 55           // chance in 100 that a tick draws new jitter
	gpuJitterMW    = 1000         // GPU jitter is within ±1 W

	cpuChunkNs     = int64(10e6) // RAPL-like counters advance in 10 ms chunks
	cpuSlotChunks  = 25          // CPU plateaus start on a 250 ms grid
	cpuForceEvery  = 16          // and last at most 16 slots (4 s)
	cpuChangeMille = 200

	mJ = int64(1e9) // mW·ns in a millijoule
	uJ = int64(1e6) // mW·ns in a microjoule
)

// Hash salts, one per independent random stream.
const (
	saltGPUPlateau uint64 = iota + 1
	saltGPULevel
	saltGPUJitterNew
	saltGPUJitter
	saltCPUPlateau
	saltCPULevel
	saltCPUJitter
	saltDRAMPlateau
	saltDRAMLevel
	saltDRAMJitter
)

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hash returns a well-mixed 64-bit value for (seed, salt, dev, i).
func hash(seed int64, salt uint64, dev int, i int64) uint64 {
	x := mix(uint64(seed) ^ salt*0x9e3779b97f4a7c15)
	x = mix(x ^ uint64(dev)*0xd1b54a32d192ed03)
	return mix(x ^ uint64(i))
}

// floorDiv returns ⌊a/b⌋ for b > 0, rounding towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// blockStart returns the largest j <= i that starts a new block: every
// multiple of every starts one, and any other index does with probability
// perThousand/1000. Scanning back is therefore bounded by every.
func blockStart(seed int64, salt uint64, dev int, i, every int64, perThousand uint64) int64 {
	for j := i; ; j-- {
		if j%every == 0 || hash(seed, salt, dev, j)%1000 < perThousand {
			return j
		}
	}
}

// between maps h onto [lo, hi].
func between(h uint64, lo, hi int64) int64 {
	return lo + int64(h%uint64(hi-lo+1))
}

// gpuPower returns GPU dev's power in mW at poll tick k of a poller with
// the given period: a training-job shape of plateaus (a few hundred ms to a
// few seconds) alternating between compute (~200-300 W) and stalls
// (~60-110 W), plus ±1 W of jitter that often repeats from one tick to the
// next, so change-only streaming visibly suppresses events.
func gpuPower(seed int64, dev int, k, period int64) int64 {
	p := blockStart(seed, saltGPUPlateau, dev, floorDiv(k*period, gpuSlotNs), gpuForceEvery, gpuChangeMille)
	j := blockStart(seed, saltGPUJitterNew, dev, k, gpuJitterEvery, gpuJitterNewPc*10)
	return gpuLevel(seed, dev, p) + gpuJitter(seed, dev, j)
}

// gpuLevel is the level of the GPU plateau that starts at slot p.
func gpuLevel(seed int64, dev int, p int64) int64 {
	h := hash(seed, saltGPULevel, dev, p)
	if h%100 < 65 {
		return between(h>>8, 200_000, 300_000)
	}
	return between(h>>8, 60_000, 110_000)
}

// gpuJitter is the jitter that starts at tick j.
func gpuJitter(seed int64, dev int, j int64) int64 {
	return between(hash(seed, saltGPUJitter, dev, j), -gpuJitterMW, gpuJitterMW)
}

// cpuChunkPower returns CPU package dev's power in mW during 10 ms chunk c:
// plateaus between 30 and 140 W with ±5 W of per-chunk noise, kept within
// 20-150 W.
func cpuChunkPower(seed int64, dev int, c int64) int64 {
	return cpuChunk(seed, dev, c, blockStart(seed, saltCPUPlateau, dev, floorDiv(c, cpuSlotChunks), cpuForceEvery, cpuChangeMille))
}

// cpuChunk is cpuChunkPower in the plateau that starts at slot p.
func cpuChunk(seed int64, dev int, c, p int64) int64 {
	level := between(hash(seed, saltCPULevel, dev, p), 30_000, 140_000)
	v := level + between(hash(seed, saltCPUJitter, dev, c), -5_000, 5_000)
	return min(max(v, 20_000), 150_000)
}

// dramChunkPower returns the DRAM domain of CPU package dev's power in mW
// during 10 ms chunk c: 3-20 W.
func dramChunkPower(seed int64, dev int, c int64) int64 {
	return dramChunk(seed, dev, c, blockStart(seed, saltDRAMPlateau, dev, floorDiv(c, cpuSlotChunks), cpuForceEvery, cpuChangeMille))
}

// dramChunk is dramChunkPower in the plateau that starts at slot p.
func dramChunk(seed int64, dev int, c, p int64) int64 {
	level := between(hash(seed, saltDRAMLevel, dev, p), 4_000, 18_000)
	v := level + between(hash(seed, saltDRAMJitter, dev, c), -1_000, 1_000)
	return min(max(v, 3_000), 20_000)
}

// meter integrates a power trace that is constant over each step of an
// absolute grid (step i covers [i*step, (i+1)*step) ns): it is the
// simulated hardware energy counter. It counts from the time it was
// created, in units of unit mW·ns, rounding down. The running total is kept
// exactly, as q units plus r mW·ns with 0 <= r < unit, at the start of
// step i; reading at another time walks the total there, forwards or
// backwards, so any two readings differ by the exact integral between them
// (up to the final rounding). Not safe for concurrent use.
type meter struct {
	power func(i int64) int64 // mW during step i
	step  int64               // ns
	unit  int64               // mW·ns per counter unit
	i     int64
	q, r  int64
}

// newMeter returns a meter reading zero at t0 (ns).
func newMeter(power func(int64) int64, step, unit, t0 int64) *meter {
	m := &meter{power: power, step: step, unit: unit, i: floorDiv(t0, step)}
	m.add(-power(m.i) * (t0 - m.i*step))
	return m
}

// add adds x mW·ns to the running total.
func (m *meter) add(x int64) {
	m.r += x
	d := floorDiv(m.r, m.unit)
	m.q += d
	m.r -= d * m.unit
}

// at returns the counter at time t (ns), in units.
func (m *meter) at(t int64) int64 {
	i := floorDiv(t, m.step)
	for m.i < i {
		m.add(m.power(m.i) * m.step)
		m.i++
	}
	for m.i > i {
		m.i--
		m.add(-m.power(m.i) * m.step)
	}
	return m.q + floorDiv(m.r+m.power(i)*(t-i*m.step), m.unit)
}
