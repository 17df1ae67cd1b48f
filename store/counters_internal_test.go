package store

import (
	"errors"
	"testing"
)

// TestDecodeCounter_Corrupt is the corruption table for counter keys and
// values: every malformed input is ErrCorrupt, never a panic or a guess.
func TestDecodeCounter_Corrupt(t *testing.T) {
	r := CounterReading{Kind: KindCPU, Device: 3, TakenMs: -7, RTTUs: 250, EnergyUJ: 1 << 40, Trigger: TriggerMark}
	key := append(counterKey(nil, r.Kind, r.Device, r.TakenMs), 0, 1)
	val := encodeCounter(nil, &r)
	var got CounterReading
	if err := decodeCounter(&got, key, val); err != nil || got != r {
		t.Fatalf("valid: %+v, %v; want %+v", got, err, r)
	}
	with := func(b []byte, i int, x byte) []byte {
		c := append([]byte(nil), b...)
		c[i] = x
		return c
	}
	for _, tc := range []struct {
		name     string
		key, val []byte
	}{
		{"ShortKey", key[:14], val},
		{"LongKey", append(key[:15:15], 0), val},
		{"BadKind", with(key, 0, 0), val},
		{"EmptyValue", key, nil},
		{"Version", key, with(val, 0, 2)},
		{"TriggerZero", key, with(val, 1, 0)},
		{"TriggerHigh", key, with(val, 1, 5)},
		{"NoRTT", key, val[:len(val)-1]},
		{"Trailing", key, append(val[:len(val):len(val)], 0)},
		{"EnergyOverflow", key, []byte{valueV1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}},
		{"TruncatedVarint", key, []byte{valueV1, 1, 0x80, 0x80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := decodeCounter(&got, tc.key, tc.val); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}
