package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
)

// Kind is what a series measures.
type Kind uint8

// The kinds of series. DRAM is its own series: it has its own energy.
const (
	KindGPU  Kind = 1
	KindCPU  Kind = 2 // CPU package
	KindDRAM Kind = 3
)

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= KindGPU && k <= KindDRAM }

func (k Kind) String() string {
	switch k {
	case KindGPU:
		return "gpu"
	case KindCPU:
		return "cpu"
	case KindDRAM:
		return "dram"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind parses "gpu", "cpu" or "dram".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "gpu":
		return KindGPU, nil
	case "cpu":
		return KindCPU, nil
	case "dram":
		return KindDRAM, nil
	}
	return 0, fmt.Errorf("unknown kind %q (want gpu, cpu or dram)", s)
}

// Stream is one of an endpoint's two SSE streams.
type Stream uint8

// The two streams of an endpoint.
const (
	StreamGPU Stream = 1
	StreamCPU Stream = 2
)

func (s Stream) String() string {
	switch s {
	case StreamGPU:
		return "gpu"
	case StreamCPU:
		return "cpu"
	}
	return fmt.Sprintf("stream(%d)", uint8(s))
}

// StreamOf returns the stream that carries readings of kind k.
func StreamOf(k Kind) Stream {
	if k == KindGPU {
		return StreamGPU
	}
	return StreamCPU
}

// SeriesKey names one series.
type SeriesKey struct {
	Endpoint string
	Kind     Kind
	Device   int32
}

func (k SeriesKey) String() string { return fmt.Sprintf("%s %s:%d", k.Endpoint, k.Kind, k.Device) }

// Reading is one device value.
type Reading struct {
	Endpoint   string
	Kind       Kind
	Device     int32
	TimeMs     int64 // clock-corrected Unix ms: DaemonMs + the offset in force
	DaemonMs   int64 // the daemon's own timestamp, as sent
	MilliWatts int64
	Seed       bool // read with get_power at a (re)connect, not streamed
}

// Series returns the series r belongs to.
func (r *Reading) Series() SeriesKey { return SeriesKey{r.Endpoint, r.Kind, r.Device} }

// Session is one live stream connection. Start and End are Unix ms on the
// recorder's clock. While Open, End is the last time the stream was known
// to be live (the last commit).
type Session struct {
	Endpoint  string
	Stream    Stream
	Start     int64
	End       int64
	Open      bool
	Events    uint64 // SSE events decoded in this session
	Malformed uint64 // SSE events that did not decode
	Reason    string // why it ended; empty while open
}

// ClockEstimate is one estimate of an endpoint's clock offset.
type ClockEstimate struct {
	Endpoint string
	TakenMs  int64 // recorder clock
	OffsetUs int64 // corrected = daemon + offset
	RTTUs    int64 // round trip of the samples used: the error is at most RTT/2 (+1 ms resolution)
	Samples  int
}

// EndpointInfo is what the recorder learned about an endpoint at startup.
type EndpointInfo struct {
	Endpoint     string          `json:"endpoint"`
	Network      string          `json:"network"` // "tcp" or "unix"
	Discover     json.RawMessage `json:"discover"`
	GPUSelection string          `json:"gpu_selection"` // as configured: "all", "none" or a list
	CPUSelection string          `json:"cpu_selection"`
	GPUs         []int           `json:"gpus"` // resolved: the devices streamed
	CPUs         []int           `json:"cpus"`
	UpdatedMs    int64           `json:"updated_ms"`
}

// Run records one start of a recorder on the file.
type Run struct {
	StartedMs int64    `json:"started_ms"`
	Version   string   `json:"version"`
	Host      string   `json:"host,omitempty"`
	Servers   []string `json:"servers"` // specs as configured; they never hold tokens
}

func encodeSession(s Session) []byte {
	var flags byte
	if s.Open {
		flags |= 1
	}
	b := []byte{valueV1, flags}
	b = binary.AppendVarint(b, s.End-s.Start)
	b = binary.AppendUvarint(b, s.Events)
	b = binary.AppendUvarint(b, s.Malformed)
	b = binary.AppendUvarint(b, uint64(len(s.Reason)))
	return append(b, s.Reason...)
}

func decodeSession(s *Session, key, v []byte) error {
	if len(key) != 9 || len(v) < 2 || v[0] != valueV1 || v[1]&^1 != 0 {
		return ErrCorrupt
	}
	s.Start, s.Stream, s.Open = getInt64(key), Stream(key[8]), v[1]&1 != 0
	p := v[2:]
	d, n := binary.Varint(p)
	if n <= 0 {
		return ErrCorrupt
	}
	p = p[n:]
	var fields [3]uint64
	for i := range fields {
		x, n := binary.Uvarint(p)
		if n <= 0 {
			return ErrCorrupt
		}
		fields[i], p = x, p[n:]
	}
	if fields[2] != uint64(len(p)) {
		return ErrCorrupt
	}
	s.End, s.Events, s.Malformed, s.Reason = s.Start+d, fields[0], fields[1], string(p)
	return nil
}

