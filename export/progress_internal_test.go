package export

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressBar_Draw(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	bar := NewProgressBar(&buf, "export")
	bar.enabled, bar.now = true, func() time.Time { return now }

	bar.Update(0, 12_300_000)
	now = now.Add(50 * time.Millisecond)
	bar.Update(1_000_000, 12_300_000) // too soon: not drawn
	now = now.Add(60 * time.Millisecond)
	bar.Update(5_500_000, 12_300_000)
	now = now.Add(10 * time.Millisecond)
	bar.Update(12_300_000, 12_300_000) // the end is always drawn
	bar.Finish()

	frames := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\r")[1:]
	want := []string{
		"export   0% [>                             ] 0/12.3M rows  0.0s\x1b[K",
		"export  44% [=============>                ] 5.5M/12.3M rows  0.1s\x1b[K",
		"export 100% [==============================] 12.3M/12.3M rows  0.1s\x1b[K",
	}
	if len(frames) != len(want) {
		t.Fatalf("drew %q, want %d frames", buf.String(), len(want))
	}
	for i := range want {
		if frames[i] != want[i] {
			t.Errorf("frame %d = %q, want %q", i, frames[i], want[i])
		}
	}
	if !strings.HasSuffix(buf.String(), "\n") {
		t.Error("Finish did not end the line")
	}
}
