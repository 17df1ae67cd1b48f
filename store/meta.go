package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

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

// Endpoints returns the endpoints in the file, sorted by name. An endpoint
// that has data but no stored info comes back with only its name.
func (db *DB) Endpoints(ctx context.Context) ([]EndpointInfo, error) {
	var out []EndpointInfo
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(endpointsBucket).ForEachBucket(func(name []byte) error {
			info := EndpointInfo{Endpoint: string(name)}
			if v := tx.Bucket(endpointsBucket).Bucket(name).Get(infoKey); v != nil {
				if err := decodeJSON(v, &info); err != nil {
					return fmt.Errorf("endpoint %q info: %w", name, err)
				}
				if info.Endpoint != string(name) {
					return fmt.Errorf("endpoint %q info names endpoint %q: %w", name, info.Endpoint, ErrCorrupt)
				}
			}
			out = append(out, info)
			return ctx.Err()
		})
	})
	return out, err
}

// Run records one start of a recorder on the file.
type Run struct {
	StartedMs int64    `json:"started_ms"`
	Version   string   `json:"version"`
	Host      string   `json:"host,omitempty"`
	Servers   []string `json:"servers"` // specs as configured; they never hold tokens
}

// Runs returns the recorder starts on this file, oldest first.
func (db *DB) Runs(ctx context.Context) ([]Run, error) {
	var out []Run
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(runsBucket).ForEach(func(k, v []byte) error {
			var r Run
			if err := decodeJSON(v, &r); err != nil {
				return fmt.Errorf("run %x: %w", k, err)
			}
			out = append(out, r)
			return ctx.Err()
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedMs < out[j].StartedMs })
	return out, err
}

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

// Sessions returns the stream sessions of endpoint, ordered by start time.
func (db *DB) Sessions(ctx context.Context, endpoint string) ([]Session, error) {
	var out []Session
	err := db.forEach(endpoint, sessionsBucket, func(k, v []byte) error {
		s := Session{Endpoint: endpoint}
		if err := decodeSession(&s, k, v); err != nil {
			return fmt.Errorf("endpoint %q session %x: %w", endpoint, k, err)
		}
		out = append(out, s)
		return ctx.Err()
	})
	return out, err
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

// ClockEstimate is one estimate of an endpoint's clock offset.
type ClockEstimate struct {
	Endpoint string
	TakenMs  int64 // recorder clock
	OffsetUs int64 // corrected = daemon + offset
	RTTUs    int64 // round trip of the samples used: the error is at most RTT/2 (+1 ms resolution)
	Samples  int
}

// ClockEstimates returns every clock estimate of endpoint, oldest first.
func (db *DB) ClockEstimates(ctx context.Context, endpoint string) ([]ClockEstimate, error) {
	var out []ClockEstimate
	err := db.forEach(endpoint, clockBucket, func(k, v []byte) error {
		c := ClockEstimate{Endpoint: endpoint}
		if err := decodeClock(&c, k, v); err != nil {
			return fmt.Errorf("endpoint %q clock estimate %x: %w", endpoint, k, err)
		}
		out = append(out, c)
		return ctx.Err()
	})
	return out, err
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

func (db *DB) forEach(endpoint string, bucket []byte, fn func(k, v []byte) error) error {
	return db.view(func(tx *bolt.Tx) error {
		ep := tx.Bucket(endpointsBucket).Bucket([]byte(endpoint))
		if ep == nil {
			return fmt.Errorf("endpoint %q: %w", endpoint, ErrNotFound)
		}
		b := ep.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(fn)
	})
}

// encodeJSON is the value of a record kept as JSON (endpoint info, runs,
// marks): v1 | JSON(x).
func encodeJSON(x any) ([]byte, error) {
	js, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	return append([]byte{valueV1}, js...), nil
}

// decodeJSON decodes a value written by encodeJSON into x.
func decodeJSON(v []byte, x any) error {
	if len(v) < 1 || v[0] != valueV1 {
		return ErrCorrupt
	}
	if err := json.Unmarshal(v[1:], x); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}
