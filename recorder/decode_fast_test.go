package recorder

import (
	"fmt"
	"slices"
	"testing"
)

// FuzzDecodeFast checks the fast path against encoding/json: whatever
// the fast path accepts, the encoding/json path accepts too and decodes
// to the same values; and the fast path accepts what zeusd writes.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"timestamp_ms":1762000000000,"gpu_id":0,"power_mw":75000}`,
		`{"timestamp_ms":1762000000000,"cpu_id":1,"cpu_mw":85000,"dram_mw":12000}`,
		`{"timestamp_ms":1762000000000,"cpu_id":1,"cpu_mw":85000,"dram_mw":null}`,
		`{"timestamp_ms":-0,"gpu_id":0,"power_mw":5}`,
		`{"timestamp_ms":01,"gpu_id":0,"power_mw":5}`,
		`{"timestamp_ms":1,"gpu_id":0,"power_mw":5} `,
		`{"timestamp_ms":9007199254740993,"gpu_id":0,"power_mw":5}`,
		`{"timestamp_ms":1,"gpu_id":65536,"power_mw":5}`,
		`{"timestamp_ms":1,"gpu_id":0,"power_mw":1000000001}`,
		`{"timestamp_ms":1,"gpu_id":0,"power_mw":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range []struct {
			fast func([]Value, []byte) ([]Value, bool)
			slow func([]Value, []byte) ([]Value, error)
		}{{decodeGPUFast[[]byte], decodeGPU}, {decodeCPUFast[[]byte], decodeCPU}} {
			got, ok := k.fast(nil, data)
			if !ok {
				continue
			}
			want, err := k.slow(nil, data)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("%s: fast %v, encoding/json %v (%v)", data, got, want, err)
			}
			g, _ := decodeGPUFast(nil, string(data))
			c, _ := decodeCPUFast(nil, string(data))
			if !slices.Equal(g, got) && !slices.Equal(c, got) {
				t.Fatalf("%s: string and []byte parses differ", data)
			}
		}
	})
}

func TestDecodeFast_Accepts(t *testing.T) {
	for i := range 1000 {
		ts, dev, mw := int64(1762000000000+i*50), i%8, int64(i*997%300_000)
		g := fmt.Appendf(nil, `{"timestamp_ms":%d,"gpu_id":%d,"power_mw":%d}`, ts, dev, mw)
		if v, ok := decodeGPUFast(nil, g); !ok || len(v) != 1 || v[0].MilliWatts != mw {
			t.Fatalf("%s: %v %v", g, v, ok)
		}
		c := fmt.Appendf(nil, `{"timestamp_ms":%d,"cpu_id":%d,"cpu_mw":%d,"dram_mw":%d}`, ts, dev, mw, mw/10)
		if v, ok := decodeCPUFast(nil, c); !ok || len(v) != 2 || v[1].MilliWatts != mw/10 {
			t.Fatalf("%s: %v %v", c, v, ok)
		}
	}
}

func BenchmarkDecodeGPU(b *testing.B) {
	data := []byte(`{"timestamp_ms":1762000000000,"gpu_id":3,"power_mw":275123}`)
	b.Run("fast", func(b *testing.B) {
		var vs []Value
		for range b.N {
			vs, _ = DecodeGPU(vs[:0], data)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		var vs []Value
		for range b.N {
			vs, _ = decodeGPU(vs[:0], data)
		}
	})
}
