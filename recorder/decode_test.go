package recorder_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/store"
)

// Bounds the decoders promise (decode.go keeps them unexported).
const (
	decMaxEventBytes = 1 << 20
	decMaxSnapshot   = 1024
	decMaxMilliWatts = 1_000_000_000
	decMaxDaemonMs   = 1 << 53
	decMaxDevice     = 1<<16 - 1
)

// decTS is a realistic daemon timestamp (Unix ms).
const decTS = 1762000000000

func gpuVal(dev int32, ms, mw int64) recorder.Value {
	return recorder.Value{Kind: store.KindGPU, Device: dev, DaemonMs: ms, MilliWatts: mw}
}

func cpuVal(dev int32, ms, mw int64) recorder.Value {
	return recorder.Value{Kind: store.KindCPU, Device: dev, DaemonMs: ms, MilliWatts: mw}
}

func dramVal(dev int32, ms, mw int64) recorder.Value {
	return recorder.Value{Kind: store.KindDRAM, Device: dev, DaemonMs: ms, MilliWatts: mw}
}

type decodeValidCase struct {
	name string
	data string
	want []recorder.Value
}

type decodeMalformedCase struct {
	name string
	data string
	// field must appear in the error text; "" for inputs that are not a
	// JSON object at all, where only the "malformed event" prefix is checked.
	field string
}

var gpuDecodeValid = []decodeValidCase{
	{"Sample", `{"timestamp_ms":1762000000000,"gpu_id":0,"power_mw":75000}`,
		[]recorder.Value{gpuVal(0, decTS, 75000)}},
	{"SampleFieldOrder", `{"power_mw":120000,"gpu_id":3,"timestamp_ms":1762000000000}`,
		[]recorder.Value{gpuVal(3, decTS, 120000)}},
	{"SampleWhitespace", "{\n  \"timestamp_ms\" : 1762000000000 ,\r\n\t\"gpu_id\" : 1 , \"power_mw\" : 5 }\n",
		[]recorder.Value{gpuVal(1, decTS, 5)}},
	{"SampleZeroPower", `{"timestamp_ms":1762000000000,"gpu_id":0,"power_mw":0}`,
		[]recorder.Value{gpuVal(0, decTS, 0)}},
	{"SampleMaxPower", `{"timestamp_ms":1762000000000,"gpu_id":0,"power_mw":1000000000}`,
		[]recorder.Value{gpuVal(0, decTS, decMaxMilliWatts)}},
	{"SampleZeroTimestamp", `{"timestamp_ms":0,"gpu_id":0,"power_mw":1}`,
		[]recorder.Value{gpuVal(0, 0, 1)}},
	{"SampleMaxTimestamp", `{"timestamp_ms":9007199254740992,"gpu_id":0,"power_mw":1}`,
		[]recorder.Value{gpuVal(0, decMaxDaemonMs, 1)}},
	{"SampleMaxDevice", `{"timestamp_ms":1762000000000,"gpu_id":65535,"power_mw":1}`,
		[]recorder.Value{gpuVal(decMaxDevice, decTS, 1)}},
	{"SampleUnknownFields", `{"timestamp_ms":1762000000000,"gpu_id":2,"power_mw":7,"name":"NVIDIA A40","extra":{"a":[1,null,"x"]},"seq":null}`,
		[]recorder.Value{gpuVal(2, decTS, 7)}},
	{"Snapshot", `{"timestamp_ms":1762000000000,"power_mw":{"0":75000,"1":120000}}`,
		[]recorder.Value{gpuVal(0, decTS, 75000), gpuVal(1, decTS, 120000)}},
	{"SnapshotSortedNumerically", `{"timestamp_ms":1762000000000,"power_mw":{"10":3,"2":2,"0":0,"3":1,"1":9}}`,
		[]recorder.Value{gpuVal(0, decTS, 0), gpuVal(1, decTS, 9), gpuVal(2, decTS, 2), gpuVal(3, decTS, 1), gpuVal(10, decTS, 3)}},
	{"SnapshotOneDevice", `{"timestamp_ms":1762000000000,"power_mw":{"7":42}}`,
		[]recorder.Value{gpuVal(7, decTS, 42)}},
	{"SnapshotMaxDevice", `{"timestamp_ms":1,"power_mw":{"65535":1}}`,
		[]recorder.Value{gpuVal(decMaxDevice, 1, 1)}},
	{"SnapshotUnknownFields", `{"hostname":"n1","timestamp_ms":1762000000000,"power_mw":{"1":5,"0":4},"v":2}`,
		[]recorder.Value{gpuVal(0, decTS, 4), gpuVal(1, decTS, 5)}},
	// A daemon without GPUs has nothing to report: no values, no error.
	{"SnapshotEmpty", `{"timestamp_ms":1762000000000,"power_mw":{}}`, nil},
}

