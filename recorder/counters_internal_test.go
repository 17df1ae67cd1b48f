package recorder

import (
	"reflect"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/store"
)

func TestDecodeGPUEnergy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		ids     []int
		want    []counterValue
		wantErr string // substring; empty: no error
	}{
		{"Two", `{"0":{"energy_mj":123456},"1":{"energy_mj":0}}`, []int{0, 1},
			[]counterValue{{store.KindGPU, 0, 123_456_000}, {store.KindGPU, 1, 0}}, ""},
		{"NotAskedIgnored", `{"0":{"energy_mj":1},"7":{"energy_mj":2}}`, []int{0}, []counterValue{{store.KindGPU, 0, 1000}}, ""},
		{"NullIsNoValue", `{"0":{"energy_mj":null},"1":{"energy_mj":5}}`, []int{0, 1}, []counterValue{{store.KindGPU, 1, 5000}}, ""},
		{"UnknownFieldIgnored", `{"0":{"energy_mj":1,"extra":true}}`, []int{0}, []counterValue{{store.KindGPU, 0, 1000}}, ""},
		{"MissingGPUOthersKept", `{"0":{"energy_mj":1}}`, []int{0, 1}, []counterValue{{store.KindGPU, 0, 1000}}, "no GPU 1"},
		{"MissingField", `{"0":{}}`, []int{0}, nil, "energy_mj is missing"},
		{"Negative", `{"0":{"energy_mj":-1}}`, []int{0}, nil, "outside"},
		{"Overflow", `{"0":{"energy_mj":9223372036854776}}`, []int{0}, nil, "outside"},
		{"Float", `{"0":{"energy_mj":1.5}}`, []int{0}, nil, "not an integer"},
		{"String", `{"0":{"energy_mj":"1"}}`, []int{0}, nil, "not an integer"},
		{"NullDevice", `{"0":null}`, []int{0}, nil, "no GPU 0"},
		{"NotAnObject", `[1,2]`, []int{0}, nil, "decode answer"},
		{"DeviceNotAnObject", `{"0":5}`, []int{0}, nil, "decode answer"},
		{"NonCanonicalID", `{"00":{"energy_mj":1}}`, []int{0}, nil, "no GPU 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeGPUEnergy([]byte(tc.body), tc.ids)
			checkEnergy(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestDecodeCPUEnergy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		ids     []int
		want    []counterValue
		wantErr string
	}{
		{"Both", `{"0":{"cpu_energy_uj":123456,"dram_energy_uj":78901}}`, []int{0},
			[]counterValue{{store.KindCPU, 0, 123456}, {store.KindDRAM, 0, 78901}}, ""},
		{"NoDRAM", `{"0":{"cpu_energy_uj":1,"dram_energy_uj":null},"1":{"cpu_energy_uj":2}}`, []int{0, 1},
			[]counterValue{{store.KindCPU, 0, 1}, {store.KindCPU, 1, 2}}, ""},
		{"AllNull", `{"0":{"cpu_energy_uj":null,"dram_energy_uj":null}}`, []int{0}, nil, ""},
		{"MaxInt64", `{"0":{"cpu_energy_uj":9223372036854775807}}`, []int{0}, []counterValue{{store.KindCPU, 0, 1<<63 - 1}}, ""},
		{"MissingCPU", `{}`, []int{0}, nil, "no CPU 0"},
		{"Negative", `{"0":{"cpu_energy_uj":1,"dram_energy_uj":-5}}`, []int{0}, []counterValue{{store.KindCPU, 0, 1}}, "dram_energy_uj"},
		{"TooBig", `{"0":{"cpu_energy_uj":9223372036854775808}}`, []int{0}, nil, "not an integer"},
		{"Garbage", `{"0":`, []int{0}, nil, "decode answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeCPUEnergy([]byte(tc.body), tc.ids)
			checkEnergy(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func checkEnergy(t *testing.T, got []counterValue, err error, want []counterValue, wantErr string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("values = %+v, want %+v", got, want)
	}
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("err = %v", err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Errorf("err = %v, want one mentioning %q", err, wantErr)
	}
}

// FuzzDecodeEnergy: neither decoder panics, and what they return is a
// non-negative counter of a device that was asked for.
func FuzzDecodeEnergy(f *testing.F) {
	f.Add([]byte(`{"0":{"energy_mj":123456},"1":{"energy_mj":null}}`))
	f.Add([]byte(`{"0":{"cpu_energy_uj":1,"dram_energy_uj":null},"1":{"cpu_energy_uj":2,"dram_energy_uj":3}}`))
	f.Add([]byte(`{"0":{"energy_mj":-1}}`))
	ids := []int{0, 1}
	f.Fuzz(func(t *testing.T, body []byte) {
		gpu, _ := decodeGPUEnergy(body, ids)
		cpu, _ := decodeCPUEnergy(body, ids)
		for _, v := range append(gpu, cpu...) {
			if v.EnergyUJ < 0 || v.Device < 0 || v.Device > 1 || !v.Kind.Valid() {
				t.Fatalf("bad value %+v from %q", v, body)
			}
		}
		for _, v := range gpu {
			if v.Kind != store.KindGPU || v.EnergyUJ%1000 != 0 {
				t.Fatalf("bad GPU value %+v from %q", v, body)
			}
		}
	})
}

func TestRoundMs(t *testing.T) {
	for _, tc := range []struct{ us, want int64 }{
		{0, 0}, {499, 0}, {500, 1}, {1499, 1}, {-499, 0}, {-500, -1}, {-1500, -2}, {1_762_000_000_000_500, 1_762_000_000_001},
	} {
		if got := roundMs(tc.us); got != tc.want {
			t.Errorf("roundMs(%d) = %d, want %d", tc.us, got, tc.want)
		}
	}
}
