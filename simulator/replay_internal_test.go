package simulator

import "testing"

// TestReplayTraces checks the replay's remembering traces against the
// pure trace functions, forwards and after jumps.
func TestReplayTraces(t *testing.T) {
	const period = 50e6
	for dev := range 3 {
		g := newGPUTrace(7, dev, period)
		for _, k := range append(seqFrom(1_000_000, 5000), 10, 11, -50, -49, -48, 1<<40, 1<<40+1) {
			if got, want := g.power(k), gpuPower(7, dev, k, period); got != want {
				t.Fatalf("gpu %d tick %d: %d, want %d", dev, k, got, want)
			}
		}
		pkg := blockCache{seed: 7, salt: saltCPUPlateau, dev: dev, every: cpuForceEvery, perThousand: cpuChangeMille}
		ram := blockCache{seed: 7, salt: saltDRAMPlateau, dev: dev, every: cpuForceEvery, perThousand: cpuChangeMille}
		for _, c := range append(seqFrom(-3000, 6000), 5, 1<<35) {
			if got, want := cpuChunk(7, dev, c, pkg.at(floorDiv(c, cpuSlotChunks))), cpuChunkPower(7, dev, c); got != want {
				t.Fatalf("cpu %d chunk %d: %d, want %d", dev, c, got, want)
			}
			if got, want := dramChunk(7, dev, c, ram.at(floorDiv(c, cpuSlotChunks))), dramChunkPower(7, dev, c); got != want {
				t.Fatalf("dram %d chunk %d: %d, want %d", dev, c, got, want)
			}
		}
	}
}

func seqFrom(a int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = a + int64(i)
	}
	return out
}