var cpuDecodeValid = []decodeValidCase{
	{"Sample", `{"timestamp_ms":1762000000000,"cpu_id":0,"cpu_mw":85000,"dram_mw":12000}`,
		[]recorder.Value{cpuVal(0, decTS, 85000), dramVal(0, decTS, 12000)}},
	{"SampleDRAMNull", `{"timestamp_ms":1762000000000,"cpu_id":1,"cpu_mw":85000,"dram_mw":null}`,
		[]recorder.Value{cpuVal(1, decTS, 85000)}},
	{"SampleDRAMMissing", `{"timestamp_ms":1762000000000,"cpu_id":1,"cpu_mw":85000}`,
		[]recorder.Value{cpuVal(1, decTS, 85000)}},
	{"SampleDRAMZero", `{"timestamp_ms":1762000000000,"cpu_id":0,"cpu_mw":1,"dram_mw":0}`,
		[]recorder.Value{cpuVal(0, decTS, 1), dramVal(0, decTS, 0)}},
	{"SampleMaxValues", `{"timestamp_ms":9007199254740992,"cpu_id":65535,"cpu_mw":1000000000,"dram_mw":1000000000}`,
		[]recorder.Value{cpuVal(decMaxDevice, decMaxDaemonMs, decMaxMilliWatts), dramVal(decMaxDevice, decMaxDaemonMs, decMaxMilliWatts)}},
	{"SampleFieldOrder", `{"dram_mw":2,"cpu_mw":1,"cpu_id":4,"timestamp_ms":5}`,
		[]recorder.Value{cpuVal(4, 5, 1), dramVal(4, 5, 2)}},
	{"SampleUnknownFields", `{"timestamp_ms":1762000000000,"cpu_id":0,"cpu_mw":3,"dram_mw":4,"pkg":"intel-rapl:0","uncore_mw":9}`,
		[]recorder.Value{cpuVal(0, decTS, 3), dramVal(0, decTS, 4)}},
	{"Snapshot", `{"timestamp_ms":1762000000000,"power_mw":{"0":{"cpu_mw":85000,"dram_mw":null}}}`,
		[]recorder.Value{cpuVal(0, decTS, 85000)}},
	{"SnapshotDRAM", `{"timestamp_ms":1762000000000,"power_mw":{"0":{"cpu_mw":85000,"dram_mw":12000}}}`,
		[]recorder.Value{cpuVal(0, decTS, 85000), dramVal(0, decTS, 12000)}},
	{"SnapshotSortedMixed", `{"timestamp_ms":1762000000000,"power_mw":{"10":{"cpu_mw":5,"dram_mw":6},"1":{"cpu_mw":3,"dram_mw":4},"0":{"cpu_mw":1,"dram_mw":null},"2":{"cpu_mw":7}}}`,
		[]recorder.Value{
			cpuVal(0, decTS, 1),
			cpuVal(1, decTS, 3), dramVal(1, decTS, 4),
			cpuVal(2, decTS, 7),
			cpuVal(10, decTS, 5), dramVal(10, decTS, 6),
		}},
	{"SnapshotUnknownFields", `{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":1,"dram_mw":2,"core_mw":3}},"x":true}`,
		[]recorder.Value{cpuVal(0, 1, 1), dramVal(0, 1, 2)}},
	{"SnapshotEmpty", `{"timestamp_ms":1762000000000,"power_mw":{}}`, nil},
}

// decodeNotObject are inputs that are not one JSON object; both decoders
// must refuse them.
var decodeNotObject = []decodeMalformedCase{
	{"Empty", ``, ""},
	{"Whitespace", " \n\t", ""},
	{"NotJSON", `hello`, ""},
	{"SSEFrame", `data: {"timestamp_ms":1,"gpu_id":0,"power_mw":1}`, ""},
	{"Truncated", `{"timestamp_ms":1762000000000,"gpu_id":0,"power_mw":75`, ""},
	{"OpenBrace", `{`, ""},
	{"TrailingGarbage", `{"timestamp_ms":1,"gpu_id":0,"power_mw":1,"cpu_id":0,"cpu_mw":1} x`, ""},
	{"TwoObjects", `{"timestamp_ms":1,"gpu_id":0,"power_mw":1,"cpu_id":0,"cpu_mw":1}{"timestamp_ms":1}`, ""},
	{"TrailingComma", `{"timestamp_ms":1,"gpu_id":0,"power_mw":1,"cpu_id":0,"cpu_mw":1,}`, ""},
	{"SingleQuotes", `{'timestamp_ms':1}`, ""},
	{"EmptyArray", `[]`, ""},
	{"Array", `[{"timestamp_ms":1,"gpu_id":0,"power_mw":1,"cpu_id":0,"cpu_mw":1}]`, ""},
	{"Number", `75000`, ""},
	{"String", `"75000"`, ""},
	{"Bool", `true`, ""},
	{"InvalidUTF8", "{\"timestamp_ms\":1,\"gpu_id\":0,\"power_mw\":1,\"cpu_id\":0,\"cpu_mw\":1,\"x\":\"\xff\"", ""},
	{"NUL", "\x00", ""},
	// null unmarshals into nothing: every field is missing.
	{"Null", `null`, "timestamp_ms"},
	{"EmptyObject", `{}`, "timestamp_ms"},
}

