package recorder

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheck_Limits(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Recorder)
		want string // "" = accepted
	}{
		{"Defaults", func(*Recorder) {}, ""},
		{"Offs", func(r *Recorder) { r.Client.ClockInterval, r.Client.CounterInterval = 0, 0 }, ""},
		{"Floors", func(r *Recorder) {
			r.FlushInterval, r.Client.ClockInterval, r.Client.CounterInterval = MinInterval, MinInterval, MinInterval
			r.Client.MaxBackoff, r.Client.ClockSamples = MinMaxBackoff, MaxClockSamples
		}, ""},
		{"MaxBackoffZero", func(r *Recorder) { r.Client.MaxBackoff = 0 }, "MaxBackoff 0s: want at least 100ms"},
		{"MaxBackoffNegative", func(r *Recorder) { r.Client.MaxBackoff = -time.Second }, "MaxBackoff -1s"},
		{"FlushTiny", func(r *Recorder) { r.FlushInterval = time.Nanosecond }, "FlushInterval 1ns: want at least 10ms"},
		{"ClockNegative", func(r *Recorder) { r.Client.ClockInterval = -time.Minute }, "ClockInterval -1m0s: want 0 (off) or at least 10ms"},
		{"CounterNegative", func(r *Recorder) { r.Client.CounterInterval = -1 }, "CounterInterval -1ns"},
		{"SamplesHuge", func(r *Recorder) { r.Client.ClockSamples = 100_000 }, "ClockSamples 100000: want 5 to 100"},
		{"SamplesFew", func(r *Recorder) { r.Client.ClockSamples = 4 }, "ClockSamples 4"},
		{"BatchZero", func(r *Recorder) { r.BatchSize = 0 }, "BatchSize 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(NewClient(nil), nil)
			tc.set(r)
			err := r.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tc.want != "" && (!errors.Is(err, ErrSetting) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want ErrSetting saying %q", err, tc.want)
			}
		})
	}
}
