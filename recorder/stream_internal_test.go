package recorder

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// streamDecoders are each stream kind's encoding/json decoder and events
// in both wire formats.
var streamDecoders = []struct {
	kind           store.Stream
	encodingJSON   func([]Value, []byte) ([]Value, error)
	sample, legacy string // the fast path's format, and one it declines
	want           []Value
}{
	{store.StreamGPU, decodeGPU,
		`{"timestamp_ms":1762000000000,"gpu_id":1,"power_mw":75000}`,
		`{"timestamp_ms":1762000000000,"power_mw":{"1":75000}}`,
		[]Value{{store.KindGPU, 1, 1762000000000, 75000}}},
	{store.StreamCPU, decodeCPU,
		`{"timestamp_ms":1762000000000,"cpu_id":0,"cpu_mw":85000,"dram_mw":12000}`,
		`{"timestamp_ms":1762000000000,"power_mw":{"0":{"cpu_mw":85000,"dram_mw":12000}}}`,
		[]Value{{store.KindCPU, 0, 1762000000000, 85000}, {store.KindDRAM, 0, 1762000000000, 12000}}},
}

func testStream(kind store.Stream) *stream {
	return NewClient(nil).newStream(&endpoint{srv: Server{Network: "tcp", Address: "node1:4938"}}, kind)
}

// TestNewStream_Fallback: where the fast path declines an event, the
// stream falls back to the encoding/json decoder itself, not to
// DecodeGPU/DecodeCPU, which would run the fast path a second time.
func TestNewStream_Fallback(t *testing.T) {
	for _, tc := range streamDecoders {
		t.Run(tc.kind.String(), func(t *testing.T) {
			s := testStream(tc.kind)
			if got, want := reflect.ValueOf(s.decode).Pointer(), reflect.ValueOf(tc.encodingJSON).Pointer(); got != want {
				t.Errorf("the %s stream falls back to a decoder other than the encoding/json one (it tries the fast path again)", tc.kind)
			}
		})
	}
}

// TestStream_DecodeEvent counts the decoders an event goes through: an
// event in the current format costs one fast attempt; any other, one fast
// attempt and one encoding/json decode.
func TestStream_DecodeEvent(t *testing.T) {
	for _, tc := range streamDecoders {
		t.Run(tc.kind.String(), func(t *testing.T) {
			s := testStream(tc.kind)
			var fastCalls, slowCalls int
			fast, slow := s.fast, s.decode
			s.fast = func(dst []Value, data string) ([]Value, bool) {
				fastCalls++
				return fast(dst, data)
			}
			s.decode = func(dst []Value, data []byte) ([]Value, error) {
				slowCalls++
				return slow(dst, data)
			}
			for _, ev := range []struct {
				name       string
				data       string
				want       []Value
				fast, slow int
			}{
				{"Sample", tc.sample, tc.want, 1, 0},
				{"Snapshot", tc.legacy, tc.want, 1, 1},
				{"Malformed", `{"timestamp_ms":1`, nil, 1, 1},
			} {
				fastCalls, slowCalls = 0, 0
				got, err := s.decodeEvent(nil, ev.data)
				if ev.want == nil {
					if !errors.Is(err, errMalformed) {
						t.Errorf("%s: err = %v, want errMalformed", ev.name, err)
					}
				} else if err != nil || !slices.Equal(got, ev.want) {
					t.Errorf("%s: got %v, %v, want %v", ev.name, got, err, ev.want)
				}
				if fastCalls != ev.fast || slowCalls != ev.slow {
					t.Errorf("%s: %d fast attempts and %d encoding/json decodes, want %d and %d",
						ev.name, fastCalls, slowCalls, ev.fast, ev.slow)
				}
			}
		})
	}
}
