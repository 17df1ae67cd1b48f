package recorder

import (
	"testing"
	"time"

	"github.com/wattrec/wattrec/store"
)

// TestLiveness_Period: the CPU poll period is the median spacing of
// recent events per package, so a late poll or a coalesced one does not
// move it, and seeds do not count.
func TestLiveness_Period(t *testing.T) {
	var l liveness
	l.begin(time.Now())
	if got := l.period(); got != 0 {
		t.Fatalf("period before any event = %v, want 0 (unknown)", got)
	}
	var rs []store.Reading
	for i, ms := range []int64{1000, 1100, 1200, 1450, 1500, 1600, 1800} { // one late poll, one skipped
		rs = append(rs, store.Reading{Kind: store.KindCPU, Device: 0, DaemonMs: ms},
			store.Reading{Kind: store.KindDRAM, Device: 0, DaemonMs: ms},
			store.Reading{Kind: store.KindCPU, Device: 1, DaemonMs: ms + 3})
		if i == 3 {
			rs = append(rs, store.Reading{Kind: store.KindCPU, Device: 0, DaemonMs: 1460, Seed: true})
		}
	}
	l.note(rs, true)
	if got, want := l.period(), 100*time.Millisecond; got != want {
		t.Errorf("period = %v, want %v", got, want)
	}
	// A new session keeps what was learnt: the daemon's rate outlives
	// its connections.
	l.begin(time.Now())
	if got, want := l.period(), 100*time.Millisecond; got != want {
		t.Errorf("period after a reconnect = %v, want %v", got, want)
	}
}

// TestLiveness_Judge covers a probe's verdicts.
func TestLiveness_Judge(t *testing.T) {
	t0 := time.Now()
	gpu := func(dev int32, mw int64) store.Reading {
		return store.Reading{Kind: store.KindGPU, Device: dev, MilliWatts: mw, TimeMs: t0.UnixMilli()}
	}
	setup := func() *liveness {
		l := &liveness{}
		l.begin(t0)
		l.note([]store.Reading{gpu(0, 100_000), gpu(1, 200_000)}, false)
		l.waiting(t0.Add(time.Millisecond))
		return l
	}
	sent := t0.Add(time.Second)
	probe := []Value{{store.KindGPU, 0, 0, 100_000}, {store.KindGPU, 1, 0, 200_000}, {store.KindGPU, 2, 0, 50_000}}

	l := setup()
	if v, _, first := l.judge(probe, sent); v != probeConfirmed || !first {
		t.Errorf("same values: verdict %d (first %v), want confirmed, first", v, first)
	}
	if got, want := l.evidence(), sent.UnixMilli(); got != want {
		t.Errorf("evidence after a confirming probe = %d, want the probe's %d", got, want)
	}
	// GPU 2 had no value: the probe's is what the next one compares with.
	if v, diff, _ := l.judge([]Value{{store.KindGPU, 2, 0, 60_000}}, sent.Add(time.Second)); v != probeDiffers || diff != "GPU 2 at 60000 mW, the stream's last 50000 mW" {
		t.Errorf("changed unsent value: verdict %d %q, want differs", v, diff)
	}

	l = setup()
	probe[1].MilliWatts = 250_000
	if v, diff, _ := l.judge(probe, sent); v != probeDiffers || diff != "GPU 1 at 250000 mW, the stream's last 200000 mW" {
		t.Errorf("changed value: verdict %d %q, want differs naming GPU 1", v, diff)
	}
	if !l.quietSince(sent) {
		t.Error("quietSince = false with nothing received")
	}
	l.received(sent.Add(time.Millisecond), 40)
	if l.quietSince(sent) {
		t.Error("quietSince = true after bytes arrived")
	}

	// Data handled after the probe was sent: the comparison is void.
	l = setup()
	l.received(sent.Add(time.Millisecond), 40)
	l.waiting(sent.Add(2 * time.Millisecond))
	if v, _, _ := l.judge(probe, sent); v != probeInconclusive {
		t.Errorf("data after the probe: verdict %d, want inconclusive", v)
	}
}

// TestIsUnknownDevice: zeusd's answers for a device it does not have
// (now) are told apart from those for a GPU without an energy counter.
func TestIsUnknownDevice(t *testing.T) {
	for _, tc := range []struct {
		code int
		msg  string
		want bool
	}{
		{400, "Unknown GPU indices: [1]. Available: [0]", true},
		{400, "GPU 7 not found", true},
		{400, "Unknown CPU indices: [1]. Available: [0]", true},
		{400, "GPU 0 does not support cumulative energy measurement.", false},
		{400, `{"errors":{"0":"NVML error: Not Supported"}}`, false},
		{404, "GPU 7 not found", false},
	} {
		if got := isUnknownDevice(&StatusError{Code: tc.code, Message: tc.msg}); got != tc.want {
			t.Errorf("isUnknownDevice(%d %q) = %v, want %v", tc.code, tc.msg, got, tc.want)
		}
	}
}
