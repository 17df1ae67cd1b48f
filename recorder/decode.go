package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/wattrec/wattrec/store"
)

// Bounds on what one event may carry.
const (
	maxEventBytes     = 1 << 20
	maxSnapshotDevice = 1024          // devices in one snapshot event
	maxMilliWatts     = 1_000_000_000 // 1 MW: no single device draws more
)

// Value is one device value decoded from an event, before clock correction.
type Value struct {
	Kind       store.Kind
	Device     int32
	DaemonMs   int64
	MilliWatts int64
}

// DecodeGPU decodes one GPU event of either wire format and appends its
// values to dst: the current per-device sample
// {"timestamp_ms":N,"gpu_id":0,"power_mw":75000} or the older snapshot
// {"timestamp_ms":N,"power_mw":{"0":75000,"1":120000}}. On error dst is
// returned unchanged.
func DecodeGPU(dst []Value, data []byte) ([]Value, error) {
	return decodeWith(dst, data, decodeGPUFast[[]byte], decodeGPU)
}

// DecodeCPU decodes one CPU event of either wire format and appends a
// store.KindCPU value per package and a store.KindDRAM value where dram_mw
// is not null: {"timestamp_ms":N,"cpu_id":0,"cpu_mw":85000,"dram_mw":12000}
// or {"timestamp_ms":N,"power_mw":{"0":{"cpu_mw":85000,"dram_mw":null}}}.
// On error dst is returned unchanged.
func DecodeCPU(dst []Value, data []byte) ([]Value, error) {
	return decodeWith(dst, data, decodeCPUFast[[]byte], decodeCPU)
}

// decodeWith decodes one event with fast, the per-device sample parser,
// and only where it declines, once with slow, the encoding/json decoder.
// DecodeGPU, DecodeCPU and the streams all go through it, so a miss costs
// one fast attempt and one encoding/json decode. On error dst is returned
// unchanged.
func decodeWith[T string | []byte](dst []Value, data T,
	fast func([]Value, T) ([]Value, bool), slow func([]Value, []byte) ([]Value, error)) ([]Value, error) {
	if out, ok := fast(dst, data); ok {
		return out, nil
	}
	return decodeSlow(dst, []byte(data), slow)
}

// decodeSlow decodes data with slow, the encoding/json decoder, and
// marks a failure as errMalformed. On error dst is returned unchanged.
func decodeSlow(dst []Value, data []byte, slow func([]Value, []byte) ([]Value, error)) ([]Value, error) {
	out, err := slow(dst, data)
	if err != nil {
		return dst, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return out, nil
}

type rawEvent struct {
	TimestampMs json.RawMessage `json:"timestamp_ms"`
	GPUID       json.RawMessage `json:"gpu_id"`
	CPUID       json.RawMessage `json:"cpu_id"`
	PowerMw     json.RawMessage `json:"power_mw"`
	CPUMw       json.RawMessage `json:"cpu_mw"`
	DRAMMw      json.RawMessage `json:"dram_mw"`
}

type rawCPU struct {
	CPUMw  json.RawMessage `json:"cpu_mw"`
	DRAMMw json.RawMessage `json:"dram_mw"`
}

func parseEvent(data []byte) (*rawEvent, int64, error) {
	if len(data) > maxEventBytes {
		return nil, 0, fmt.Errorf("event of %d bytes exceeds %d", len(data), maxEventBytes)
	}
	var ev rawEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, 0, err
	}
	ts, err := integer("timestamp_ms", ev.TimestampMs, 0, 1<<53)
	if err != nil {
		return nil, 0, err
	}
	return &ev, ts, nil
}

