package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
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

func encodeReading(dst []byte, r *Reading) []byte {
	var flags byte
	if r.Seed {
		flags |= 1
	}
	dst = append(dst, valueV1, flags)
	dst = binary.AppendUvarint(dst, uint64(r.MilliWatts))
	return binary.AppendVarint(dst, r.DaemonMs-r.TimeMs)
}

func decodeReading(r *Reading, key, v []byte) error {
	if len(key) != 10 || len(v) < 4 || v[0] != valueV1 || v[1]&^1 != 0 {
		return ErrCorrupt
	}
	r.TimeMs = getInt64(key)
	r.Seed = v[1]&1 != 0
	mw, n := binary.Uvarint(v[2:])
	if n <= 0 || mw > 1<<62 {
		return ErrCorrupt
	}
	d, m := binary.Varint(v[2+n:])
	if m <= 0 || 2+n+m != len(v) {
		return ErrCorrupt
	}
	r.MilliWatts = int64(mw)
	r.DaemonMs = r.TimeMs + d
	return nil
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