// decodeBadTimestamp are events whose timestamp_ms is wrong; both
// decoders must name the field. %s is replaced by the timestamp text.
var decodeBadTimestamp = []struct{ name, ts string }{
	{"Null", `null`},
	{"String", `"1762000000000"`},
	{"EmptyString", `""`},
	{"Float", `1762000000000.5`},
	{"FloatIntegral", `1762000000000.0`},
	{"Exponent", `1.762e12`},
	{"True", `true`},
	{"False", `false`},
	{"Negative", `-1`},
	{"AboveMax", `9007199254740993`},
	{"Int64Max", `9223372036854775807`},
	{"Int64Overflow", `9223372036854775808`},
	{"Huge", `1e30`},
	{"Object", `{"ms":1}`},
	{"Array", `[1762000000000]`},
}

var gpuDecodeMalformed = []decodeMalformedCase{
	{"TimestampMissing", `{"gpu_id":0,"power_mw":75000}`, "timestamp_ms"},
	{"GPUIDNull", `{"timestamp_ms":1,"gpu_id":null,"power_mw":75000}`, "gpu_id"},
	{"GPUIDString", `{"timestamp_ms":1,"gpu_id":"0","power_mw":75000}`, "gpu_id"},
	{"GPUIDFloat", `{"timestamp_ms":1,"gpu_id":0.5,"power_mw":75000}`, "gpu_id"},
	{"GPUIDFloatIntegral", `{"timestamp_ms":1,"gpu_id":1.0,"power_mw":75000}`, "gpu_id"},
	{"GPUIDBool", `{"timestamp_ms":1,"gpu_id":true,"power_mw":75000}`, "gpu_id"},
	{"GPUIDNegative", `{"timestamp_ms":1,"gpu_id":-1,"power_mw":75000}`, "gpu_id"},
	{"GPUIDOutOfRange", `{"timestamp_ms":1,"gpu_id":65536,"power_mw":75000}`, "gpu_id"},
	{"GPUIDHuge", `{"timestamp_ms":1,"gpu_id":9223372036854775808,"power_mw":75000}`, "gpu_id"},
	{"GPUIDArray", `{"timestamp_ms":1,"gpu_id":[0],"power_mw":75000}`, "gpu_id"},
	{"GPUIDObject", `{"timestamp_ms":1,"gpu_id":{},"power_mw":75000}`, "gpu_id"},
	{"PowerMissing", `{"timestamp_ms":1,"gpu_id":0}`, "power_mw"},
	{"PowerNull", `{"timestamp_ms":1,"gpu_id":0,"power_mw":null}`, "power_mw"},
	{"PowerString", `{"timestamp_ms":1,"gpu_id":0,"power_mw":"75000"}`, "power_mw"},
	{"PowerFloat", `{"timestamp_ms":1,"gpu_id":0,"power_mw":75000.5}`, "power_mw"},
	{"PowerExponent", `{"timestamp_ms":1,"gpu_id":0,"power_mw":7.5e4}`, "power_mw"},
	{"PowerBool", `{"timestamp_ms":1,"gpu_id":0,"power_mw":false}`, "power_mw"},
	{"PowerNegative", `{"timestamp_ms":1,"gpu_id":0,"power_mw":-1}`, "power_mw"},
	{"PowerAboveMW", `{"timestamp_ms":1,"gpu_id":0,"power_mw":1000000001}`, "power_mw"},
	{"PowerHuge", `{"timestamp_ms":1,"gpu_id":0,"power_mw":1e30}`, "power_mw"},
	{"PowerInt64Overflow", `{"timestamp_ms":1,"gpu_id":0,"power_mw":9223372036854775808}`, "power_mw"},
	{"PowerArray", `{"timestamp_ms":1,"gpu_id":0,"power_mw":[75000]}`, "power_mw"},
	// A gpu_id makes it a per-device sample: a snapshot object is wrong.
	{"PowerObjectWithID", `{"timestamp_ms":1,"gpu_id":0,"power_mw":{"0":75000}}`, "power_mw"},
	{"NoIDPowerNumber", `{"timestamp_ms":1,"power_mw":75000}`, "power_mw"},
	{"NoIDPowerString", `{"timestamp_ms":1,"power_mw":"x"}`, "power_mw"},
	{"NoIDPowerArray", `{"timestamp_ms":1,"power_mw":[75000,120000]}`, "power_mw"},
	{"NoIDPowerMissing", `{"timestamp_ms":1}`, "power_mw"},
	{"NoIDPowerNull", `{"timestamp_ms":1,"power_mw":null}`, "power_mw"},
	{"CPUSample", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":85000,"dram_mw":12000}`, "power_mw"},
	{"CPUSnapshot", `{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":85000,"dram_mw":null}}}`, "power_mw.0"},
	{"SnapshotKeyLeadingZero", `{"timestamp_ms":1,"power_mw":{"01":75000}}`, `"01"`},
	{"SnapshotKeyNegative", `{"timestamp_ms":1,"power_mw":{"-1":75000}}`, `"-1"`},
	{"SnapshotKeyPlus", `{"timestamp_ms":1,"power_mw":{"+1":75000}}`, `"+1"`},
	{"SnapshotKeyLetter", `{"timestamp_ms":1,"power_mw":{"a":75000}}`, `"a"`},
	{"SnapshotKeyEmpty", `{"timestamp_ms":1,"power_mw":{"":75000}}`, `""`},
	{"SnapshotKeySpace", `{"timestamp_ms":1,"power_mw":{" 0":75000}}`, `" 0"`},
	{"SnapshotKeyFloat", `{"timestamp_ms":1,"power_mw":{"0.0":75000}}`, `"0.0"`},
	{"SnapshotKeyExponent", `{"timestamp_ms":1,"power_mw":{"1e2":75000}}`, `"1e2"`},
	{"SnapshotKeyOutOfRange", `{"timestamp_ms":1,"power_mw":{"65536":75000}}`, `"65536"`},
	{"SnapshotKeyHuge", `{"timestamp_ms":1,"power_mw":{"9223372036854775808":75000}}`, `"9223372036854775808"`},
	{"SnapshotOneBadKey", `{"timestamp_ms":1,"power_mw":{"0":1,"1":2,"x":3}}`, `"x"`},
	{"SnapshotValueNull", `{"timestamp_ms":1,"power_mw":{"0":null}}`, "power_mw.0"},
	{"SnapshotValueString", `{"timestamp_ms":1,"power_mw":{"0":"75000"}}`, "power_mw.0"},
	{"SnapshotValueFloat", `{"timestamp_ms":1,"power_mw":{"0":75000.5}}`, "power_mw.0"},
	{"SnapshotValueBool", `{"timestamp_ms":1,"power_mw":{"0":true}}`, "power_mw.0"},
	{"SnapshotValueNegative", `{"timestamp_ms":1,"power_mw":{"0":1,"1":-5}}`, "power_mw.1"},
	{"SnapshotValueAboveMW", `{"timestamp_ms":1,"power_mw":{"3":1000000001}}`, "power_mw.3"},
	{"SnapshotValueHuge", `{"timestamp_ms":1,"power_mw":{"0":1e30}}`, "power_mw.0"},
	{"SnapshotValueArray", `{"timestamp_ms":1,"power_mw":{"0":[1]}}`, "power_mw.0"},
	{"SnapshotNotClosed", `{"timestamp_ms":1,"power_mw":{"0":1}`, ""},
}

var cpuDecodeMalformed = []decodeMalformedCase{
	{"TimestampMissing", `{"cpu_id":0,"cpu_mw":85000}`, "timestamp_ms"},
	{"CPUIDNull", `{"timestamp_ms":1,"cpu_id":null,"cpu_mw":85000}`, "cpu_id"},
	{"CPUIDString", `{"timestamp_ms":1,"cpu_id":"0","cpu_mw":85000}`, "cpu_id"},
	{"CPUIDFloat", `{"timestamp_ms":1,"cpu_id":0.5,"cpu_mw":85000}`, "cpu_id"},
	{"CPUIDBool", `{"timestamp_ms":1,"cpu_id":false,"cpu_mw":85000}`, "cpu_id"},
	{"CPUIDNegative", `{"timestamp_ms":1,"cpu_id":-1,"cpu_mw":85000}`, "cpu_id"},
	{"CPUIDOutOfRange", `{"timestamp_ms":1,"cpu_id":65536,"cpu_mw":85000}`, "cpu_id"},
	{"CPUIDHuge", `{"timestamp_ms":1,"cpu_id":1e30,"cpu_mw":85000}`, "cpu_id"},
	{"CPUMissing", `{"timestamp_ms":1,"cpu_id":0,"dram_mw":12000}`, "cpu_mw"},
	{"CPUNull", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":null,"dram_mw":12000}`, "cpu_mw"},
	{"CPUString", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":"85000"}`, "cpu_mw"},
	{"CPUFloat", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":75000.5}`, "cpu_mw"},
	{"CPUBool", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":true}`, "cpu_mw"},
	{"CPUNegative", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":-1}`, "cpu_mw"},
	{"CPUAboveMW", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1000000001}`, "cpu_mw"},
	{"CPUHuge", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":9223372036854775808}`, "cpu_mw"},
	{"CPUObject", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":{"0":1}}`, "cpu_mw"},
	{"DRAMString", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":"12000"}`, "dram_mw"},
	{"DRAMEmptyString", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":""}`, "dram_mw"},
	{"DRAMFloat", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":12000.5}`, "dram_mw"},
	{"DRAMBool", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":false}`, "dram_mw"},
	{"DRAMNegative", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":-1}`, "dram_mw"},
	{"DRAMAboveMW", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":1000000001}`, "dram_mw"},
	{"DRAMHuge", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":1e30}`, "dram_mw"},
	{"DRAMArray", `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":[]}`, "dram_mw"},
	{"NoIDPowerNumber", `{"timestamp_ms":1,"power_mw":85000}`, "power_mw"},
	{"NoIDPowerMissing", `{"timestamp_ms":1,"cpu_mw":85000}`, "power_mw"},
	{"NoIDPowerNull", `{"timestamp_ms":1,"power_mw":null}`, "power_mw"},
	{"NoIDPowerArray", `{"timestamp_ms":1,"power_mw":[{"cpu_mw":1}]}`, "power_mw"},
	{"GPUSample", `{"timestamp_ms":1,"gpu_id":0,"power_mw":75000}`, "power_mw"},
	{"GPUSnapshot", `{"timestamp_ms":1,"power_mw":{"0":75000}}`, "power_mw"},
	{"SnapshotKeyLeadingZero", `{"timestamp_ms":1,"power_mw":{"01":{"cpu_mw":1}}}`, `"01"`},
	{"SnapshotKeyNegative", `{"timestamp_ms":1,"power_mw":{"-1":{"cpu_mw":1}}}`, `"-1"`},
	{"SnapshotKeyLetter", `{"timestamp_ms":1,"power_mw":{"a":{"cpu_mw":1}}}`, `"a"`},
	{"SnapshotKeyOutOfRange", `{"timestamp_ms":1,"power_mw":{"65536":{"cpu_mw":1}}}`, `"65536"`},
	{"SnapshotValueNull", `{"timestamp_ms":1,"power_mw":{"0":null}}`, "power_mw.0.cpu_mw"},
	{"SnapshotValueEmpty", `{"timestamp_ms":1,"power_mw":{"0":{}}}`, "power_mw.0.cpu_mw"},
	{"SnapshotValueString", `{"timestamp_ms":1,"power_mw":{"0":"x"}}`, "power_mw"},
	{"SnapshotCPUNull", `{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":null,"dram_mw":1}}}`, "power_mw.0.cpu_mw"},
	{"SnapshotCPUFloat", `{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":1.5}}}`, "power_mw.0.cpu_mw"},
	{"SnapshotCPUNegative", `{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":1},"2":{"cpu_mw":-3}}}`, "power_mw.2.cpu_mw"},
	{"SnapshotDRAMString", `{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":1,"dram_mw":"x"}}}`, "power_mw.0.dram_mw"},
	{"SnapshotDRAMAboveMW", `{"timestamp_ms":1,"power_mw":{"1":{"cpu_mw":1,"dram_mw":1000000001}}}`, "power_mw.1.dram_mw"},
	{"SnapshotDRAMBool", `{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":1,"dram_mw":true}}}`, "power_mw.0.dram_mw"},
}

// sentinelDst is a non-empty dst with spare capacity, so that a decoder
// that appends before failing would be caught by the length check, and
// one that overwrote earlier elements by the content check.
func sentinelDst() []recorder.Value {
	dst := make([]recorder.Value, 2, 64)
	dst[0] = recorder.Value{Kind: store.KindDRAM, Device: 99, DaemonMs: 123, MilliWatts: 456}
	dst[1] = recorder.Value{Kind: store.KindGPU, Device: 98, DaemonMs: 789, MilliWatts: 1}
	return dst
}

type decodeFunc func([]recorder.Value, []byte) ([]recorder.Value, error)

func testDecodeValid(t *testing.T, decode decodeFunc, cases []decodeValidCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			// Into nil.
			got, err := decode(nil, []byte(tt.data))
			if err != nil {
				t.Fatalf("decode %s: %v", tt.data, err)
			}
			if want := tt.want; !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}

			// Appended after what dst already holds.
			dst := sentinelDst()
			prefix := slices.Clone(dst)
			got, err = decode(dst, []byte(tt.data))
			if err != nil {
				t.Fatalf("decode into dst: %v", err)
			}
			if got, want := got, append(prefix, tt.want...); !slices.Equal(got, want) {
				t.Fatalf("into dst: got %v, want %v", got, want)
			}
		})
	}
}

func testDecodeMalformed(t *testing.T, decode decodeFunc, cases []decodeMalformedCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			checkDecodeError(t, decode, []byte(tt.data), tt.field)
		})
	}
}

// checkDecodeError requires decode to fail on data, name field in the
// error, and return dst unchanged.
func checkDecodeError(t *testing.T, decode decodeFunc, data []byte, field string) {
	t.Helper()
	dst := sentinelDst()
	prefix := slices.Clone(dst)
	got, err := decode(dst, data)
	if err == nil {
		t.Fatalf("decode %.200q: got %v, want an error", data, got)
	}
	if got, want := err.Error(), "malformed event: "; !strings.HasPrefix(got, want) {
		t.Errorf("error %q does not start with %q", got, want)
	}
	if field != "" && !strings.Contains(err.Error(), field) {
		t.Errorf("error %q does not name %s", err, field)
	}
	if got, want := len(got), len(prefix); got != want {
		t.Fatalf("len(dst)=%d after error, want %d", got, want)
	}
	if &got[0] != &dst[0] {
		t.Errorf("returned slice is not dst")
	}
	if !slices.Equal(got, prefix) {
		t.Errorf("dst changed: got %v, want %v", got, prefix)
	}
}

func TestDecodeGPU(t *testing.T) {
	t.Run("Valid", func(t *testing.T) { testDecodeValid(t, recorder.DecodeGPU, gpuDecodeValid) })
	t.Run("NotObject", func(t *testing.T) { testDecodeMalformed(t, recorder.DecodeGPU, decodeNotObject) })
	t.Run("Malformed", func(t *testing.T) { testDecodeMalformed(t, recorder.DecodeGPU, gpuDecodeMalformed) })
	t.Run("Timestamp", func(t *testing.T) {
		for _, tt := range decodeBadTimestamp {
			t.Run("Sample"+tt.name, func(t *testing.T) {
				data := fmt.Sprintf(`{"timestamp_ms":%s,"gpu_id":0,"power_mw":75000}`, tt.ts)
				checkDecodeError(t, recorder.DecodeGPU, []byte(data), "timestamp_ms")
			})
			t.Run("Snapshot"+tt.name, func(t *testing.T) {
				data := fmt.Sprintf(`{"timestamp_ms":%s,"power_mw":{"0":75000}}`, tt.ts)
				checkDecodeError(t, recorder.DecodeGPU, []byte(data), "timestamp_ms")
			})
		}
	})
	t.Run("SnapshotDevices", func(t *testing.T) {
		testDecodeSnapshotDevices(t, recorder.DecodeGPU, func(int) string { return "1" }, 1)
	})
	t.Run("EventSize", func(t *testing.T) {
		testDecodeEventSize(t, recorder.DecodeGPU, `{"timestamp_ms":1,"gpu_id":0,"power_mw":1,"pad":"`, `"}`, 1)
	})
	t.Run("SnapshotErrorAfterAppend", func(t *testing.T) {
		// Many good devices and one bad one: whatever order the decoder
		// visits them in, dst must come back as it was.
		var b strings.Builder
		b.WriteString(`{"timestamp_ms":1,"power_mw":{`)
		for i := range 50 {
			fmt.Fprintf(&b, `"%d":%d,`, i, i)
		}
		b.WriteString(`"50":-1}}`)
		checkDecodeError(t, recorder.DecodeGPU, []byte(b.String()), "power_mw.50")
	})
}

func TestDecodeCPU(t *testing.T) {
	t.Run("Valid", func(t *testing.T) { testDecodeValid(t, recorder.DecodeCPU, cpuDecodeValid) })
	t.Run("NotObject", func(t *testing.T) { testDecodeMalformed(t, recorder.DecodeCPU, decodeNotObject) })
	t.Run("Malformed", func(t *testing.T) { testDecodeMalformed(t, recorder.DecodeCPU, cpuDecodeMalformed) })
	t.Run("Timestamp", func(t *testing.T) {
		for _, tt := range decodeBadTimestamp {
			t.Run("Sample"+tt.name, func(t *testing.T) {
				data := fmt.Sprintf(`{"timestamp_ms":%s,"cpu_id":0,"cpu_mw":1,"dram_mw":2}`, tt.ts)
				checkDecodeError(t, recorder.DecodeCPU, []byte(data), "timestamp_ms")
			})
			t.Run("Snapshot"+tt.name, func(t *testing.T) {
				data := fmt.Sprintf(`{"timestamp_ms":%s,"power_mw":{"0":{"cpu_mw":1,"dram_mw":null}}}`, tt.ts)
				checkDecodeError(t, recorder.DecodeCPU, []byte(data), "timestamp_ms")
			})
		}
	})
	t.Run("SnapshotDevices", func(t *testing.T) {
		// Odd packages have DRAM, even ones don't.
		val := func(i int) string {
			if i%2 == 1 {
				return `{"cpu_mw":1,"dram_mw":2}`
			}
			return `{"cpu_mw":1,"dram_mw":null}`
		}
		testDecodeSnapshotDevices(t, recorder.DecodeCPU, val, 1.5)
	})
	t.Run("EventSize", func(t *testing.T) {
		testDecodeEventSize(t, recorder.DecodeCPU, `{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"pad":"`, `"}`, 1)
	})
	t.Run("SnapshotErrorAfterAppend", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`{"timestamp_ms":1,"power_mw":{`)
		for i := range 50 {
			fmt.Fprintf(&b, `"%d":{"cpu_mw":%d,"dram_mw":%d},`, i, i, i)
		}
		b.WriteString(`"50":{"cpu_mw":1,"dram_mw":-1}}}`)
		checkDecodeError(t, recorder.DecodeCPU, []byte(b.String()), "power_mw.50.dram_mw")
	})
}

// testDecodeSnapshotDevices checks the snapshot device bound: 1024
// devices are accepted (and come out sorted), 1025 are refused.
// perDevice is the number of values one device yields on average.
func testDecodeSnapshotDevices(t *testing.T, decode decodeFunc, val func(int) string, perDevice float64) {
	snapshot := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`{"timestamp_ms":1,"power_mw":{`)
		// Highest index first, so sorting has work to do.
		for i := n - 1; i >= 0; i-- {
			fmt.Fprintf(&b, `"%d":%s`, i*3, val(i*3))
			if i > 0 {
				b.WriteByte(',')
			}
		}
		b.WriteString(`}}`)
		return []byte(b.String())
	}
	t.Run("Max", func(t *testing.T) {
		got, err := decode(nil, snapshot(decMaxSnapshot))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(got), int(decMaxSnapshot*perDevice); got != want {
			t.Fatalf("len=%d, want %d", got, want)
		}
		if !slices.IsSortedFunc(got, func(a, b recorder.Value) int {
			if a.Device != b.Device {
				return int(a.Device) - int(b.Device)
			}
			return int(a.Kind) - int(b.Kind)
		}) {
			t.Errorf("values not sorted by device and kind: %v", got[:10])
		}
	})
	t.Run("TooMany", func(t *testing.T) {
		checkDecodeError(t, decode, snapshot(decMaxSnapshot+1), "power_mw")
	})
}

// testDecodeEventSize checks the 1 MiB event bound with a valid event
// padded to exactly the bound, and one byte more.
func testDecodeEventSize(t *testing.T, decode decodeFunc, head, tail string, n int) {
	event := func(size int) []byte {
		return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
	}
	t.Run("AtLimit", func(t *testing.T) {
		got, err := decode(nil, event(decMaxEventBytes))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(got), n; got != want {
			t.Fatalf("len=%d, want %d", got, want)
		}
	})
	t.Run("OverLimit", func(t *testing.T) {
		checkDecodeError(t, decode, event(decMaxEventBytes+1), strconv.Itoa(decMaxEventBytes))
	})
	t.Run("WhitespaceOverLimit", func(t *testing.T) {
		data := append([]byte(head+tail), make([]byte, decMaxEventBytes)...)
		for i := len(head) + len(tail); i < len(data); i++ {
			data[i] = ' '
		}
		checkDecodeError(t, decode, data, strconv.Itoa(decMaxEventBytes))
	})
}

// Fuzzing.

// encodeGPUSample writes v in the current per-device format.
func encodeGPUSample(v recorder.Value) []byte {
	return fmt.Appendf(nil, `{"timestamp_ms":%d,"gpu_id":%d,"power_mw":%d}`, v.DaemonMs, v.Device, v.MilliWatts)
}

// encodeCPUSample writes a package's CPU value and optional DRAM value in
// the current per-device format.
func encodeCPUSample(cpu recorder.Value, dram *recorder.Value) []byte {
	d := "null"
	if dram != nil {
		d = strconv.FormatInt(dram.MilliWatts, 10)
	}
	return fmt.Appendf(nil, `{"timestamp_ms":%d,"cpu_id":%d,"cpu_mw":%d,"dram_mw":%s}`, cpu.DaemonMs, cpu.Device, cpu.MilliWatts, d)
}

func addDecodeSeeds(f *testing.F, valid []decodeValidCase, malformed []decodeMalformedCase) {
	for _, tt := range valid {
		f.Add([]byte(tt.data))
	}
	for _, tt := range malformed {
		f.Add([]byte(tt.data))
	}
	for _, tt := range decodeNotObject {
		f.Add([]byte(tt.data))
	}
}

// checkDecodedValue checks the bounds every decoded value must respect.
func checkDecodedValue(t *testing.T, v recorder.Value, ts int64) {
	t.Helper()
	if v.DaemonMs < 0 || v.DaemonMs > decMaxDaemonMs {
		t.Errorf("%v: DaemonMs %d outside [0, 2^53]", v, v.DaemonMs)
	}
	if v.DaemonMs != ts {
		t.Errorf("%v: DaemonMs %d, want the event's %d", v, v.DaemonMs, ts)
	}
	if v.MilliWatts < 0 || v.MilliWatts > decMaxMilliWatts {
		t.Errorf("%v: MilliWatts %d outside [0, 1e9]", v, v.MilliWatts)
	}
	if v.Device < 0 || v.Device > decMaxDevice {
		t.Errorf("%v: Device %d outside [0, 65535]", v, v.Device)
	}
}

// fuzzDecodePrefix decodes data after a non-empty dst and checks that dst
// is kept on success and untouched on error. It returns the new values.
func fuzzDecodePrefix(t *testing.T, decode decodeFunc, data []byte) ([]recorder.Value, bool) {
	dst := sentinelDst()
	prefix := slices.Clone(dst)
	got, err := decode(dst, data)
	if len(got) < len(prefix) || !slices.Equal(got[:len(prefix)], prefix) {
		t.Fatalf("dst prefix changed: got %v, want prefix %v (err %v)", got, prefix, err)
	}
	if err != nil {
		if len(got) != len(prefix) {
			t.Fatalf("len=%d after error %v, want %d", len(got), err, len(prefix))
		}
		if !strings.HasPrefix(err.Error(), "malformed event: ") {
			t.Fatalf("error %q lacks the malformed event prefix", err)
		}
		return nil, false
	}
	if len(data) > decMaxEventBytes {
		t.Fatalf("accepted an event of %d bytes", len(data))
	}
	vs := got[len(prefix):]

	// Decoding is deterministic and does not depend on dst.
	again, err := decode(nil, data)
	if err != nil {
		t.Fatalf("second decode: %v", err)
	}
	if !slices.Equal(again, vs) {
		t.Fatalf("second decode: got %v, want %v", again, vs)
	}
	return vs, true
}

func FuzzDecodeGPU(f *testing.F) {
	addDecodeSeeds(f, gpuDecodeValid, gpuDecodeMalformed)
	f.Add([]byte(`{"timestamp_ms":-0,"gpu_id":0,"power_mw":5}`))
	f.Add([]byte(`{"timestamp_ms":1,"gpu_id":0,"power_mw":5,"power_mw":7}`))
	f.Add([]byte(`{"timestamp_ms":1,"power_mw":{"0":1,"0":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		vs, ok := fuzzDecodePrefix(t, recorder.DecodeGPU, data)
		if !ok {
			return
		}
		for i, v := range vs {
			if v.Kind != store.KindGPU {
				t.Fatalf("value %d: kind %v, want gpu", i, v.Kind)
			}
			checkDecodedValue(t, v, vs[0].DaemonMs)
			if i > 0 && v.Device <= vs[i-1].Device {
				t.Fatalf("devices not strictly increasing: %v", vs)
			}
		}

		// Each value survives a round trip through the per-device format.
		for _, v := range vs {
			enc := encodeGPUSample(v)
			got, err := recorder.DecodeGPU(nil, enc)
			if err != nil {
				t.Fatalf("decode re-encoded %s: %v", enc, err)
			}
			if want := []recorder.Value{v}; !slices.Equal(got, want) {
				t.Fatalf("round trip %s: got %v, want %v", enc, got, want)
			}
		}

		// And the whole event through the snapshot format.
		if len(vs) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, `{"timestamp_ms":%d,"power_mw":{`, vs[0].DaemonMs)
			for i, v := range slices.Backward(vs) {
				fmt.Fprintf(&b, `"%d":%d`, v.Device, v.MilliWatts)
				if i > 0 {
					b.WriteByte(',')
				}
			}
			b.WriteString(`}}`)
			got, err := recorder.DecodeGPU(nil, []byte(b.String()))
			if err != nil {
				t.Fatalf("decode snapshot %s: %v", b.String(), err)
			}
			if !slices.Equal(got, vs) {
				t.Fatalf("snapshot round trip %s: got %v, want %v", b.String(), got, vs)
			}
		}
	})
}

func FuzzDecodeCPU(f *testing.F) {
	addDecodeSeeds(f, cpuDecodeValid, cpuDecodeMalformed)
	f.Add([]byte(`{"timestamp_ms":1,"cpu_id":0,"cpu_mw":1,"dram_mw":2,"dram_mw":null}`))
	f.Add([]byte(`{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":1},"0":{"cpu_mw":2,"dram_mw":3}}}`))
	f.Add([]byte(`{"timestamp_ms":1,"power_mw":{"0":{"cpu_mw":1,"dram_mw": null }}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		vs, ok := fuzzDecodePrefix(t, recorder.DecodeCPU, data)
		if !ok {
			return
		}
		lastCPU := int32(-1)
		for i, v := range vs {
			checkDecodedValue(t, v, vs[0].DaemonMs)
			switch v.Kind {
			case store.KindCPU:
				if v.Device <= lastCPU {
					t.Fatalf("packages not strictly increasing: %v", vs)
				}
				lastCPU = v.Device
			case store.KindDRAM:
				if i == 0 || vs[i-1].Kind != store.KindCPU || vs[i-1].Device != v.Device {
					t.Fatalf("value %d: DRAM value does not follow its package's CPU value: %v", i, vs)
				}
			default:
				t.Fatalf("value %d: kind %v, want cpu or dram", i, v.Kind)
			}
		}

		// Each package survives a round trip through the per-device format.
		for i := 0; i < len(vs); i++ {
			want := vs[i : i+1]
			var dram *recorder.Value
			if i+1 < len(vs) && vs[i+1].Kind == store.KindDRAM {
				dram = &vs[i+1]
				want = vs[i : i+2]
				i++
			}
			enc := encodeCPUSample(want[0], dram)
			got, err := recorder.DecodeCPU(nil, enc)
			if err != nil {
				t.Fatalf("decode re-encoded %s: %v", enc, err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("round trip %s: got %v, want %v", enc, got, want)
			}
		}
	})
}