func decodeGPU(dst []Value, data []byte) ([]Value, error) {
	ev, ts, err := parseEvent(data)
	if err != nil {
		return nil, err
	}
	if ev.GPUID != nil { // per-device sample
		id, err := integer("gpu_id", ev.GPUID, 0, maxDeviceIndex-1)
		if err != nil {
			return nil, err
		}
		mw, err := integer("power_mw", ev.PowerMw, 0, maxMilliWatts)
		if err != nil {
			return nil, err
		}
		return append(dst, Value{store.KindGPU, int32(id), ts, mw}), nil
	}
	m, err := snapshot[json.RawMessage](ev.PowerMw)
	if err != nil {
		return nil, err
	}
	start := len(dst)
	for id, raw := range m {
		mw, err := integer("power_mw."+strconv.Itoa(id), raw, 0, maxMilliWatts)
		if err != nil {
			return nil, err
		}
		dst = append(dst, Value{store.KindGPU, int32(id), ts, mw})
	}
	sortDevices(dst[start:])
	return dst, nil
}

func decodeCPU(dst []Value, data []byte) ([]Value, error) {
	ev, ts, err := parseEvent(data)
	if err != nil {
		return nil, err
	}
	if ev.CPUID != nil { // per-device sample
		id, err := integer("cpu_id", ev.CPUID, 0, maxDeviceIndex-1)
		if err != nil {
			return nil, err
		}
		return appendCPU(dst, int32(id), ts, "", rawCPU{ev.CPUMw, ev.DRAMMw})
	}
	m, err := snapshot[rawCPU](ev.PowerMw)
	if err != nil {
		return nil, err
	}
	start := len(dst)
	for id, c := range m {
		if dst, err = appendCPU(dst, int32(id), ts, "power_mw."+strconv.Itoa(id)+".", c); err != nil {
			return nil, err
		}
	}
	sortDevices(dst[start:])
	return dst, nil
}

func appendCPU(dst []Value, id int32, ts int64, path string, c rawCPU) ([]Value, error) {
	cpu, err := integer(path+"cpu_mw", c.CPUMw, 0, maxMilliWatts)
	if err != nil {
		return nil, err
	}
	dst = append(dst, Value{store.KindCPU, id, ts, cpu})
	if c.DRAMMw == nil || isNull(c.DRAMMw) { // no DRAM domain on this package
		return dst, nil
	}
	dram, err := integer(path+"dram_mw", c.DRAMMw, 0, maxMilliWatts)
	if err != nil {
		return nil, err
	}
	return append(dst, Value{store.KindDRAM, id, ts, dram}), nil
}

// snapshot decodes the older format's {"<device>": V, ...} object.
func snapshot[V any](raw json.RawMessage) (map[int]V, error) {
	if raw == nil || isNull(raw) {
		return nil, errors.New("power_mw is missing or null")
	}
	if raw[0] != '{' {
		return nil, errors.New(`no device id: want "gpu_id"/"cpu_id" or a power_mw object`)
	}
	var byName map[string]V
	if err := json.Unmarshal(raw, &byName); err != nil {
		return nil, fmt.Errorf("power_mw: %v", err)
	}
	if len(byName) > maxSnapshotDevice {
		return nil, fmt.Errorf("power_mw has %d devices, more than %d", len(byName), maxSnapshotDevice)
	}
	out := make(map[int]V, len(byName))
	for name, v := range byName {
		id, err := strconv.Atoi(name)
		if err != nil || id < 0 || id >= maxDeviceIndex || strconv.Itoa(id) != name {
			return nil, fmt.Errorf("power_mw: %q is not a device index", name)
		}
		out[id] = v
	}
	return out, nil
}

// integer parses a JSON integer in [lo, hi]. Floats, strings, null and
// missing fields are errors: zeusd sends integers only.
func integer(field string, raw json.RawMessage, lo, hi int64) (int64, error) {
	if raw == nil {
		return 0, fmt.Errorf("%s is missing", field)
	}
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return 0, fmt.Errorf("%s is null", field)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %s is not an integer in range", field, truncate(raw, 32))
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%s: %d is outside [%d, %d]", field, n, lo, hi)
	}
	return n, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

func sortDevices(vs []Value) {
	slices.SortFunc(vs, func(a, b Value) int {
		if a.Device != b.Device {
			return int(a.Device - b.Device)
		}
		return int(a.Kind) - int(b.Kind)
	})
}