func encodeClock(c ClockEstimate) []byte {
	b := []byte{valueV1}
	b = binary.AppendVarint(b, c.OffsetUs)
	b = binary.AppendUvarint(b, uint64(c.RTTUs))
	return binary.AppendUvarint(b, uint64(c.Samples))
}

func decodeClock(c *ClockEstimate, key, v []byte) error {
	if len(key) != 16 || len(v) < 4 || v[0] != valueV1 {
		return ErrCorrupt
	}
	c.TakenMs = getInt64(key)
	p := v[1:]
	off, n := binary.Varint(p)
	if n <= 0 {
		return ErrCorrupt
	}
	p = p[n:]
	rtt, n := binary.Uvarint(p)
	if n <= 0 {
		return ErrCorrupt
	}
	p = p[n:]
	samples, n := binary.Uvarint(p)
	if n <= 0 || n != len(p) {
		return ErrCorrupt
	}
	c.OffsetUs, c.RTTUs, c.Samples = off, int64(rtt), int(samples)
	return nil
}

// CounterTrigger says why a counter reading was taken.
type CounterTrigger uint8

// The reasons for a counter reading.
const (
	TriggerStart    CounterTrigger = 1 // when an endpoint's recording started
	TriggerPeriodic CounterTrigger = 2 // every counter interval
	TriggerMark     CounterTrigger = 3 // on request, e.g. for a mark
	TriggerStop     CounterTrigger = 4 // when the recorder stopped
)

// Valid reports whether t is one of the defined triggers.
func (t CounterTrigger) Valid() bool { return t >= TriggerStart && t <= TriggerStop }

func (t CounterTrigger) String() string {
	switch t {
	case TriggerStart:
		return "start"
	case TriggerPeriodic:
		return "periodic"
	case TriggerMark:
		return "mark"
	case TriggerStop:
		return "stop"
	}
	return fmt.Sprintf("trigger(%d)", uint8(t))
}

// CounterReading is one reading of a device's hardware energy counter
// (zeusd's get_cumulative_energy). Counters count from an arbitrary origin:
// only the difference of two readings of one series means something.
type CounterReading struct {
	Endpoint string
	Kind     Kind
	Device   int32
	// TakenMs is the recorder's clock (the clock of corrected reading
	// times) at the midpoint of the request's send and receive. The
	// counter was read within RTTUs/2 of it.
	TakenMs int64
	RTTUs   int64 // the request's round trip, µs
	// EnergyUJ is the counter in µJ: a GPU's energy_mj × 1000 (so a GPU
	// counter has 1 mJ resolution), a CPU's cpu_energy_uj, a DRAM domain's
	// dram_energy_uj.
	EnergyUJ int64
	Trigger  CounterTrigger
}

// Series returns the series r measures.
func (r *CounterReading) Series() SeriesKey { return SeriesKey{r.Endpoint, r.Kind, r.Device} }

func encodeCounter(dst []byte, r *CounterReading) []byte {
	dst = append(dst, valueV1, byte(r.Trigger))
	dst = binary.AppendUvarint(dst, uint64(r.EnergyUJ))
	return binary.AppendUvarint(dst, uint64(r.RTTUs))
}

// counterKey is kind (1) | device (4 BE) | taken ms (8, sign-flipped BE),
// the 13-byte prefix of a counter key; the dup index (2 BE) follows.
func counterKey(dst []byte, k Kind, device int32, takenMs int64) []byte {
	dst = append(dst, byte(k))
	dst = binary.BigEndian.AppendUint32(dst, uint32(device))
	return putInt64(dst, takenMs)
}

const (
	counterPrefixLen = 13
	counterKeyLen    = 15
)

// decodeCounter fills r's series, time and value from key and v; the
// endpoint is the caller's.
func decodeCounter(r *CounterReading, key, v []byte) error {
	if len(key) != counterKeyLen || !Kind(key[0]).Valid() || len(v) < 4 || v[0] != valueV1 || !CounterTrigger(v[1]).Valid() {
		return ErrCorrupt
	}
	e, n := binary.Uvarint(v[2:])
	if n <= 0 || e > math.MaxInt64 {
		return ErrCorrupt
	}
	rtt, m := binary.Uvarint(v[2+n:])
	if m <= 0 || rtt > math.MaxInt64 || 2+n+m != len(v) {
		return ErrCorrupt
	}
	r.Kind, r.Device = Kind(key[0]), int32(binary.BigEndian.Uint32(key[1:5]))
	r.TakenMs = getInt64(key[5:13])
	r.Trigger, r.EnergyUJ, r.RTTUs = CounterTrigger(v[1]), int64(e), int64(rtt)
	return nil
}
