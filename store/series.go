package store

import (
	"encoding/binary"
	"fmt"
)

// SeriesKey names one series.
type SeriesKey struct {
	Endpoint string
	Kind     Kind
	Device   int32
}

func (k SeriesKey) String() string { return fmt.Sprintf("%s %s:%d", k.Endpoint, k.Kind, k.Device) }

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

// seriesName is the key of a series' bucket and of its stats:
// kind (1) | device (4 BE).
func seriesName(k Kind, device int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{byte(k)}, uint32(device))
}