// The fast path: the current daemon's per-device sample events, exactly
// as zeusd (serde) writes them, are decoded without encoding/json. Any
// other input, valid or not, goes to the encoding/json path, which
// accepts every event the fast path accepts and decodes it to the same
// values (FuzzDecodeFast checks that).

// decodeGPUFast decodes {"timestamp_ms":N,"gpu_id":N,"power_mw":N}, with
// these keys in this order, no whitespace and every value in range. ok is
// false for any other input.
func decodeGPUFast[T string | []byte](dst []Value, data T) (out []Value, ok bool) {
	p := fastParser[T]{s: data}
	ts := p.field(`{"timestamp_ms":`, 0, 1<<53)
	id := p.field(`,"gpu_id":`, 0, maxDeviceIndex-1)
	mw := p.field(`,"power_mw":`, 0, maxMilliWatts)
	if !p.end() {
		return dst, false
	}
	return append(dst, Value{store.KindGPU, int32(id), ts, mw}), true
}

// decodeCPUFast decodes
// {"timestamp_ms":N,"cpu_id":N,"cpu_mw":N,"dram_mw":N|null} the same way.
func decodeCPUFast[T string | []byte](dst []Value, data T) (out []Value, ok bool) {
	p := fastParser[T]{s: data}
	ts := p.field(`{"timestamp_ms":`, 0, 1<<53)
	id := p.field(`,"cpu_id":`, 0, maxDeviceIndex-1)
	cpu := p.field(`,"cpu_mw":`, 0, maxMilliWatts)
	if !p.lit(`,"dram_mw":`) {
		return dst, false
	}
	if p.try("null") {
		if !p.end() {
			return dst, false
		}
		return append(dst, Value{store.KindCPU, int32(id), ts, cpu}), true
	}
	dram := p.num(0, maxMilliWatts)
	if !p.end() {
		return dst, false
	}
	return append(dst, Value{store.KindCPU, int32(id), ts, cpu}, Value{store.KindDRAM, int32(id), ts, dram}), true
}

// fastParser reads a fixed sequence of literals and integers; the first
// mismatch clears ok, after which it reads nothing more.
type fastParser[T string | []byte] struct {
	s   T
	i   int
	bad bool
}

// lit consumes l if the input continues with it.
func (p *fastParser[T]) lit(l string) bool {
	if p.bad || len(p.s)-p.i < len(l) || string(p.s[p.i:p.i+len(l)]) != l {
		p.bad = true
		return false
	}
	p.i += len(l)
	return true
}

// try consumes l if the input continues with it, and otherwise leaves
// the parser as it was.
func (p *fastParser[T]) try(l string) bool {
	if p.bad || len(p.s)-p.i < len(l) || string(p.s[p.i:p.i+len(l)]) != l {
		return false
	}
	p.i += len(l)
	return true
}

// field consumes key and a JSON integer in [lo, hi].
func (p *fastParser[T]) field(key string, lo, hi int64) int64 {
	if !p.lit(key) {
		return 0
	}
	return p.num(lo, hi)
}

// num consumes a JSON integer in [lo, hi]: an optional minus sign and 1
// to 18 digits without a leading zero.
func (p *fastParser[T]) num(lo, hi int64) int64 {
	if p.bad {
		return 0
	}
	i, neg := p.i, false
	if i < len(p.s) && p.s[i] == '-' {
		neg, i = true, i+1
	}
	start := i
	var v int64
	for i < len(p.s) && p.s[i] >= '0' && p.s[i] <= '9' && i-start < 18 {
		v = v*10 + int64(p.s[i]-'0')
		i++
	}
	switch {
	case i == start, i < len(p.s) && p.s[i] >= '0' && p.s[i] <= '9', // none, or too many
		p.s[start] == '0' && i-start > 1: // a leading zero is not JSON
		p.bad = true
		return 0
	}
	if neg {
		v = -v
	}
	if v < lo || v > hi {
		p.bad = true
		return 0
	}
	p.i = i
	return v
}

// end consumes the closing brace, which must end the input.
func (p *fastParser[T]) end() bool {
	return p.lit("}") && p.i == len(p.s)
}
